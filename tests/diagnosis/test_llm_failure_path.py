"""Where the Airflow side asks the LLM second opinion: the failure callback (within its budget, else
deferred) and the recovery DAG's first task (which asks what the callback deferred)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from support.llm_stub import opinion_status

from qubinode_recovery_provider import runtime
from qubinode_recovery_provider.deadline import Deadline
from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary
from qubinode_recovery_provider.diagnosis.llm import LLMSettings, SecondOpinion
from qubinode_recovery_provider.models import Diagnosis, FailureEvent, RootCause
from qubinode_recovery_provider.notifications.failure_path import (
    FailureReport,
    NotificationOutcome,
    ReportSettings,
)
from qubinode_recovery_provider.operators import diagnose as diagnose_step
from qubinode_recovery_provider.store import Ledger

TEXT = "step 3/5: provisioning\nthe frobnicator refused to cooperate\ntask exited"
ANSWER = {"root_cause": "configuration", "confidence": 0.8, "retryable": False, "reasoning": "line 2"}


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.calls += 1
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, ANSWER)])


@pytest.fixture
def model(tmp_path: Path, isolated_config: None) -> Iterator[Counting]:
    """The process's runtime with a ledger of its own and a second opinion answered by a counting
    ``FunctionModel``."""
    runtime.reset()
    script = Counting()
    runtime.current().ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool")
    runtime.current().second_opinion = SecondOpinion(
        LLMSettings("scripted", timeout=2.0), model=FunctionModel(script), cache_path=None, reserve=1.0
    )
    yield script
    runtime.reset()


@pytest.fixture(scope="module")
def pattern_diagnosis() -> Diagnosis:
    return FailureAnalyzer(PatternLibrary.load(), use_llm=False).analyze(TEXT)


def _report(seconds: float) -> FailureReport:
    return FailureReport({}, ReportSettings(), None, None, Deadline(seconds), NotificationOutcome())  # type: ignore[arg-type]


def test_the_callback_asks_when_its_budget_holds_the_call(
    model: Counting, pattern_diagnosis: Diagnosis
) -> None:
    report = _report(30.0)
    reviewed = report._second_opinion(FailureEvent(log_tail=TEXT.splitlines()), None, pattern_diagnosis)
    assert model.calls == 1
    assert reviewed.root_cause is RootCause.CONFIGURATION
    assert opinion_status(reviewed) == "applied"
    assert report.outcome.errors == []


def test_the_callback_defers_when_its_budget_cannot_hold_the_call(
    model: Counting, pattern_diagnosis: Diagnosis
) -> None:
    report = _report(2.5)  # less than the 2 s call plus the 1 s kept for recording
    deferred = report._second_opinion(FailureEvent(log_tail=TEXT.splitlines()), None, pattern_diagnosis)
    assert model.calls == 0
    assert opinion_status(deferred) == "deferred"
    assert (deferred.root_cause, deferred.confidence) == (
        pattern_diagnosis.root_cause,
        pattern_diagnosis.confidence,
    )
    assert any("LLM second opinion (model scripted) deferred" in e for e in report.outcome.errors)

    # the notifier records it; the recovery DAG's first task reads it back and asks
    ledger = runtime.current().ledger
    event = FailureEvent(dag_id="d", task_id="t", run_id="r", try_number=1, log_tail=TEXT.splitlines())
    ledger.record_occurrence(event, deferred)
    failure: dict[str, Any] = {"dag_id": "d", "task_id": "t", "run_id": "r", "try_number": 1, "message": TEXT}
    asked = diagnose_step._second_opinion(deferred, failure)
    assert model.calls == 1
    assert opinion_status(asked) == "applied"
    assert asked.fingerprint == pattern_diagnosis.fingerprint
    # the ledger shows the opinion as the incident's newest diagnosis, without a second occurrence
    recorded = ledger.recorded_diagnosis(asked.fingerprint, dag_id="d", run_id="r", task_id="t")
    assert recorded is not None
    assert recorded.diagnosis.llm is not None
    assert recorded.diagnosis.llm.status == "applied"
    incident = ledger.get_incident(asked.fingerprint)
    assert incident is not None
    assert incident.occurrences == 1
    # and a diagnosis that has its opinion is not asked again
    assert diagnose_step._second_opinion(asked, failure) is asked
    assert model.calls == 1


def test_nothing_is_asked_when_no_model_is_configured(
    isolated_config: None, pattern_diagnosis: Diagnosis
) -> None:
    runtime.reset()
    try:
        assert runtime.current().second_opinion is None
        report = _report(30.0)
        assert report._second_opinion(FailureEvent(), None, pattern_diagnosis) is pattern_diagnosis
        failure = {"dag_id": "d", "task_id": None, "run_id": None, "try_number": None, "message": TEXT}
        assert diagnose_step._second_opinion(pattern_diagnosis, failure) is pattern_diagnosis
    finally:
        runtime.reset()


def test_the_retry_policys_analyzer_never_asks(model: Counting) -> None:
    """The runtime's shared analyzer (the retry policy's) decides from the patterns alone."""
    assert runtime.current().analyzer.second_opinion is None


def test_the_recovery_report_and_the_escalation_report_label_the_opinion(
    tmp_path: Path, isolated_config: None, pattern_diagnosis: Diagnosis
) -> None:
    from qubinode_recovery_provider.diagnosis.llm import LLMAnswer, apply_opinion
    from qubinode_recovery_provider.escalation.reports import escalate
    from qubinode_recovery_provider.models import RecoveryPlan
    from qubinode_recovery_provider.operators.report import run_note

    answer = LLMAnswer(root_cause=RootCause.CONFIGURATION, confidence=0.8, reasoning="line 2")
    opinionated = apply_opinion(pattern_diagnosis, answer, "qwen3")
    label = "LLM second opinion (model qwen3): configuration (claimed 0.80)"

    facts = {
        "diagnose": {
            "failure": {"dag_id": "d", "task_id": "t", "run_id": "r"},
            "diagnosis": opinionated.to_json_dict(),
        }
    }
    assert label in run_note("escalated", "escalated", facts, tmp_path / "report.md")

    plan = RecoveryPlan(fingerprint=opinionated.fingerprint, root_cause=opinionated.root_cause, run_id="r")
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool")
    result = escalate(ledger, plan, ["no safe option"], diagnosis=opinionated, directory=tmp_path)
    assert label in Path(result.report_path).read_text()
