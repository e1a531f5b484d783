"""The action registry: allowlisted names, typed arguments, and the built-in actions."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from qubinode_recovery_provider.models import Health, Risk
from qubinode_recovery_provider.recovery import (
    RESTART_SERVICE,
    RETRY_FROM_FAILURE,
    RUN_HANDLER,
    WAIT_FOR_SERVICE,
    ActionDisabledError,
    ActionRegistry,
    ActionResult,
    InvalidActionArgsError,
    RestartServiceArgs,
    RetryFromFailureArgs,
    UnknownActionError,
    WaitForServiceArgs,
    build_default_registry,
)
from qubinode_recovery_provider.recovery.actions import make_restart_service, make_wait_for_service

RECOVERY_PACKAGE = Path(__file__).resolve().parents[2] / "qubinode_recovery_provider" / "recovery"
RETRY_ARGS = {"dag_id": "build_vm", "run_id": "manual__1", "task_ids": ["create_vm"]}


class FakeClock:
    """Monotonic time that advances only when the action sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_register_validate_and_run() -> None:
    calls: list[RetryFromFailureArgs] = []
    registry = ActionRegistry()
    registry.register(RETRY_FROM_FAILURE, lambda args: calls.append(args), RetryFromFailureArgs, Risk.LOW)

    result = registry.run(RETRY_FROM_FAILURE, RETRY_ARGS)

    assert result == ActionResult(True, "done")
    assert calls == [RetryFromFailureArgs(**RETRY_ARGS)]
    assert RETRY_FROM_FAILURE in registry
    assert registry.names() == [RETRY_FROM_FAILURE]
    assert registry.enabled_names() == {RETRY_FROM_FAILURE}


@pytest.mark.parametrize(
    ("args", "where"),
    [
        ({**RETRY_ARGS, "command": "rm -rf /"}, "command"),
        ({**RETRY_ARGS, "dag_id": "x; rm -rf /"}, "dag_id"),
        ({**RETRY_ARGS, "run_id": "$(touch /tmp/pwned)"}, "run_id"),
        ({**RETRY_ARGS, "task_ids": ["`id`"]}, "task_ids"),
        ({**RETRY_ARGS, "task_ids": []}, "task_ids"),
        ({"dag_id": "build_vm"}, "run_id"),
    ],
)
def test_arguments_that_do_not_fit_the_model_are_refused(args: dict[str, Any], where: str) -> None:
    calls: list[Any] = []
    registry = ActionRegistry()
    registry.register(RETRY_FROM_FAILURE, calls.append, RetryFromFailureArgs)

    with pytest.raises(InvalidActionArgsError, match=where):
        registry.run(RETRY_FROM_FAILURE, args)
    assert calls == []


def test_unknown_and_disabled_actions_do_not_run() -> None:
    calls: list[Any] = []
    registry = ActionRegistry()
    registry.register("noop", calls.append, RetryFromFailureArgs, enabled=False)

    with pytest.raises(UnknownActionError):
        registry.run("shell", {})
    with pytest.raises(ActionDisabledError):
        registry.run("noop", RETRY_ARGS)
    registry.set_enabled("noop", True)
    registry.run("noop", RETRY_ARGS)
    assert len(calls) == 1


def test_registration_is_checked() -> None:
    registry = ActionRegistry()
    with pytest.raises(ValueError, match="invalid action name"):
        registry.register("rm -rf", print, RetryFromFailureArgs)
    with pytest.raises(TypeError):
        registry.register("ok", print, dict)  # type: ignore[arg-type]


def test_an_action_that_raises_becomes_a_failed_result() -> None:
    def boom(args: BaseModel) -> None:
        raise RuntimeError("API down")

    registry = ActionRegistry()
    registry.register(RETRY_FROM_FAILURE, boom, RetryFromFailureArgs)
    result = registry.run(RETRY_FROM_FAILURE, RETRY_ARGS)
    assert not result.succeeded
    assert "RuntimeError: API down" in result.detail


@pytest.mark.parametrize(("value", "ok"), [(True, True), (None, True), (False, False)])
def test_plain_return_values_become_results(value: bool | None, ok: bool) -> None:
    registry = ActionRegistry()
    registry.register("x", lambda args: value, RetryFromFailureArgs)
    assert registry.run("x", RETRY_ARGS).succeeded is ok


def test_wait_for_service_polls_until_healthy() -> None:
    clock = FakeClock()
    states = iter([Health.DOWN, Health.UNKNOWN, Health.HEALTHY])
    probed: list[str] = []

    def probe(name: str) -> Health:
        probed.append(name)
        return next(states)

    wait = make_wait_for_service(probe, sleep=clock.sleep, clock=clock)
    result = wait(WaitForServiceArgs(service="libvirtd.service", timeout_seconds=60, poll_seconds=5))

    assert result.succeeded
    assert probed == ["libvirtd.service"] * 3
    assert clock.sleeps == [5, 5]


def test_wait_for_service_gives_up_at_the_deadline() -> None:
    clock = FakeClock()

    def probe(name: str) -> Health:
        raise OSError("systemctl hangs")

    wait = make_wait_for_service(probe, sleep=clock.sleep, clock=clock)
    result = wait(WaitForServiceArgs(service="libvirtd.service", timeout_seconds=30, poll_seconds=10))

    assert not result.succeeded
    assert "not healthy after 30s (last: unknown)" in result.detail
    assert clock.now == 30


class RecordingRunner:
    """Stands in for ``subprocess.run`` and records how it was called."""

    def __init__(self, returncode: int = 0, stderr: str = "", raises: BaseException | None = None) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []
        self.returncode, self.stderr, self.raises = returncode, stderr, raises

    def __call__(self, argv: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((argv, kwargs))
        if self.raises is not None:
            raise self.raises
        return subprocess.CompletedProcess(argv, self.returncode, "", self.stderr)


def restart(runner: RecordingRunner, units: list[str] | None = None, probe: Any = None) -> Any:
    return make_restart_service(
        units if units is not None else ["libvirtd.service", "podman.socket"],
        probe=probe,
        runner=runner,
        which=lambda name: f"/usr/bin/{name}",
    )


def test_restart_service_runs_systemctl_with_list_arguments_and_a_timeout() -> None:
    runner = RecordingRunner()
    result = restart(runner)(RestartServiceArgs(unit="libvirtd", timeout_seconds=30))

    assert result.succeeded
    ((argv, kwargs),) = runner.calls
    assert argv == ["/usr/bin/systemctl", "restart", "libvirtd"]
    assert kwargs["timeout"] == 30
    assert kwargs.get("shell", False) is False


def test_restart_service_refuses_units_that_are_not_configured() -> None:
    runner = RecordingRunner()
    result = restart(runner)(RestartServiceArgs(unit="sshd.service"))
    assert not result.succeeded
    assert "not in the configured systemd_units" in result.detail
    assert runner.calls == []


@pytest.mark.parametrize("unit", ["-H evil", "--root=/tmp", "libvirtd; reboot", "$(reboot)", "a b", ""])
def test_restart_service_unit_names_are_validated(unit: str) -> None:
    registry = build_default_registry(restart_enabled=True, allowed_units=[unit, "libvirtd.service"])
    with pytest.raises(InvalidActionArgsError, match="unit"):
        registry.validate(RESTART_SERVICE, {"unit": unit})


def test_restart_service_failures_are_reported() -> None:
    failed = restart(RecordingRunner(returncode=1, stderr="Job failed.\nUnit libvirtd.service not found."))
    timed_out = restart(RecordingRunner(raises=subprocess.TimeoutExpired("systemctl", 30)))
    assert "Unit libvirtd.service not found." in failed(RestartServiceArgs(unit="libvirtd")).detail
    assert "timed out" in timed_out(RestartServiceArgs(unit="libvirtd")).detail


def test_restart_service_waits_for_health_afterwards() -> None:
    runner = RecordingRunner()
    probe_calls: list[str] = []

    def probe(name: str) -> Health:
        probe_calls.append(name)
        return Health.HEALTHY

    result = restart(runner, probe=probe)(RestartServiceArgs(unit="libvirtd.service"))
    assert result.succeeded
    assert probe_calls == ["libvirtd.service"]


def test_default_registry_is_safe_by_default() -> None:
    registry = build_default_registry(allowed_units=["libvirtd.service"])

    assert set(registry.names()) == {RETRY_FROM_FAILURE, WAIT_FOR_SERVICE, RESTART_SERVICE, RUN_HANDLER}
    assert registry.enabled_names() == frozenset()
    assert registry.get(RESTART_SERVICE).risk is Risk.MEDIUM
    assert registry.get(WAIT_FOR_SERVICE).risk is Risk.NONE


def test_default_registry_enables_what_it_is_given() -> None:
    registry = build_default_registry(retry=lambda args: True, probe=lambda name: Health.HEALTHY)
    assert registry.enabled_names() == {RETRY_FROM_FAILURE, WAIT_FOR_SERVICE}
    assert registry.run(WAIT_FOR_SERVICE, {"service": "libvirtd.service"}).succeeded


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def test_no_shell_anywhere_in_recovery() -> None:
    """No ``shell=True``, ``os.system``, ``os.popen``, ``eval`` or ``exec`` in the recovery package."""
    for path in sorted(RECOVERY_PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for call in _calls(tree):
            for keyword in call.keywords:
                assert not (
                    keyword.arg == "shell" and isinstance(keyword.value, ast.Constant) and keyword.value.value
                ), f"{path.name}:{call.lineno}: shell=True"
            name = ast.unparse(call.func)
            assert name not in {"os.system", "os.popen", "eval", "exec", "os.execv", "os.execvp"}, (
                f"{path.name}:{call.lineno}: {name}"
            )
