"""The recovery DAG's first task refuses bad input from the trigger form or a run's conf with one line."""

from __future__ import annotations

import pytest

from qubinode_recovery_provider.operators.diagnose import DiagnoseFailureOperator, FailureInputError


def _operator(**kwargs: object) -> DiagnoseFailureOperator:
    values = {"failed_dag_id": "build_vm", "failure_message": "Permission denied (publickey)."}
    values.update(kwargs)
    return DiagnoseFailureOperator(task_id="diagnose", **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("given", "expected"), [(None, None), ("", None), ("None", None), ("3", 3), (7, 7)])
def test_a_try_number_is_optional(given: object, expected: int | None) -> None:
    assert _operator(failed_try_number=given).checked_input()["try_number"] == expected


@pytest.mark.parametrize("given", ["0", "-1", "10001", "99999999999999999999", "1e3", "three", 10**20])
def test_a_try_number_out_of_range_is_refused_with_one_line(given: object) -> None:
    with pytest.raises(FailureInputError) as raised:
        _operator(failed_try_number=given).checked_input()
    message = str(raised.value)
    assert message.startswith("failed_try_number ")
    assert "1 to 10000" in message
    assert "\n" not in message
    assert len(message) < 120


def test_a_task_sdk_404_is_read_as_a_404() -> None:
    """Under a real worker, ``ti.get_dag`` raises the Task SDK's AirflowRuntimeError, whose status is in
    ``error.detail`` (not in ``response``): it must still read as "unknown DAG"."""
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse

    from qubinode_recovery_provider.operators.diagnose import _status

    error = AirflowRuntimeError(ErrorResponse(error=ErrorType.API_SERVER_ERROR, detail={"status_code": 404}))
    assert _status(error) == 404
    assert _status(RuntimeError("no status")) is None
