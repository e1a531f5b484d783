"""The planner: options per root cause, their ranking and its explanation, cause-specific retries."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from recovery_helpers import RUN_ID, option_types

from qubinode_recovery_provider.models import (
    Diagnosis,
    RecoveryActionType,
    RecoveryPlan,
    Risk,
    RootCause,
)
from qubinode_recovery_provider.recovery import (
    RECOVERY_PLAN_CREATED,
    RESTART_SERVICE,
    RETRY_FROM_FAILURE,
    RUN_HANDLER,
    WAIT_FOR_SERVICE,
    EventBus,
    HandlerRegistry,
    RecoveryEvent,
    RecoveryPlanner,
    TaskConfig,
)

A = RecoveryActionType
ALL_ACTIONS = {RETRY_FROM_FAILURE, WAIT_FOR_SERVICE, RUN_HANDLER}
MakeDiagnosis = Callable[..., Diagnosis]


def planner(**kwargs: object) -> RecoveryPlanner:
    kwargs.setdefault("events", None)
    kwargs.setdefault("min_auto_confidence", 0.7)
    return RecoveryPlanner(**kwargs)  # type: ignore[arg-type]


def by_type(plan: RecoveryPlan, kind: RecoveryActionType) -> list:
    return [option for option in plan.options if option.type is kind]


def the(plan: RecoveryPlan, kind: RecoveryActionType):
    (option,) = by_type(plan, kind)
    return option


# --- every category: the recommended option and the order -------------------------------------------

EXPECTED_ORDER = {
    RootCause.NETWORK: ["retry", "manual_fix", "escalate", "skip"],
    RootCause.TIMEOUT: ["retry", "manual_fix", "escalate", "skip"],
    RootCause.SERVICE_DEPENDENCY: ["wait", "manual_fix", "escalate", "skip", "retry"],
    RootCause.VIRTUALIZATION: ["manual_fix", "escalate", "retry", "skip"],
    RootCause.STORAGE: ["manual_fix", "escalate", "retry", "skip"],
    RootCause.CREDENTIAL: ["manual_fix", "escalate", "retry", "skip"],
    RootCause.RESOURCE_EXHAUSTION: ["manual_fix", "escalate", "retry", "skip"],
    RootCause.CONFIGURATION: ["manual_fix", "escalate", "retry", "skip"],
    RootCause.STATE_MISMATCH: ["manual_fix", "skip", "escalate", "retry"],
    RootCause.UNKNOWN: ["escalate", "manual_fix", "skip", "retry"],
}


@pytest.mark.parametrize("cause", list(RootCause))
def test_plan_per_category_is_ranked_as_its_playbook_says(
    cause: RootCause, diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    plan = planner().plan_recovery(diagnosis(cause), task)

    assert option_types(plan) == EXPECTED_ORDER[cause]
    assert plan.recommended_index == 0
    assert plan.recommended is plan.options[0]
    assert [option.priority for option in plan.options] == list(range(1, len(plan.options) + 1))
    assert plan.fingerprint == f"fp-{cause.value}"
    assert (plan.dag_id, plan.task_id, plan.run_id) == ("build_vm", "create_vm", RUN_ID)


@pytest.mark.parametrize("cause", list(RootCause))
def test_every_option_is_complete(cause: RootCause, diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    plan = planner().plan_recovery(diagnosis(cause), task)

    for option in plan.options:
        assert option.title
        assert option.steps, option.type
        assert option.success_criteria, option.type
        assert 0.0 <= option.confidence <= 1.0
        assert option.expected_duration_seconds > 0
        assert option.reason
        if option.type not in (A.ESCALATE,):
            assert option.rollback_steps, option.type
        if option.action is None:
            assert not option.automatic
            assert option.action_args == {}


@pytest.mark.parametrize("cause", list(RootCause))
def test_the_recommended_option_explains_itself(
    cause: RootCause, diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    plan = planner().plan_recovery(diagnosis(cause), task)
    best = plan.recommended
    assert best is not None
    assert best.reason.startswith(f"{best.type.value.upper()} is recommended for this {cause.value} failure")
    assert f"confidence {best.confidence:.2f}" in best.reason
    if cause is not RootCause.UNKNOWN:
        assert "Matched patterns:" in best.reason


def test_network_retry_resumes_the_run_after_a_delay(diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    plan = planner().plan_recovery(diagnosis(RootCause.NETWORK, retry_delay_seconds=45), task)
    retry = plan.options[0]

    assert retry.type is A.RETRY
    assert retry.automatic
    assert retry.risk is Risk.LOW
    assert retry.action == RETRY_FROM_FAILURE
    assert retry.action_args == {
        "dag_id": "build_vm",
        "run_id": RUN_ID,
        "task_ids": ["create_vm"],
        "delay_seconds": 45,
        "execution_timeout_seconds": None,
    }
    assert "upstream tasks are kept" in " ".join(retry.steps)
    assert retry.confidence >= 0.7


def test_later_tries_wait_longer_and_are_trusted_less(diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    first = planner().plan_recovery(diagnosis(RootCause.NETWORK), task).options[0]
    third = planner().plan_recovery(diagnosis(RootCause.NETWORK), task.model_copy(update={"try_number": 3}))
    retry = the(third, A.RETRY)

    assert first.action_args["delay_seconds"] == 60
    assert retry.action_args["delay_seconds"] == 240
    assert retry.confidence < first.confidence


def test_timeout_retries_with_a_longer_timeout(diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    plan = planner().plan_recovery(diagnosis(RootCause.TIMEOUT), task)
    retry = plan.options[0]

    assert retry.type is A.RETRY
    assert retry.automatic
    assert retry.action_args["execution_timeout_seconds"] == 1200
    assert "1200s" in retry.title
    assert any("execution_timeout=1200s" in step and "600s" in step for step in retry.steps)


def test_timeout_without_a_known_timeout_still_asks_for_a_longer_one(diagnosis: MakeDiagnosis) -> None:
    plan = planner().plan_recovery(
        diagnosis(RootCause.TIMEOUT), TaskConfig(dag_id="d", task_id="t", run_id="r1")
    )
    retry = plan.options[0]
    assert retry.action_args["execution_timeout_seconds"] is None
    assert "longer timeout" in retry.title


def test_service_dependency_waits_for_libvirtd_then_retries(
    diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    plan = planner().plan_recovery(diagnosis(RootCause.SERVICE_DEPENDENCY), task)
    wait = plan.options[0]

    assert wait.type is A.WAIT
    assert wait.automatic
    assert wait.risk is Risk.NONE
    assert wait.action == WAIT_FOR_SERVICE
    assert wait.action_args["service"] == "libvirtd.service"
    assert wait.action_args["then_retry"] == {
        "dag_id": "build_vm",
        "run_id": RUN_ID,
        "task_ids": ["create_vm"],
    }
    assert "libvirtd.service" in wait.title
    assert any("systemctl status libvirtd.service" in step for step in the(plan, A.MANUAL_FIX).steps)


def test_service_dependency_finds_the_service_from_the_pattern_tool(
    diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    d = diagnosis(RootCause.SERVICE_DEPENDENCY, affected_services=["kcli"])
    assert planner().plan_recovery(d, task).options[0].action_args["service"] == "libvirtd.service"


def test_service_dependency_without_a_known_service_offers_no_wait(
    diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    d = diagnosis(RootCause.SERVICE_DEPENDENCY, affected_services=["kernel"], matched_patterns=[])
    plan = planner().plan_recovery(d, task)

    assert not by_type(plan, A.WAIT)
    assert plan.options[0].type is A.MANUAL_FIX
    reason = plan.options[0].reason
    assert "WAIT is not offered: no known service or resource to wait for" in reason
    assert "RETRY (Retry from the failed task after 60s) is not recommended" in reason


def test_service_that_cannot_come_back_by_itself_is_fixed_first(
    diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    plan = planner().plan_recovery(diagnosis(RootCause.SERVICE_DEPENDENCY, retryable=False), task)

    assert option_types(plan)[:2] == ["manual_fix", "wait"]
    assert not the(plan, A.WAIT).automatic
    assert not the(plan, A.RETRY).automatic


@pytest.mark.parametrize("cause", [RootCause.CREDENTIAL, RootCause.RESOURCE_EXHAUSTION])
@pytest.mark.parametrize("retryable", [True, False, None])
def test_no_blind_retry_on_credentials_or_resource_exhaustion(
    cause: RootCause, retryable: bool | None, diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    plan = planner().plan_recovery(diagnosis(cause, retryable=retryable), task)
    retry = the(plan, A.RETRY)

    assert not retry.automatic
    assert "once the cause is fixed" in retry.title
    assert any("cause is fixed" in item for item in retry.prerequisites)
    assert all(option.type is not A.RETRY or not option.automatic for option in plan.options)


def test_brief_resource_shortage_waits_for_memory_first(diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    plan = planner().plan_recovery(diagnosis(RootCause.RESOURCE_EXHAUSTION, retryable=True), task)

    assert option_types(plan)[:2] == ["wait", "manual_fix"]
    wait = plan.options[0]
    assert wait.action_args["service"] == "memory"
    assert wait.automatic


def test_a_held_lock_is_retried_after_a_delay(diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    plan = planner().plan_recovery(diagnosis(RootCause.STATE_MISMATCH, retryable=True), task)

    assert plan.options[0].type is A.RETRY
    assert plan.options[0].automatic
    assert plan.options[0].action_args["delay_seconds"] == 120


def test_state_mismatch_rolls_back_with_the_registered_handler(
    diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    handlers = HandlerRegistry()
    handlers.register(
        "build_vm", "create_vm", lambda ctx: True, name="delete_vm", description="Delete the VM."
    )
    plan = planner(handlers=handlers).plan_recovery(diagnosis(RootCause.STATE_MISMATCH), task)
    rollback = plan.options[0]

    assert rollback.type is A.ROLLBACK
    assert rollback.action == RUN_HANDLER
    assert rollback.action_args == {
        "handler": "delete_vm",
        "dag_id": "build_vm",
        "task_id": "create_vm",
        "run_id": RUN_ID,
    }
    assert rollback.risk is Risk.MEDIUM
    assert "Delete the VM." in rollback.steps[0]


def test_handlers_of_other_tasks_and_causes_are_not_offered(
    diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    handlers = HandlerRegistry()
    handlers.register("build_vm", "other_task", lambda ctx: True, name="other")
    handlers.register("build_vm", None, lambda ctx: True, name="net_only", root_causes=["network"])
    plan = planner(handlers=handlers).plan_recovery(diagnosis(RootCause.STATE_MISMATCH), task)
    assert not by_type(plan, A.ROLLBACK)


def test_unknown_failures_go_to_a_person(diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    plan = planner().plan_recovery(diagnosis(RootCause.UNKNOWN), task)

    assert plan.options[0].type is A.ESCALATE
    assert plan.options[0].confidence >= 0.8
    assert not the(plan, A.RETRY).automatic


def test_network_failure_that_cannot_pass_is_fixed_first(diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    plan = planner().plan_recovery(diagnosis(RootCause.NETWORK, retryable=False), task)
    assert plan.options[0].type is A.MANUAL_FIX
    assert not the(plan, A.RETRY).automatic


def test_a_doubtful_diagnosis_is_not_retried_unattended(diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    plan = planner().plan_recovery(diagnosis(RootCause.NETWORK, confidence=0.4), task)
    retry = the(plan, A.RETRY)

    assert plan.options[0].type is A.MANUAL_FIX
    assert not retry.automatic
    assert retry.priority == len(plan.options)
    assert "below min_auto_confidence 0.70" in retry.reason
    assert "RETRY (Retry from the failed task after 60s) is not recommended" in plan.options[0].reason


def test_min_auto_confidence_comes_from_the_config(
    diagnosis: MakeDiagnosis, task: TaskConfig, set_option: Callable[[str, str], None]
) -> None:
    set_option("min_auto_confidence", "0.95")
    plan = RecoveryPlanner(events=None).plan_recovery(diagnosis(RootCause.NETWORK), task)
    assert plan.options[0].type is A.MANUAL_FIX


def test_without_run_ids_the_retry_is_text_only(diagnosis: MakeDiagnosis) -> None:
    plan = planner().plan_recovery(diagnosis(RootCause.NETWORK))
    retry = plan.options[0]

    assert retry.type is A.RETRY
    assert retry.action is None
    assert not retry.automatic
    assert retry.action_args == {}
    assert "clear the failed task" in retry.steps[0]


def test_ids_come_from_the_diagnosis_when_no_task_is_given(diagnosis: MakeDiagnosis) -> None:
    d = diagnosis(RootCause.NETWORK, dag_id="d1", task_id="t1", run_id="scheduled__x")
    plan = planner().plan_recovery(d)
    assert plan.options[0].action_args["task_ids"] == ["t1"]
    assert (plan.dag_id, plan.task_id, plan.run_id) == ("d1", "t1", "scheduled__x")


def test_invalid_ids_never_reach_action_arguments(diagnosis: MakeDiagnosis) -> None:
    task = TaskConfig(dag_id="build_vm; rm -rf /", task_id="create_vm", run_id="r1")
    plan = planner().plan_recovery(diagnosis(RootCause.NETWORK), task)
    assert all(not option.action_args for option in plan.options)
    assert "rm -rf" not in plan.model_dump_json(exclude={"dag_id"})


def test_restart_is_offered_only_when_enabled(diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    d = diagnosis(RootCause.SERVICE_DEPENDENCY)
    without = planner().plan_recovery(d, task)
    with_restart = planner(actions=ALL_ACTIONS | {RESTART_SERVICE}).plan_recovery(d, task)

    assert all(option.action != RESTART_SERVICE for option in without.options)
    waits = by_type(with_restart, A.WAIT)
    assert [w.action for w in waits] == [WAIT_FOR_SERVICE, RESTART_SERVICE]
    restart = waits[1]
    assert restart.risk is Risk.MEDIUM
    assert restart.action_args["unit"] == "libvirtd.service"
    assert restart.priority == waits[0].priority + 1


def test_actions_the_registry_lacks_are_not_planned(diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    plan = planner(actions=set()).plan_recovery(diagnosis(RootCause.SERVICE_DEPENDENCY), task)
    assert all(option.action is None and not option.automatic for option in plan.options)


def test_manual_fix_combines_the_playbook_the_tool_and_the_patterns(
    diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    d = diagnosis(
        RootCause.STORAGE,
        diagnostic_commands=["virsh pool-info default", "echo $(cat /etc/shadow)", "ls `pwd`"],
        recommended_actions=["Start the pool: virsh pool-start default", "run ${CMD}"],
    )
    steps = the(planner().plan_recovery(d, task), A.MANUAL_FIX).steps
    text = "\n".join(steps)

    assert "Check: `df -h`" in steps  # the storage playbook
    assert "Check: `virsh pool-info default`" in steps  # the pattern's command
    assert "Fix: Start the pool: virsh pool-start default" in steps  # the pattern's hint
    assert "$(" not in text
    assert "`pwd`" not in text
    assert "${" not in text


def test_tool_specific_checks_follow_the_matched_patterns(diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    d = diagnosis(RootCause.CONFIGURATION)
    steps = the(planner().plan_recovery(d, task), A.MANUAL_FIX).steps
    assert "Check: `ansible <host> -m ping -vvv`" in steps


def test_critical_failures_page_someone(diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    plan = planner().plan_recovery(diagnosis(RootCause.SERVICE_DEPENDENCY), task)
    assert any("page the on-call" in step for step in the(plan, A.ESCALATE).steps)


def test_plan_created_event(
    diagnosis: MakeDiagnosis, task: TaskConfig, bus: EventBus, events: list[RecoveryEvent]
) -> None:
    d = diagnosis(RootCause.NETWORK)
    plan = RecoveryPlanner(events=bus, min_auto_confidence=0.7).plan_recovery(d, task)

    assert [e.name for e in events] == [RECOVERY_PLAN_CREATED]
    assert events[0].data["plan"] is plan
    assert events[0].data["diagnosis"] is d


def test_each_plan_has_its_own_id(diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    d = diagnosis(RootCause.NETWORK)
    assert planner().plan_recovery(d, task).id != planner().plan_recovery(d, task).id
