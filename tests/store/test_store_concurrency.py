"""Real concurrency, with processes, on SQLite and PostgreSQL: twenty processes recording the same
failure at once, and executors racing to carry out the same plan."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from store_workers import forkserver_context, race_for_plan, record_same_failure

from qubinode_recovery_provider.models import AttemptOutcome
from qubinode_recovery_provider.store import Ledger
from qubinode_recovery_provider.store import schema as t

PROCESSES = 20


@pytest.fixture(scope="module")
def ctx() -> Any:
    return forkserver_context()


def _run_all(ctx: Any, target: Any, arg_lists: list[tuple[Any, ...]]) -> list[Any]:
    """Start one process per argument tuple, release them together, return what each reported."""
    start, results = ctx.Barrier(len(arg_lists) + 1), ctx.Queue()
    processes = [
        ctx.Process(target=target, args=(*args[:2], start, *args[2:], results)) for args in arg_lists
    ]
    for process in processes:
        process.start()
    start.wait(60)  # every child is ready: go
    reports = [results.get(timeout=90) for _ in processes]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    return reports


def test_twenty_processes_record_the_same_failure(ctx: Any, ledger_url: str, tmp_path: Path) -> None:
    """Against a database nobody has migrated yet: the processes also race to create the schema."""
    spool = str(tmp_path / "spool")
    reports = _run_all(ctx, record_same_failure, [(ledger_url, spool, n) for n in range(PROCESSES)])

    incident_ids = {incident_id for _, incident_id, _ in reports}
    seen_counts = sorted(occurrences for _, _, occurrences in reports)
    assert len(incident_ids) == 1
    assert None not in incident_ids  # nothing had to be spooled
    assert seen_counts == list(range(1, PROCESSES + 1))  # every increment atomic, none lost
    with Ledger(ledger_url, Path(spool), auto_flush_interval=0) as ledger:
        (incident,) = ledger.list_incidents()
        assert incident.occurrences == PROCESSES
        assert incident.dag_ids == ["dag_0", "dag_1", "dag_2"]
        assert incident.hosts == ["kvm-00", "kvm-01", "kvm-02", "kvm-03"]
        with ledger.engine.connect() as conn:
            assert conn.scalar(sa.select(sa.func.count()).select_from(t.diagnoses)) == PROCESSES
        assert ledger.spool_status()["pending_events"] == 0


@pytest.mark.parametrize(("executors", "steps"), [(2, 30), (8, 5)])
def test_racing_executors_run_each_action_exactly_once(
    ctx: Any, ledger_url: str, tmp_path: Path, executors: int, steps: int
) -> None:
    spool = str(tmp_path / "spool")
    Ledger(ledger_url, Path(spool)).migrate()
    keys = [f"plan-42:step-{n}" for n in range(steps)]
    actions_file = tmp_path / "actions.log"
    reports = _run_all(
        ctx,
        race_for_plan,
        [(ledger_url, spool, f"executor-{e}", keys, str(actions_file)) for e in range(executors)],
    )

    runs = Counter(line.split()[0] for line in actions_file.read_text().splitlines())
    assert runs == dict.fromkeys(keys, 1)  # every action ran, none twice
    winners = Counter(key for _, won in reports for key in won)
    assert winners == dict.fromkeys(keys, 1)
    with Ledger(ledger_url, Path(spool), auto_flush_interval=0) as ledger:
        attempts = ledger.attempts(fingerprint="fp-virt-0001")
        assert sorted(a.idempotency_key for a in attempts) == sorted(keys)
        assert {a.outcome for a in attempts} == {AttemptOutcome.SUCCEEDED}
