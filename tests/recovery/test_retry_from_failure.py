"""The ``retry-from-failure`` action over the REST API client, against the recording stand-in of
``tests/support/api_stub.py`` (the real API server clears for real in ``tests/dags/test_e2e_recovery.py``; the
hook-built client of the recovery operators is in ``tests/hooks/test_airflow_api_hook.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.api_stub import PASSWORD, USER, ApiStub, start_stub, stop_stub

from qubinode_recovery_provider.airflow_api import AirflowAPIClient, AirflowAPIConfigError, APISettings
from qubinode_recovery_provider.recovery.actions import RetryFromFailureArgs
from qubinode_recovery_provider.recovery.retry_from_failure import NOTE, AirflowRetryFromFailure

RUN_ID = "manual__2026-01-01T00:00:00+00:00"
ARGS = RetryFromFailureArgs(dag_id="build_vm", run_id=RUN_ID, task_ids=["create_vm"])


@pytest.fixture
def stub() -> Iterator[ApiStub]:
    server = start_stub()
    yield server
    stop_stub(server)


def action(stub: ApiStub) -> AirflowRetryFromFailure:
    settings = APISettings(base_url=stub.url, username=USER, password=PASSWORD)
    return AirflowRetryFromFailure(lambda: AirflowAPIClient(settings), honour_delay=False)


def test_clearing_the_failed_task_is_a_change(stub: ApiStub) -> None:
    stub.behaviour["cleared"] = [{"task_id": "create_vm"}, {"task_id": "configure_vm"}]
    result = action(stub)(ARGS)
    assert (result.succeeded, result.changed) == (True, True)
    assert result.detail == f"cleared 2 task instance(s) in build_vm run {RUN_ID}: configure_vm, create_vm"
    body = stub.requests[-1].body
    assert body is not None
    assert (body["dry_run"], body["only_failed"], body["task_ids"], body["note"]) == (
        False,
        True,
        ["create_vm"],
        NOTE,
    )


def test_nothing_left_to_clear_is_already_handled(stub: ApiStub) -> None:
    result = action(stub)(ARGS)
    assert (result.succeeded, result.changed) == (True, False)
    assert result.detail.startswith(f"already handled: nothing left to clear in build_vm run {RUN_ID}")


def test_a_refused_clear_is_a_failure(stub: ApiStub) -> None:
    stub.behaviour["status"] = 403
    result = action(stub)(ARGS)
    assert result.succeeded is False
    assert result.detail.startswith("clearTaskInstances failed:")


def test_a_client_that_cannot_be_made_is_a_failure() -> None:
    def no_client() -> AirflowAPIClient:
        raise AirflowAPIConfigError("cannot read Airflow connection 'airflow_api': not defined")

    result = AirflowRetryFromFailure(no_client, honour_delay=False)(ARGS)
    assert result.succeeded is False
    assert result.detail == (
        "clearTaskInstances failed: cannot read Airflow connection 'airflow_api': not defined"
    )


def test_the_delay_is_honoured_before_the_clear(stub: ApiStub) -> None:
    slept: list[float] = []
    settings = APISettings(base_url=stub.url, username=USER, password=PASSWORD)
    action = AirflowRetryFromFailure(lambda: AirflowAPIClient(settings), sleep=slept.append)
    assert action(ARGS.model_copy(update={"delay_seconds": 7})).succeeded
    assert slept == [7]
    assert repr(action) == "AirflowRetryFromFailure(honour_delay=True)"
