"""The ``airflow_api`` connection type and its hook: registration with Airflow's providers manager, the
connection read into settings (``http`` connections of before included), ``test_connection`` against the
recording REST API stand-in of ``tests/api_stub.py`` (a real HTTP server on 127.0.0.1, the real httpx
client), and the callers that go through the hook. The hook against a real ``airflow api-server`` is in
``tests/test_airflow_api.py``."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.api_stub import PASSWORD, USER, VERSION, ApiStub, start_stub, stop_stub
from support.processes import free_port

from qubinode_recovery_provider import api, config
from qubinode_recovery_provider.airflow_api import DEFAULT_TIMEOUT, AirflowAPIClient, AirflowAPIConfigError
from qubinode_recovery_provider.get_provider_info import (
    AIRFLOW_API_CONN_FIELDS,
    AIRFLOW_API_UI_FIELD_BEHAVIOUR,
    get_provider_info,
)
from qubinode_recovery_provider.hooks.airflow_api import MAX_MESSAGE_CHARS, AirflowApiHook
from qubinode_recovery_provider.operators.common import runtime_for
from qubinode_recovery_provider.recovery.actions import RETRY_FROM_FAILURE, RetryFromFailureArgs

CONN_ID = "qrp_hook_api"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW__QUBINODE_RECOVERY__RECOVERY_CONN_ID", raising=False)
    config.clear_cache()
    yield
    config.clear_cache()


@pytest.fixture
def stub() -> Iterator[ApiStub]:
    server = start_stub()
    yield server
    stop_stub(server)


def set_conn(monkeypatch: pytest.MonkeyPatch, conn: dict[str, object], conn_id: str = CONN_ID) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def stub_conn(stub: ApiStub, conn_type: str = "airflow_api", **fields: object) -> dict[str, object]:
    conn: dict[str, object] = {
        "conn_type": conn_type,
        "host": "127.0.0.1",
        "port": stub.port,
        "login": USER,
        "password": PASSWORD,
    }
    return {**conn, **fields}


# --- registration ----------------------------------------------------------------------------------


def test_the_connection_type_is_declared_in_the_provider_info() -> None:
    (entry,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "airflow_api"]
    assert entry["hook-class-name"] == "qubinode_recovery_provider.hooks.airflow_api.AirflowApiHook"
    assert entry["hook-name"] == AirflowApiHook.hook_name == "Airflow REST API"
    assert AirflowApiHook.conn_type == "airflow_api"
    assert (AirflowApiHook.conn_name_attr, AirflowApiHook.default_conn_name) == (
        "airflow_api_conn_id",
        "airflow_api",
    )
    assert AirflowApiHook.default_conn_name == config.OPTIONS["recovery_conn_id"].default
    hooks = [m for h in get_provider_info()["hooks"] for m in h["python-modules"]]
    assert "qubinode_recovery_provider.hooks.airflow_api" in hooks
    assert AIRFLOW_API_CONN_FIELDS["token"]["schema"]["format"] == "password"  # a secret in the UI
    assert AIRFLOW_API_CONN_FIELDS["timeout"]["schema"]["default"] == DEFAULT_TIMEOUT


def test_the_ui_field_behaviour_is_the_declared_one() -> None:
    behaviour = AirflowApiHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == AIRFLOW_API_UI_FIELD_BEHAVIOUR["hidden-fields"] == ["extra"]
    assert behaviour["relabeling"]["host"] == "API server (host name or URL)"
    assert {"token", "base_path", "verify", "timeout", "host", "port"} <= set(behaviour["placeholders"])


def test_airflows_providers_manager_knows_the_connection_type() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    info = ProvidersManagerTaskRuntime().hooks["airflow_api"]
    assert info is not None
    assert (info.hook_class_name, info.connection_id_attribute_name, info.connection_testable) == (
        "qubinode_recovery_provider.hooks.airflow_api.AirflowApiHook",
        "airflow_api_conn_id",
        True,
    )
    manager = ProvidersManager()
    assert manager.field_behaviours["airflow_api"]["hidden_fields"] == ["extra"]
    placeholders = manager.field_behaviours["airflow_api"]["placeholders"]
    assert placeholders["extra__airflow_api__token"] == "a bearer token, instead of user and password"
    widgets = manager.connection_form_widgets
    assert widgets["extra__airflow_api__token"].is_sensitive
    assert not widgets["extra__airflow_api__timeout"].is_sensitive


# --- the connection ------------------------------------------------------------------------------------


def test_an_http_connection_of_before_works_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "http", "host": "10.1.1.1", "port": 8080, "login": "svc", "password": "pw"}
    set_conn(monkeypatch, conn, "qrp_test_api")
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__RECOVERY_CONN_ID", "qrp_test_api")
    config.clear_cache()
    hook = AirflowApiHook(timeout=2.5)
    assert hook.airflow_api_conn_id == "qrp_test_api"
    settings = hook.get_settings()
    assert (settings.base_url, settings.username, settings.password, settings.timeout) == (
        "http://10.1.1.1:8080",
        "svc",
        "pw",
        2.5,
    )
    with hook.get_client(timeout=4) as client:
        assert client.settings.timeout == 4.0
    assert "pw" not in repr(hook)
    assert "pw" not in repr(settings)
    with pytest.raises(AirflowAPIConfigError, match="qrp_missing"):
        AirflowApiHook("qrp_missing").get_settings()


def test_the_default_connection_id_is_the_configured_one() -> None:
    assert AirflowApiHook().airflow_api_conn_id == "airflow_api"
    assert AirflowApiHook("other").airflow_api_conn_id == "other"


def test_https_and_tls_settings_from_a_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {
        "conn_type": "http",
        "host": "airflow.example",
        "port": 8443,
        "schema": "https",
        "login": "admin",
        "password": "pw",
        "extra": {"verify": False},
    }
    set_conn(monkeypatch, conn)
    settings = AirflowApiHook(CONN_ID).get_settings()
    assert (settings.base_url, settings.username, settings.password, settings.verify) == (
        "https://airflow.example:8443",
        "admin",
        "pw",
        False,
    )
    set_conn(monkeypatch, {**conn, "extra": {"base_url": "http://api:8080/", "token": "jwt"}})
    settings = AirflowApiHook(CONN_ID).get_settings()
    assert (settings.base_url, settings.token) == ("http://api:8080", "jwt")


def test_form_fields_of_the_airflow_api_type(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {
        "extra__airflow_api__token": "tok-7",  # the prefixed names older forms save
        "base_path": "/proxy/",
        "verify": "/etc/ssl/ca.pem",
        "timeout": "3",
    }
    set_conn(monkeypatch, {"conn_type": "airflow_api", "host": "api", "port": 8080, "extra": extra})
    settings = AirflowApiHook(CONN_ID).get_settings()
    assert (settings.base_url, settings.token, settings.verify, settings.timeout) == (
        "http://api:8080/proxy",
        "tok-7",
        "/etc/ssl/ca.pem",
        3.0,
    )
    assert "tok-7" not in repr(settings)


def test_a_connection_uri_of_the_new_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", "airflow-api://svc:p%40ss@api-server:8080/https")
    settings = AirflowApiHook(CONN_ID).get_settings()
    assert (settings.base_url, settings.username, settings.password) == (
        "https://api-server:8080",
        "svc",
        "p@ss",
    )


# --- test_connection -----------------------------------------------------------------------------------


def test_connection_succeeds_with_user_and_password(monkeypatch: pytest.MonkeyPatch, stub: ApiStub) -> None:
    stub.runs[("build_vm", "r1")] = {"dag_run_id": "r1"}
    set_conn(monkeypatch, stub_conn(stub))
    ok, message = AirflowApiHook(CONN_ID).test_connection()
    assert (ok, message) == (True, f"Connected to Airflow {VERSION} at {stub.url}; DAGs readable: 1")
    assert [r.path for r in stub.requests] == ["/auth/token", "/api/v2/version", "/api/v2/dags"]
    assert stub.requests[-1].headers["Authorization"] == "Bearer token-1"


def test_connection_of_an_http_connection_with_a_token(
    monkeypatch: pytest.MonkeyPatch, stub: ApiStub
) -> None:
    set_conn(monkeypatch, stub_conn(stub, "http", login=None, password=None, extra={"token": "static-token"}))
    ok, message = AirflowApiHook(CONN_ID).test_connection()
    assert ok, message
    assert "/auth/token" not in [r.path for r in stub.requests]


def test_connection_with_a_wrong_password(monkeypatch: pytest.MonkeyPatch, stub: ApiStub) -> None:
    set_conn(monkeypatch, stub_conn(stub, password="wrong-pass-9"))
    ok, message = AirflowApiHook(CONN_ID).test_connection()
    assert ok is False
    assert message == f"{stub.url}: login failed: HTTP 401: Invalid credentials"
    assert "wrong-pass-9" not in message


def test_connection_with_a_refused_token(monkeypatch: pytest.MonkeyPatch, stub: ApiStub) -> None:
    set_conn(monkeypatch, stub_conn(stub, login=None, password=None, extra={"token": "forged"}))
    ok, message = AirflowApiHook(CONN_ID).test_connection()
    assert ok is False
    assert message == f"{stub.url}: GET /api/v2/dags: HTTP 401: Not authenticated"
    assert "forged" not in message


def test_connection_to_a_closed_port_is_one_line_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    set_conn(monkeypatch, {"conn_type": "airflow_api", "host": "127.0.0.1", "port": port, "login": "u"})
    started = time.monotonic()
    ok, message = AirflowApiHook(CONN_ID).test_connection()
    assert time.monotonic() - started < 5
    assert ok is False
    assert message.startswith(f"http://127.0.0.1:{port}: POST /auth/token: ConnectError")
    assert "\n" not in message
    assert len(message) <= MAX_MESSAGE_CHARS


def test_connection_to_a_host_that_never_answers_ends_at_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        conn = {"conn_type": "airflow_api", "host": "127.0.0.1", "port": port, "extra": {"timeout": 1}}
        set_conn(monkeypatch, conn)
        started = time.monotonic()
        ok, message = AirflowApiHook(CONN_ID).test_connection()
        elapsed = time.monotonic() - started
    assert ok is False
    assert message == f"http://127.0.0.1:{port}: GET /api/v2/version: timed out after 1s"
    assert elapsed < 5  # one request, no retries


def test_connection_without_a_connection_or_a_host(monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = AirflowApiHook("qrp_nowhere").test_connection()
    assert ok is False
    assert message.startswith("cannot read Airflow connection 'qrp_nowhere'")
    set_conn(monkeypatch, {"conn_type": "airflow_api", "login": "u"})
    assert AirflowApiHook(CONN_ID).test_connection() == (False, "the Airflow API connection has no host")


def test_a_connection_that_cannot_be_read_names_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(cls: type, conn_id: str) -> None:  # what Airflow's URI parser raises
        raise ValueError("Invalid connection string: http://svc:s3cret-pass-9@a://b://c.")

    monkeypatch.setattr(AirflowApiHook, "get_connection", classmethod(unreadable))
    with pytest.raises(AirflowAPIConfigError) as info:
        AirflowApiHook(CONN_ID).get_settings()
    assert str(info.value).startswith(
        f"cannot read Airflow connection '{CONN_ID}': Invalid connection string"
    )
    assert "s3cret-pass-9" not in str(info.value)
    assert info.value.__cause__ is None
    ok, message = AirflowApiHook(CONN_ID).test_connection()
    assert ok is False
    assert "s3cret-pass-9" not in message


# --- everyone goes through the hook -----------------------------------------------------------------


def test_get_conn_is_the_client(monkeypatch: pytest.MonkeyPatch, stub: ApiStub) -> None:
    set_conn(monkeypatch, stub_conn(stub))
    with AirflowApiHook(CONN_ID).get_conn() as client:
        assert isinstance(client, AirflowAPIClient)
        assert client.trigger_dag_run("d", run_id="x")["dag_run_id"] == "x"
    assert repr(client) == f"AirflowAPIClient({stub.url!r})"


def test_the_recovery_operators_clear_through_the_hook(
    monkeypatch: pytest.MonkeyPatch, stub: ApiStub
) -> None:
    set_conn(monkeypatch, stub_conn(stub))
    stub.behaviour["cleared"] = [{"task_id": "create_vm"}]
    registry = runtime_for(CONN_ID).registry
    try:
        args = RetryFromFailureArgs(dag_id="build_vm", run_id="r1", task_ids=["create_vm"])
        result = registry.run(RETRY_FROM_FAILURE, args)
        # the operators' runtime is their own: the process's retry-from-failure is still not configured
        assert api.get_action_registry().get(RETRY_FROM_FAILURE).enabled is False
    finally:
        api.reset()
    assert (result.succeeded, result.changed) == (True, True)
    (clear,) = stub.posts("/clearTaskInstances")
    assert clear.path == "/api/v2/dags/build_vm/clearTaskInstances"
    assert clear.body["dry_run"] is False


def test_the_action_fails_cleanly_without_a_connection() -> None:
    registry = runtime_for("qrp_nowhere").registry
    try:
        args = RetryFromFailureArgs(dag_id="build_vm", run_id="r1", task_ids=["create_vm"])
        result = registry.run(RETRY_FROM_FAILURE, args)
    finally:
        api.reset()
    assert result.succeeded is False
    assert "cannot read Airflow connection 'qrp_nowhere'" in result.detail
