"""Every DAG in ``dags/`` imports without errors and without heavy imports at parse time; the recovery
DAG has the shape the brief describes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from support import processes

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("dagbag_probe.py")


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("dagbag")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": str(ROOT)})
    output = home / "probe.json"
    done = processes.run([sys.executable, str(PROBE), str(ROOT / "dags"), str(output)], env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(output.read_text())


def test_every_dag_imports_without_errors(probe):
    assert probe["import_errors"] == {}
    assert {
        "qubinode_failure_recovery",
        "qubinode_shadow_scan",
        "example_kcli_vm_deploy",
        "example_flaky_network",
        "example_credential_failure",
    } <= set(probe["dag_ids"])


def test_no_dag_file_imports_heavy_modules_at_parse_time(probe):
    assert len(probe["heavy"]) >= 5
    assert {path: mods for path, mods in probe["heavy"].items() if mods} == {}


def test_recovery_dag_shape(probe):
    tasks = probe["recovery"]["tasks"]
    assert tasks["diagnose"]["downstream"] == ["plan"]
    assert tasks["plan"]["downstream"] == ["decide"]
    assert tasks["decide"]["downstream"] == ["approve", "auto_execute", "escalate_only"]
    assert tasks["execute"]["upstream"] == ["approve", "auto_execute"]
    assert tasks["execute"]["trigger_rule"] == "none_failed_min_one_success"
    assert tasks["verify"]["upstream"] == ["execute"]
    assert tasks["verify"]["mode"] == "reschedule"
    assert tasks["escalate"]["upstream"] == ["escalate_only", "verify"]
    assert tasks["escalate"]["trigger_rule"] == tasks["report"]["trigger_rule"] == "all_done"
    assert tasks["report"]["upstream"] == ["escalate"]
    assert probe["recovery"]["is_paused_upon_creation"] is False


def test_the_approval_is_the_standard_providers_hitl_showing_the_decisions_markdown(probe):
    approve = probe["recovery"]["tasks"]["approve"]
    assert approve["class"] == "qubinode_recovery_provider.operators.approval.RecoveryApprovalOperator"
    assert "airflow.providers.standard.operators.hitl.ApprovalOperator" in approve["bases"]
    assert approve["body"] == "{{ ti.xcom_pull(task_ids='decide', key='approval_body') }}"


def test_the_trigger_form_params(probe):
    params = probe["recovery"]["params"]
    assert list(params) == [
        "failed_dag_id",
        "failed_task_id",
        "failed_run_id",
        "failure_message",
        "enable_auto_recovery",
        "dry_run",
    ]
    assert params["failure_message"]["format"] == "multiline"
    # the form cannot be sent without these, nor with an id Airflow could not have
    assert params["failed_dag_id"]["has_default"] is params["failure_message"]["has_default"] is False
    assert params["failed_task_id"]["has_default"] is True
    assert params["failed_dag_id"]["minLength"] == params["failure_message"]["minLength"] == 1
    assert params["failed_dag_id"]["maxLength"] == 250
    assert params["failed_dag_id"]["pattern"] == "^[A-Za-z0-9_.-]+$"
    assert params["enable_auto_recovery"]["type"] == params["dry_run"]["type"] == "boolean"
    assert all(params[name]["title"] for name in params)
