"""The adversarial corpus through the whole failure path in a task process: the retry policy and the
failure notifier, each with the hostile text in the attempt's log and in the exception.

What is asserted is the contract a user relies on, for every input: the notifier returns within its
budget plus 0.5 s and the policy within its budget plus 0.5 s (the inputs took 11 s to minutes before),
nothing raises, and the failed attempt is in the ledger exactly once. The bounds are the contract, not a
speed figure (those are in ``bench/bench_notifier.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from airflow.sdk.definitions.retry_policy import RetryAction
from notify_helpers import FakeTI, task_context
from support import adversarial

from qubinode_recovery_provider.notifications import RecoveryNotifier
from qubinode_recovery_provider.policies import DiagnosisRetryPolicy
from qubinode_recovery_provider.store import Ledger

SLACK = 0.5
NOTIFIER_BUDGET = 2.0
POLICY_BUDGET = 1.0
BASH_EXIT = "Bash command failed. The command returned a non-zero exit code 1."


ADV = adversarial.make


def _hex_dump_with_key() -> str:
    return "key " + " ".join(f"{(i * 2654435761) % 2**32:08x}" for i in range(3400))


def _secret_assignments() -> str:
    return " ".join(f"x{i}_key=v{i}" for i in range(4000))


INPUTS: dict[str, Callable[[], str]] = {
    "hits_4mb_line": ADV.hits_line,
    "jwt_80kb_line": ADV.jwt_line,
    "ansible_2_7mb_line": ADV.ansible_result_line,
    "deep_json_line": ADV.deep_json_line,
    "deep_ansible_line": ADV.deep_ansible_line,
    "hex_dump_30kb_with_key": _hex_dump_with_key,
    "secret_assignments_40kb": _secret_assignments,
}


@pytest.fixture(params=sorted(INPUTS))
def hostile(request: pytest.FixtureRequest) -> str:
    return INPUTS[request.param]()


def _write_attempt_log(tmp_path: Path, ti: FakeTI, line: str) -> None:
    folder = tmp_path / "logs" / f"dag_id={ti.dag_id}" / f"run_id={ti.run_id}" / f"task_id={ti.task_id}"
    folder.mkdir(parents=True, exist_ok=True)
    records = [
        {"timestamp": "2026-01-01T00:00:00Z", "level": "info", "event": "Running command", "logger": "x"},
        {"timestamp": "2026-01-01T00:00:01Z", "level": "error", "event": line, "logger": "task.stdout"},
    ]
    (folder / f"attempt={ti.try_number}.log").write_text("\n".join(json.dumps(r) for r in records) + "\n")


def test_the_notifier_returns_in_time_and_records_once(tmp_path: Path, hostile: str) -> None:
    ti = FakeTI()
    _write_attempt_log(tmp_path, ti, hostile)
    notifier = RecoveryNotifier(budget_seconds=NOTIFIER_BUDGET, trigger_recovery=False)
    started = time.monotonic()
    notifier(task_context(RuntimeError(hostile[:100_000])))
    elapsed = time.monotonic() - started
    outcome = notifier.last_outcome
    assert outcome is not None
    assert elapsed <= NOTIFIER_BUDGET + SLACK, outcome.summary()
    assert outcome.record_status in ("written", "spooled"), outcome.summary()
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "state" / "spool")
    ledger.flush_spool()
    incidents = ledger.list_incidents()
    assert [i.occurrences for i in incidents] == [1]


def test_the_policy_decides_in_time(tmp_path: Path, hostile: str) -> None:
    ti = FakeTI()
    _write_attempt_log(tmp_path, ti, hostile)
    policy = DiagnosisRetryPolicy(budget_seconds=POLICY_BUDGET)
    started = time.monotonic()
    decision = policy.evaluate(RuntimeError(BASH_EXIT), 1, 3, {"ti": ti, "run_id": ti.run_id})
    assert time.monotonic() - started <= POLICY_BUDGET + SLACK
    assert decision.action in (RetryAction.DEFAULT, RetryAction.FAIL, RetryAction.RETRY)
    assert decision.reason.startswith("qubinode:")
