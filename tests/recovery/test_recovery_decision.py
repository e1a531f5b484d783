"""The decision rules of a recovery (plain Python: real planner, registry, policy and ledger)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from recovery_workers import record_automatic_attempts

from qubinode_recovery_provider.diagnosis import FailureAnalyzer
from qubinode_recovery_provider.models import Risk
from qubinode_recovery_provider.recovery import (
    RecoveryPlanner,
    RecoveryPolicy,
    TaskConfig,
    build_default_registry,
)
from qubinode_recovery_provider.recovery.actions import ActionResult
from qubinode_recovery_provider.recovery.decision import (
    APPROVAL,
    AUTO,
    ESCALATE,
    Rule,
    approval_markdown,
    decide,
)
from qubinode_recovery_provider.store import Ledger

NETWORK = "read tcp 10.0.0.7:46000->203.0.113.10:443: read: connection reset by peer"
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
    record_automatic_attempts(ledger, plan.fingerprint, 3)
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


def test_another_option_than_the_recommended_one(analyzer, registry):
    plan = plan_for(analyzer, registry, NETWORK)
    index = next(i for i, option in enumerate(plan.options) if option.action is None)
    decision = decide(plan, registry, POLICY, option_index=index)
    assert (decision.route, decision.option_index, decision.rule) == (ESCALATE, index, Rule.BY_A_PERSON)
    option = plan.options[index]
    assert decision.reasons == [
        f"option {index} is carried out by a person: {option.type.value} - {option.title}"
    ]
    with pytest.raises(IndexError):
        decide(plan, registry, POLICY, option_index=len(plan.options))


def test_a_disabled_action_is_named_before_the_global_switch(analyzer, registry):
    plan = plan_for(analyzer, registry, NETWORK)
    decision = decide(plan, build_default_registry(), RecoveryPolicy(auto_recovery_enabled=False))
    assert (decision.route, decision.rule) == (ESCALATE, Rule.ACTION_DISABLED)
    assert decision.reasons == ["action retry-from-failure is disabled in this deployment"]


def test_an_approval_lets_the_option_run_despite_the_breaker_and_the_switches(analyzer, registry, ledger):
    plan = plan_for(analyzer, registry, NETWORK)
    record_automatic_attempts(ledger, plan.fingerprint, 3)
    switches = {"run_auto_recovery": False, "dag_auto_recovery": False}
    policy = RecoveryPolicy(approval_risk_threshold=Risk.NONE)
    approved = decide(plan, registry, policy, ledger=ledger, approved=True, **switches)
    assert (approved.route, approved.rule, approved.reasons) == (
        AUTO,
        Rule.APPROVED,
        ["a person approved it"],
    )
    assert (approved.approval, approved.switched_off, approved.breaker) == ([], "", "")
    assert approved.action is not None
    assert approved.action.spec.name == "retry-from-failure"
    off = decide(plan, registry, RecoveryPolicy(auto_recovery_enabled=False), ledger=ledger, approved=True)
    assert (off.route, off.rule) == (ESCALATE, Rule.SWITCHED_OFF)  # the global switch still wins


def test_a_dry_run_says_what_a_real_run_would_meet(analyzer, registry, ledger):
    plan = plan_for(analyzer, registry, NETWORK)
    record_automatic_attempts(ledger, plan.fingerprint, 3)
    policy = RecoveryPolicy(approval_risk_threshold=Risk.NONE)
    decision = decide(plan, registry, policy, ledger=ledger, dry_run=True, dag_auto_recovery=False)
    assert (decision.route, decision.dry_run, decision.rule) == (AUTO, True, Rule.DRY_RUN)
    assert decision.reasons == ["the action is recorded, not run"]
    assert decision.approval == ["risk low is above the approval threshold none"]
    assert decision.switched_off == "automatic recovery is disabled for this DAG (qubinode_auto_recovery)"
    assert decision.breaker.startswith("circuit breaker open: 3 automatic attempt(s) for this fingerprint")


def test_a_tampered_action_is_refused_with_the_registry_error(analyzer, registry):
    plan = plan_for(analyzer, registry, NETWORK)
    plan.options[plan.recommended_index].action = "shell"
    decision = decide(plan, registry, POLICY)
    assert (decision.route, decision.rule, decision.action) == (ESCALATE, Rule.REFUSED, None)
    assert decision.error == "no recovery action named 'shell' is registered"
    assert decision.reasons == [f"action shell cannot run: {decision.error}"]
