"""Speed of the recovery UI's pages and JSON API on a ledger of 100,000 incidents.

    python bench/bench_ui.py                     # -> bench/results/ui.json
    python bench/bench_ui.py --incidents 10000   # a smaller ledger

Seeds a SQLite ledger (migrated to the head revision, so with the UI's indexes) with N incidents over
50 DAGs and the ten categories, one diagnosis each (1 in 10 unexplained), and N / 10 shadow findings,
then times each page and API call through FastAPI's TestClient (the whole app: routing, ledger reads,
redaction, rendering). The auth dependencies are stood in for (a fixed viewer): the figures are the
plugin's own cost, not the auth manager's. Each request is timed ``--repeats`` times; the median and the
slowest are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qubinode_recovery_provider.models import RootCause

RESULTS = Path(__file__).resolve().parent / "results"
CATEGORIES = tuple(c.value for c in RootCause)
STATES = ("open", "recovering", "resolved", "escalated")
DAGS = 50
BATCH = 5_000


def seed(url: str, incidents: int) -> None:
    """Write the ledger's rows in batches (the ledger's own tables, its migrated schema)."""
    import sqlalchemy as sa

    from qubinode_recovery_provider.store import Ledger
    from qubinode_recovery_provider.store import schema as t

    with Ledger(url, auto_flush_interval=0) as ledger:
        ledger.migrate()
        engine = ledger.engine
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        for first in range(1, incidents + 1, BATCH):
            ids = range(first, min(first + BATCH, incidents + 1))
            conn.execute(sa.insert(t.incidents), [_incident(n, start) for n in ids])
            conn.execute(
                sa.insert(t.incident_dags), [{"incident_id": n, "dag_id": f"dag_{n % DAGS:02d}"} for n in ids]
            )
            conn.execute(sa.insert(t.diagnoses), [_diagnosis(n, start) for n in ids])
        conn.execute(sa.insert(t.shadow_errors), [_finding(n, start) for n in range(1, incidents // 10 + 1)])


def _incident(n: int, start: datetime) -> dict[str, Any]:
    when = start + timedelta(minutes=n)
    return {
        "id": n,
        "fingerprint": f"fp{n:08x}",
        "root_cause": CATEGORIES[n % 10],
        "summary": f"failure {n} of task_{n % 7}",
        "state": STATES[n % 4],
        "occurrences": 1 + n % 97,
        "first_seen": when - timedelta(hours=n % 48),
        "last_seen": when,
        "updated_at": when,
    }


def _diagnosis(n: int, start: datetime) -> dict[str, Any]:
    when = start + timedelta(minutes=n)
    line = f"worker {n % 13} refused job {n} on queue q{n % 5}" if n % 10 == 9 else f"error {n}"
    diagnosis = {
        "root_cause": CATEGORIES[n % 10],
        "summary": f"failure {n}",
        "confidence": 0.8,
        "severity": "medium",
        "fingerprint": f"fp{n:08x}",
        "matched_patterns": [],
    }
    return {
        "incident_id": n,
        "fingerprint": f"fp{n:08x}",
        "root_cause": CATEGORIES[n % 10],
        "confidence": 0.8,
        "severity": "medium",
        "dag_id": f"dag_{n % DAGS:02d}",
        "task_id": f"task_{n % 7}",
        "run_id": f"scheduled__{n}",
        "try_number": 1,
        "host": f"kvm-{n % 10}",
        "occurred_at": when,
        "diagnosis": diagnosis,
        "event": {"log_tail": [line], "exception_text": ""},
    }


def _finding(n: int, start: datetime) -> dict[str, Any]:
    when = start + timedelta(minutes=10 * n)
    return {
        "dedup_hash": f"h{n}",
        "dedup_key": f"k{n}",
        "type": "vm_not_running",
        "dag_id": f"dag_{n % DAGS:02d}",
        "run_id": f"scheduled__{n}",
        "task_id": "create_vm",
        "resource": f"vm-{n % 500}",
        "confidence": 0.9,
        "severity": "high",
        "seen_count": 1,
        "first_seen": when,
        "last_seen": when,
        "finding": {"evidence": [f"domain vm-{n % 500} is shut off"]},
        "state": "open",
        "raise_count": 1,
    }


def requests(incidents: int) -> dict[str, str]:
    """What is timed: label -> path under the plugin's prefix."""
    middle = incidents // 2
    return {
        "incidents page 1 (HTML)": "/incidents",
        "incidents page 1 (JSON)": "/api/incidents",
        "incidents, a deep page (HTML)": f"/incidents?page={incidents // 100}",
        "incidents of one DAG (HTML)": "/incidents?dag_id=dag_07",
        "incidents of one category and state (JSON)": "/api/incidents?category=network&state=recovering",
        "incidents seen in one day (JSON)": "/api/incidents?since=2026-02-01&until=2026-02-02",
        "one incident (HTML)": f"/incidents/{middle}",
        "one incident by fingerprint (JSON)": f"/api/incidents/fp{middle:08x}",
        "task-instance view (HTML)": f"/task?dag_id=dag_{middle % DAGS:02d}&task_id=task_{middle % 7}"
        f"&run_id=scheduled__{middle}",
        "shadow findings page 1 (HTML)": "/findings",
        "shadow findings of one host (JSON)": "/api/findings?resource=vm-42",
        "pattern health (HTML)": "/patterns",
    }


def measure(url: str, incidents: int, repeats: int) -> list[dict[str, Any]]:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from qubinode_recovery_provider import runtime
    from qubinode_recovery_provider.plugins import access
    from qubinode_recovery_provider.plugins.app import URL_PREFIX, create_app
    from qubinode_recovery_provider.store import Ledger

    runtime.current().ledger = Ledger(url, auto_flush_interval=0)
    app = create_app()
    app.dependency_overrides[access.can_read] = lambda: "bench-viewer"
    root = FastAPI()
    root.mount(URL_PREFIX, app)
    rows = []
    with TestClient(root) as client:
        for label, path in requests(incidents).items():
            times = []
            for _ in range(repeats):
                began = time.perf_counter()
                response = client.get(URL_PREFIX + path)
                times.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, (path, response.status_code, response.text[:200])
            rows.append(
                {
                    "request": label,
                    "path": path,
                    "median_ms": statistics.median(times),
                    "max_ms": max(times),
                    "bytes": len(response.content),
                }
            )
            print(f"{label:<45} median {rows[-1]['median_ms']:8.1f} ms  slowest {rows[-1]['max_ms']:8.1f} ms")
    return rows


def main() -> int:
    import logging

    logging.getLogger("httpx2").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qrp-bench-ui-") as tmp:
        os.environ["AIRFLOW__QUBINODE_RECOVERY__STATE_DIR"] = tmp
        url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        began = time.perf_counter()
        seed(url, args.incidents)
        seeded = time.perf_counter() - began
        print(f"seeded {args.incidents:,} incidents in {seeded:.1f} s")
        rows = measure(url, args.incidents, args.repeats)
        size = (Path(tmp) / "ledger.db").stat().st_size
    result = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "incidents": args.incidents,
            "findings": args.incidents // 10,
            "repeats": args.repeats,
            "ledger_bytes": size,
            "seed_seconds": seeded,
        },
        "requests": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ui.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
