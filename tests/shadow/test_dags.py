"""The scan DAG and the example DAGs parse cleanly and have the promised shape."""

from __future__ import annotations

from pathlib import Path

import pytest
from shadow_site import REPO

from qubinode_recovery_provider import config

DAG_FILES = [
    REPO / "dags" / "qubinode_shadow_scan.py",
    *sorted((REPO / "dags" / "examples").glob("example_kcli_*.py")),
]


def _load(path: Path):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_every_dag_file_imports_without_errors(path: Path) -> None:
    assert len(_load(path)) == 1


def test_the_scan_dag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__QUBINODE_RECOVERY__SHADOW_SCAN_SCHEDULE", raising=False)
    config.clear_cache()
    dag = _load(DAG_FILES[0])["qubinode_shadow_scan"]
    assert dag.schedule == "*/15 * * * *"
    assert dag.max_active_runs == 1
    assert set(dag.params) == {"window", "full_rescan", "start_recovery"}
    assert dag.get_task("list_host").is_mapped
    assert dag.get_task("start_recovery").is_mapped
    assert dag.get_task("scan").trigger_rule == "none_failed"
    assert dag.get_task("deliver_escalations").trigger_rule == "all_done"
    assert dag.get_task("deliver_escalations").upstream_task_ids == {"scan"}


def test_the_scan_schedule_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__SHADOW_SCAN_SCHEDULE", "0 * * * *")
    dag = _load(DAG_FILES[0])["qubinode_shadow_scan"]
    assert dag.schedule == "0 * * * *"


def test_example_dags_declare_their_vms() -> None:
    web = _load(REPO / "dags" / "examples" / "example_kcli_deploy_web.py")["example_kcli_deploy_web"]
    db = _load(REPO / "dags" / "examples" / "example_kcli_deploy_db.py")["example_kcli_deploy_db"]
    cache = _load(REPO / "dags" / "examples" / "example_kcli_start_cache.py")["example_kcli_start_cache"]
    assert [o.uri for o in web.get_task("create_vm").outlets] == ["libvirt://lab/web1"]
    assert [o.uri for o in db.get_task("create_vm").outlets] == ["libvirt://lab/db1"]
    assert cache.params["qubinode_vm"] == "lab/cache1"
