"""The scan against real parts: DAG runs made by ``airflow dags test``, the OpenLineage events the real
provider wrote for them, a real api-server, the libvirt test driver, and the scan DAG itself."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from shadow_fakes import MarquezServer, serve
from shadow_site import (
    EXAMPLE_DAGS,
    EXISTING_LAB_XML,
    REPO,
    DagRuns,
    airflow_env,
    clone_home,
    lab_conn,
    run_airflow,
)

from qubinode_recovery_provider.cli import main
from qubinode_recovery_provider.store import Ledger

pytestmark = pytest.mark.integration


def _scan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]], str]:
    code = main(["scan", "--json", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def _keys(findings: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {(f["type"], f["dag_id"], f["run_id"], f["task_id"], f["resource"]) for f in findings}


def _expected(runs: DagRuns) -> set[tuple[Any, ...]]:
    db = runs.run_of("example_kcli_deploy_db")["dag_run_id"]
    cache = runs.run_of("example_kcli_start_cache")["dag_run_id"]
    snapshot = runs.run_of("example_kcli_snapshot_lab")["dag_run_id"]
    dark = runs.run_of("example_kcli_deploy_web", lineage=False)["dag_run_id"]
    lab = runs.run_of("example_kcli_existing_lab")["dag_run_id"]
    return {
        ("vm_not_created", "example_kcli_existing_lab", lab, "deploy_idm", "libvirt://lab/idm"),
        ("vm_not_created", "example_kcli_existing_lab", lab, "install_logs", "libvirt://lab/logs1"),
        ("vm_not_created", "example_kcli_deploy_db", db, "create_vm", "libvirt://lab/db1"),
        ("vm_not_running", "example_kcli_start_cache", cache, None, "libvirt://lab/cache1"),
        ("state_mismatch", "example_kcli_snapshot_lab", snapshot, "snapshot_vms", None),
        ("lineage_missing", "example_kcli_deploy_web", dark, None, None),
    }


def _live_sources(runs: DagRuns, lab_xml: Path) -> list[str]:
    """The real runs through the api-server, their lineage file, and ``lab_xml`` as host ``lab``."""
    return [
        "--since",
        "2h",
        "--lineage-file",
        str(runs.events),
        "--libvirt-uri",
        f"lab=test://{lab_xml}",
        "--airflow-url",
        runs.api_url_with_credentials,
    ]


def test_scan_flags_the_silent_vm_creation_and_spares_the_correct_run(
    dag_runs: DagRuns, capsys: pytest.CaptureFixture[str]
) -> None:
    code, findings, err = _scan(capsys, *_live_sources(dag_runs, dag_runs.lab_xml))
    assert code == 1, err
    assert _keys(findings) == _expected(dag_runs)
    correct = dag_runs.run_of("example_kcli_deploy_web")["dag_run_id"]
    assert not [f for f in findings if f["run_id"] == correct]
    missing = next(f for f in findings if f["type"] == "vm_not_created")
    assert missing["confidence"] >= 0.9
    assert missing["severity"] == "critical"
    assert any("'db1' is not among them" in line for line in missing["evidence"])
    assert any("declared by task create_vm" in line for line in missing["evidence"])


def _rest_pages(runs: DagRuns) -> list[dict[str, Any]]:
    """Runs, task instances and DAG details exactly as the api-server returns them."""
    headers = {"Authorization": f"Bearer {runs.token()}"}
    with httpx.Client(base_url=runs.api_url, headers=headers, timeout=30) as client:
        dag_runs = client.get("/api/v2/dags/~/dagRuns", params={"limit": 100, "state": "success"}).json()
        tis = client.post(
            "/api/v2/dags/~/dagRuns/~/taskInstances/list", json={"dag_ids": EXAMPLE_DAGS, "page_limit": 100}
        ).json()
        details = [client.get(f"/api/v2/dags/{dag_id}/details").json() for dag_id in EXAMPLE_DAGS]
    return [dag_runs, tis, {"dags": details}]


def test_runs_file_of_rest_json_gives_the_same_findings(
    dag_runs: DagRuns, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs_file = tmp_path / "runs.jsonl"
    runs_file.write_text("".join(json.dumps(page) + "\n" for page in _rest_pages(dag_runs)))
    code, findings, err = _scan(
        capsys,
        "--runs-file",
        str(runs_file),
        "--lineage-file",
        str(dag_runs.events),
        "--libvirt-uri",
        f"lab=test://{dag_runs.lab_xml}",
    )
    assert code == 1, err
    assert _keys(findings) == _expected(dag_runs)


def test_marquez_source_gives_the_same_findings(
    dag_runs: DagRuns, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [json.loads(line) for line in dag_runs.events.read_text().splitlines()]
    marquez = MarquezServer(events)
    with serve(marquez.handle) as served:
        code, findings, err = _scan(
            capsys,
            "--since",
            "2h",
            "--marquez-url",
            served.url,
            "--libvirt-uri",
            f"lab=test://{dag_runs.lab_xml}",
            "--airflow-url",
            dag_runs.api_url_with_credentials,
        )
    assert code == 1, err
    assert _keys(findings) == _expected(dag_runs)
    assert ("GET", "/api/v1/namespaces") in served.requests


def test_unanswered_and_unknown_sources_are_warnings_or_findings(
    dag_runs: DagRuns, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, findings, err = _scan(
        capsys,
        "--since",
        "2h",
        "--lineage-file",
        str(tmp_path / "no-such-events.jsonl"),
        "--libvirt-uri",
        "kvm9=qemu+tcp://127.0.0.1:1/system",
        "--airflow-url",
        dag_runs.api_url_with_credentials,
    )
    assert code == 1
    assert "no-such-events.jsonl does not exist" in err
    unreachable = [f for f in findings if f["type"] == "inventory_unreachable"]
    assert [f["resource"] for f in unreachable] == ["libvirt://kvm9"]
    assert not [f for f in findings if f["type"].startswith("lineage")]  # no lineage: not judged
    assert {f["type"] for f in findings} == {"inventory_unreachable", "state_mismatch"}


def test_the_scan_dag_records_escalates_and_starts_recovery(
    dag_runs: DagRuns, airflow_home_template: Path, tmp_path: Path
) -> None:
    home = clone_home(airflow_home_template, tmp_path / "home")
    state = tmp_path / "state"
    api = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": int(dag_runs.api_url.rsplit(":", 1)[1]),
        "login": "admin",
        "password": dag_runs.password,
    }
    dead = {"conn_type": "libvirt", "extra": {"uri": "qemu+tcp://127.0.0.1:1/system", "host_name": "kvm9"}}
    kcli_config = tmp_path / "kcli.yml"  # host lab is a kcli client; the stand-in sees another host
    kcli_config.write_text(f"lab:\n  url: test://{dag_runs.lab_xml}\n")
    env = airflow_env(
        home,
        dag_runs.dags,
        AIRFLOW__OPENLINEAGE__DISABLED="true",
        AIRFLOW_CONN_LIBVIRT_LAB=lab_conn(dag_runs.lab_xml),
        AIRFLOW_CONN_LIBVIRT_DEAD=json.dumps(dead),
        AIRFLOW_CONN_AIRFLOW_API=json.dumps(api),
        AIRFLOW__QUBINODE_RECOVERY__LIBVIRT_CONN_IDS="libvirt_lab,libvirt_dead",
        AIRFLOW__QUBINODE_RECOVERY__LINEAGE_FILE=str(dag_runs.events),
        AIRFLOW__QUBINODE_RECOVERY__STATE_DIR=str(state),
        AIRFLOW__QUBINODE_RECOVERY__KCLI_CONFIG=str(kcli_config),
        AIRFLOW__QUBINODE_RECOVERY__KCLI_COMMAND=str(REPO / "dags" / "examples" / "bin" / "kcli"),
        KCLI_LIBVIRT_URI=f"test://{EXISTING_LAB_XML}",
        KCLI_STATE_DIR=str(tmp_path / "kcli-state"),
    )
    conf = json.dumps({"window": "2h", "start_recovery": True})
    proc = run_airflow(env, "dags", "test", "qubinode_shadow_scan", "-c", conf)
    assert "list_host" in proc.stdout
    with Ledger(f"sqlite:///{state / 'ledger.db'}", state / "spool") as ledger:
        recorded = ledger.shadow_errors(limit=100)
        pending = ledger.pending_escalations(limit=100)
    assert {(r["type"], r["dag_id"], r["resource"]) for r in recorded} >= {
        ("vm_not_created", "example_kcli_deploy_db", "libvirt://lab/db1"),
        ("vm_not_running", "example_kcli_start_cache", "libvirt://lab/cache1"),
        ("inventory_unreachable", None, "libvirt://kvm9"),
        ("kcli_check_failed", None, "libvirt://lab"),  # kcli's view of lab disagrees with libvirt's
    }
    assert "kcli check of lab with " in proc.stdout + proc.stderr
    correct = dag_runs.run_of("example_kcli_deploy_web")["dag_run_id"]
    assert not [r for r in recorded if r["run_id"] == correct]
    titles = [p["title"] for p in pending]
    assert "Shadow error vm_not_created in example_kcli_deploy_db: libvirt://lab/db1" in titles
    assert all("lineage_missing" not in t for t in titles)  # medium severity: recorded, not escalated
    with sqlite3.connect(home / "airflow.db") as db:
        started = [
            json.loads(conf)
            for (conf,) in db.execute("SELECT conf FROM dag_run WHERE dag_id = 'qubinode_failure_recovery'")
        ]
    assert [(c["failed_dag_id"], c["failed_task_id"], c["source"]) for c in started] == [
        ("example_kcli_deploy_db", "create_vm", "qubinode_shadow_scan")
    ]  # one recovery run, for the one critical finding


def _load_estate_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_estate", REPO / "bench" / "estate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_estate"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_estate_is_shaped_like_the_real_thing(dag_runs: DagRuns) -> None:
    """bench/estate.py writes what the real api-server and the real OpenLineage provider write."""
    writer = _load_estate_module().EstateWriter(runs=10, events=100, domains=4, hosts=2)
    real_runs, real_tis, _ = _rest_pages(dag_runs)
    assert set(writer.dag_run(0)) == set(real_runs["dag_runs"][0])
    assert set(writer.task_instance(0, "create_vm", 1, "success")) == set(real_tis["task_instances"][0])
    real = [json.loads(line) for line in dag_runs.events.read_text().splitlines()]
    real_task = next(e for e in real if e["job"]["name"] == "example_kcli_deploy_db.create_vm")
    real_dag = next(e for e in real if "airflowState" in e["run"]["facets"])
    synthetic_task = writer.task_event(0, "create_vm", 1, "START")
    synthetic_dag = writer.dag_event(0, "COMPLETE", {"create_vm": "success"}, ["create_vm"])
    assert set(synthetic_task) == set(real_task)
    assert set(synthetic_task["run"]["facets"]) == set(real_task["run"]["facets"])
    assert set(synthetic_task["run"]["facets"]["airflow"]) == set(real_task["run"]["facets"]["airflow"])
    assert set(synthetic_dag["run"]["facets"]) == set(real_dag["run"]["facets"])
    assert set(synthetic_task["outputs"][0]["facets"]) == set(real_task["outputs"][0]["facets"])


def _existing_lab(findings: list[dict[str, Any]], runs: DagRuns) -> set[tuple[Any, ...]]:
    lab = runs.run_of("example_kcli_existing_lab")["dag_run_id"]
    return {(f["type"], f["task_id"], f["resource"], f["inferred"]) for f in findings if f["run_id"] == lab}


INFERRED_ON_EXISTING_LAB = {
    ("vm_not_created", "deploy_idm", "libvirt://lab/idm", True),
    ("vm_not_running", "install_logs", "libvirt://lab/logs1", True),
}


def test_existing_style_dag_gets_inferred_findings_and_no_false_alarm(
    dag_runs: DagRuns, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = dag_runs.run_of("example_kcli_existing_lab")["dag_run_id"]
    code, findings, err = _scan(capsys, *_live_sources(dag_runs, EXISTING_LAB_XML), "--explain", lab)
    assert code == 1, err
    explain = [f for f in findings if "explain" in f]
    findings = [f for f in findings if "explain" not in f]
    assert _existing_lab(findings, dag_runs) == INFERRED_ON_EXISTING_LAB
    # web1 runs (started by this run, declared by example_kcli_deploy_web); oldvm was deleted on purpose
    assert not [f for f in findings if f["resource"] in ("libvirt://lab/web1", "libvirt://lab/oldvm")]
    # the declared VMs of the other DAGs are not marked inferred
    assert all(not f["inferred"] for f in findings if f["run_id"] != lab)
    missing = next(f for f in findings if f["resource"] == "libvirt://lab/idm")
    assert 0.6 <= missing["confidence"] <= 0.8
    assert any("kcli create vm idm -i centos9stream" in line for line in missing["evidence"])
    assert any(line.startswith("inferred from task deploy_idm") for line in missing["evidence"])
    lines = explain[0]["explain"]["lines"]
    print("\n".join(lines))
    assert lines[0].startswith(
        "task deploy_idm: read rendered bash_command, OpenLineage sourceCode (the same"
    )
    assert any(line.strip().startswith("delete oldvm (kcli") for line in lines)
    assert "contract: libvirt://lab/logs1 expected running (task install_logs)" in lines


@pytest.mark.parametrize("source", ["rendered", "lineage"])
def test_each_source_alone_gives_the_inferred_findings(
    dag_runs: DagRuns, source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = _rest_pages(dag_runs)
    if source == "lineage":  # task instances without rendered fields: the sourceCode facet alone
        for ti in pages[1]["task_instances"]:
            ti.pop("rendered_fields", None)
    runs_file = tmp_path / "runs.json"
    runs_file.write_text(json.dumps(pages))
    argv = ["--runs-file", str(runs_file), "--libvirt-uri", f"lab=test://{EXISTING_LAB_XML}"]
    if source == "lineage":
        argv += ["--lineage-file", str(dag_runs.events)]
    code, findings, err = _scan(capsys, *argv)
    assert code == 1, err
    assert _existing_lab(findings, dag_runs) == INFERRED_ON_EXISTING_LAB


def test_a_dag_opts_out_with_its_tag(
    dag_runs: DagRuns, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = _rest_pages(dag_runs)
    for details in pages[2]["dags"]:
        if details["dag_id"] == "example_kcli_existing_lab":
            details["tags"].append({"name": "qubinode-no-infer", "dag_id": details["dag_id"]})
    runs_file = tmp_path / "runs.json"
    runs_file.write_text(json.dumps(pages))
    _, findings, _ = _scan(
        capsys, "--runs-file", str(runs_file), "--libvirt-uri", f"lab=test://{EXISTING_LAB_XML}"
    )
    assert _existing_lab(findings, dag_runs) == set()
    _, findings, _ = _scan(
        capsys,
        "--runs-file",
        str(runs_file),
        "--libvirt-uri",
        f"lab=test://{EXISTING_LAB_XML}",
        "--no-infer",
    )
    assert not [f for f in findings if f["inferred"]]
