"""Run DAGs with ``dag.test()`` (what ``airflow dags test`` does) in one process and report the outcome.

    AIRFLOW_HOME=... AIRFLOW__CORE__DAGS_FOLDER=... python dag_test_driver.py scenarios.json results.json

``scenarios.json``: a list of ``{"name", "dag_id", "conf", "mark_success"}``; a string ``"$name.run_id"``
anywhere in a conf is replaced by the run id of an earlier scenario. ``results.json``: per scenario the
run id, the run's state, each task's state and try number, and every XCom of the run. Running many
scenarios in one process keeps the tests fast (Airflow is imported once).
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any


def _resolve(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("$") and value.endswith(".run_id"):
        return results[value[1:-7]]["run_id"]
    if isinstance(value, str) and value.startswith("$incident:"):
        return _latest_fingerprint(value.removeprefix("$incident:"))
    if isinstance(value, dict):
        return {k: _resolve(v, results) for k, v in value.items()}
    return value


def _latest_fingerprint(dag_id: str) -> str:
    """The fingerprint of the newest incident the ledger holds for ``dag_id``."""
    from qubinode_recovery_provider.store import Ledger

    with Ledger.from_config() as ledger:
        for incident in ledger.list_incidents():
            if dag_id in incident.dag_ids:
                return incident.fingerprint
    raise LookupError(f"no incident of {dag_id} in the ledger")


def _outcome(dag_id: str, run: Any) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = run.get_task_instances(session=session)
        tasks = {
            ti.task_id: {"state": str(ti.state) if ti.state else None, "try_number": ti.try_number}
            for ti in tis
        }
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run.run_id)
        ).all()
        xcoms: dict[str, dict[str, Any]] = {}
        for row in rows:
            xcoms.setdefault(row.task_id, {})[row.key] = XComModel.deserialize_value(row)
    state = getattr(run.state, "value", run.state)
    return {"run_id": run.run_id, "state": str(state), "tasks": tasks, "xcoms": xcoms}


def main(scenarios_path: str, results_path: str) -> int:
    from airflow.dag_processing.dagbag import DagBag

    scenarios = json.loads(Path(scenarios_path).read_text())
    bag = DagBag()
    if bag.import_errors:
        print("IMPORT ERRORS", bag.import_errors, file=sys.stderr)
        return 2
    results: dict[str, Any] = {}
    for scenario in scenarios:
        name = scenario["name"]
        print(f"=== scenario {name} ===", flush=True)
        try:
            dag = bag.get_dag(scenario["dag_id"])
            run = dag.test(
                run_conf=_resolve(scenario.get("conf") or {}, results),
                mark_success_pattern=scenario.get("mark_success"),
            )
            results[name] = _outcome(scenario["dag_id"], run)
        except Exception:
            results[name] = {"error": traceback.format_exc()}
        print(f"=== end {name}: {results[name].get('state')} ===", flush=True)
        Path(results_path).write_text(json.dumps(results, default=str, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
