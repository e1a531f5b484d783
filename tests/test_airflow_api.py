"""The REST API v2 client: against a local stand-in that records requests, httpx's MockTransport for the
paging reads, and a real ``airflow api-server`` (simple auth manager JWT).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
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
)
from qubinode_recovery_provider.hooks.airflow_api import AirflowApiHook

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


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"host": "h", "port": 8443, "conn_type": "https"}, "https://h:8443"),  # a URI https://h:8443
        ({"host": "h", "schema": "http", "conn_type": "https"}, "http://h"),  # schema wins
        ({"host": "h", "conn_type": "airflow_api"}, "http://h"),
        ({"host": "http://h:8080/api/v2/", "port": 9}, "http://h:8080"),  # the API path is not doubled
        ({"host": "http://u:pw@h:8080"}, "http://h:8080"),  # never credentials in the URL
        ({"host": "ignored", "port": 9, "extra": {"base_url": "https://api:8443/x/"}}, "https://api:8443/x"),
    ],
)
def test_more_connection_fields(fields: dict[str, object], expected: str) -> None:
    assert APISettings.from_connection_fields(**fields).base_url == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"timeout": "soon"}, "timeout must be a number of seconds above 0, got 'soon'"),
        ({"timeout": -1}, "timeout must be a number"),
        ({"timeout": "nan"}, "timeout must be a number"),
    ],
)
def test_unusable_extras_are_config_errors(extra: dict[str, object], message: str) -> None:
    with pytest.raises(AirflowAPIConfigError, match=message):
        APISettings.from_connection_fields(host="h", extra=extra)
    with pytest.raises(AirflowAPIConfigError, match="host or port"):
        APISettings.from_connection_fields(host="h", port="http")  # type: ignore[arg-type]


def test_settings_from_a_command_line_url() -> None:
    settings = APISettings.from_url("https://ad%40min:p%3Aw-9@airflow.example:8443/prefix/api/v2", timeout=3)
    assert (settings.base_url, settings.username, settings.password, settings.timeout) == (
        "https://airflow.example:8443/prefix",
        "ad@min",
        "p:w-9",
        3.0,
    )
    assert "p:w-9" not in repr(settings)
    assert "p%3Aw-9" not in repr(AirflowAPIClient(settings))
    token = APISettings.from_url("http://h:8080", token="tok-7", verify="false")
    assert (token.base_url, token.username, token.token, token.verify) == (
        "http://h:8080",
        None,
        "tok-7",
        False,
    )
    assert APISettings.from_url("http://u:p@h", username="other", password="x").username == "other"
    for bad in ("ftp://h/", "h:8080", "http://", "http://[::1"):
        with pytest.raises(AirflowAPIConfigError):
            APISettings.from_url(bad)
    assert settings.with_timeout(None) is settings
    assert settings.with_timeout(2).timeout == 2.0


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


@pytest.mark.integration
def test_the_hook_against_a_real_api_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook over an ``http`` connection, as users have them: the Test button's check, the reads of
    the shadow scan (keyset pages of one run against the real server), and a refused password."""
    import airflow

    _, server = api_home()
    for name, value in server.connection_env("qrp_real_api").items():
        monkeypatch.setenv(name, value)
    hook = AirflowApiHook("qrp_real_api", timeout=20)
    ok, message = hook.test_connection()
    assert ok, message
    assert message.startswith(f"Connected to Airflow {airflow.__version__} at {server.url}; DAGs readable: ")
    dag_id = "qubinode_failure_recovery"
    with hook.get_client() as client:
        for run_id in ("qrp_hook_test_1", "qrp_hook_test_2"):
            client.trigger_dag_run(dag_id, run_id=run_id, conf={"failed_dag_id": "x"})
        run_ids = [r["dag_run_id"] for r in client.iter_dag_runs(dag_id, page_size=1)]
        assert {"qrp_hook_test_1", "qrp_hook_test_2"} <= set(run_ids)
        assert len(run_ids) == len(set(run_ids))  # no run twice across the pages
        tis = list(client.iter_task_instances(dag_ids=[dag_id], dag_run_ids=["qrp_hook_test_1"], page_size=1))
        assert [(t["dag_run_id"], t["task_id"]) for t in tis] == [("qrp_hook_test_1", "stand_in")]
        assert client.get_dag_details(dag_id)["dag_id"] == dag_id
    conn = json.loads(server.connection_env()["AIRFLOW_CONN_AIRFLOW_API"])
    monkeypatch.setenv("AIRFLOW_CONN_QRP_BAD_API", json.dumps({**conn, "password": "wrong-pass-9"}))
    ok, message = AirflowApiHook("qrp_bad_api", timeout=20).test_connection()
    assert ok is False
    assert message.startswith(f"{server.url}: login failed: HTTP 401")
    assert "wrong-pass-9" not in message


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


# --- paging reads (httpx's MockTransport answers like the api-server) -----------------------------------


def _paging_client(handler: Callable[[httpx.Request], httpx.Response]) -> AirflowAPIClient:
    settings = APISettings(base_url="http://api.test", token="static-token")
    return AirflowAPIClient(settings, transport=httpx.MockTransport(handler))


def _runs(count: int) -> list[dict[str, object]]:
    return [{"dag_id": "d", "dag_run_id": f"r{n}", "state": "success"} for n in range(count)]


def test_an_answer_nested_too_deeply_is_an_api_error_not_a_crash() -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    with (
        _paging_client(lambda _: httpx.Response(200, content=deep)) as client,
        pytest.raises(AirflowAPIError, match="answer is not JSON"),
    ):
        list(client.iter_dag_runs(state="success"))


def test_dag_runs_follow_the_cursor() -> None:
    seen: list[dict[str, str]] = []
    runs = _runs(5)

    def handler(request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        seen.append(query)
        start = int(query["cursor"] or 0)
        more = start + 2 < len(runs)
        page = {
            "dag_runs": runs[start : start + 2],
            "total_entries": 5,
            "next_cursor": str(start + 2) if more else None,
        }
        return httpx.Response(200, json=page)

    since = datetime(2026, 1, 1, tzinfo=UTC)
    with _paging_client(handler) as client:
        got = list(client.iter_dag_runs(state="success", end_date_gte=since, page_size=2))
    assert [r["dag_run_id"] for r in got] == ["r0", "r1", "r2", "r3", "r4"]
    assert [q["cursor"] for q in seen] == ["", "2", "4"]
    assert seen[0]["end_date_gte"] == "2026-01-01T00:00:00+00:00"
    assert (seen[0]["state"], seen[0]["order_by"], seen[0]["limit"]) == ("success", "id", "2")
    assert "end_date_lt" not in seen[0]


def test_dag_runs_fall_back_to_offsets_without_cursors() -> None:
    seen: list[str] = []
    runs = _runs(5)

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", 0))
        seen.append(str(request.url.params))
        return httpx.Response(200, json={"dag_runs": runs[offset : offset + 2], "total_entries": 5})

    with _paging_client(handler) as client:
        got = list(client.iter_dag_runs(page_size=2))
    assert len(got) == 5
    assert [("cursor=" in q, "offset=" in q) for q in seen] == [(True, False), (False, True), (False, True)]


def test_a_server_repeating_its_cursor_ends_the_listing() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"dag_runs": _runs(2), "total_entries": 2, "next_cursor": "same"})

    with _paging_client(handler) as client:
        assert len(list(client.iter_dag_runs(page_size=2))) == 4
    assert len(calls) == 2


def test_task_instances_are_paged_by_offset_in_one_batch_request() -> None:
    bodies: list[dict[str, object]] = []
    tis = [{"dag_id": "d", "dag_run_id": "r", "task_id": f"t{n}"} for n in range(5)]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.url.path == "/api/v2/dags/~/dagRuns/~/taskInstances/list"
        body = json.loads(request.content)
        bodies.append(body)
        offset = body["page_offset"]
        return httpx.Response(200, json={"task_instances": tis[offset : offset + 2], "total_entries": 5})

    with _paging_client(handler) as client:
        got = list(client.iter_task_instances(dag_ids=["d"], dag_run_ids=["r"], page_size=2))
    assert [t["task_id"] for t in got] == ["t0", "t1", "t2", "t3", "t4"]
    assert [b["page_offset"] for b in bodies] == [0, 2, 4]
    assert bodies[0] == {
        "order_by": "id",
        "page_limit": 2,
        "dag_ids": ["d"],
        "dag_run_ids": ["r"],
        "page_offset": 0,
    }


def test_reads_are_tried_again_and_odd_answers_are_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qubinode_recovery_provider.airflow_api.RETRY_PAUSE_SECONDS", 0.01)
    answers = [httpx.Response(503, json={"detail": "database is locked"}), httpx.Response(200, json=[1, 2])]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    with _paging_client(handler) as client, pytest.raises(AirflowAPIError, match="not a JSON object"):
        client.get_dag_details("build vm")
    assert answers == []


def test_dag_details_and_version() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        if request.url.path == "/api/v2/version":
            return httpx.Response(200, json={"version": "3.3.2", "git_version": None})
        return httpx.Response(200, json={"dag_id": "build vm", "params": {"qubinode_vm": {"value": "lab/x"}}})

    with _paging_client(handler) as client:
        assert client.get_version()["version"] == "3.3.2"
        assert client.get_dag_details("build vm")["params"] == {"qubinode_vm": {"value": "lab/x"}}
    assert paths == ["/api/v2/version", "/api/v2/dags/build%20vm/details"]


def test_an_answer_that_echoes_the_password_is_redacted_in_the_error() -> None:
    """A validation answer of the login may quote the request body; the error (which reaches logs, the
    outbox and the connection's Test button) must not carry the password."""
    canary = "canary-Pw-7f3a9c1e"

    def handler(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        echo = {
            "detail": [{"type": "value_error", "input": sent, "msg": f"password={sent['password']} refused"}]
        }
        return httpx.Response(422, json=echo)

    settings = APISettings(base_url="http://api.test", username="recovery", password=canary)
    with (
        AirflowAPIClient(settings, transport=httpx.MockTransport(handler)) as client,
        pytest.raises(AirflowAPIError) as raised,
    ):
        client.get_dag_run("d", "r")
    assert raised.value.status_code == 422
    assert canary not in str(raised.value)
    assert canary not in json.dumps(raised.value.detail)


def test_a_plain_http_server_loads_no_ca_bundle_and_trusts_no_tls() -> None:
    """The default verification of an ``http://`` server is an empty trust store (nothing to load in a
    failing task): a TLS connection would fail verification, never be accepted unchecked."""
    import ssl

    from qubinode_recovery_provider.airflow_api import _tls_verify

    context = _tls_verify(APISettings("http://api:8080"))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0
    assert _tls_verify(APISettings("https://api:8080")) is True
    assert _tls_verify(APISettings("http://api:8080", verify=False)) is False
    assert _tls_verify(APISettings("https://api", verify="/etc/ca.pem")) == "/etc/ca.pem"
