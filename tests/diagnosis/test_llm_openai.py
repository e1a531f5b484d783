"""The LLM second opinion end to end: PydanticAI's real OpenAI model client (the ``openai`` package over
HTTP) against a local OpenAI-compatible server (``support.llm_stub``), configured the way a local
Ollama-style server is: a base URL and a model name, no cloud account."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from support.canaries import all_canaries, assert_no_canary, combined_text
from support.llm_stub import LLMStub, opinion_status, running_llm_stub

from qubinode_recovery_provider.cli import main
from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary
from qubinode_recovery_provider.diagnosis.llm import LLMSettings, SecondOpinion
from qubinode_recovery_provider.models import FailureEvent, RootCause

UNKNOWN_TEXT = "step 3/5: provisioning\nthe frobnicator refused to cooperate\ntask exited"
API_KEY = "sk-local-test-key-0123456789abcdef"

pytestmark = pytest.mark.usefixtures("isolated_config")


@pytest.fixture
def stub() -> Iterator[LLMStub]:
    with running_llm_stub() as server:
        yield server


@pytest.fixture
def configured(stub: LLMStub, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> LLMStub:
    """``[qubinode_recovery]`` pointing at the stub as at a local Ollama, key from an env var."""
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LLM_MODEL", "ollama:qwen3")
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LLM_BASE_URL", stub.base_url)
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LLM_API_KEY_ENV", "LOCAL_LLM_KEY")
    monkeypatch.setenv("LOCAL_LLM_KEY", API_KEY)
    monkeypatch.setenv("QUBINODE_RECOVERY_CACHE_DIR", str(tmp_path / "cache"))
    return stub


@pytest.fixture(scope="module")
def library() -> PatternLibrary:
    return PatternLibrary.load()


def local(stub: LLMStub, timeout: float = 10.0) -> SecondOpinion:
    return SecondOpinion(LLMSettings("qwen3", stub.base_url, timeout=timeout), cache_path=None)


def test_the_openai_client_gets_a_validated_answer_from_a_local_server(
    configured: LLMStub, library: PatternLibrary
) -> None:
    analyzer = FailureAnalyzer(library, use_llm=None)  # from the configuration
    diagnosis = analyzer.analyze(UNKNOWN_TEXT)

    assert len(configured.requests) == 1
    body = configured.requests[0]
    assert body["model"] == "qwen3"  # the provider prefix is not sent to the server
    assert body["tools"][0]["function"]["name"]  # the output tool the answer calls
    assert configured.headers[0]["authorization"] == f"Bearer {API_KEY}"
    assert diagnosis.root_cause is RootCause.NETWORK
    assert diagnosis.confidence == 0.5
    assert opinion_status(diagnosis) == "applied"
    assert diagnosis.llm.label == "LLM second opinion (model ollama:qwen3)"


def test_a_slow_answer_is_cancelled_at_the_timeout_and_the_pattern_result_stands(
    stub: LLMStub, library: PatternLibrary
) -> None:
    stub.behaviour["hang"] = True
    op = local(stub, timeout=0.5)
    plain = FailureAnalyzer(library, use_llm=False).analyze(UNKNOWN_TEXT)
    diagnosis = FailureAnalyzer(library, second_opinion=op).analyze(UNKNOWN_TEXT)

    assert opinion_status(diagnosis) == "fallback"
    assert "cancelled" in diagnosis.llm.detail
    assert (diagnosis.root_cause, diagnosis.confidence) == (plain.root_cause, plain.confidence)
    assert op.cancelled == 1
    assert op.warning_count == 1
    assert stub.disconnected.wait(10), "the client kept its request open after the timeout"
    assert len(stub.requests) == 1  # no retry behind the timeout


@pytest.mark.parametrize(
    "behaviour",
    [
        {"status": 500},
        {"status": 429},
        {"raw_arguments": "{not json"},
        {"raw_arguments": '{"root_cause": 7}'},
    ],
    ids=["server error", "rate limited", "invalid JSON", "invalid answer"],
)
def test_server_errors_and_invalid_answers_fall_back_after_one_request(
    stub: LLMStub, library: PatternLibrary, behaviour: dict[str, Any]
) -> None:
    stub.behaviour.update(behaviour)
    op = local(stub)
    diagnosis = FailureAnalyzer(library, second_opinion=op).analyze(UNKNOWN_TEXT)
    assert diagnosis.root_cause is RootCause.UNKNOWN
    assert opinion_status(diagnosis) == "fallback"
    assert op.warning_count == 1
    assert len(stub.requests) == 1


def test_an_unreachable_server_falls_back(library: PatternLibrary) -> None:
    with running_llm_stub() as gone:
        url = gone.base_url
    op = SecondOpinion(LLMSettings("qwen3", url, timeout=5.0), cache_path=None)
    diagnosis = FailureAnalyzer(library, second_opinion=op).analyze(UNKNOWN_TEXT)
    assert opinion_status(diagnosis) == "fallback"
    assert "Connection" in diagnosis.llm.detail


def test_the_request_holds_no_canary_secret(stub: LLMStub, library: PatternLibrary) -> None:
    secrets = combined_text()
    event = FailureEvent(
        dag_id="build_vm",
        task_id="provision",
        log_tail=[*secrets.splitlines(), "the frobnicator refused to cooperate", *secrets.splitlines()],
        exception_type="AirflowException",
        exception_text=secrets[:2000],
    )
    op = SecondOpinion(LLMSettings("qwen3", stub.base_url, threshold=1.0), cache_path=None)
    FailureAnalyzer(library, second_opinion=op).analyze(event)
    assert len(stub.requests) == 1
    assert_no_canary(json.dumps(stub.requests[0]), all_canaries())
    assert "Exception: AirflowException: " in stub.prompts()[0]  # the exception went, redacted


def test_the_guide_example_runs_as_written(
    configured: LLMStub, library: PatternLibrary, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reference guide's FailureAnalyzer usage, imports adapted, on a failure event."""
    from qubinode_recovery_provider.diagnosis import FailureAnalyzer

    diagnostic_ctx = FailureEvent(
        dag_id="HetznerDeploymentPlugin",
        occurred_at=datetime.now(),
        exception_text="the frobnicator refused to cooperate",
    )

    analyzer = FailureAnalyzer(use_llm=True)
    analysis = analyzer.analyze(diagnostic_ctx)

    print(f"Root Cause: {analysis.root_cause.value}")
    print(f"Confidence: {analysis.confidence:.0%}")
    print("Recommended Actions:")
    for action in analysis.recommended_actions:
        print(f"  - {action}")

    out = capsys.readouterr().out
    assert "Root Cause: network" in out
    assert "Confidence: 50%" in out
    assert "  - LLM second opinion (model ollama:qwen3): Check the proxy settings" in out


def test_cli_diagnose_llm_asks_the_local_server_and_labels_the_answer(
    configured: LLMStub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diagnose", "--llm", "--error", UNKNOWN_TEXT]) == 0
    text = capsys.readouterr().out
    assert "LLM second opinion (model ollama:qwen3): network (claimed 0.90)" in text
    assert "Root cause:   network  (confidence 0.50" in text

    assert main(["diagnose", "--llm", "--json", "--error", UNKNOWN_TEXT]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["llm"]["model"] == "ollama:qwen3"
    assert row["llm"]["status"] == "applied"
    assert row["llm"]["cached"] is True  # the second run found the first one's answer
    assert len(configured.requests) == 1


def test_cli_diagnose_without_llm_never_asks(configured: LLMStub, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagnose", "--json", "--error", UNKNOWN_TEXT]) == 0
    assert json.loads(capsys.readouterr().out)["llm"] is None
    assert configured.requests == []


def test_cli_diagnose_llm_falls_back_when_the_server_hangs(
    configured: LLMStub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configured.behaviour["hang"] = True
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LLM_TIMEOUT_SECONDS", "0.5")
    assert main(["diagnose", "--llm", "--json", "--error", UNKNOWN_TEXT]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["root_cause"] == "unknown"
    assert row["llm"]["status"] == "fallback"
    assert configured.disconnected.wait(10)


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({}, "--llm: no LLM is configured"),
        ({"AIRFLOW__QUBINODE_RECOVERY__LLM_TIMEOUT_SECONDS": "soon"}, "llm_timeout_seconds must be a number"),
        (
            {
                "AIRFLOW__QUBINODE_RECOVERY__LLM_MODEL": "m",
                "AIRFLOW__QUBINODE_RECOVERY__LLM_TIMEOUT_SECONDS": "0",
            },
            "llm_timeout_seconds must be above 0",
        ),
    ],
    ids=["nothing configured", "malformed timeout", "zero timeout"],
)
def test_cli_diagnose_llm_misconfigured_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str], reason: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["diagnose", "--llm", "--error", UNKNOWN_TEXT]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert reason in captured.err


def test_an_airflow_connection_in_the_common_ai_shape_configures_it(
    stub: LLMStub, monkeypatch: pytest.MonkeyPatch, library: PatternLibrary, tmp_path: Any
) -> None:
    """``llm_conn_id``: host = base URL, password = API key, extra ``model`` (the ``pydanticai`` type)."""
    conn = {
        "conn_type": "pydanticai",
        "host": stub.base_url,
        "password": API_KEY,
        "extra": {"model": "qwen3"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_LOCAL_LLM", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LLM_CONN_ID", "local_llm")
    monkeypatch.setenv("QUBINODE_RECOVERY_CACHE_DIR", str(tmp_path / "cache"))
    diagnosis = FailureAnalyzer(library).analyze(UNKNOWN_TEXT)
    assert opinion_status(diagnosis) == "applied"
    assert stub.requests[0]["model"] == "qwen3"
    assert stub.headers[0]["authorization"] == f"Bearer {API_KEY}"


def test_an_unknown_connection_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LLM_CONN_ID", "no_such_llm")
    assert main(["diagnose", "--llm", "--error", UNKNOWN_TEXT]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "llm_conn_id='no_such_llm': cannot read the connection" in err


def test_an_openai_model_string_uses_the_key_variable_and_no_client_retries(
    stub: LLMStub, monkeypatch: pytest.MonkeyPatch, library: PatternLibrary, tmp_path: Any
) -> None:
    stub.behaviour["status"] = 503
    monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)  # the openai client's own variable, as in CI proxies
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LLM_MODEL", "openai:gpt-4o")
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LLM_API_KEY_ENV", "LOCAL_LLM_KEY")
    monkeypatch.setenv("LOCAL_LLM_KEY", API_KEY)
    monkeypatch.setenv("QUBINODE_RECOVERY_CACHE_DIR", str(tmp_path / "cache"))
    diagnosis = FailureAnalyzer(library).analyze(UNKNOWN_TEXT)
    assert opinion_status(diagnosis) == "fallback"
    assert len(stub.requests) == 1  # the 503 is not retried by the client
    assert stub.requests[0]["model"] == "gpt-4o"
    assert stub.headers[0]["authorization"] == f"Bearer {API_KEY}"


def test_an_openai_model_without_any_key_falls_back(
    monkeypatch: pytest.MonkeyPatch, library: PatternLibrary, tmp_path: Any
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LLM_MODEL", "openai:gpt-4o")
    monkeypatch.setenv("QUBINODE_RECOVERY_CACHE_DIR", str(tmp_path / "cache"))
    diagnosis = FailureAnalyzer(library).analyze(UNKNOWN_TEXT)
    assert opinion_status(diagnosis) == "fallback"
    assert diagnosis.llm is not None
    assert "api_key" in diagnosis.llm.detail
