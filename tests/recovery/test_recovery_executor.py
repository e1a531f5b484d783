"""The executor against the real ledger (SQLite): decide, claim, run once, record, escalate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from recovery_helpers import RUN_ID

from qubinode_recovery_provider.models import (
    AttemptOutcome,
    Diagnosis,
    Health,
    IncidentState,
    RecoveryPlan,
    Risk,
    RootCause,
)
from qubinode_recovery_provider.recovery import (
    RECOVERY_EXECUTED,
    RESTART_SERVICE,
    RETRY_FROM_FAILURE,
    WAIT_FOR_SERVICE,
    ActionRegistry,
    ActionResult,
    EventBus,
    HandlerRegistry,
    RecoveryEvent,
    RecoveryExecutor,
    RecoveryPlanner,
    RecoveryPolicy,
    RestartServiceArgs,
    RetryFromFailureArgs,
    TaskConfig,
    build_default_registry,
    execute,
    idempotency_key,
)
from qubinode_recovery_provider.store import Ledger

MakeDiagnosis = Callable[..., Diagnosis]


class Retry:
    """The ``retry-from-failure`` implementation the Airflow adapter would pass in; counts its calls."""

    def __init__(self, succeed: bool = True) -> None:
        self.calls: list[RetryFromFailureArgs] = []
        self.succeed = succeed

    def __call__(self, args: RetryFromFailureArgs) -> ActionResult:
        self.calls.append(args)
        return ActionResult(self.succeed, f"cleared {args.task_ids}" if self.succeed else "API said 409")


@pytest.fixture
def retry() -> Retry:
    return Retry()


@pytest.fixture
def registry(retry: Retry) -> ActionRegistry:
    return build_default_registry(retry=retry, allowed_units=["libvirtd.service"])


def make_plan(
    diagnosis: Diagnosis, task: TaskConfig, registry: ActionRegistry, handlers: HandlerRegistry | None = None
) -> RecoveryPlan:
    planner = RecoveryPlanner(actions=registry, handlers=handlers, events=None, min_auto_confidence=0.7)
    return planner.plan_recovery(diagnosis, task)


def executor(
    ledger: Ledger, registry: ActionRegistry, policy: RecoveryPolicy | None = None, **kw: Any
) -> RecoveryExecutor:
    kw.setdefault("events", None)
    return RecoveryExecutor(ledger, registry, policy or RecoveryPolicy(), **kw)


@pytest.fixture
def network_plan(diagnosis: MakeDiagnosis, task: TaskConfig, registry: ActionRegistry) -> RecoveryPlan:
    plan = make_plan(diagnosis(RootCause.NETWORK), task, registry)
    assert plan.options[0].action == RETRY_FROM_FAILURE
    assert plan.options[0].automatic
    return plan


def test_runs_the_recommended_action_and_records_it(
    ledger: Ledger,
    registry: ActionRegistry,
    retry: Retry,
    network_plan: RecoveryPlan,
    bus: EventBus,
    events: list[RecoveryEvent],
) -> None:
    attempt = executor(ledger, registry, events=bus).execute(network_plan, host="kvm-01")

    assert attempt.outcome is AttemptOutcome.SUCCEEDED
    assert attempt.action == RETRY_FROM_FAILURE
    assert attempt.detail == "cleared ['create_vm']"
    assert [(a.dag_id, a.run_id, a.task_ids, a.delay_seconds) for a in retry.calls] == [
        ("build_vm", RUN_ID, ["create_vm"], 60)
    ]
    (stored,) = ledger.attempts(fingerprint=network_plan.fingerprint, automatic_only=False)
    assert stored.idempotency_key == attempt.idempotency_key
    assert stored.idempotency_key.startswith(f"fp-network|{RUN_ID}|retry-from-failure|")
    assert stored.outcome is AttemptOutcome.SUCCEEDED
    assert stored.host == "kvm-01"
    assert stored.finished_at is not None
    assert ledger.action_outcomes(network_plan.fingerprint, RETRY_FROM_FAILURE) == (1, 0)
    assert [e.name for e in events] == [RECOVERY_EXECUTED]
    assert events[0].data["attempt"] == attempt
    assert events[0].data["option"] == network_plan.options[0]


def test_an_action_that_finds_nothing_left_to_do_is_a_skipped_attempt(
    ledger: Ledger, network_plan: RecoveryPlan
) -> None:
    """``retry-from-failure`` after a person re-ran the task: the action succeeds but changes nothing,
    so the attempt says "skipped" (already handled), not "succeeded"."""

    def nothing_to_clear(args: RetryFromFailureArgs) -> ActionResult:
        return ActionResult(True, "already handled: nothing left to clear", changed=False)

    registry = build_default_registry(retry=nothing_to_clear)
    attempt = executor(ledger, registry).execute(network_plan, host="kvm-01")
    assert attempt.outcome is AttemptOutcome.SKIPPED
    assert attempt.detail == "already handled: nothing left to clear"
    (stored,) = ledger.attempts(fingerprint=network_plan.fingerprint, automatic_only=False)
    assert stored.outcome is AttemptOutcome.SKIPPED


def test_the_same_plan_runs_once(
    ledger: Ledger, registry: ActionRegistry, retry: Retry, network_plan: RecoveryPlan
) -> None:
    first = executor(ledger, registry).execute(network_plan)
    second = executor(ledger, registry).execute(network_plan)

    assert first.outcome is AttemptOutcome.SUCCEEDED
    assert second.outcome is AttemptOutcome.SKIPPED
    assert "already claimed by another executor" in second.detail
    assert len(retry.calls) == 1


def test_idempotency_key_depends_on_run_action_and_arguments() -> None:
    args = {"dag_id": "d", "run_id": "r", "task_ids": ["t"]}
    key = idempotency_key("fp", "r", RETRY_FROM_FAILURE, args)
    assert key == idempotency_key("fp", "r", RETRY_FROM_FAILURE, dict(reversed(list(args.items()))))
    assert key != idempotency_key("fp", "r2", RETRY_FROM_FAILURE, args)
    assert key != idempotency_key("fp", "r", WAIT_FOR_SERVICE, args)
    assert key != idempotency_key("fp", "r", RETRY_FROM_FAILURE, {**args, "delay_seconds": 1})


def test_a_failed_action_is_recorded_as_failed(
    ledger: Ledger, diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    registry = build_default_registry(retry=Retry(succeed=False))
    plan = make_plan(diagnosis(RootCause.NETWORK), task, registry)
    attempt = executor(ledger, registry).execute(plan)

    assert attempt.outcome is AttemptOutcome.FAILED
    assert attempt.detail == "API said 409"
    assert ledger.action_outcomes(plan.fingerprint, RETRY_FROM_FAILURE) == (0, 1)


@pytest.mark.parametrize("how", ["call", "config"])
def test_dry_run_records_what_would_run(
    how: str,
    ledger: Ledger,
    registry: ActionRegistry,
    retry: Retry,
    network_plan: RecoveryPlan,
    set_option: Callable[[str, str], None],
) -> None:
    if how == "config":
        set_option("dry_run", "true")
        attempt = execute(network_plan, ledger, RecoveryPolicy.from_config(), registry, events=None)
    else:
        attempt = executor(ledger, registry).execute(network_plan, dry_run=True)

    assert attempt.outcome is AttemptOutcome.DRY_RUN
    assert attempt.dry_run
    assert attempt.detail.startswith("dry run: would run retry-from-failure {")
    assert retry.calls == []
    (stored,) = ledger.attempts(fingerprint=network_plan.fingerprint, automatic_only=False)
    assert stored.dry_run
    assert stored.outcome is AttemptOutcome.DRY_RUN
    assert ledger.action_outcomes(network_plan.fingerprint, RETRY_FROM_FAILURE) == (0, 0)
    real = executor(ledger, registry).execute(network_plan)  # a dry run does not use up the real key
    assert real.outcome is AttemptOutcome.SUCCEEDED


@pytest.mark.parametrize(
    ("policy", "settings", "why"),
    [
        (RecoveryPolicy(auto_recovery_enabled=False), {}, "disabled globally"),
        (RecoveryPolicy(), {"dag_auto_recovery": False}, "disabled for this DAG"),
        (RecoveryPolicy(), {"auto_recovery": False}, "disabled for this call"),
    ],
)
def test_switched_off_nothing_runs(
    ledger: Ledger,
    registry: ActionRegistry,
    retry: Retry,
    network_plan: RecoveryPlan,
    policy: RecoveryPolicy,
    settings: dict[str, Any],
    why: str,
) -> None:
    attempt = executor(ledger, registry, policy).execute(network_plan, **settings)

    assert attempt.outcome is AttemptOutcome.SKIPPED
    assert why in attempt.detail
    assert retry.calls == []


def restart_plan(
    diagnosis: MakeDiagnosis, task: TaskConfig, registry: ActionRegistry
) -> tuple[RecoveryPlan, int]:
    plan = make_plan(diagnosis(RootCause.SERVICE_DEPENDENCY), task, registry)
    index = next(i for i, o in enumerate(plan.options) if o.action == RESTART_SERVICE)
    return plan, index


@pytest.fixture
def restart_registry(retry: Retry) -> tuple[ActionRegistry, list[RestartServiceArgs]]:
    restarts: list[RestartServiceArgs] = []
    registry = build_default_registry(retry=retry, probe=lambda name: Health.HEALTHY)
    registry.register(
        RESTART_SERVICE, lambda args: restarts.append(args) or True, RestartServiceArgs, Risk.MEDIUM
    )
    return registry, restarts


def test_risky_options_wait_for_approval(
    ledger: Ledger, diagnosis: MakeDiagnosis, task: TaskConfig, restart_registry: Any, retry: Retry
) -> None:
    registry, restarts = restart_registry
    plan, index = restart_plan(diagnosis, task, registry)

    waiting = executor(ledger, registry).execute(plan, option_index=index)
    assert waiting.outcome is AttemptOutcome.BLOCKED
    assert waiting.detail == "awaiting approval: risk medium is above the approval threshold low"
    assert restarts == []

    approved = executor(ledger, registry).execute(plan, option_index=index, approved=True)
    assert approved.outcome is AttemptOutcome.SUCCEEDED
    assert [r.unit for r in restarts] == ["libvirtd.service"]
    assert len(retry.calls) == 1  # then_retry resumed the run
    assert "then retry-from-failure: cleared" in approved.detail


@pytest.mark.parametrize(
    ("answer", "ran"), [(True, True), (False, False), ("yes", False), (RuntimeError, False)]
)
def test_the_approval_callback_decides(
    ledger: Ledger, diagnosis: MakeDiagnosis, task: TaskConfig, restart_registry: Any, answer: Any, ran: bool
) -> None:
    registry, restarts = restart_registry
    plan, index = restart_plan(diagnosis, task, registry)
    asked: list[list[str]] = []

    def callback(plan: RecoveryPlan, option: Any, reasons: list[str]) -> Any:
        asked.append(reasons)
        if answer is RuntimeError:
            raise RuntimeError("approver unreachable")
        return answer

    attempt = executor(ledger, registry, approval_callback=callback).execute(plan, option_index=index)

    assert asked == [["risk medium is above the approval threshold low"]]
    assert bool(restarts) is ran
    assert attempt.outcome is (AttemptOutcome.SUCCEEDED if ran else AttemptOutcome.BLOCKED)


def test_a_higher_threshold_lets_medium_risk_run(
    ledger: Ledger, diagnosis: MakeDiagnosis, task: TaskConfig, restart_registry: Any
) -> None:
    registry, _restarts = restart_registry
    plan, index = restart_plan(diagnosis, task, registry)
    policy = RecoveryPolicy(approval_risk_threshold=Risk.MEDIUM)
    assert (
        executor(ledger, registry, policy).execute(plan, option_index=index).outcome
        is AttemptOutcome.SUCCEEDED
    )


def test_wait_for_service_then_retry(
    ledger: Ledger, diagnosis: MakeDiagnosis, task: TaskConfig, retry: Retry
) -> None:
    states = iter([Health.DOWN, Health.HEALTHY])
    registry = build_default_registry(retry=retry, probe=lambda name: next(states), sleep=lambda s: None)
    plan = make_plan(diagnosis(RootCause.SERVICE_DEPENDENCY), task, registry)

    attempt = executor(ledger, registry).execute(plan)

    assert attempt.action == WAIT_FOR_SERVICE
    assert attempt.outcome is AttemptOutcome.SUCCEEDED
    assert attempt.detail.startswith("libvirtd.service healthy after 2 probe(s); then retry-from-failure")
    assert len(retry.calls) == 1


def test_an_option_for_a_person_is_escalated_once(
    ledger: Ledger, registry: ActionRegistry, diagnosis: MakeDiagnosis, task: TaskConfig, retry: Retry
) -> None:
    d = diagnosis(RootCause.CREDENTIAL)
    plan = make_plan(d, task, registry)
    assert plan.options[0].action is None

    first = executor(ledger, registry).execute(plan)
    again = executor(ledger, registry).execute(plan)

    assert first.action == "escalate"
    assert first.outcome is AttemptOutcome.BLOCKED
    assert "escalated (outbox 1): manual_fix needs a person" in first.detail
    assert "already escalated" in again.detail
    (entry,) = ledger.pending_escalations()
    assert entry["title"] == "[qubinode-recovery] credential failure in build_vm.create_vm"
    assert "## Recovery plan: credential failure" in entry["body"]
    assert entry["labels"] == ["qubinode-recovery", "root-cause:credential"]
    assert retry.calls == []


def test_tampered_plans_are_refused(
    ledger: Ledger, registry: ActionRegistry, retry: Retry, network_plan: RecoveryPlan
) -> None:
    bad_args = network_plan.model_copy(deep=True)
    bad_args.options[0].action_args["dag_id"] = "build_vm; touch /tmp/pwned"
    bad_action = network_plan.model_copy(deep=True)
    bad_action.options[0].action = "shell"

    refused_args = executor(ledger, registry).execute(bad_args)
    refused_action = executor(ledger, registry).execute(bad_action)

    assert refused_args.outcome is AttemptOutcome.BLOCKED
    assert refused_args.detail.startswith("not run: retry-from-failure: dag_id:")
    assert refused_action.outcome is AttemptOutcome.BLOCKED
    assert "no recovery action named 'shell'" in refused_action.detail
    assert retry.calls == []


def test_a_disabled_action_is_refused(ledger: Ledger, diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    enabled = build_default_registry(retry=Retry())
    plan = make_plan(diagnosis(RootCause.NETWORK), task, enabled)
    disabled = build_default_registry()
    attempt = executor(ledger, disabled).execute(plan)
    assert attempt.outcome is AttemptOutcome.BLOCKED
    assert "action retry-from-failure is disabled" in attempt.detail


def test_rollback_handler_runs_with_its_checkpoint(
    ledger: Ledger, diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    seen: list[Any] = []
    handlers = HandlerRegistry()
    handlers.register(
        "build_vm", "create_vm", lambda ctx: seen.append(ctx.checkpoint) or True, name="undo", risk=Risk.LOW
    )
    ledger.record_checkpoint("build_vm", "create_vm", RUN_ID, {"vm_name": "web1"})
    registry = build_default_registry(handlers=handlers, checkpoints=ledger)
    plan = make_plan(diagnosis(RootCause.STATE_MISMATCH), task, registry, handlers)

    attempt = executor(ledger, registry).execute(plan)

    assert attempt.action == "run-handler"
    assert attempt.outcome is AttemptOutcome.SUCCEEDED
    assert seen == [{"vm_name": "web1"}]


def test_an_explicit_option_index_is_checked(
    ledger: Ledger, registry: ActionRegistry, network_plan: RecoveryPlan
) -> None:
    with pytest.raises(IndexError):
        executor(ledger, registry).execute(network_plan, option_index=99)


def test_circuit_breaker_stops_the_fourth_attempt_of_a_flapping_failure(
    ledger: Ledger, registry: ActionRegistry, retry: Retry, diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    """The same failure in four runs within the window: three retries, then escalation (N=3)."""
    policy = RecoveryPolicy(breaker_max_attempts=3, breaker_window=timedelta(minutes=60))
    attempts = []
    for n in range(4):
        run_task = task.model_copy(update={"run_id": f"scheduled__2025-01-01T0{n}:00:00+00:00"})
        plan = make_plan(diagnosis(RootCause.NETWORK), run_task, registry)
        attempts.append(executor(ledger, registry, policy).execute(plan, host="kvm-01"))

    assert [a.outcome for a in attempts[:3]] == [AttemptOutcome.SUCCEEDED] * 3
    fourth = attempts[3]
    assert fourth.action == "escalate"
    assert fourth.outcome is AttemptOutcome.BLOCKED
    assert (
        "circuit breaker open: 3 automatic attempt(s) for this fingerprint in the last 60 min (limit 3)"
        in (fourth.detail)
    )
    assert len(retry.calls) == 3
    incident_state = ledger.incident_detail("fp-network")
    assert incident_state == {}  # the test recorded no failure; the escalation still reached the outbox
    (entry,) = ledger.pending_escalations()
    assert entry["fingerprint"] == "fp-network"
    assert "circuit breaker open" in entry["body"]


def test_circuit_breaker_per_host(
    ledger: Ledger, registry: ActionRegistry, retry: Retry, diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    policy = RecoveryPolicy(breaker_max_attempts=3, breaker_max_host_attempts=2)
    outcomes = []
    for cause in (RootCause.NETWORK, RootCause.TIMEOUT, RootCause.NETWORK):
        d = diagnosis(cause, fingerprint=f"fp-{cause.value}-{len(outcomes)}")
        plan = make_plan(d, task, registry)
        outcomes.append(executor(ledger, registry, policy).execute(plan, host="kvm-07"))
    assert [a.action for a in outcomes] == [RETRY_FROM_FAILURE, RETRY_FROM_FAILURE, "escalate"]
    assert "host kvm-07" in outcomes[2].detail
    assert len(retry.calls) == 2


def test_escalation_marks_a_recorded_incident_escalated(
    ledger: Ledger, registry: ActionRegistry, diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    from recovery_workers import make_diagnosis

    from qubinode_recovery_provider.models import FailureEvent

    d = make_diagnosis(RootCause.CONFIGURATION, dag_id="build_vm", task_id="create_vm", run_id=RUN_ID)
    ledger.record_failure(FailureEvent(dag_id="build_vm", task_id="create_vm", run_id=RUN_ID), d)
    executor(ledger, registry).execute(make_plan(d, task, registry))
    incident = ledger.get_incident(d.fingerprint)
    assert incident is not None
    assert incident.state is IncidentState.ESCALATED


def test_an_unreachable_ledger_runs_nothing(
    tmp_path: Any, registry: ActionRegistry, retry: Retry, network_plan: RecoveryPlan
) -> None:
    (tmp_path / "not_a_dir").write_text("")
    broken = Ledger(f"sqlite:///{tmp_path / 'not_a_dir' / 'ledger.db'}", tmp_path / "spool", timeout=0.2)
    attempt = executor(broken, registry).execute(network_plan)
    assert attempt.outcome is AttemptOutcome.BLOCKED
    assert retry.calls == []


def test_a_dry_run_with_automatic_recovery_switched_off_says_it_would_wait_for_approval(
    ledger: Ledger, registry: ActionRegistry, retry: Retry, network_plan: RecoveryPlan
) -> None:
    """The decision's order: a dry run comes before the run's and the DAG's switches, which only ask for
    a person's approval."""
    attempt = executor(ledger, registry).execute(network_plan, dry_run=True, auto_recovery=False)
    assert attempt.outcome is AttemptOutcome.DRY_RUN
    assert attempt.detail.endswith("; after approval (automatic recovery is disabled for this call)")
    assert retry.calls == []


def test_an_approval_runs_the_option_although_this_call_switched_automatic_recovery_off(
    ledger: Ledger, registry: ActionRegistry, retry: Retry, network_plan: RecoveryPlan
) -> None:
    attempt = executor(ledger, registry).execute(network_plan, auto_recovery=False, approved=True)
    assert attempt.outcome is AttemptOutcome.SUCCEEDED
    assert len(retry.calls) == 1
    off = executor(ledger, registry, RecoveryPolicy(auto_recovery_enabled=False))
    assert off.execute(network_plan, approved=True).outcome is AttemptOutcome.SKIPPED  # the global one wins
