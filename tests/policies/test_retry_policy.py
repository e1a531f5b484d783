"""DiagnosisRetryPolicy with the real analyzer and pattern packs (no Airflow run; see
``test_retry_policy_airflow.py`` for ``airflow dags test``).
"""

from __future__ import annotations

import copy
import datetime
import json
import pickle
import threading
import time
from pathlib import Path

import pytest
from airflow.sdk.definitions.retry_policy import RetryAction, RetryPolicy
from policy_helpers import FakeTI, write_attempt_log

from qubinode_recovery_provider.models import Diagnosis, RootCause
from qubinode_recovery_provider.policies import DiagnosisRetryPolicy
from qubinode_recovery_provider.utils import task_failure

RESET = "read tcp 10.0.0.7:46000->203.0.113.10:443: read: connection reset by peer"
BASH_EXIT = Exception("Bash command failed. The command returned a non-zero exit code 255.")


def _evaluate(policy: DiagnosisRetryPolicy, exc: BaseException, ti: FakeTI):  # type: ignore[no-untyped-def]
    return policy.evaluate(exc, ti.try_number, 3, {"ti": ti, "run_id": ti.run_id})


def test_fails_fast_on_a_rejected_ssh_key_found_in_the_log(tmp_path: Path) -> None:
    ti = FakeTI()
    write_attempt_log(
        tmp_path / "logs",
        ti,
        ["Running command", "root@10.0.0.5: Permission denied (publickey)."],
    )
    decision = _evaluate(DiagnosisRetryPolicy(), BASH_EXIT, ti)
    assert decision.action is RetryAction.FAIL
    assert decision.reason.startswith("qubinode: credential (")
    assert "Permission denied (publickey)" in decision.reason
    assert "[from the attempt log (2 lines)]" in decision.reason
    assert len(decision.reason) <= 500
    pushed = ti.pushed[DiagnosisRetryPolicy.XCOM_KEY]
    assert pushed["action"] == "fail"
    assert pushed["root_cause"] == "credential"
    assert pushed["retryable"] is False
    json.dumps(pushed)


def test_retries_a_transient_failure_with_the_causes_delay_growing_per_try(tmp_path: Path) -> None:
    policy = DiagnosisRetryPolicy()
    delays = []
    for try_number in (1, 2, 3):
        ti = FakeTI(try_number=try_number)
        write_attempt_log(
            tmp_path / "logs",
            ti,
            [RESET],
        )
        decision = _evaluate(policy, BASH_EXIT, ti)
        assert decision.action is RetryAction.RETRY
        assert f"(try {try_number})" in decision.reason
        delays.append(decision.retry_delay)
    assert delays == [datetime.timedelta(seconds=s) for s in (60, 120, 240)]


@pytest.mark.parametrize(("try_number", "max_tries"), [(1, 0), (4, 3)])
def test_no_retry_is_promised_when_none_is_left(tmp_path: Path, try_number: int, max_tries: int) -> None:
    """Airflow never retries past ``retries``: a transient failure on the last try says the task fails."""
    ti = FakeTI(try_number=try_number)
    write_attempt_log(tmp_path / "logs", ti, [RESET])
    context = {"ti": ti, "run_id": ti.run_id}
    decision = DiagnosisRetryPolicy().evaluate(BASH_EXIT, try_number, max_tries, context)
    assert decision.action is RetryAction.DEFAULT
    assert f"transient, but no retry is left (retries={max_tries}): the task fails here" in decision.reason
    assert "retry in" not in decision.reason


def test_delay_is_capped_and_floored() -> None:
    policy = DiagnosisRetryPolicy(max_delay_seconds=90, min_delay_seconds=10, backoff=3)
    diagnosis = _diagnosis(retry_delay_seconds=60)
    assert [policy.delay_for(diagnosis, n) for n in (1, 2, 50_000)] == [60, 90, 90]
    assert DiagnosisRetryPolicy(min_delay_seconds=10).delay_for(_diagnosis(retry_delay_seconds=1), 1) == 10


def test_unsure_leaves_the_task_retries_in_charge(tmp_path: Path) -> None:
    ti = FakeTI()
    write_attempt_log(tmp_path / "logs", ti, ["step 3 of 7", "something odd happened"])
    decision = _evaluate(DiagnosisRetryPolicy(), BASH_EXIT, ti)
    assert decision.action is RetryAction.DEFAULT
    assert "the task's retries apply" in decision.reason


def test_a_confident_enough_threshold_is_required_to_fail(tmp_path: Path) -> None:
    ti = FakeTI()
    write_attempt_log(tmp_path / "logs", ti, ["Permission denied (publickey)."])
    decision = _evaluate(DiagnosisRetryPolicy(fail_confidence=1.0), BASH_EXIT, ti)
    assert decision.action is RetryAction.DEFAULT
    assert "not retryable: not sure enough" in decision.reason


def test_without_an_attempt_log_the_exception_decides_and_the_reason_says_so() -> None:
    ti = FakeTI()
    decision = _evaluate(DiagnosisRetryPolicy(), PermissionError("Permission denied (publickey)."), ti)
    assert decision.action is RetryAction.FAIL
    assert "[no attempt log on this machine: decided on the exception text only]" in decision.reason
    generic = _evaluate(DiagnosisRetryPolicy(), BASH_EXIT, ti)
    assert generic.action is RetryAction.DEFAULT


def test_the_cause_of_a_chained_exception_counts() -> None:
    try:
        try:
            raise ConnectionResetError("[Errno 104] Connection reset by peer")
        except ConnectionResetError as inner:
            raise RuntimeError("upload failed") from inner
    except RuntimeError as outer:
        decision = DiagnosisRetryPolicy().evaluate(outer, 1, 3, None)
    assert decision.action is RetryAction.RETRY


def test_reads_the_log_of_a_mapped_task_instance(tmp_path: Path) -> None:
    ti = FakeTI(map_index=2, try_number=2)
    write_attempt_log(tmp_path / "logs", ti, ["Permission denied (publickey)."])
    assert _evaluate(DiagnosisRetryPolicy(), BASH_EXIT, ti).action is RetryAction.FAIL


def test_a_custom_log_filename_template_is_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW__LOGGING__LOG_FILENAME_TEMPLATE",
        "{{ ti.dag_id }}/{{ ti.task_id }}/{{ ti.run_id }}/{{ try_number }}.log",
    )
    ti = FakeTI()
    path = tmp_path / "logs" / ti.dag_id / ti.task_id / ti.run_id / "1.log"
    path.parent.mkdir(parents=True)
    path.write_text("Permission denied (publickey).\n")
    assert task_failure.attempt_log_file(task_failure.task_key({"ti": ti})) == path
    assert _evaluate(DiagnosisRetryPolicy(), BASH_EXIT, ti).action is RetryAction.FAIL


def test_secrets_in_the_log_never_reach_the_reason(tmp_path: Path) -> None:
    ti = FakeTI()
    write_attempt_log(
        tmp_path / "logs",
        ti,
        ["fatal: could not read from https://deploy:Sup3rSecretPass@git.example.com: Authentication failed"],
    )
    decision = _evaluate(DiagnosisRetryPolicy(), BASH_EXIT, ti)
    assert "Sup3rSecretPass" not in (decision.reason or "")
    assert "Sup3rSecretPass" not in json.dumps(ti.pushed)


def test_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise RuntimeError("pattern pack unreadable")

    monkeypatch.setattr(task_failure, "shared_analyzer", broken)
    decision = DiagnosisRetryPolicy().evaluate(BASH_EXIT, 1, 3, {"ti": FakeTI()})
    assert decision.action is RetryAction.DEFAULT
    assert "no diagnosis (RuntimeError)" in decision.reason


def test_a_diagnosis_that_overruns_the_budget_leaves_the_task_retries_in_charge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The decision's time bound is its contract: budget plus 0.5 s, whatever the analysis does."""
    release = threading.Event()

    class Stuck:
        def analyze(self, *args: object, **kwargs: object) -> None:
            release.wait(30)

    monkeypatch.setattr(task_failure, "shared_analyzer", Stuck)
    started = time.monotonic()
    try:
        decision = DiagnosisRetryPolicy(budget_seconds=0.5).evaluate(BASH_EXIT, 1, 3, {"ti": FakeTI()})
    finally:
        release.set()
    assert time.monotonic() - started <= 1.0
    assert decision.action is RetryAction.DEFAULT
    assert decision.reason == "qubinode: no diagnosis within 0.5s; the task's retries apply"


def test_the_budget_comes_from_the_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__POLICY_BUDGET_SECONDS", "2.5")
    assert DiagnosisRetryPolicy().budget() == 2.5
    assert DiagnosisRetryPolicy(budget_seconds=0.2).budget() == 0.2


def test_xcom_is_optional_and_its_failure_harmless() -> None:
    quiet = FakeTI()
    DiagnosisRetryPolicy(push_xcom=False).evaluate(BASH_EXIT, 1, 3, {"ti": quiet})
    assert quiet.pushed == {}
    broken = FakeTI(fail_push=True)
    decision = DiagnosisRetryPolicy().evaluate(
        PermissionError("Permission denied (publickey)."),
        1,
        3,
        {"ti": broken},
    )
    assert decision.action is RetryAction.FAIL


def test_serialize_round_trip() -> None:
    policy = DiagnosisRetryPolicy(
        fail_confidence=0.9,
        max_delay_seconds=5,
        log_tail_lines=50,
        push_xcom=False,
    )
    data = json.loads(json.dumps(policy.serialize()))
    assert data["__type"] == "DiagnosisRetryPolicy"
    assert DiagnosisRetryPolicy.deserialize(data) == policy
    assert DiagnosisRetryPolicy.deserialize({**data, "added_in_a_later_version": 1}) == policy
    assert isinstance(policy, RetryPolicy)
    assert copy.deepcopy(policy) == policy
    assert pickle.loads(pickle.dumps(policy)) == policy
    assert "fail_confidence=0.9" in repr(policy)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fail_confidence": 1.5},
        {"backoff": 0.5},
        {"max_delay_seconds": -1},
        {"log_tail_lines": -5},
        {"budget_seconds": 0},
        {"budget_seconds": float("inf")},
        {"budget_seconds": float("nan")},
    ],
)
def test_bad_parameters_fail_at_dag_parse_time(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DiagnosisRetryPolicy(**kwargs)


def test_a_dag_with_the_policy_serialises() -> None:
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG(
        "qrp_serialise",
        schedule=None,
        start_date=datetime.datetime(2024, 1, 1),
        default_args={"retries": 2, "retry_policy": DiagnosisRetryPolicy(max_delay_seconds=5)},
    ) as dag:
        BashOperator(task_id="t", bash_command="exit 1")
        BashOperator.partial(task_id="m", retry_policy=DiagnosisRetryPolicy()).expand(bash_command=["a", "b"])
    data = DagSerialization.to_dict(dag)
    tasks = {t["__var"]["task_id"]: t["__var"] for t in data["dag"]["tasks"]}
    assert tasks["t"].get("has_retry_policy") is True
    assert tasks["m"]["partial_kwargs"].get("has_retry_policy") is True
    json.dumps(data)


def _diagnosis(**overrides: object) -> Diagnosis:
    values: dict[str, object] = {
        "root_cause": RootCause.NETWORK,
        "confidence": 0.9,
        "retryable": True,
        "retry_delay_seconds": 60,
        "fingerprint": "f",
    }
    values.update(overrides)
    return Diagnosis(**values)  # type: ignore[arg-type]
