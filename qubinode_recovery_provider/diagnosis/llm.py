"""The LLM second opinion: a PydanticAI model asked about a diagnosis the patterns are unsure of.

Opt-in (``[qubinode_recovery] llm_model`` or ``llm_conn_id``; ``docs/llm.md``). It is asked when the
pattern confidence is below ``llm_confidence_threshold`` or the cause is unknown, and then:

- **what is sent** is bounded and redacted: the pattern verdict, the decisive lines (each matched
  evidence line with :data:`WINDOW_LINES` lines around it, or the last lines when nothing matched), the
  exception and a few facts (task, host, unhealthy services), at most :data:`MAX_PROMPT_CHARS`
  characters, redacted (:func:`~qubinode_recovery_provider.redaction.redact_lines`) before it is cut;
  never the log;
- **what comes back** is validated into :class:`LLMAnswer` (our ten categories, a confidence, retryable
  with its reason, advice as text); anything else is a fall-back;
- **the cap**: the model never raises the confidence above what the evidence supports
  (:func:`capped_confidence`); its advice is stored as text and never run; the fingerprint stays the
  pattern's;
- **time**: one call, cancelled after ``llm_timeout_seconds``; with a deadline that cannot hold it the
  opinion is *deferred* (the recovery DAG's first task asks);
- **cache**: one answer per fingerprint and model, in the process and in a private file, so a failure
  seen again costs no call;
- **any error** (no package, network, timeout, invalid output) leaves the pattern diagnosis as it was,
  with a ``fallback`` note, and counts a warning.

Plain Python, no Airflow (``llm_conn_id`` reads the Airflow connection, importing Airflow only then);
``pydantic_ai`` is imported only when a call is made.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from qubinode_recovery_provider import config
from qubinode_recovery_provider.diagnosis.cache import cache_dir, read_trusted, write_atomically
from qubinode_recovery_provider.diagnosis.transient import transient_signal
from qubinode_recovery_provider.models import Diagnosis, LLMOpinion, RootCause
from qubinode_recovery_provider.redaction import redact, redact_lines, strip_control

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from qubinode_recovery_provider.models import DiagnosticContext, FailureEvent

log = logging.getLogger(__name__)

#: Changes when the prompt or the answer's shape changes: cached answers of another version are not used.
PROMPT_VERSION = 1
MAX_PROMPT_CHARS = 6000
WINDOW_LINES = 3
MAX_EVIDENCE = 3
MAX_LINES = 40
MAX_LINE_CHARS = 300
#: Lines are cut here before redaction, and at :data:`MAX_LINE_CHARS` after it.
MAX_RAW_CHARS = 2000
MAX_ACTIONS = 5
MAX_TEXT_CHARS = 1500
#: Advice items an answer keeps (before the shell-syntax filter and :data:`MAX_ACTIONS`).
MAX_ANSWER_ACTIONS = 20
#: The longest ``llm_timeout_seconds``: one call never holds a task or a shell longer.
MAX_TIMEOUT_SECONDS = 600.0
#: The most an opinion that agrees with the patterns adds to their confidence.
AGREE_BONUS = 0.1
#: The most confidence an opinion reaches where no pattern names a cause, or where it contradicts them:
#: below every automatic-recovery threshold, so the model alone never starts an action.
NO_EVIDENCE_CAP = 0.5
#: The confidence under which a retryable verdict is not given (the analyzer's default).
MIN_RETRYABLE_CONFIDENCE = 0.45
#: Cached answers are used for this long.
CACHE_TTL_SECONDS = 7 * 24 * 3600
MEMORY_CACHE_SIZE = 256
#: Time kept free after the call for the steps that follow it (recording the incident).
RESERVE_SECONDS = 1.0
APPLIED, FALLBACK, DEFERRED = "applied", "fallback", "deferred"
#: Advice that carries shell syntax is dropped: advice is for a person to read, and nothing in it runs.
#: So is advice that names a destructive command with its arguments (``rm -rf``, ``dd if=``, ``mkfs``).
_SHELL_SYNTAX = re.compile(
    r"`|\$\(|&&|\|\||;\s|\|\s|\s>{1,2}\s|^\s*(?:\$|#|sudo)\s"
    r"|(?i:\b(?:rm|chmod|chown)\s+-|\bdd\s+\S*=|\b(?:mkfs|shred|wipefs)\b)"
)

INSTRUCTIONS = """\
You give a second opinion on the diagnosis of a failed infrastructure task (KVM/libvirt VMs, kcli,
Ansible, podman, Vault, Airflow). A pattern library made the diagnosis given below and is not sure of it.
Read the decisive log lines and answer with:
- root_cause: one of virtualization, network, storage, service_dependency, credential,
  resource_exhaustion, configuration, timeout, state_mismatch, unknown (unknown when the lines do not
  show the cause);
- confidence: 0 to 1, how sure the lines make you;
- retryable: true when a plain retry can succeed, false when something must change first, null when
  you cannot tell; retryable_reason: one sentence;
- summary: one sentence; reasoning: a few sentences quoting the lines you relied on;
- recommended_actions: at most five short sentences for a person. Never write shell commands.
Secrets in the lines were replaced by ***."""


class LLMAnswer(BaseModel):
    """What the model must answer (PydanticAI's ``output_type``); anything else is rejected."""

    root_cause: RootCause = Field(description="one of the ten categories")
    confidence: float = Field(ge=0.0, le=1.0)
    retryable: bool | None = None
    retryable_reason: str = ""
    summary: str = ""
    reasoning: str = ""
    recommended_actions: list[str] = Field(default_factory=list)

    @field_validator("retryable_reason", "summary", "reasoning")
    @classmethod
    def _bounded_text(cls, value: str) -> str:
        """Cut here, before anything keeps it (the cache, the memory): a model may answer with megabytes."""
        return value[: MAX_TEXT_CHARS * 2]

    @field_validator("recommended_actions")
    @classmethod
    def _bounded_actions(cls, value: list[str]) -> list[str]:
        return [item[:MAX_RAW_CHARS] for item in value[:MAX_ANSWER_ACTIONS]]


@dataclass(frozen=True)
class LLMSettings:
    """Which model to ask and how.

    :param model: a PydanticAI model string (``openai:gpt-4o``, ``ollama:qwen3``), or with ``base_url``
        the model's name on that server.
    :param base_url: an OpenAI-compatible server (``http://localhost:11434/v1`` for Ollama).
    :param api_key: the key, if the server wants one.
    :param threshold: asked below this pattern confidence (and for unknown causes).
    :param timeout: seconds one call may take.
    """

    model: str
    base_url: str = ""
    api_key: str | None = field(default=None, repr=False)
    threshold: float = 0.7
    timeout: float = 15.0

    @property
    def label(self) -> str:
        """The model's name as outputs show it."""
        return self.model

    @classmethod
    def from_config(cls) -> LLMSettings | None:
        """The configured settings; None when no model is configured.

        :raises config.ConfigError: for a malformed threshold or timeout, or an unreadable connection.
        """
        threshold = config.get_float("llm_confidence_threshold")
        timeout = config.get_float("llm_timeout_seconds")
        if not 0.0 <= threshold <= 1.0:
            raise config.ConfigError(
                f"[qubinode_recovery] llm_confidence_threshold must be 0..1, got {threshold}"
            )
        if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT_SECONDS):
            raise config.ConfigError(
                "[qubinode_recovery] llm_timeout_seconds must be above 0 and at most "
                f"{MAX_TIMEOUT_SECONDS:g}, got {timeout}"
            )
        conn_id = config.get("llm_conn_id").strip()
        if conn_id:
            return _from_connection(conn_id, threshold, timeout)
        model = config.get("llm_model").strip()
        if not model:
            return None
        key_env = config.get("llm_api_key_env").strip()
        key = os.environ.get(key_env) if key_env else None
        return cls(model, config.get("llm_base_url").strip(), key, threshold, timeout)


def _from_connection(conn_id: str, threshold: float, timeout: float) -> LLMSettings:
    """Settings from an Airflow connection in the common-ai provider's ``pydanticai`` shape (host = base
    URL, password = API key, extra ``model``); Airflow is imported only here."""
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:
        raise config.ConfigError(f"llm_conn_id={conn_id!r}: cannot read the connection ({exc})") from None
    model = str(conn.extra_dejson.get("model") or config.get("llm_model")).strip()
    if not model:
        raise config.ConfigError(f"llm_conn_id={conn_id!r}: no model (extra 'model' or llm_model)")
    base_url = str(conn.host or "").strip()
    if base_url and "://" not in base_url:
        base_url = f"{conn.schema or 'http'}://{base_url}" + (f":{conn.port}" if conn.port else "")
    return LLMSettings(model, base_url, conn.password or None, threshold, timeout)


def build_prompt(
    diagnosis: Diagnosis,
    text: str | None = None,
    *,
    event: FailureEvent | None = None,
    context: DiagnosticContext | None = None,
) -> str:
    """The user prompt: the pattern verdict, the decisive lines, the exception and a few facts; bounded
    and redacted (see the module notes).

    :param diagnosis: the pattern diagnosis.
    :param text: the analysed text, for the lines around the evidence (without it: the evidence only).
    :param event: the failure, for its exception and task.
    :param context: the host's state, for its unhealthy services and full disks.
    """
    matches = ", ".join(f"{m.pattern_id} ({m.category.value})" for m in diagnosis.matched_patterns[:5])
    parts = [
        "Pattern diagnosis:",
        f"- root cause: {diagnosis.root_cause.value} (confidence {diagnosis.confidence:.2f})",
        f"- summary: {diagnosis.summary[:MAX_LINE_CHARS]}",
        f"- retryable: {diagnosis.retryable}",
        f"- matched patterns: {matches or 'none'}",
        "",
        "Decisive log lines (line number: text):",
        *_decisive_lines(diagnosis, text.splitlines() if text else []),
    ]
    if event is not None and event.exception_text:
        parts += ["", f"Exception: {event.exception_type or 'error'}: {event.exception_text[:500]}"]
    facts = _facts(diagnosis, event, context)
    if facts:
        parts += ["", "Facts:", *(f"- {f}" for f in facts)]
    # redacted before it is cut, in one pass over all lines (a key block spread over lines is caught whole,
    # and no cut leaves half a secret that its rule would no longer recognise)
    clean = redact_lines([strip_control(p[:MAX_RAW_CHARS]) for p in parts])
    return "\n".join(line[: MAX_LINE_CHARS + 20] for line in "\n".join(clean).split("\n"))[:MAX_PROMPT_CHARS]


def _decisive_lines(diagnosis: Diagnosis, lines: list[str]) -> list[str]:
    """Each evidence line with its window (merged, in order), or the last lines when nothing matched."""
    numbers: set[int] = set()
    shown: list[str] = []
    for match in diagnosis.matched_patterns[:MAX_EVIDENCE]:
        n = match.line_number
        if 1 <= n <= len(lines) and match.evidence[:40] in lines[n - 1]:
            numbers.update(range(max(1, n - WINDOW_LINES), min(len(lines), n + WINDOW_LINES) + 1))
        else:
            shown.append(f"{n}: {match.evidence[:MAX_RAW_CHARS]}")
    if not diagnosis.matched_patterns and lines:
        tail = [i for i in range(len(lines), 0, -1) if lines[i - 1].strip()][:15]
        numbers.update(tail)
    shown += [f"{n}: {lines[n - 1][:MAX_RAW_CHARS]}" for n in sorted(numbers)]
    if not shown and diagnosis.template:
        shown.append(f"?: {diagnosis.template[:MAX_RAW_CHARS]}")
    return shown[-MAX_LINES:]


def _facts(diagnosis: Diagnosis, event: FailureEvent | None, context: DiagnosticContext | None) -> list[str]:
    facts = []
    if event is not None:
        task = ".".join(p for p in (event.dag_id, event.task_id) if p)
        if task:
            facts.append(f"task {task}, try {event.try_number or '?'}")
    facts += [f"corroborated: {c}" for c in diagnosis.corroboration[:3]]
    facts += [f"contradicted: {c}" for c in diagnosis.contradictions[:3]]
    if context is not None:
        facts += [
            f"{s.kind} {s.name} is {s.state.value}"
            for s in context.services
            if s.state.value in ("down", "degraded")
        ][:5]
        facts += [
            f"disk {d.mount} is {d.percent:.0f}% full"
            for d in context.resources.disks
            if (d.percent or 0) >= 90
        ]
        if (context.resources.memory_percent or 0) >= 90:
            facts.append(f"memory is {context.resources.memory_percent:.0f}% used")
    return facts


def capped_confidence(diagnosis: Diagnosis, answer: LLMAnswer) -> tuple[RootCause, float, str]:
    """The cause and confidence the diagnosis gets from an answer, and the rule that set them.

    - the model names no cause: the pattern result stands;
    - it names the patterns' cause: their confidence, raised by the model to at most
      :data:`AGREE_BONUS` more (never lowered);
    - it names another cause (or the patterns named none): nothing in the evidence supports it, so its
      confidence is capped at :data:`NO_EVIDENCE_CAP`; it replaces the pattern result only when that
      capped value is still above the pattern confidence.

    :param diagnosis: the pattern diagnosis.
    :param answer: the model's answer.
    """
    pattern = diagnosis.confidence
    if answer.root_cause is RootCause.UNKNOWN:
        return diagnosis.root_cause, pattern, "the model named no cause: the pattern result stands"
    if answer.root_cause is diagnosis.root_cause:
        value = round(min(max(pattern, answer.confidence), pattern + AGREE_BONUS, 1.0), 4)
        return (
            diagnosis.root_cause,
            value,
            f"agrees with the patterns: at most their confidence + {AGREE_BONUS}",
        )
    value = round(min(answer.confidence, NO_EVIDENCE_CAP), 4)
    if value > pattern:
        return answer.root_cause, value, f"no pattern evidence for its cause: capped at {NO_EVIDENCE_CAP}"
    return diagnosis.root_cause, pattern, "weaker than the pattern evidence: the pattern result stands"


def clean_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Model text as it may be stored: control characters removed, redacted, bounded.

    :param text: what the model wrote.
    :param limit: the most characters kept.
    """
    return redact(strip_control(text)).strip()[:limit]


def clean_actions(actions: Iterable[str]) -> tuple[list[str], int]:
    """The model's advice as text for a person: at most :data:`MAX_ACTIONS`, each bounded; an item with
    shell syntax (backticks, ``$(``, ``&&``, pipes, redirections, a prompt) is dropped.

    :param actions: what the model advised.
    :return: the kept items and how many were dropped.
    """
    kept: list[str] = []
    dropped = 0
    for action in actions:
        text = clean_text(str(action), MAX_LINE_CHARS)
        if not text:
            continue
        if _SHELL_SYNTAX.search(text):
            dropped += 1
            continue
        if len(kept) < MAX_ACTIONS:
            kept.append(text)
    return kept, dropped


def apply_opinion(diagnosis: Diagnosis, answer: LLMAnswer, model: str, *, cached: bool = False) -> Diagnosis:
    """A copy of ``diagnosis`` with the answer applied under the cap; the fingerprint, the matched
    patterns and the severity stay the pattern's.

    :param diagnosis: the pattern diagnosis.
    :param answer: the model's validated answer.
    :param model: the model's name, for the label.
    :param cached: the answer came from the cache.
    """
    cause, confidence, rule = capped_confidence(diagnosis, answer)
    actions, dropped = clean_actions(answer.recommended_actions)
    detail = rule + (f"; {dropped} advice item(s) with shell syntax dropped" if dropped else "")
    opinion = LLMOpinion(
        model=model,
        status=APPLIED,
        root_cause=answer.root_cause,
        confidence=answer.confidence,
        retryable=answer.retryable,
        retryable_reason=clean_text(answer.retryable_reason, MAX_LINE_CHARS),
        recommended_actions=actions,
        reasoning=clean_text(answer.reasoning),
        pattern_root_cause=diagnosis.root_cause,
        pattern_confidence=diagnosis.confidence,
        cached=cached,
        detail=detail,
    )
    out = diagnosis.model_copy(deep=True)
    out.llm, out.llm_reasoning, out.confidence = opinion, opinion.reasoning or None, confidence
    if cause is not diagnosis.root_cause:
        out.root_cause = cause
        summary = clean_text(answer.summary, MAX_LINE_CHARS) or f"{cause.value} failure"
        out.summary = (
            f"{summary} ({opinion.label}; the patterns said {diagnosis.root_cause.value} "
            f"at {diagnosis.confidence:.2f})"
        )
    if cause is answer.root_cause and (cause is not diagnosis.root_cause or diagnosis.retryable is None):
        claim = answer.retryable if confidence >= MIN_RETRYABLE_CONFIDENCE else None
        if claim is True and not any(transient_signal(m.evidence) for m in diagnosis.matched_patterns):
            claim = None  # the retryable rule holds for a model too: "true" needs a transient signal
        out.retryable = claim
        out.retry_delay_seconds = (diagnosis.retry_delay_seconds or 60) if out.retryable else None
    out.recommended_actions += [f"{opinion.label}: {a}" for a in actions]
    return out


def with_note(diagnosis: Diagnosis, model: str, status: str, detail: str) -> Diagnosis:
    """A copy of the diagnosis noting an opinion that fell back or was deferred (nothing else changes).

    :param diagnosis: the pattern diagnosis.
    :param model: the model's name.
    :param status: :data:`FALLBACK` or :data:`DEFERRED`.
    :param detail: why.
    """
    out = diagnosis.model_copy(deep=True)
    out.llm = LLMOpinion(
        model=model,
        status=status,
        pattern_root_cause=diagnosis.root_cause,
        pattern_confidence=diagnosis.confidence,
        detail=redact(detail)[:MAX_LINE_CHARS],
    )
    return out


class SecondOpinion:
    """Asks the configured model about diagnoses the patterns are unsure of (see the module notes).

    :param settings: the model and its limits.
    :param model: a PydanticAI model object to use instead of building one from ``settings`` (tests use
        ``TestModel``/``FunctionModel``).
    :param cache_path: the directory of cached answers; default ``<cache dir>/llm``; None: memory only.
    :param reserve: seconds a deadline must keep free after the call.
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        model: Any = None,
        cache_path: Path | str | None = "default",
        reserve: float = RESERVE_SECONDS,
    ) -> None:
        self.settings = settings
        self.model = model
        if cache_path == "default":
            base = cache_dir()
            cache_path = base / "llm" if base is not None else None
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self.reserve = reserve
        #: calls made to the model, and how many of them were cancelled at their time limit
        self.calls = 0
        self.cancelled = 0
        #: what fell back, newest last (at most 50 kept), and how many in all
        self.warnings: list[str] = []
        self.warning_count = 0
        #: every prompt sent, newest last (at most 20 kept), for tests and ``--json`` debugging
        self.prompts: list[str] = []
        self._memory: OrderedDict[str, LLMAnswer] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls) -> SecondOpinion | None:
        """The configured second opinion; None when no model is configured.

        :raises config.ConfigError: for a malformed option.
        """
        settings = LLMSettings.from_config()
        return cls(settings) if settings is not None else None

    def wanted(self, diagnosis: Diagnosis) -> bool:
        """Whether the diagnosis needs an opinion: unknown or below the threshold, and none applied yet.

        :param diagnosis: the pattern diagnosis.
        """
        if diagnosis.llm is not None and diagnosis.llm.status == APPLIED:
            return False
        return diagnosis.root_cause is RootCause.UNKNOWN or diagnosis.confidence < self.settings.threshold

    def review(
        self,
        diagnosis: Diagnosis,
        text: str | None = None,
        *,
        event: FailureEvent | None = None,
        context: DiagnosticContext | None = None,
        deadline: float | None = None,
    ) -> Diagnosis:
        """The diagnosis with the model's opinion applied, noted as fallen back, or deferred. Never raises.

        :param diagnosis: the pattern diagnosis.
        :param text: the analysed text (for the lines around the evidence).
        :param event: the failure.
        :param context: the host's state.
        :param deadline: a :func:`time.monotonic` value; when the time left cannot hold a call and
            :attr:`reserve`, the opinion is deferred.
        """
        if not self.wanted(diagnosis):
            return diagnosis
        label = self.settings.label
        key = self._key(diagnosis.fingerprint)
        cached = self._cached(key)
        if cached is not None:
            return apply_opinion(diagnosis, cached, label, cached=True)
        timeout = self.settings.timeout
        if deadline is not None and deadline - time.monotonic() < timeout + self.reserve:
            left = max(0.0, deadline - time.monotonic())
            return with_note(
                diagnosis,
                label,
                DEFERRED,
                f"{left:.1f}s left cannot hold a {timeout:g}s call: the recovery DAG asks",
            )
        try:
            answer = self._ask(build_prompt(diagnosis, text, event=event, context=context), timeout)
        except Exception as exc:
            return with_note(diagnosis, label, FALLBACK, self._warn(exc))
        self._store(key, answer)
        return apply_opinion(diagnosis, answer, label)

    # --- the call --------------------------------------------------------------------------------

    def _ask(self, prompt: str, timeout: float) -> LLMAnswer:
        with self._lock:
            self.calls += 1
            self.prompts = [*self.prompts[-19:], prompt]
        answer = _run_coroutine(lambda: self._ask_async(prompt, timeout), timeout + 2.0)
        return LLMAnswer.model_validate(answer.model_dump())

    async def _ask_async(self, prompt: str, timeout: float) -> LLMAnswer:
        from pydantic_ai import Agent

        model, close = self._model(timeout)
        try:
            agent = Agent(model, output_type=LLMAnswer, instructions=INSTRUCTIONS, retries=0)
            try:
                result = await asyncio.wait_for(agent.run(prompt), timeout)
            except TimeoutError:
                with self._lock:
                    self.cancelled += 1
                raise TimeoutError(f"no answer within {timeout:g}s; the call was cancelled") from None
            return result.output
        finally:
            if close is not None:
                await close()

    def _model(self, timeout: float) -> tuple[Any, Callable[[], Awaitable[None]] | None]:
        """The PydanticAI model, and how to close its HTTP client (built per call: an HTTP client
        belongs to the event loop it was made in)."""
        if self.model is not None:
            return self.model, None
        s = self.settings
        if not s.base_url and not s.model.startswith("openai:"):
            from pydantic_ai.models import infer_model

            return infer_model(s.model), None  # the provider reads its own key variable
        from openai import AsyncOpenAI
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        # OpenAI itself or a compatible server, without the client's own retries; with no key the
        # client reads OPENAI_API_KEY; a local server wants no key, so it is sent the dummy key "none"
        key = s.api_key or ("none" if s.base_url else None)
        client = AsyncOpenAI(base_url=s.base_url or None, api_key=key, max_retries=0, timeout=timeout)
        name = s.model.split(":", 1)[1] if s.model.startswith(("openai:", "ollama:")) else s.model
        return OpenAIChatModel(name, provider=OpenAIProvider(openai_client=client)), client.close

    def _warn(self, exc: BaseException) -> str:
        if isinstance(exc, ImportError):
            reason = "pydantic-ai is not installed (pip install 'qubinode-recovery-provider[llm]')"
        elif isinstance(exc, ValidationError):
            reason = f"invalid answer ({exc.error_count()} validation error(s))"
        else:
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        detail = (
            f"LLM second opinion (model {self.settings.label}) not applied, pattern result kept: {reason}"
        )
        with self._lock:
            self.warning_count += 1
            self.warnings = [*self.warnings[-49:], redact(detail)]
        log.warning("%s", redact(detail))
        return reason

    # --- the cache -------------------------------------------------------------------------------

    def _key(self, fingerprint: str) -> str:
        s = self.settings
        raw = f"{PROMPT_VERSION}|{s.model}|{s.base_url}|{fingerprint}"
        return hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:40]

    def _cached(self, key: str) -> LLMAnswer | None:
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        if self.cache_path is None:
            return None
        data = read_trusted(self.cache_path / f"{key}.json")
        try:
            entry = json.loads(data) if data else None
            if not entry or time.time() - float(entry["created"]) > CACHE_TTL_SECONDS:
                return None
            answer = LLMAnswer.model_validate(entry["answer"])
        except (ValueError, KeyError, TypeError, RecursionError):
            return None
        self._remember(key, answer)
        return answer

    def _store(self, key: str, answer: LLMAnswer) -> None:
        self._remember(key, answer)
        if self.cache_path is not None:
            entry = {"created": time.time(), "answer": answer.model_dump(mode="json")}
            write_atomically(self.cache_path / f"{key}.json", json.dumps(entry).encode())

    def _remember(self, key: str, answer: LLMAnswer) -> None:
        with self._lock:
            self._memory[key] = answer
            while len(self._memory) > MEMORY_CACHE_SIZE:
                self._memory.popitem(last=False)


def _run_coroutine(factory: Callable[[], Awaitable[LLMAnswer]], seconds: float) -> LLMAnswer:
    """Run a coroutine to its end in this thread, or in a helper thread when this one runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_awaited(factory))
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = asyncio.run(_awaited(factory))
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    helper = threading.Thread(target=run, name="qubinode-llm", daemon=True)
    helper.start()
    helper.join(seconds)
    if "error" in box:
        raise box["error"]
    if "value" not in box:
        raise TimeoutError(f"no answer within {seconds:g}s")
    value: LLMAnswer = box["value"]
    return value


async def _awaited(factory: Callable[[], Awaitable[LLMAnswer]]) -> LLMAnswer:
    return await factory()


def second_opinion_for(use_llm: bool | None) -> tuple[SecondOpinion | None, str | None]:
    """The analyzer's second opinion for ``FailureAnalyzer(use_llm=...)``, and a warning when it cannot
    have one: False: none; None: the configured one, if any; True: the configured one, else a warning
    (the analyzer then diagnoses with its patterns only).

    :param use_llm: the analyzer's switch.
    """
    if use_llm is False:
        return None, None
    try:
        opinion = SecondOpinion.from_config()
    except config.ConfigError as exc:
        return None, f"LLM second opinion off: {exc}"
    if opinion is None and use_llm:
        return None, (
            "use_llm=True but no LLM is configured ([qubinode_recovery] llm_model or llm_conn_id): "
            "diagnosing with the patterns only"
        )
    return opinion, None


__all__ = [
    "APPLIED",
    "DEFERRED",
    "FALLBACK",
    "INSTRUCTIONS",
    "LLMAnswer",
    "LLMSettings",
    "SecondOpinion",
    "apply_opinion",
    "build_prompt",
    "capped_confidence",
    "clean_actions",
    "second_opinion_for",
    "with_note",
]
