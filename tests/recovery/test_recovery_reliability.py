"""Reliability: executors in separate processes racing on one plan (real Ledger on SQLite; the store's
own tests cover PostgreSQL), and text from an error message that is never executed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from recovery_workers import forkserver_context, race_to_execute
from support.processes import run

from qubinode_recovery_provider.diagnosis import FailureAnalyzer
from qubinode_recovery_provider.models import AttemptOutcome, FailureEvent, Health, RootCause
from qubinode_recovery_provider.recovery import (
    ActionResult,
    RecoveryExecutor,
    RecoveryPlanner,
    RecoveryPolicy,
    TaskConfig,
    build_default_registry,
    plan_to_json,
    plan_to_markdown,
)
from qubinode_recovery_provider.store import Ledger

RUN_ID = "manual__2025-01-01T00:00:00+00:00"


@pytest.mark.parametrize("executors", [2, 6])
def test_racing_executors_carry_out_a_plan_exactly_once(
    executors: int, tmp_path: Path, diagnosis: Callable[..., Any]
) -> None:
    url, spool = f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool"
    Ledger(url, spool).migrate()
    task = TaskConfig(dag_id="build_vm", task_id="create_vm", run_id=RUN_ID)
    plan = RecoveryPlanner(events=None, min_auto_confidence=0.7).plan_recovery(
        diagnosis(RootCause.NETWORK), task
    )
    actions_file = tmp_path / "actions.log"

    ctx = forkserver_context()
    start, results = ctx.Event(), ctx.Queue()
    processes = [
        ctx.Process(
            target=race_to_execute,
            args=(
                url,
                str(spool),
                start,
                plan.model_dump_json(),
                str(actions_file),
                f"executor-{n}",
                results,
            ),
        )
        for n in range(executors)
    ]
    for process in processes:
        process.start()
    start.set()
    reports = [results.get(timeout=90) for _ in processes]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0

    lines = actions_file.read_text().splitlines()
    assert len(lines) == 1  # the action ran exactly once
    assert lines[0].endswith(f"build_vm {RUN_ID} create_vm")
    outcomes = Counter(outcome for _, outcome, _ in reports)
    assert outcomes == {"succeeded": 1, "skipped": executors - 1}
    winner = next(name for name, outcome, _ in reports if outcome == "succeeded")
    assert lines[0].startswith(winner + " ")
    with Ledger(url, spool, auto_flush_interval=0) as ledger:
        (stored,) = ledger.attempts(fingerprint=plan.fingerprint, automatic_only=False)
        assert stored.outcome is AttemptOutcome.SUCCEEDED
        assert stored.detail == f"cleared by {winner}"


PWNED_TEXT = (
    "TASK [create vm] fatal: [kvm-01]: FAILED! => "
    '{{"msg": "virsh: error: failed to connect to the hypervisor $(touch {marker}) `touch {marker}`; '
    'rm -rf {victim}; touch {marker}"}}\n'
    "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory "
    "$(touch {marker}) && touch {marker} | sh; rm -rf {victim}\n"
    "Domain 'web1`touch {marker}`' already exists $(touch {marker})"
)


def _dangerous_fragments(marker: Path, victim: Path) -> list[str]:
    return [f"touch {marker}", str(marker), "rm -rf", str(victim), "$(", "`touch", "| sh"]


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON-like value (keys too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


def test_text_from_an_error_message_is_never_executed(tmp_path: Path) -> None:
    """A failure message full of shell syntax goes through diagnose, plan and execute (every option, every
    action enabled, auto-recovery on): no marker file appears, the victim survives, and no step, argument,
    title or reason of the plan carries the raw text."""
    marker, victim = tmp_path / "pwned", tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("precious")
    text = PWNED_TEXT.format(marker=marker, victim=victim)
    event = FailureEvent(
        dag_id="build_vm",
        task_id="create_vm",
        run_id=RUN_ID,
        host="kvm-01",
        exception_text=text.splitlines()[-1],
        log_tail=text.splitlines()[:-1],
    )

    d = FailureAnalyzer().analyze(event)
    assert d.root_cause is RootCause.SERVICE_DEPENDENCY  # the real analyzer read it
    restarts: list[list[str]] = []

    def runner(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        restarts.append(list(argv))
        assert kwargs.get("shell", False) is False
        return subprocess.CompletedProcess(argv, 0, "", "")

    retried: list[Any] = []
    registry = build_default_registry(
        retry=lambda args: retried.append(args) or ActionResult(True, "cleared"),
        probe=lambda name: Health.HEALTHY,
        restart_enabled=True,
        allowed_units=["libvirtd.service"],
        runner=runner,
    )
    plan = RecoveryPlanner(actions=registry, events=None, min_auto_confidence=0.7).plan_recovery(
        d, TaskConfig(dag_id="build_vm", task_id="create_vm", run_id=RUN_ID)
    )

    fragments = _dangerous_fragments(marker, victim)
    for option in plan.options:
        for piece in _strings(option.model_dump(mode="json")):
            for fragment in fragments:
                assert fragment not in piece, (option.type, piece)
    for rendered in (plan_to_markdown(plan), plan_to_json(plan)):
        for fragment in (f"touch {marker}", "rm -rf", str(victim)):
            assert fragment not in rendered

    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool", auto_flush_interval=0) as ledger:
        ledger.record_failure(event, d)
        executor = RecoveryExecutor(ledger, registry, RecoveryPolicy(), events=None)
        attempts = [
            executor.execute(plan, option_index=i, host="kvm-01", approved=True)
            for i in range(len(plan.options))
        ]

    assert not marker.exists()
    assert (victim / "keep").read_text() == "precious"
    assert all(argv[1:] == ["restart", "libvirtd.service"] for argv in restarts)
    for attempt in attempts:
        for piece in _strings(attempt.action_args):
            for fragment in fragments:
                assert fragment not in piece
    assert {a.action for a in attempts} >= {"wait-for-service", "restart-service", "escalate"}
    assert retried  # the allowlisted actions did run, with validated arguments only


def test_the_cli_plans_for_a_hostile_message_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = PWNED_TEXT.format(marker=marker, victim=tmp_path / "victim")
    done = run(
        [sys.executable, "-m", "qubinode_recovery_provider", "plan", "--error", text, "--json"], timeout=120
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert not marker.exists()
    for piece in _strings(plan["options"]):
        assert f"touch {marker}" not in piece
        assert "rm -rf" not in piece


def test_the_core_runs_without_airflow() -> None:
    code = (
        "import sys\n"
        "import qubinode_recovery_provider.recovery, qubinode_recovery_provider.api\n"
        "import qubinode_recovery_provider.cli.plan\n"
        "import qubinode_recovery_provider.recovery.decision, qubinode_recovery_provider.recovery.intake\n"
        "import qubinode_recovery_provider.escalation, qubinode_recovery_provider.shadow.handoff\n"
        "from qubinode_recovery_provider import runtime\n"
        "rt = runtime.current().with_retry(None)\n"
        "rt.planner(learn=False), rt.registry, rt.policy()\n"
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "assert not bad, bad\n"
    )
    done = run([sys.executable, "-c", code], timeout=60)
    assert done.returncode == 0, done.stderr
