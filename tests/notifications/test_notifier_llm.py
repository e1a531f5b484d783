"""RecoveryNotifier with the LLM second opinion configured (a local OpenAI-compatible stub server): asked
within the callback's budget, deferred when the budget cannot hold it, and a hanging model costs the
incident nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from notify_helpers import task_context
from support.llm_stub import LLMStub, opinion_status, running_llm_stub

from qubinode_recovery_provider import runtime
from qubinode_recovery_provider.diagnosis.llm import SecondOpinion
from qubinode_recovery_provider.models import Diagnosis
from qubinode_recovery_provider.notifications import NotificationOutcome, RecoveryNotifier
from qubinode_recovery_provider.store import Ledger

UNKNOWN_ERROR = RuntimeError("the frobnicator would not cooperate")


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LLMStub]:
    """The stub server configured as the deployment's model; the process's second opinion rebuilt from
    that configuration (and forgotten after the test)."""
    with running_llm_stub() as stub:
        monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LLM_MODEL", "qwen3")
        monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LLM_BASE_URL", stub.base_url)
        monkeypatch.setenv("QUBINODE_RECOVERY_CACHE_DIR", str(tmp_path / "cache"))
        yield stub
        runtime.current().second_opinion = runtime.UNSET


def _notify(monkeypatch: pytest.MonkeyPatch, *, timeout: float, budget: float) -> NotificationOutcome:
    """Configure the call's timeout, run the notifier on an unknown failure, return its outcome."""
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LLM_TIMEOUT_SECONDS", str(timeout))
    runtime.current().second_opinion = SecondOpinion.from_config()
    notifier = RecoveryNotifier(budget_seconds=budget, trigger_recovery=False, collect_context=False)
    notifier(task_context(UNKNOWN_ERROR))
    assert notifier.last_outcome is not None
    return notifier.last_outcome


def _recorded(tmp_path: Path, fingerprint: str | None) -> Diagnosis:
    assert fingerprint is not None
    found = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "state" / "spool").recorded_diagnosis(
        fingerprint
    )
    assert found is not None
    return found.diagnosis


def test_the_opinion_is_asked_within_the_budget_and_recorded(
    llm: LLMStub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outcome = _notify(monkeypatch, timeout=2.0, budget=8)
    assert outcome.stage == "done"
    assert outcome.root_cause == "network"
    assert len(llm.requests) == 1
    diagnosis = _recorded(tmp_path, outcome.fingerprint)
    assert opinion_status(diagnosis) == "applied"


def test_a_budget_that_cannot_hold_the_call_defers_it_to_the_recovery_dag(
    llm: LLMStub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outcome = _notify(monkeypatch, timeout=15.0, budget=3)
    assert outcome.root_cause == "unknown"
    assert llm.requests == []
    assert any("deferred" in e for e in outcome.errors)
    assert opinion_status(_recorded(tmp_path, outcome.fingerprint)) == "deferred"


def test_a_hanging_model_falls_back_and_the_incident_is_recorded(
    llm: LLMStub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    llm.behaviour["hang"] = True
    outcome = _notify(monkeypatch, timeout=1.0, budget=8)
    assert outcome.stage == "done"
    assert outcome.record_status == "written"
    assert outcome.root_cause == "unknown"
    assert any("fallback" in e and "cancelled" in e for e in outcome.errors)
    assert llm.disconnected.wait(10)
    assert opinion_status(_recorded(tmp_path, outcome.fingerprint)) == "fallback"
