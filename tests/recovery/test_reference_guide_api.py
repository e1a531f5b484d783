"""The reference guide's Python examples, run as written (imports adapted to our package; where the
guide calls a user's own object -- ``input()``, an ``ApprovalGateManager`` -- the test supplies it).
Its CLI examples and its CI workflow are tested in tests/guide.

The examples owned elsewhere (``FailureAnalyzer(use_llm=...)``, ``RecoveryPlanner(github_token=...,
github_repo=...)``) are tested with the LLM and the GitHub escalation.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from support.probe_fakes import SYSTEMCTL_SHOW, write_executable

from qubinode_recovery_provider import api
from qubinode_recovery_provider.api import PluginManager, RecoveryHooks
from qubinode_recovery_provider.diagnosis import (
    DiagnosticContext,
    FailureAnalyzer,
    FailureSeverity,
    KnownErrorPattern,
    RootCauseCategory,
)
from qubinode_recovery_provider.models import (
    AttemptOutcome,
    FailureEvent,
    Health,
    RecoveryActionType,
    ResourceSnapshot,
    Risk,
    RootCause,
)
from qubinode_recovery_provider.recovery import HandlerContext, RecoveryEvent, TaskConfig
from qubinode_recovery_provider.recovery.events import default_bus
from qubinode_recovery_provider.store import Ledger

LIBVIRT_DOWN = "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory"
RUN_ID = "manual__2025-01-01T00:00:00+00:00"
#: A failure of a known run and task: its plan has automatic options (they need a run to resume).
FAILED_RUN = FailureEvent(dag_id="build_vm", task_id="create_vm", run_id=RUN_ID, exception_text=LIBVIRT_DOWN)
DOMAIN_EXISTS = "error: operation failed: domain 'web1' already exists with uuid x"


@pytest.fixture
def fake_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``systemctl`` on PATH that answers with a recorded ``systemctl show`` of a hypervisor."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "show.txt").write_text(SYSTEMCTL_SHOW)
    write_executable(bin_dir, "systemctl", f'cat "{tmp_path / "show.txt"}"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


# --- 1. DiagnosticContext API ------------------------------------------------------------------------


def test_the_diagnostic_context_example_runs_as_written(fake_systemctl: None) -> None:
    ctx = DiagnosticContext(
        plugin_name="HetznerDeploymentPlugin",
        failure_timestamp=datetime.now(),
        error_message="Failed to provision VM",
    )

    ctx.service_health = {
        "libvirtd": DiagnosticContext.get_service_status("libvirtd"),
        "podman": DiagnosticContext.get_service_status("podman"),
    }
    ctx.system_resources = DiagnosticContext.get_system_resources()

    # one source of truth: the guide's names are views of our fields
    assert [(s.name, s.state) for s in ctx.services] == [
        ("libvirtd", Health.HEALTHY),
        ("podman", Health.UNKNOWN),
    ]
    assert ctx.service_health["libvirtd"]["active"] is True
    assert ctx.service_health["podman"]["active"] is None  # not in the recorded output: unknown, no raise
    assert isinstance(ctx.resources, ResourceSnapshot)
    assert ctx.system_resources == ctx.resources.model_dump(mode="json")
    assert ctx.resources.cpu_count is not None


def test_the_guide_fields_are_accepted_by_the_constructor_and_map_onto_ours() -> None:
    ctx = DiagnosticContext(
        plugin_name="build_vm",
        error_message="boom",
        service_health={"libvirtd": {"active": False}, "vault": {"state": "degraded", "kind": "podman"}},
        system_resources={"memory_percent": 97.5},
        recent_logs=["line 1", {"timestamp": None, "message": "line 2"}],
    )
    assert [(s.name, s.kind, s.state) for s in ctx.services] == [
        ("libvirtd", "systemd", Health.DOWN),
        ("vault", "podman", Health.DEGRADED),
    ]
    assert ctx.resources.memory_percent == 97.5
    assert ctx.log_lines == ctx.recent_logs == ["line 1", "line 2"]
    ctx.recent_logs = ["only"]
    assert ctx.log_lines == ["only"]
    dumped = ctx.model_dump()
    assert "service_health" not in dumped
    assert "services" in dumped
    with pytest.raises(ValueError, match="'recent_logs' or 'log_lines', not both"):
        DiagnosticContext(recent_logs=["a"], log_lines=["b"])
    with pytest.raises(TypeError, match="service_health must be a dict"):
        ctx.service_health = ["libvirtd"]  # type: ignore[assignment]


def test_network_connectivity_and_plugin_logs_are_bounded_probes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        up = DiagnosticContext.get_network_connectivity(f"127.0.0.1:{port}")
    assert up["reachable"] is True
    assert up["latency_ms"] is not None
    bad = DiagnosticContext.get_network_connectivity("registry.redhat.io")  # no port: unknown, no raise
    assert bad["state"] == "unknown"
    assert bad["reachable"] is None
    assert "host:port" in bad["error"]

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    line = '{"MESSAGE": "internal error: password=hunter2 rejected", "PRIORITY": "3"}'
    write_executable(bin_dir, "journalctl", f"echo '{line}'\n")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    ctx = DiagnosticContext(plugin_name="libvirtd")
    ctx.recent_logs = DiagnosticContext.get_plugin_logs("libvirtd", since_seconds=600)
    assert ctx.log_lines == [
        "internal error: password=*** rejected"
    ]  # the probe's details: test_probe_journal
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert DiagnosticContext.get_plugin_logs("libvirtd") == []  # no journalctl: nothing, no raise


# --- 2. FailureAnalyzer.analyze(diagnostic_ctx) ------------------------------------------------------


def test_the_analyzer_example_reads_the_context(capsys: pytest.CaptureFixture[str]) -> None:
    diagnostic_ctx = DiagnosticContext(
        plugin_name="HetznerDeploymentPlugin",
        error_message="Failed to provision VM",
        recent_logs=["starting", "write failed: No space left on device", "giving up"],
        system_resources={"state": "degraded", "disks": [{"mount": "/var", "percent": 99.0}]},
    )
    analyzer = FailureAnalyzer()
    analysis = analyzer.analyze(diagnostic_ctx)

    print(f"Root Cause: {analysis.root_cause.value}")
    print(f"Confidence: {analysis.confidence:.0%}")
    print("Recommended Actions:")
    for action in analysis.recommended_actions:
        print(f"  - {action}")

    out = capsys.readouterr().out
    assert out.startswith("Root Cause: storage\nConfidence: ")
    assert analysis.dag_id == "HetznerDeploymentPlugin"
    assert analysis.matched_patterns[0].line_number == 2  # the log line, not the message
    assert analysis.corroboration == ["/var is 99% full"]  # the context's resources
    plain = FailureAnalyzer().analyze("Failed to provision VM")
    assert analyzer.analyze(DiagnosticContext(error_message="Failed to provision VM")).fingerprint == (
        plain.fingerprint
    )


# --- 4. PluginManager recovery hooks -----------------------------------------------------------------


def test_the_plugin_manager_example_runs_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], retried: list[Any]
) -> None:
    monkeypatch.setattr("builtins.input", lambda: "y")
    context: dict[str, Any] = {}

    manager = PluginManager()
    manager.initialize()

    # Enable auto-recovery for this session
    manager.set_auto_recovery_enabled(True)

    # Set approval callback for interactive mode
    def approve_recovery(plan):  # type: ignore[no-untyped-def]
        print(f"Execute recovery: {plan.recommended_option.action_type.value}? (y/n)")
        return input().lower() == "y"

    manager.set_approval_callback(approve_recovery)

    # Execute plugin: Airflow's job here, said plainly
    with pytest.raises(NotImplementedError, match="RecoveryNotifier"):
        manager.execute_plugin("HetznerDeploymentPlugin", context)

    # the hooks with the guide's shapes: a rollback that needs approval goes through the callback
    undone: list[HandlerContext] = []
    manager.register_recovery_handler("build_vm", lambda ctx: undone.append(ctx) or True)
    manager.record_checkpoint("build_vm", {"vm_name": "web1"})
    analysis = manager.diagnose_failure("build_vm", DOMAIN_EXISTS, None)
    plan = manager.plan_recovery(analysis, "build_vm")
    assert plan.failed_plugin == "build_vm"
    assert plan.recommended_option is plan.recommended
    assert plan.recommended_option.action_type is RecoveryActionType.ROLLBACK

    assert manager.execute_recovery(plan, {"dag_id": "build_vm"}) is True
    assert capsys.readouterr().out == "Execute recovery: rollback? (y/n)\n"
    assert undone[0].checkpoint == {"vm_name": "web1"}  # the DAG-wide checkpoint reached the handler
    assert manager.last_attempt is not None
    assert manager.last_attempt.outcome is AttemptOutcome.SUCCEEDED
    assert RecoveryHooks is PluginManager


def test_execute_recovery_is_false_when_nothing_ran(retried: list[Any]) -> None:
    manager = PluginManager()
    plan = manager.plan_recovery(api.diagnose_failure(FAILED_RUN), "build_vm")
    manager.set_auto_recovery_enabled(False)
    assert manager.execute_recovery(plan, None) is False
    assert manager.last_attempt is not None
    assert manager.last_attempt.outcome is AttemptOutcome.SKIPPED
    manager.set_auto_recovery_enabled(True)
    assert manager.execute_recovery(plan, TaskConfig(dag_id="build_vm")) is True


def test_the_plugin_manager_options_example_runs_as_written(retried: list[Any]) -> None:
    asked: list[Any] = []

    def user_approves(plan: Any) -> bool:
        asked.append(plan)
        return False

    manager = PluginManager()

    # Enable automatic recovery on plugin failure
    manager.set_auto_recovery_enabled(True)
    assert api.current_policy().auto_recovery_enabled is True

    # Disable auto-recovery (manual decision required)
    manager.set_auto_recovery_enabled(False)
    assert api.current_policy().auto_recovery_enabled is False

    # Require approval before executing recovery
    manager.set_approval_callback(lambda plan: user_approves(plan))

    manager.set_auto_recovery_enabled(True)
    plan = manager.plan_recovery(manager.diagnose_failure("build_vm", DOMAIN_EXISTS), "build_vm")
    manager.register_recovery_handler("build_vm", lambda ctx: True)
    plan = manager.plan_recovery(manager.diagnose_failure("build_vm", DOMAIN_EXISTS), "build_vm")
    assert manager.execute_recovery(plan) is False
    assert asked == [plan]
    assert manager.last_attempt is not None
    assert manager.last_attempt.outcome is AttemptOutcome.BLOCKED


def test_the_approval_gate_example_runs_as_written(retried: list[Any]) -> None:
    class ApprovalGateManager:  # the guide's own object, not part of this provider
        def __init__(self) -> None:
            self.asked: list[tuple[str, Risk, str | None]] = []

        def should_approve(self, stage: str, risk_level: Risk, plugin: str | None) -> bool:
            self.asked.append((stage, risk_level, plugin))
            return risk_level.rank <= Risk.MEDIUM.rank

    manager = PluginManager()
    approvals = ApprovalGateManager()

    # Require approval for recovery
    def approval_callback(plan):  # type: ignore[no-untyped-def]
        return approvals.should_approve(
            stage="recovery",
            risk_level=plan.recommended_option.risk_level,
            plugin=plan.failed_plugin,
        )

    manager.set_approval_callback(approval_callback)

    manager.register_recovery_handler("build_vm", lambda ctx: True)
    plan = manager.plan_recovery(manager.diagnose_failure("build_vm", DOMAIN_EXISTS), "build_vm")
    assert manager.execute_recovery(plan) is True
    assert approvals.asked == [("recovery", Risk.MEDIUM, "build_vm")]


def test_the_event_system_example_runs_as_written(
    capsys: pytest.CaptureFixture[str], retried: list[Any]
) -> None:
    event_system = default_bus()
    ours: list[RecoveryEvent] = []
    diagnosed: list[Any] = []
    api.subscribe("recovery_executed", ours.append)
    event_system.subscribe("plugin_failure_diagnosed", lambda data: diagnosed.append(data["root_cause"]))

    event_system.subscribe("recovery_executed", lambda data:
        print(f"Recovery {data['action_type']} for {data['plugin_name']}")
    )  # fmt: skip

    manager = PluginManager()
    plan = manager.plan_recovery(api.diagnose_failure(FAILED_RUN), "build_vm")
    assert manager.execute_recovery(plan) is True

    assert capsys.readouterr().out == "Recovery wait for build_vm\n"
    assert diagnosed == ["service_dependency"]
    assert ours[0].data["attempt"].outcome is AttemptOutcome.SUCCEEDED  # our subscribers unchanged
    payload = dict(ours[0])
    assert payload["success"] is True
    assert payload["action"] == "wait-for-service"
    assert payload["root_cause"] == "service_dependency"
    assert payload["attempt"] is ours[0].data["attempt"]
    with pytest.raises(KeyError):
        ours[0]["no_such_key"]
    with pytest.raises(ValueError, match="plugin_failure_diagnosed"):
        event_system.subscribe("plugin_failure", print)


# --- the hooks' shapes: ours keep working, the guide's work, anything else is a clear TypeError ------


def test_register_recovery_handler_in_the_guide_shape_registers(ledger: Ledger) -> None:
    def undo(ctx: HandlerContext) -> bool:
        return True

    assert api.register_recovery_handler("dag", undo) is undo
    found = api.get_handler_registry().find("dag", "any_task", RootCause.STATE_MISMATCH)
    assert found is not None
    assert found.fn is undo
    assert found.task_id is None

    @api.register_recovery_handler("dag", "task")  # ours, as a decorator, still works
    def undo_task(ctx: HandlerContext) -> bool:
        return True

    assert api.get_handler_registry().find("dag", "task", RootCause.STATE_MISMATCH).fn is undo_task  # type: ignore[union-attr]
    with pytest.raises(TypeError, match="not both"):
        api.register_recovery_handler("dag", undo, undo)
    with pytest.raises(TypeError, match="task_id must be a string"):
        api.register_recovery_handler("dag", 5)  # type: ignore[call-overload]


def test_the_other_hooks_detect_the_shape_or_refuse(ledger: Ledger, retried: list[Any]) -> None:
    with pytest.raises(TypeError, match="reference guide's \\(plugin_name, failure_message, context\\)"):
        api.diagnose_failure(FAILED_RUN, "y")
    with pytest.raises(TypeError, match="the context must be a DiagnosticContext, a dict or None"):
        api.diagnose_failure("x", "y", "z")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reference guide's"):
        api.diagnose_failure(LIBVIRT_DOWN, {"inventory": "localhost"})  # type: ignore[arg-type]
    diagnosis = api.diagnose_failure("build_vm", LIBVIRT_DOWN, {"log_lines": ["before"]})
    assert diagnosis.dag_id == "build_vm"
    assert diagnosis.root_cause is RootCause.SERVICE_DEPENDENCY
    with pytest.raises(TypeError, match="plan_recovery takes"):
        api.plan_recovery(diagnosis, 7)  # type: ignore[arg-type]
    plan = api.plan_recovery(api.diagnose_failure(FAILED_RUN), "build_vm")
    with pytest.raises(TypeError, match="RecoveryHooks"):
        api.execute_recovery(plan, {"dag_id": "build_vm"})  # type: ignore[arg-type]
    assert api.execute_recovery(plan, TaskConfig(dag_id="build_vm")).outcome is AttemptOutcome.SUCCEEDED
    with pytest.raises(TypeError, match="record_checkpoint takes"):
        api.record_checkpoint("build_vm", "task", None, {"a": 1})
    api.record_checkpoint("build_vm", {"step": 2})
    api.record_checkpoint("build_vm", "create_vm", "run1", {"step": 1})
    assert ledger.latest_checkpoint("build_vm", "*") == {"step": 2}
    assert ledger.latest_checkpoint("build_vm", "create_vm") == {"step": 1}


@pytest.mark.parametrize(
    "callback",
    [lambda: True, lambda plan, option: True, lambda plan, option, reasons, extra: True, "yes", max],
    ids=["none", "two", "four", "not callable", "no signature"],
)
def test_an_approval_callback_of_another_shape_is_a_clear_type_error(callback: Any) -> None:
    with pytest.raises(TypeError, match="approval callback"):
        api.set_approval_callback(callback)


def test_our_callback_is_kept_and_the_guide_one_is_adapted(retried: list[Any]) -> None:
    from qubinode_recovery_provider import runtime

    ours = lambda plan, option, reasons: True  # noqa: E731
    variadic = lambda plan, *rest: True  # noqa: E731
    for callback in (ours, variadic):
        api.set_approval_callback(callback)
        assert runtime.current().approval_callback is callback
    seen: list[Any] = []
    api.set_approval_callback(lambda plan, verbose=False: seen.append(plan) or True)
    api.register_recovery_handler("build_vm", lambda ctx: True)
    plan = api.plan_recovery(api.diagnose_failure(DOMAIN_EXISTS), "build_vm")
    assert api.execute_recovery(plan).outcome is AttemptOutcome.SUCCEEDED
    assert seen == [plan]
    api.set_approval_callback(None)
    assert runtime.current().approval_callback is None


# --- the custom pattern example: not supported, said plainly -----------------------------------------


def test_the_custom_pattern_example_fails_with_a_clear_error() -> None:
    analyzer = FailureAnalyzer()

    # Add custom pattern
    with pytest.raises(TypeError, match="YAML pack with examples and near misses"):
        KnownErrorPattern(
            pattern_id="custom_001",
            regex=r"my custom error message",
            root_cause=RootCauseCategory.CONFIGURATION,
            description="Custom configuration issue",
            severity=FailureSeverity.MEDIUM,
            services_affected=["my_service"],
            recovery_hint="Check /etc/my_service.conf for invalid settings",
        )
    assert not hasattr(analyzer, "_patterns")  # so analyzer._patterns.append(...) cannot half-work
    assert RootCauseCategory.CONFIGURATION is RootCause.CONFIGURATION
