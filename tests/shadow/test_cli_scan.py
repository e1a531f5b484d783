"""``qubinode-recovery scan``: flags, configuration defaults, output and exit codes. The lineage is the
recorded output of real ``airflow dags test`` runs; the runs file holds the matching REST JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from shadow_fakes import AirflowApiServer, serve
from shadow_site import LAB_XML, REAL_EVENTS

from qubinode_recovery_provider import config
from qubinode_recovery_provider.cli import main

REQUIRED = {"type", "dag_id", "run_id", "task_id", "resource", "confidence", "evidence"}
LAB = f"lab=test://{LAB_XML}"


def _rest_json() -> dict[str, Any]:
    """Runs and task instances (REST API shape) of the recorded example runs."""
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    tis: dict[tuple[str, str, str], dict[str, Any]] = {}
    for line in REAL_EVENTS.read_text().splitlines():
        event = json.loads(line)
        facets = event["run"]["facets"]
        if "airflowDagRun" in facets:
            info = facets["airflowDagRun"]["dagRun"]
            key = (info["dag_id"], info["run_id"])
            runs[key] = {
                "dag_id": key[0],
                "dag_run_id": key[1],
                "state": facets["airflowState"]["dagRunState"],
                "start_date": info["start_date"],
                "end_date": info["end_date"],
                "run_type": "manual",
                "conf": info["conf"],
            }
            for task_id, state in facets["airflowState"]["tasksState"].items():
                tis[(*key, task_id)] = {
                    "dag_id": key[0],
                    "dag_run_id": key[1],
                    "task_id": task_id,
                    "map_index": -1,
                    "state": state,
                    "try_number": 1,
                    "operator": "BashOperator",
                    "end_date": info["end_date"],
                }
    dags = [{"dag_id": "example_kcli_start_cache", "params": {"qubinode_vm": {"value": "lab/cache1"}}}]
    return {"dag_runs": list(runs.values()), "task_instances": list(tis.values()), "dags": dags}


@pytest.fixture
def runs_file(tmp_path: Path) -> Path:
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(_rest_json()))
    return path


@pytest.fixture(autouse=True)
def _no_configured_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    for name in ("AIRFLOW_CONN_LIBVIRT_DEFAULT", "AIRFLOW_CONN_AIRFLOW_API", "QUBINODE_AIRFLOW_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__STATE_DIR", str(tmp_path / "state"))
    config.clear_cache()


def scan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["scan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_lines_carry_every_required_field(capsys: pytest.CaptureFixture[str], runs_file: Path) -> None:
    code, out, _ = scan(
        capsys,
        "--json",
        "--runs-file",
        str(runs_file),
        "--lineage-file",
        str(REAL_EVENTS),
        "--libvirt-uri",
        LAB,
    )
    findings = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert all(set(f) >= REQUIRED for f in findings)
    assert sorted((f["type"], f["dag_id"], f["resource"]) for f in findings) == [
        ("state_mismatch", "example_kcli_snapshot_lab", None),
        ("vm_not_created", "example_kcli_deploy_db", "libvirt://lab/db1"),
        ("vm_not_running", "example_kcli_start_cache", "libvirt://lab/cache1"),
    ]


def test_nothing_found_exits_zero(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rest = _rest_json()
    rest["dag_runs"] = [r for r in rest["dag_runs"] if r["dag_id"] == "example_kcli_deploy_web"]
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(rest))
    code, out, _ = scan(
        capsys, "--runs-file", str(path), "--lineage-file", str(REAL_EVENTS), "--libvirt-uri", LAB
    )
    assert code == 0
    assert out.startswith("0 findings in 1 successful runs, 3 domains on 1 hosts")


def test_human_output_shows_the_evidence(capsys: pytest.CaptureFixture[str], runs_file: Path) -> None:
    code, out, _ = scan(
        capsys, "--runs-file", str(runs_file), "--lineage-file", str(REAL_EVENTS), "--libvirt-uri", LAB
    )
    assert code == 1
    assert "vm_not_created         critical 0.95  example_kcli_deploy_db" in out
    assert "    libvirt: test://" in out
    assert out.rstrip().endswith("3 domains on 1 hosts")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "yesterdayish", "--runs-file", "x"], "not a duration or a timestamp"),
        (["--runs-file", "/nonexistent/runs.json"], "does not exist"),
        ([], "no runs source"),
        (["--airflow-url", "ftp://host/"], "must be an http(s) URL"),
    ],
)
def test_bad_input_is_one_line_and_exit_two(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = scan(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_lineage_sources_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--lineage-file", "a", "--marquez-url", "http://m"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "not allowed with argument" in err


def test_a_missing_lineage_file_and_a_dead_host_do_not_stop_the_scan(
    capsys: pytest.CaptureFixture[str], runs_file: Path, tmp_path: Path
) -> None:
    code, out, err = scan(
        capsys,
        "--json",
        "--runs-file",
        str(runs_file),
        "--lineage-file",
        str(tmp_path / "gone.jsonl"),
        "--libvirt-uri",
        "lab=qemu+tcp://127.0.0.1:1/system",
    )
    findings = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert "gone.jsonl does not exist" in err
    assert {f["type"] for f in findings} == {"inventory_unreachable", "state_mismatch"}
    unreachable = next(f for f in findings if f["type"] == "inventory_unreachable")
    assert "1 declared VMs left unverified: libvirt://lab/cache1" in unreachable["evidence"][-1]


def test_record_twice_counts_each_finding_once(
    capsys: pytest.CaptureFixture[str], runs_file: Path, tmp_path: Path
) -> None:
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    argv = ["--runs-file", str(runs_file), "--lineage-file", str(REAL_EVENTS), "--libvirt-uri", LAB]
    _, _, first = scan(capsys, *argv, "--record", "--ledger", ledger)
    _, _, second = scan(capsys, *argv, "--record", "--ledger", ledger)
    assert "recorded 3 findings (3 new or changed, 3 escalated)" in first
    assert "recorded 3 findings (0 new or changed, 0 escalated)" in second


def configure_sources(monkeypatch: pytest.MonkeyPatch, api_url: str, libvirt_conn_ids: str) -> None:
    """Point the provider's configuration at an Airflow API, the lab libvirt host and the recorded
    lineage, through the environment (as the CLI reads it without Airflow).

    :param api_url: the stand-in API server
    :param libvirt_conn_ids: the ``libvirt_conn_ids`` option (``libvirt_lab`` exists)
    """
    host, port = api_url.removeprefix("http://").split(":")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AIRFLOW_API",
        json.dumps(
            {"conn_type": "http", "host": host, "port": int(port), "login": "admin", "password": "secret"}
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_LIBVIRT_LAB",
        json.dumps({"conn_type": "libvirt", "extra": {"uri": f"test://{LAB_XML}", "host_name": "lab"}}),
    )
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LIBVIRT_CONN_IDS", libvirt_conn_ids)
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LINEAGE_FILE", str(REAL_EVENTS))


def test_sources_default_to_the_configuration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rest = _rest_json()
    api = AirflowApiServer(rest["dag_runs"], rest["task_instances"], {"example_kcli_start_cache": {}})
    with serve(api.handle) as served:
        configure_sources(monkeypatch, served.url, "libvirt_lab,libvirt_missing")
        code, out, err = scan(capsys, "--json", "--since", "3650d", "--summary")
    findings = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert {f["type"] for f in findings} == {"vm_not_created", "state_mismatch"}  # no DAG params served
    assert "libvirt connection libvirt_missing not found" in err
    summary = json.loads(err.strip().splitlines()[-1])
    assert summary["stats"]["hosts"] == 1
    assert summary["stats"]["runs_checked"] == 4


def _api() -> AirflowApiServer:
    rest = _rest_json()
    return AirflowApiServer(rest["dag_runs"], rest["task_instances"], {"example_kcli_start_cache": {}})


def test_an_api_url_with_credentials_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    api = _api()
    with serve(api.handle) as served:
        url = served.url.replace("http://", "http://admin:secret@") + "/api/v2"
        argv = [
            "--json",
            "--since",
            "3650d",
            "--summary",
            "--lineage-file",
            str(REAL_EVENTS),
            "--libvirt-uri",
            LAB,
        ]
        code, _, err = scan(capsys, *argv, "--airflow-url", url)
    summary = json.loads(err.strip().splitlines()[-1])
    assert code == 1
    assert summary["stats"]["runs_checked"] == 4
    assert served.requests[0] == ("POST", "/auth/token")
    assert ("GET", "/api/v2/dags/~/dagRuns") in served.requests  # /api/v2 of the URL is not doubled


def test_a_token_on_the_command_line_wins(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = _api()
    with serve(api.handle) as served:
        host, port = served.url.removeprefix("http://").split(":")
        conn = {
            "conn_type": "airflow_api",
            "host": host,
            "port": int(port),
            "login": "admin",
            "password": "nope",
        }
        monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", json.dumps(conn))
        monkeypatch.setenv("QUBINODE_AIRFLOW_TOKEN", "static-token")
        code, _, err = scan(capsys, "--json", "--since", "3650d", "--lineage-file", str(REAL_EVENTS))
    assert code == 1, err
    assert ("POST", "/auth/token") not in served.requests


def test_a_connection_uri_of_the_airflow_api_type(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = _api()
    with serve(api.handle) as served:
        monkeypatch.setenv(
            "AIRFLOW_CONN_AIRFLOW_API", served.url.replace("http://", "airflow-api://admin:secret@")
        )
        code, _, err = scan(capsys, "--json", "--since", "3650d", "--lineage-file", str(REAL_EVENTS))
    assert code == 1, err
    assert served.requests[0] == ("POST", "/auth/token")


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        (
            {"conn_type": "airflow_api", "login": "admin"},
            "AIRFLOW_CONN_AIRFLOW_API: the Airflow API connection has no host",
        ),
        (
            {"conn_type": "http", "host": "h", "extra": {"timeout": "x"}},
            "timeout must be a number of seconds",
        ),
    ],
)
def test_an_unusable_connection_is_bad_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, conn: dict[str, Any], message: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", json.dumps(conn))
    code, _, err = scan(capsys, "--json", "--lineage-file", str(REAL_EVENTS))
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_wrong_credentials_are_one_line_without_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    with serve(_api().handle) as served:
        url = served.url.replace("http://", "http://admin:wrong-pass-9@")
        argv = ["--json", "--lineage-file", str(REAL_EVENTS), "--libvirt-uri", LAB, "--airflow-url", url]
        code, _, err = scan(capsys, *argv)
    assert code == 2
    assert err.strip().endswith(f"Airflow API at {served.url}: login failed: HTTP 401: Invalid credentials")
    assert "wrong-pass-9" not in err
    assert len(err.strip().splitlines()) == 1


def _spy_on_workers(monkeypatch: pytest.MonkeyPatch, calls: list[str]) -> list[Any]:
    """Record the lineage workers forked (their processes) and when, among ``calls``."""
    from qubinode_recovery_provider.cli import scan as cli_scan
    from qubinode_recovery_provider.shadow import lineage_file as lf

    processes: list[Any] = []
    real_start, real_check = lf._Forked.start, cli_scan.check_runs_file

    def start(*args: Any, **kwargs: Any) -> Any:
        calls.append("fork")
        forked = real_start(*args, **kwargs)
        processes.extend(process for process, _ in forked.children)
        return forked

    def check(name: str) -> Any:
        calls.append("check")
        return real_check(name)

    real_cancel = lf.PendingRead.cancel

    def cancel(self: Any) -> None:
        calls.append("cancel" if self.forked else "nothing to cancel")
        real_cancel(self)

    from qubinode_recovery_provider.shadow.detector import ShadowErrorDetector

    real_prepare = ShadowErrorDetector.prepare

    def prepare(self: Any, runs: Any) -> None:
        calls.append("prepare")
        real_prepare(self, runs)

    monkeypatch.setattr(ShadowErrorDetector, "prepare", prepare)
    monkeypatch.setattr(lf, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(lf._Forked, "start", start)
    monkeypatch.setattr(lf.PendingRead, "cancel", cancel)
    monkeypatch.setattr(cli_scan, "check_runs_file", check)
    return processes


def test_a_full_scan_forks_its_lineage_workers_before_checking_the_runs_file(
    capsys: pytest.CaptureFixture[str], runs_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    processes = _spy_on_workers(monkeypatch, calls)
    argv = ["--runs-file", str(runs_file), "--lineage-file", str(REAL_EVENTS), "--json"]
    code, out, _ = scan(capsys, *argv, "--lineage-workers", "3")
    # the detector's preparation while the scan waits for the workers; nothing left to cancel after
    assert calls == ["fork", "check", "prepare", "nothing to cancel"]
    assert len(processes) == 2
    assert not any(p.is_alive() for p in processes)
    calls.clear()
    one_code, one_out, _ = scan(capsys, *argv, "--lineage-workers", "1")
    assert calls == ["check"]  # no workers: nothing to wait for, detection parses as it goes
    assert (one_code, _findings(one_out)) == (code, _findings(out))  # the same findings


def _findings(out: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in json.loads(line).items() if k != "detected_at"} for line in out.splitlines()]


def test_a_bad_runs_file_stops_the_workers_forked_before_its_check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    processes = _spy_on_workers(monkeypatch, calls)
    bad = tmp_path / "runs.json"
    bad.write_text('{"dag_runs": [')
    code, _, err = scan(
        capsys, "--runs-file", str(bad), "--lineage-file", str(REAL_EVENTS), "--lineage-workers", "3"
    )
    assert code == 2
    assert "runs file" in err
    assert calls == ["fork", "check", "cancel"]
    assert len(processes) == 2
    assert not any(p.is_alive() for p in processes)  # terminated and joined
