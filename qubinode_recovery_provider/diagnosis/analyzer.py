"""The analyzer: from a failure's text (and optionally the host's context) to one :class:`Diagnosis`.

1. One scan finds every known-error pattern in the text (:mod:`.matcher`), wherever it sits.
2. Each hit is weighed: a ``cause`` pattern outweighs a ``symptom`` (a timeout or ``exit status 1``
   that follows the real cause), a longer, more specific match outweighs a generic one, and later lines
   weigh a little more than earlier ones.
3. Categories are scored from their patterns; the best pattern of the best category is the decisive one.
4. Service health and resources from a :class:`DiagnosticContext` corroborate or contradict it.
5. Confidence is a logistic function of these features whose coefficients were fitted on the
   development part of the labelled corpus (``calibration.json``, made by ``bench/accuracy.py --fit``);
   the held-out part measures how well it is calibrated (``docs/benchmarks.md``).
6. Optionally, an LLM second opinion on a diagnosis the patterns are unsure of (:mod:`.llm`), capped so
   that it never claims more than the evidence supports.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.categories import Health, RootCause, Severity
from qubinode_recovery_provider.diagnosis import model as learned
from qubinode_recovery_provider.diagnosis.fingerprint import fingerprint, template
from qubinode_recovery_provider.diagnosis.linear import compile_linear
from qubinode_recovery_provider.diagnosis.matcher import MAX_SCAN_BYTES, Hit, Matcher, ScanResult
from qubinode_recovery_provider.diagnosis.patterns import CompiledPattern, PatternLibrary
from qubinode_recovery_provider.diagnosis.transient import transient_claim

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from qubinode_recovery_provider.diagnosis.llm import SecondOpinion
    from qubinode_recovery_provider.diagnosis.pack_schema import Pattern
    from qubinode_recovery_provider.diagnosis.patterns import PatternRule
    from qubinode_recovery_provider.diagnosis.plain import PlainFailureEvent
    from qubinode_recovery_provider.models import Diagnosis, DiagnosticContext, FailureEvent

log = logging.getLogger(__name__)
CALIBRATION_FILE = learned.CALIBRATION_FILE
SYMPTOM_WEIGHT = 0.35
RUNNER_UP_SHARE = 0.3
DEFAULT_RETRY_DELAY = {
    RootCause.NETWORK: 60,
    RootCause.SERVICE_DEPENDENCY: 120,
    RootCause.TIMEOUT: 120,
    RootCause.STATE_MISMATCH: 60,
    RootCause.RESOURCE_EXHAUSTION: 300,
}
NON_ERROR_LEVEL_WEIGHT = 0.7
#: The pack of tool-independent wording families; its patterns yield to a tool's on the same line.
GENERIC_PACK = "generic"
_LOW_LEVEL = compile_linear(
    r"\b(?:DEBUG|INFO|NOTICE|WARN|WARNING)\b|level=(?:debug|info|warn|warning)\b|\[(?:WARN|INFO)\]"
)
_ERROR_LEVEL = compile_linear(
    r"\b(?:ERROR|FATAL|CRITICAL|CRIT|ERR|FATA|ERRO)\b|level=(?:error|fatal)\b|^fatal:|^failed:"
)
_ERRORISH = compile_linear(
    r"error|fail|fatal|exception|denied|refused|cannot|can't|unable|not found|invalid|abort|panic",
    ignore_case=True,
)


@dataclass(frozen=True)
class Calibration:
    """Coefficients of the confidence model (logistic regression over a few features)."""

    bias: float = -0.4
    w_score: float = 1.2
    w_margin: float = 1.5
    w_cause: float = 0.8
    w_agree: float = 0.4
    w_corroborate: float = 0.8
    w_contradict: float = -0.9
    unknown_confidence: float = 0.2
    min_retryable_confidence: float = 0.45

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE, data: dict[str, Any] | None = None) -> Calibration:
        """The ``coefficients`` section of the calibration file; the defaults when it has none.

        :param path: the calibration file, read when ``data`` is not given.
        :param data: the file's content, already read (:func:`.model.read_calibration`).
        """
        data = learned.read_calibration(path) if data is None else data
        return cls(**learned.calibration_fields(cls, data.get("coefficients")))


@dataclass
class Evidence:
    """The weighed hits of one pattern."""

    compiled: CompiledPattern
    hits: list[Hit]
    count: int
    weight: float = 0.0
    best: Hit | None = None

    @property
    def category(self) -> RootCause:
        return self.compiled.rule.category


@dataclass
class Features:
    """What the confidence model reads."""

    score: float
    margin: float
    cause: float
    agree: float
    corroborations: list[str] = field(default_factory=list)
    contradictions: list[str] = field(default_factory=list)


class FailureAnalyzer:
    """Diagnose failures with a pattern library.

    Building one never raises because of the user's packs: the default library is loaded leniently
    (:meth:`PatternLibrary.from_config`) and what it skipped is in :attr:`warnings`.

    :param library: the patterns; default: the shipped packs plus ``[qubinode_recovery] pattern_dirs``.
    :param calibration: confidence coefficients; default: the fitted ``calibration.json``.
    :param index_kind: the prefilter (:func:`~qubinode_recovery_provider.diagnosis.matcher.build_index`).
    :param use_llm: ask an LLM for a second opinion when the patterns are unsure (:mod:`.llm`): None
        when ``[qubinode_recovery] llm_model`` (or ``llm_conn_id``) is set; True asks the configured
        model and, when there is none, diagnoses with the patterns only and says so in :attr:`warnings`;
        False never asks.
    :param second_opinion: the second opinion to use (overrides ``use_llm``).
    :param plain_results: return :class:`.plain.PlainDiagnosis` (the same fields and JSON, no pydantic:
        a process that only prints the diagnosis starts faster) instead of the pydantic model.
    :param text_model: the learned model asked when the patterns are not confident (:mod:`.model`):
        None follows ``[qubinode_recovery] learned_model`` (on by default: the shipped model, loaded on
        first need); False never asks; a :class:`~.model.TextModel` is asked instead of the shipped one.
    """

    def __init__(
        self,
        library: PatternLibrary | None = None,
        calibration: Calibration | None = None,
        index_kind: str = "auto",
        *,
        use_llm: bool | None = None,
        second_opinion: SecondOpinion | None = None,
        plain_results: bool = False,
        text_model: learned.TextModel | bool | None = None,
    ) -> None:
        self.library = library if library is not None else PatternLibrary.from_config()
        calibration_data = learned.read_calibration()  # read once for both sections
        self.calibration = calibration or Calibration.load(data=calibration_data)
        self.model_calibration = learned.ModelCalibration.load(data=calibration_data)
        self._text_model: learned.TextModel | bool | None = text_model
        self.model_warning: str | None = None
        self.index_kind = index_kind
        self.plain_results = plain_results
        self.llm_warning: str | None = None
        if second_opinion is not None:
            self.second_opinion: SecondOpinion | None = second_opinion
        else:
            self.second_opinion, self.llm_warning = _second_opinion_for(use_llm)
            if self.llm_warning:
                log.warning("%s", self.llm_warning)

    @staticmethod
    def _result_types(plain: bool) -> tuple[Any, Any]:
        """The classes of a diagnosis and of its pattern matches: the plain ones or the models."""
        if plain:
            from qubinode_recovery_provider.diagnosis.plain import PlainDiagnosis, PlainPatternMatch

            return PlainDiagnosis, PlainPatternMatch
        from qubinode_recovery_provider.models import Diagnosis, PatternMatch

        return Diagnosis, PatternMatch

    @cached_property
    def matcher(self) -> Matcher:
        return Matcher(self.library.patterns, self.index_kind)

    @property
    def warnings(self) -> list[str]:
        """Problems skipped while loading the pattern library (missing ``pattern_dirs``, broken packs),
        one line each; ``self.library.warning_count`` counts them all. Then why the LLM second opinion is
        off although it was asked for, and its fall-backs (:attr:`SecondOpinion.warnings`). The learned
        model's, when its file could not be read (the patterns then decide alone)."""
        extra = [w for w in (self.model_warning, self.llm_warning) if w]
        if self.second_opinion is not None:
            extra += self.second_opinion.warnings
        return [*self.library.warnings, *extra]

    def analyze(
        self,
        failure: str | FailureEvent | PlainFailureEvent | DiagnosticContext,
        context: DiagnosticContext | None = None,
        *,
        diagnosis_id: str | None = None,
        deadline: float | None = None,
        plain: bool | None = None,
    ) -> Diagnosis:
        """Diagnose a failure given as text, as a :class:`FailureEvent` (or its plain twin), or (the
        reference guide's form) as a :class:`DiagnosticContext`.

        :param failure: the failure's text; the event (its exception and log tail are read); or a context
            (its ``recent_logs`` and ``error_message`` are read, and it is the host's state too).
        :param context: the host's state, to corroborate or contradict the diagnosis.
        :param diagnosis_id: the id given to the diagnosis.
        :param deadline: a :func:`time.monotonic` value: once it has passed the scan stops, and the
            diagnosis is made from the lines read so far (its summary and recommended actions say so);
            an LLM second opinion that the time left cannot hold is deferred.
        :param plain: return a :class:`.plain.PlainDiagnosis` (True) or the model (False); default
            ``plain_results``. A plain diagnosis gets no LLM second opinion (it works on the model).
        """
        plain = self.plain_results if plain is None else plain
        event: FailureEvent | PlainFailureEvent | None = None
        if not isinstance(failure, str):
            event, context = _event_and_context(failure, context)
        text = event.text() if event is not None else str(failure)
        scan = self.matcher.scan_text(text, deadline)
        diagnosis = self._diagnose(scan, context, event, diagnosis_id, plain)
        return self._second_look(diagnosis, plain, text, event, context, deadline)

    def analyze_file(
        self,
        path: str | Path,
        context: DiagnosticContext | None = None,
        *,
        diagnosis_id: str | None = None,
        deadline: float | None = None,
    ) -> Diagnosis:
        """Diagnose a log file of any size (streamed; of a file over 256 MiB, the end).

        :param path: the log file.
        :param context: the host's state.
        :param diagnosis_id: the id given to the diagnosis.
        :param deadline: a :func:`time.monotonic` value after which the scan stops (see :meth:`analyze`).
        """
        scan = self.matcher.scan_file(path, deadline)
        diagnosis = self._diagnose(scan, context, None, diagnosis_id, self.plain_results)
        return self._second_look(diagnosis, self.plain_results, None, None, context, deadline)

    def _second_look(
        self,
        diagnosis: Diagnosis,
        plain: bool,
        text: str | None,
        event: FailureEvent | PlainFailureEvent | None,
        context: DiagnosticContext | None,
        deadline: float | None,
    ) -> Diagnosis:
        """The LLM second opinion on ``diagnosis``, when one is configured; a plain diagnosis gets none
        (the opinion works on the model), whether it was made from a text, an event or a file."""
        if self.second_opinion is None or plain:
            return diagnosis
        return self.second_opinion.review(
            diagnosis, text, event=_model_event(event), context=context, deadline=deadline
        )

    def _diagnose(
        self,
        scan: ScanResult,
        context: DiagnosticContext | None,
        event: FailureEvent | PlainFailureEvent | None,
        diagnosis_id: str | None,
        plain: bool,
    ) -> Diagnosis:
        evidence = self._weigh(scan)
        known = [e for e in evidence if e.category is not RootCause.UNKNOWN]
        types = self._result_types(plain)
        diagnosis = self._known(known, context, types) if known else self._unknown(scan, evidence, types)
        diagnosis = self._consult_model(diagnosis, scan, plain)
        diagnosis.id = diagnosis_id
        if event is not None:
            diagnosis.dag_id, diagnosis.task_id, diagnosis.run_id = event.dag_id, event.task_id, event.run_id
        if not scan.complete:
            _note_incomplete(diagnosis, scan)
        return diagnosis

    def _consult_model(self, diagnosis: Diagnosis, scan: ScanResult, plain: bool) -> Diagnosis:
        """Ask the learned model when the patterns are not confident (:func:`.model.combine`); not once
        the deadline has stopped the scan."""
        if diagnosis.confidence >= self.model_calibration.consult_below or scan.stopped == "deadline":
            return diagnosis
        model = self.text_model()
        if model is None:
            return diagnosis
        prediction = model.predict(learned.model_lines(scan))
        return learned.combine(diagnosis, prediction, self.model_calibration, plain=plain)

    def text_model(self) -> learned.TextModel | None:
        """The learned model, loaded on first call; None when it is off or its file is unreadable."""
        if self._text_model is None:
            from qubinode_recovery_provider import config

            try:
                self._text_model = config.get_bool("learned_model")
            except config.ConfigError as exc:
                self.model_warning = f"{exc}; the learned model is off"
                self._text_model = False
        if self._text_model is True:
            loaded = learned.shipped_model()
            if isinstance(loaded, learned.ModelError):
                self.model_warning = f"learned model off, diagnosing with the patterns only: {loaded}"
                self._text_model = False
            else:
                self._text_model = loaded
        return self._text_model if isinstance(self._text_model, learned.TextModel) else None

    def _weigh(self, scan: ScanResult) -> list[Evidence]:
        by_pattern: dict[int, list[Hit]] = defaultdict(list)
        for hit in scan.hits():
            by_pattern[hit.pattern_index].append(hit)
        total = max(scan.total_lines, 1)
        evidence = []
        for index, hits in by_pattern.items():
            ev = Evidence(self.matcher.patterns[index], hits, scan.counts[index])
            for hit in hits:
                w = _hit_weight(ev.compiled, hit, total)
                if w > ev.weight or (
                    w == ev.weight and ev.best is not None and hit.line_number > ev.best.line_number
                ):
                    ev.weight, ev.best = w, hit
            ev.weight += 0.05 * math.log(ev.count)
            evidence.append(ev)
        return sorted(evidence, key=lambda e: (-e.weight, e.best.line_number if e.best else 0))

    def _known(
        self, evidence: list[Evidence], context: DiagnosticContext | None, result_types: tuple[Any, Any]
    ) -> Diagnosis:
        category, in_category, features = _rank(evidence)
        primary = in_category[0]
        pattern = primary.compiled.rule
        _apply_context(features, primary, context)
        confidence = self._confidence(features)
        retryable = self._retry_claim(pattern, confidence, primary)
        ordered = in_category + [e for e in evidence if e.category is not category]
        decisive = template(primary.best.text if primary.best else "")
        advice = cause_advice(pattern, category, retryable)
        services = advice.services + _correlated_services(in_category[1:], advice.services, context)
        diagnosis_type, match_type = result_types
        result: Diagnosis = diagnosis_type(
            root_cause=category,
            summary=pattern.description,
            confidence=confidence,
            severity=_severity(pattern.severity, features),
            retryable=retryable,
            retry_delay_seconds=_retry_delay(pattern, category) if retryable else None,
            affected_services=services,
            matched_patterns=[_as_match(e, match_type) for e in ordered],
            fingerprint=fingerprint(category.value, [pattern.id], decisive),
            template=decisive,
            recommended_actions=advice.actions,
            diagnostic_commands=advice.commands,
            corroboration=features.corroborations,
            contradictions=features.contradictions,
        )
        return result

    def _retry_claim(
        self, pattern: Pattern | PatternRule, confidence: float, primary: Evidence
    ) -> bool | None:
        """The decisive pattern's ``retryable``, when it names the cause (``role: cause``) and the
        diagnosis is confident enough; else ``None`` (not known). A symptom pattern decides only when no
        pattern naming a cause matched in its category, and what it says about retries (``invalid
        value``: false) is not evidence about the unnamed cause. A ``true`` claim also needs its
        evidence (:func:`.transient.transient_claim`): a known-transient signal on the decisive line,
        not met again and again in the same log.

        :param pattern: the decisive pattern.
        :param confidence: the diagnosis's confidence.
        :param primary: the decisive pattern's evidence (its best line and how many lines it matched).
        """
        if pattern.role != "cause" or confidence < self.calibration.min_retryable_confidence:
            return None
        claim: bool | None = pattern.retryable
        if claim is True and not transient_claim(primary.best.text if primary.best else "", primary.count):
            return None
        return claim

    def _unknown(
        self, scan: ScanResult, wrappers: list[Evidence], result_types: tuple[Any, Any]
    ) -> Diagnosis:
        """No pattern names a cause. ``wrappers`` are symptom patterns that only say *that* something
        failed (``exit status 1``); their line, else the last error line, is the decisive one."""
        best = wrappers[0].best if wrappers else None
        decisive = template(best.text if best else _decisive_unknown_line(scan))
        ids = [wrappers[0].compiled.id] if wrappers else []
        diagnosis_type, match_type = result_types
        result: Diagnosis = diagnosis_type(
            root_cause=RootCause.UNKNOWN,
            summary=(wrappers[0].compiled.rule.description if wrappers else "No known error pattern matched")
            + "; grouped by the template of the decisive line.",
            confidence=self.calibration.unknown_confidence,
            severity=Severity.MEDIUM,
            retryable=None,
            matched_patterns=[_as_match(e, match_type) for e in wrappers],
            fingerprint=fingerprint(RootCause.UNKNOWN.value, ids, decisive),
            template=decisive,
            recommended_actions=[
                "Read the task log around the decisive line; no known pattern explains the cause.",
                "If this failure recurs, add a pattern for it (qubinode-recovery patterns suggest).",
            ],
        )
        return result

    def _confidence(self, f: Features) -> float:
        c = self.calibration
        z = (
            c.bias
            + c.w_score * min(f.score, 2.0)
            + c.w_margin * f.margin
            + c.w_cause * f.cause
            + c.w_agree * min(f.agree, 3.0)
            + c.w_corroborate * len(f.corroborations)
            + c.w_contradict * len(f.contradictions)
        )
        return round(1.0 / (1.0 + math.exp(-z)), 4)

    def features_of(self, text: str) -> tuple[RootCause, Features | None]:
        """The predicted category and the confidence features, for fitting the calibration."""
        evidence = [
            e for e in self._weigh(self.matcher.scan_text(text)) if e.category is not RootCause.UNKNOWN
        ]
        if not evidence:
            return RootCause.UNKNOWN, None
        category, _, features = _rank(evidence)
        return category, features


def _event_and_context(
    failure: FailureEvent | PlainFailureEvent | DiagnosticContext, context: DiagnosticContext | None
) -> tuple[FailureEvent | PlainFailureEvent | None, DiagnosticContext | None]:
    """The event of a failure given as an event or as a context (which is the host's state too, unless
    ``context`` is given). The models are not loaded for a plain event."""
    from qubinode_recovery_provider.diagnosis.plain import PlainFailureEvent

    if isinstance(failure, PlainFailureEvent):
        return failure, context
    from qubinode_recovery_provider.models import DiagnosticContext, FailureEvent

    if isinstance(failure, DiagnosticContext):
        return failure.failure_event(), context or failure
    return (failure if isinstance(failure, FailureEvent) else None), context


def _model_event(event: FailureEvent | PlainFailureEvent | None) -> FailureEvent | None:
    """The event as the model (what the LLM second opinion reads)."""
    from qubinode_recovery_provider.diagnosis.plain import PlainFailureEvent

    return event.to_model() if isinstance(event, PlainFailureEvent) else event


def _second_opinion_for(use_llm: bool | None) -> tuple[SecondOpinion | None, str | None]:
    """:func:`.llm.second_opinion_for`, without importing the LLM module when no LLM is asked for or
    configured (most processes: it costs start-up time)."""
    if use_llm is False:
        return None, None
    if use_llm is None:
        from qubinode_recovery_provider import config

        try:
            configured = config.get("llm_conn_id").strip() or config.get("llm_model").strip()
        except Exception:  # an unreadable configuration: the LLM module says what is wrong
            configured = "?"
        if not configured:
            return None, None
    from qubinode_recovery_provider.diagnosis.llm import second_opinion_for

    return second_opinion_for(use_llm)


def _rank(evidence: Sequence[Evidence]) -> tuple[RootCause, list[Evidence], Features]:
    """The winning category, its evidence (best first) and the confidence features."""
    ranked = sorted(_category_scores(evidence).items(), key=lambda kv: -kv[1])
    category, top = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    in_category = [e for e in evidence if e.category is category]
    features = Features(
        score=top,
        margin=(top - second) / top if top else 0.0,
        cause=1.0 if in_category[0].compiled.rule.role == "cause" else 0.0,
        agree=float(len({e.best.line_number for e in in_category if e.best}) - 1),
    )
    return category, _specific_first(in_category), features


def _hit_weight(cp: CompiledPattern, hit: Hit, total_lines: int) -> float:
    base = 1.0 if cp.rule.role == "cause" else SYMPTOM_WEIGHT
    specificity = 0.6 + 0.4 * min(1.0, hit.match_length / 40.0)
    recency = 0.85 + 0.15 * (hit.line_number / total_lines)
    return base * specificity * recency * _level_factor(hit.text)


def _level_factor(line: str) -> float:
    """A line its tool logged below error level (INFO, WARNING) is weaker evidence of the cause."""
    head = line[:160]
    if _ERROR_LEVEL.search(head):
        return 1.0
    return NON_ERROR_LEVEL_WEIGHT if _LOW_LEVEL.search(head) else 1.0


def _category_scores(evidence: Sequence[Evidence]) -> dict[RootCause, float]:
    """Best line of a category plus a share of its other lines: several patterns that match one
    line are one piece of evidence, not several."""
    per_line: dict[RootCause, dict[int, float]] = defaultdict(dict)
    for ev in evidence:
        line = ev.best.line_number if ev.best else 0
        lines = per_line[ev.category]
        lines[line] = max(lines.get(line, 0.0), ev.weight)
    scores = {}
    for category, lines in per_line.items():
        weights = sorted(lines.values(), reverse=True)
        scores[category] = weights[0] + RUNNER_UP_SHARE * sum(weights[1:])
    return scores


def _apply_context(features: Features, primary: Evidence, context: DiagnosticContext | None) -> None:
    if context is None:
        return
    for service in primary.compiled.rule.services:
        health = context.service(service)
        if health is None or health.state is Health.UNKNOWN:
            continue
        if health.state in (Health.DOWN, Health.DEGRADED):
            features.corroborations.append(
                f"{health.kind} {health.name} is {health.state.value}: {health.detail}".rstrip(": ")
            )
        elif primary.category is RootCause.SERVICE_DEPENDENCY:
            features.contradictions.append(f"{health.kind} {health.name} is healthy now")
    _apply_resources(features, primary.category, context)


def _apply_resources(features: Features, category: RootCause, context: DiagnosticContext) -> None:
    res = context.resources
    if res.state is Health.UNKNOWN:
        return
    if category is RootCause.STORAGE:
        full = [d for d in res.disks if (d.percent or 0) >= 95 or (d.inodes_percent or 0) >= 95]
        features.corroborations.extend(
            f"{d.mount} is {max(d.percent or 0, d.inodes_percent or 0):.0f}% full" for d in full
        )
    elif category is RootCause.RESOURCE_EXHAUSTION and (res.memory_percent or 0) >= 90:
        features.corroborations.append(f"memory is {res.memory_percent:.0f}% used")
    elif category is RootCause.NETWORK:
        down = [r for r in context.network if r.state is Health.DOWN]
        features.corroborations.extend(f"{r.target} unreachable: {r.error}" for r in down)


def _correlated_services(
    others: Sequence[Evidence], named: list[str], context: DiagnosticContext | None
) -> list[str]:
    """Correlated context: services that other patterns of the decisive category name in this log
    and that the host's context found down or degraded."""
    if context is None:
        return []
    known = {name.removesuffix(".service") for name in named}
    found = []
    for name in _unique(s for e in others for s in e.compiled.rule.services):
        health = context.service(name)
        if name.removesuffix(".service") in known or health is None:
            continue
        if health.state in (Health.DOWN, Health.DEGRADED):
            found.append(health.name)
    return _unique(found)


def _severity(severity: Severity, features: Features) -> Severity:
    if features.corroborations and severity is not Severity.CRITICAL:
        return list(Severity)[severity.rank + 1]
    return severity


def _retry_delay(pattern: Pattern, category: RootCause) -> int:
    return pattern.retry_delay_seconds or DEFAULT_RETRY_DELAY.get(category, 60)


def _as_match(ev: Evidence, match_type: Any) -> Any:
    hit = ev.best or ev.hits[0]
    return match_type(
        pattern_id=ev.compiled.id,
        category=ev.category,
        line_number=hit.line_number,
        evidence=hit.text[:500],
        weight=round(ev.weight, 4),
    )


def _specific_first(in_category: list[Evidence]) -> list[Evidence]:
    """The category's evidence, best first, except that a tool-independent pattern (of the
    :data:`GENERIC_PACK`) yields to a tool's pattern that matched the same line: both explain the line,
    the tool's says which tool and what to do about it (``Failed to connect socket to
    '/var/run/libvirt/libvirt-sock': Connection refused`` is libvirtd down, not "a local service")."""
    best = in_category[0]
    if best.compiled.rule.pack != GENERIC_PACK or best.best is None:
        return in_category
    line = best.best.line_number
    for ev in in_category[1:]:
        if ev.best is not None and ev.best.line_number == line and ev.compiled.rule.pack != GENERIC_PACK:
            return [ev, *(e for e in in_category if e is not ev)]
    return in_category


@dataclass(frozen=True)
class CauseAdvice:
    """What a diagnosis tells a person, from its decisive cause only: the services it names, what to do
    (best first) and the commands that check it. The presenters show the first few
    (:mod:`qubinode_recovery_provider.output_limits`)."""

    services: list[str]
    actions: list[str]
    commands: list[str]


def cause_advice(
    pattern: Pattern | PatternRule | None, category: RootCause, retryable: bool | None
) -> CauseAdvice:
    """The advice of a diagnosis whose decisive pattern is ``pattern``: its services, its recovery hint
    then what its retryability means, its diagnostic commands. Other patterns that matched elsewhere in
    the log add nothing. Without a decisive pattern (a diagnosis made by another component), only the
    category's generic advice on retrying.

    :param pattern: the decisive pattern, or None.
    :param category: the diagnosis's root cause.
    :param retryable: whether a retry can help (None: not known).
    """
    actions = [pattern.recovery_hint] if pattern is not None and pattern.recovery_hint else []
    if retryable is True:
        actions.append("A retry can help: this failure is transient by nature.")
    elif retryable is False:
        actions.append(f"Do not retry blindly: a {category.value} failure needs a change first.")
    if pattern is None:
        return CauseAdvice([], actions, [])
    return CauseAdvice(_unique(pattern.services), actions, _unique(pattern.diagnostic_commands))


#: Marks a diagnosis made before the whole log was read (in the summary, for people and tools).
PARTIAL_SCAN_NOTE = "[partial scan]"


def _note_incomplete(diagnosis: Diagnosis, scan: ScanResult) -> None:
    """Say in the diagnosis that it was made from part of the log."""
    if scan.stopped == "deadline":
        where = f"after line {scan.total_lines}" if scan.total_lines else "before the first line"
        detail = f"the scan stopped at its deadline {where}; the diagnosis is from the lines read so far"
        action = (
            "The log was not read to its end in the time allowed: diagnose it again without a time limit "
            "(qubinode-recovery diagnose --log-file PATH) before acting on this diagnosis."
        )
    else:
        detail = (
            f"the first {scan.skipped_bytes} bytes of the log were not read "
            f"(only the last {MAX_SCAN_BYTES >> 20} MiB are)"
        )
        if not scan.line_numbers_exact:
            detail += "; line numbers count from the first line read"
        action = "The cause may sit in the part of the log that was not read: check its beginning too."
    diagnosis.summary = f"{diagnosis.summary} {PARTIAL_SCAN_NOTE} {detail[0].upper()}{detail[1:]}."
    diagnosis.recommended_actions.insert(0, action)  # first: it is shown whatever the limit


def _decisive_unknown_line(scan: ScanResult) -> str:
    lines = [text for _, text in scan.tail if text.strip()]
    for line in reversed(lines):
        if _ERRORISH.search(line):
            return line
    return lines[-1] if lines else ""


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))
