"""The REST API v2 client: against a local stand-in that records requests, and against a real
``airflow api-server`` (simple auth manager JWT).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from support.airflow_harness import API_PASSWORD, API_USER, api_home
from support.api_stub import PASSWORD, USER, ApiStub, start_stub, stop_stub
from support.processes import free_port

from qubinode_recovery_provider.airflow_api import (
    AirflowAPIClient,
    AirflowAPIConfigError,
    AirflowAPIError,
    AirflowAPIUnavailable,
    APISettings,
    connection_settings,
)

RUN_ID = "manual__2026-01-01T00:00:00+00:00"


@pytest.fixture
def stub() -> Iterator[ApiStub]:
    server = start_stub()
    yield server
    stop_stub(server)


def _client(stub: ApiStub, **kwargs: object) -> AirflowAPIClient:
    settings = APISettings(base_url=stub.url, username=USER, password=PASSWORD, **kwargs)  # type: ignore[arg-type]
    return AirflowAPIClient(settings)


def test_trigger_logs_in_and_sends_the_run(stub: ApiStub) -> None:
    with _client(stub) as client:
        run = client.trigger_dag_run("qubinode_failure_recovery", conf={"fingerprint": "abc"}, run_id="r1")
    assert run["dag_run_id"] == "r1"
    login, trigger = stub.requests
    assert login.path == "/auth/token"
    assert login.body == {"username": USER, "password": PASSWORD}
    assert trigger.path == "/api/v2/dags/qubinode_failure_recovery/dagRuns"
    assert trigger.headers["Authorization"] == "Bearer token-1"
    assert trigger.body == {"logical_date": None, "conf": {"fingerprint": "abc"}, "dag_run_id": "r1"}


def test_the_token_is_reused_and_renewed_after_a_401(stub: ApiStub) -> None:
    stub.behaviour["expire_first_token"] = True
    with _client(stub) as client:
        client.trigger_dag_run("d", run_id="a")
        client.trigger_dag_run("d", run_id="b")
    paths = [r.path for r in stub.requests]
    assert paths == [
        "/auth/token",
        "/api/v2/dags/d/dagRuns",  # 401 with the expired token
        "/auth/token",
        "/api/v2/dags/d/dagRuns",
        "/api/v2/dags/d/dagRuns",  # token-2 reused
    ]


def test_a_token_from_the_connection_extra_needs_no_login(stub: ApiStub) -> None:
    with AirflowAPIClient(APISettings(base_url=stub.url, token="static-token")) as client:
        client.trigger_dag_run("d", run_id="x")
    assert [r.path for r in stub.requests] == ["/api/v2/dags/d/dagRuns"]
    assert stub.requests[0].headers["Authorization"] == "Bearer static-token"


def test_wrong_credentials_raise_an_api_error(stub: ApiStub) -> None:
    settings = APISettings(base_url=stub.url, username=USER, password="wrong")
    with AirflowAPIClient(settings) as client, pytest.raises(AirflowAPIError) as info:
        client.trigger_dag_run("d")
    assert info.value.status_code == 401
    assert not isinstance(info.value, AirflowAPIUnavailable)


def test_a_second_trigger_with_the_same_run_id_is_a_409(stub: ApiStub) -> None:
    with _client(stub) as client:
        client.trigger_dag_run("d", run_id="same")
        with pytest.raises(AirflowAPIError) as info:
            client.trigger_dag_run("d", run_id="same")
    assert info.value.status_code == 409
    assert "already exists" in str(info.value)


def test_server_errors_and_closed_ports_are_unavailable(stub: ApiStub) -> None:
    stub.behaviour["status"] = 503
    with _client(stub) as client, pytest.raises(AirflowAPIUnavailable) as info:
        client.trigger_dag_run("d")
    assert info.value.status_code == 503
    closed = APISettings(base_url=f"http://127.0.0.1:{free_port()}", username=USER, password=PASSWORD)
    with AirflowAPIClient(closed) as client, pytest.raises(AirflowAPIUnavailable):
        client.get_dag_run("d", "r")


def test_a_hanging_server_times_out(stub: ApiStub) -> None:
    stub.behaviour["hang_seconds"] = 5
    started = time.monotonic()
    with _client(stub, timeout=0.5) as client, pytest.raises(AirflowAPIUnavailable, match="timed out"):
        client.trigger_dag_run("d")
    assert time.monotonic() - started < 4


def test_clear_always_sends_dry_run_explicitly(stub: ApiStub) -> None:
    with _client(stub) as client:
        client.clear_task_instances("build_vm", dag_run_id=RUN_ID, task_ids=["create_vm", ("disk", 2)])
        client.clear_task_instances("build_vm", dry_run=True)
    act, dry = stub.posts("/clearTaskInstances")
    assert act.body["dry_run"] is False
    assert act.body["only_failed"] is True
    assert act.body["dag_run_id"] == RUN_ID
    assert act.body["task_ids"] == ["create_vm", ["disk", 2]]
    assert dry.body["dry_run"] is True
    assert "task_ids" not in dry.body


def test_run_ids_are_quoted_in_paths(stub: ApiStub) -> None:
    stub.runs[("d", RUN_ID)] = {"dag_run_id": RUN_ID, "state": "success"}
    with _client(stub) as client:
        assert client.get_dag_run("d", RUN_ID)["state"] == "success"
    assert stub.requests[-1].path == "/api/v2/dags/d/dagRuns/manual__2026-01-01T00%3A00%3A00%2B00%3A00"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"host": "api-server", "port": 8080}, "http://api-server:8080"),
        ({"host": "api-server", "port": 443, "schema": "https"}, "https://api-server:443"),
        ({"host": "https://airflow.example.com/", "port": None}, "https://airflow.example.com"),
        ({"host": "http://h:9000/airflow", "port": 1234}, "http://h:9000/airflow"),
        ({"host": "h", "extra": {"base_path": "/proxy/airflow/"}}, "http://h/proxy/airflow"),
        ({"host": "h", "schema": "airflow_db"}, "http://h"),
    ],
)
def test_base_url_from_connection_fields(fields: dict[str, object], expected: str) -> None:
    assert APISettings.from_connection_fields(**fields).base_url == expected  # type: ignore[arg-type]


def test_connection_extras() -> None:
    settings = APISettings.from_connection_fields(
        host="h",
        login="u",
        password="pw-9",
        extra={"token": "tok-7", "verify": "false", "timeout": "3"},
    )
    assert (settings.token, settings.verify, settings.timeout) == ("tok-7", False, 3.0)
    assert "pw-9" not in repr(settings)
    assert "tok-7" not in repr(settings)
    with pytest.raises(AirflowAPIConfigError):
        APISettings.from_connection_fields(host="")


def test_connection_settings_reads_an_airflow_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "http", "host": "10.1.1.1", "port": 8080, "login": "svc", "password": "pw"}
    monkeypatch.setenv("AIRFLOW_CONN_QRP_TEST_API", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__RECOVERY_CONN_ID", "qrp_test_api")
    settings = connection_settings(timeout=2.5)
    assert (settings.base_url, settings.username, settings.password, settings.timeout) == (
        "http://10.1.1.1:8080",
        "svc",
        "pw",
        2.5,
    )
    with pytest.raises(AirflowAPIConfigError, match="qrp_missing"):
        connection_settings("qrp_missing")


@pytest.mark.integration
def test_against_a_real_api_server() -> None:
    home, server = api_home()
    settings = APISettings(base_url=server.url, username=API_USER, password=API_PASSWORD, timeout=20)
    with AirflowAPIClient(settings) as client:
        created = client.trigger_dag_run(
            "qubinode_failure_recovery",
            conf={"failed_dag_id": "x"},
            run_id="qrp_client_test",
            note="test",
        )
        assert created["dag_run_id"] == "qrp_client_test"
        assert client.get_dag_run("qubinode_failure_recovery", "qrp_client_test")["conf"] == {
            "failed_dag_id": "x",
        }
        with pytest.raises(AirflowAPIError) as info:
            client.trigger_dag_run("qubinode_failure_recovery", run_id="qrp_client_test")
        assert info.value.status_code == 409
        cleared = client.clear_task_instances(
            "qubinode_failure_recovery",
            dag_run_id="qrp_client_test",
            dry_run=True,
            only_failed=False,
        )
        assert "task_instances" in cleared
        # notes: Markdown on the run and on a task instance; longer ones are cut to the API's 1000
        long_note = "**Recovered** - " + "\n".join(f"- line {n} " + "x" * 40 for n in range(40))
        client.set_dag_run_note("qubinode_failure_recovery", "qrp_client_test", long_note)
        run_note = client.get_dag_run("qubinode_failure_recovery", "qrp_client_test")["note"]
        assert run_note.startswith("**Recovered** - ")
        assert run_note.endswith("\n…")
        assert len(run_note) <= 1000
        ti_path = "/dags/qubinode_failure_recovery/dagRuns/qrp_client_test/taskInstances/stand_in"
        client.set_task_instance_note(
            "qubinode_failure_recovery", "qrp_client_test", "stand_in", "qubinode: ok"
        )
        assert client.request("GET", ti_path)["note"] == "qubinode: ok"
        with pytest.raises(AirflowAPIError) as no_task:
            client.set_task_instance_note("qubinode_failure_recovery", "qrp_client_test", "nope", "x")
        assert no_task.value.status_code == 404
        with pytest.raises(AirflowAPIError) as missing:
            client.get_dag_run("qubinode_failure_recovery", "no_such_run")
        assert missing.value.status_code == 404
    rows = home.query("select run_id from dag_run where run_id = 'qrp_client_test'")
    assert rows == [("qrp_client_test",)]


def test_clear_is_tried_again_after_a_transient_server_error(stub: ApiStub, monkeypatch) -> None:
    monkeypatch.setattr("qubinode_recovery_provider.airflow_api.RETRY_PAUSE_SECONDS", 0.01)
    stub.behaviour["clear_failures"] = 2
    with _client(stub) as client:
        answer = client.clear_task_instances("build_vm", dag_run_id=RUN_ID, task_ids=["create_vm"])
    assert answer == {"task_instances": [], "total_entries": 0}
    assert len(stub.posts("/clearTaskInstances")) == 3


def test_clear_gives_up_after_its_retries(stub: ApiStub, monkeypatch) -> None:
    monkeypatch.setattr("qubinode_recovery_provider.airflow_api.RETRY_PAUSE_SECONDS", 0.01)
    stub.behaviour["clear_failures"] = 10
    with _client(stub) as client, pytest.raises(AirflowAPIUnavailable) as info:
        client.clear_task_instances("build_vm", dag_run_id=RUN_ID, task_ids=["create_vm"])
    assert info.value.status_code == 500
    assert len(stub.posts("/clearTaskInstances")) == 4
