"""Load every DAG file of a folder the way Airflow does and report, as JSON: import errors,
DAG ids, the heavy modules each file pulled in at import time, and the shape of the recovery DAG.

    AIRFLOW_HOME=... python dagbag_probe.py DAGS_FOLDER OUTPUT.json
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

#: Modules a DAG file must not import at parse time (the DAG processor parses every file often): native
#: or slow libraries, and the provider's engines (pattern library, planner, ledger), which the operators,
#: the notifier and the retry policy load when a task runs.
HEAVY_ROOTS = {
    "libvirt",
    "hyperscan",
    "ahocorasick",
    "drain3",
    "psutil",
    "github",
    "pydantic_ai",
    "alembic",
    "mako",
}
HEAVY_PREFIXES = (
    "qubinode_recovery_provider.diagnosis",
    "qubinode_recovery_provider.recovery",
    "qubinode_recovery_provider.store",
)


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY_ROOTS or m.startswith(HEAVY_PREFIXES))


def import_each(folder: Path) -> dict[str, list[str]]:
    """Import each DAG file in turn; the heavy modules that appeared with it."""
    import airflow.sdk  # noqa: F401 - the baseline every DAG file has
    from airflow.providers.standard.operators.bash import BashOperator  # noqa: F401

    found: dict[str, list[str]] = {}
    for index, path in enumerate(sorted(folder.rglob("*.py"))):
        before = set(sys.modules)
        spec = importlib.util.spec_from_file_location(f"dag_file_{index}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found[str(path.relative_to(folder))] = heavy(set(sys.modules) - before)
    return found


def recovery_shape(dag: Any) -> dict[str, Any]:
    tasks = {}
    for task in dag.tasks:
        tasks[task.task_id] = {
            "class": f"{type(task).__module__}.{type(task).__name__}",
            "bases": [f"{c.__module__}.{c.__name__}" for c in type(task).__mro__[1:]],
            "trigger_rule": str(getattr(task.trigger_rule, "value", task.trigger_rule)),
            "upstream": sorted(task.upstream_task_ids),
            "downstream": sorted(task.downstream_task_ids),
            "body": getattr(task, "body", None),
            "mode": getattr(task, "mode", None),
        }
    params = {
        key: {**dag.params.get_param(key).schema, "has_default": dag.params.get_param(key).has_value}
        for key in dag.params
    }
    return {"tasks": tasks, "params": params, "is_paused_upon_creation": dag.is_paused_upon_creation}


def main(folder: str, output: str) -> int:
    from airflow.dag_processing.dagbag import DagBag

    heavy_by_file = import_each(Path(folder))
    bag = DagBag(dag_folder=folder)
    out = {
        "import_errors": {str(k): v for k, v in bag.import_errors.items()},
        "dag_ids": sorted(bag.dag_ids),
        "heavy": heavy_by_file,
        "recovery": recovery_shape(bag.dags["qubinode_failure_recovery"]),
    }
    Path(output).write_text(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
