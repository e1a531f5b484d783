"""The decision rules of the recovery DAG (plain Python: real planner, registry, policy and ledger)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qubinode_recovery_provider.diagnosis import FailureAnalyzer
from qubinode_recovery_provider.models import AttemptOutcome, RecoveryAttempt, Risk
from qubinode_recovery_provider.operators.decision import (
    APPROVAL,
    AUTO,
    ESCALATE,
    approval_markdown,
    decide,
)
from qubinode_recovery_provider.recovery import (
    RecoveryPlanner,
    RecoveryPolicy,
    TaskConfig,
    build_default_registry,
)
from qubinode_recovery_provider.recovery.actions import ActionResult
from qubinode_recovery_provider.store import Ledger

NETWORK = "dial tcp: lookup mirror.example.com: Temporary failure in name resolution"
VAULT = (
    "Error making API request. URL: GET https://vault.example.com:8200/v1/secret/data/x "
    "Code: 403. Errors: * permission denied"
)
TASK = TaskConfig(
    dag_id="build_vm", task_id="fetch", run_id="manual__2025-01-01T00:00:00+00:00", try_number=1
)


@pytest.fixture(scope="module")
def analyzer():
    return FailureAnalyzer()


@pytest.fixture
def registry():
    return build_default_registry(retry=lambda args: ActionResult(True, "cleared"))


@pytest.fixture
def ledger(tmp_path):
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool") as opened:
        opened.migrate()
        yield opened


def plan_for(analyzer, registry, text, task=TASK):
    planner = RecoveryPlanner(actions=registry, min_auto_confidence=0.7, events=None)
    return planner.plan_recovery(analyzer.analyze(text), task)


POLICY = RecoveryPolicy(breaker_window=timedelta(minutes=60))


def test_a_transient_failure_runs_automatically(analyzer, registry, ledger):
    decision = decide(plan_for(analyzer, registry, NETWORK), registry, POLICY, ledger=ledger)
    assert decision.route == AUTO
    assert decision.option_index == 0
    assert decision.reasons[0].startswith("retry-from-failure: risk low")


def test_a_retry_without_the_failed_run_says_what_would_let_it_run(analyzer, registry):
    plan = plan_for(analyzer, registry, NETWORK, TaskConfig(dag_id="build_vm", task_id="fetch"))
    decision = decide(plan, registry, POLICY)
    assert decision.route == ESCALATE
    assert decision.reasons == [
        "a retry needs the failed run to resume: it runs automatically only when failed_run_id "
        "(and failed_task_id) name it; otherwise re-run the task in the Airflow UI"
    ]


def test_an_option_for_a_person_is_escalated(analyzer, registry, ledger):
    decision = decide(plan_for(analyzer, registry, VAULT), registry, POLICY, ledger=ledger)
    assert decision.route == ESCALATE
    assert decision.reasons == [
        "the recommended option is carried out by a person: manual_fix - Fix the credential problem by hand"
    ]


def test_without_the_airflow_retry_implementation_nothing_can_run(analyzer, registry):
    plan = plan_for(analyzer, registry, NETWORK)
    without = build_default_registry()
    decision = decide(plan, without, POLICY)
    assert decision.route == ESCALATE
    assert decision.reasons == ["action retry-from-failure is disabled in this deployment"]


def test_the_global_switch_stops_everything_even_approvals(analyzer, registry):
    plan = plan_for(analyzer, registry, NETWORK)
    decision = decide(plan, registry, RecoveryPolicy(auto_recovery_enabled=False))
    assert decision.route == ESCALATE
    assert "disabled globally" in decision.reasons[0]


@pytest.mark.parametrize(
    ("switches", "reason"),
    [
        ({"run_auto_recovery": False}, "automatic recovery is off for this run (enable_auto_recovery)"),
        (
            {"dag_auto_recovery": False},
            "the failed DAG turned automatic recovery off (qubinode_auto_recovery)",
        ),
    ],
)
def test_switching_automatic_recovery_off_asks_a_person(analyzer, registry, switches, reason):
    decision = decide(plan_for(analyzer, registry, NETWORK), registry, POLICY, **switches)
    assert decision.route == APPROVAL
    assert decision.reasons == [reason]


def test_risk_above_the_threshold_asks_a_person(analyzer, registry):
    policy = RecoveryPolicy(approval_risk_threshold=Risk.NONE)
    decision = decide(plan_for(analyzer, registry, NETWORK), registry, policy)
    assert decision.route == APPROVAL
    assert decision.reasons == ["risk low is above the approval threshold none"]


def test_a_dry_run_goes_the_automatic_way(analyzer, registry):
    decision = decide(
        plan_for(analyzer, registry, NETWORK), registry, POLICY, dry_run=True, run_auto_recovery=False
    )
    assert (decision.route, decision.dry_run) == (AUTO, True)


def test_an_open_circuit_breaker_escalates(analyzer, registry, ledger):
    plan = plan_for(analyzer, registry, NETWORK)
    for n in range(3):
        ledger.begin_attempt(
            RecoveryAttempt(
                incident_fingerprint=plan.fingerprint,
                idempotency_key=f"k{n}",
                action="retry-from-failure",
                outcome=AttemptOutcome.SUCCEEDED,
            )
        )
    decision = decide(plan, registry, POLICY, ledger=ledger)
    assert decision.route == ESCALATE
    assert decision.reasons[0].startswith("circuit breaker open: 3 automatic attempt(s) for this fingerprint")


def test_the_approval_request_shows_the_dry_run_risk_rollback_and_plan(analyzer, registry):
    diagnosis = analyzer.analyze(NETWORK)
    plan = RecoveryPlanner(actions=registry, events=None, min_auto_confidence=0.7).plan_recovery(
        diagnosis, TASK
    )
    decision = decide(plan, registry, POLICY, run_auto_recovery=False)
    body = approval_markdown(plan, decision, diagnosis)
    assert body.startswith("## Recovery needs your approval\n")
    assert "**Failed:** `build_vm.fetch` in run `manual__2025-01-01T00:00:00+00:00`" in body
    assert "- automatic recovery is off for this run (enable_auto_recovery)" in body
    assert "Would run `retry-from-failure` with:" in body
    assert '"task_ids": [\n    "fetch"\n  ]' in body
    assert "- **Risk:** low" in body
    assert "**Rollback**" in body
    assert "### Recovery plan: network failure" in body
