"""RecoveryNotifier in this process with a real analyzer, a real SQLite ledger and a local API stand-in.

The fault tests (API down, ledger locked, libvirt hanging, a stuck step) check that the callback returns
within its budget, raises nothing and loses no incident. Budgets are small; the bounds asserted are
generous (a budget of 2 s, a hang of 60 s, "returns within 15 s").
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from notify_helpers import (
    SSH_DENIED,
    FakeComms,
    dag_context,
    executable,
    path_with,
    processor_context,
    task_context,
)
from support.api_stub import ApiStub, start_stub, stop_stub
from support.processes import free_port

from qubinode_recovery_provider.notifications import RecoveryNotifier, deliver_pending_triggers
from qubinode_recovery_provider.notifications import failure_path as report_module
from qubinode_recovery_provider.notifications.pending_runs import PENDING, SENT, TriggerOutbox, TriggerRecord
from qubinode_recovery_provider.store import Ledger

GENEROUS = 15.0


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiStub]:
    server = start_stub()
    for name, value in server.connection_env().items():
        monkeypatch.setenv(name, value)
    yield server
    stop_stub(server)


@pytest.fixture
def api_down(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "http", "host": "127.0.0.1", "port": free_port(), "login": "u", "password": "p"}
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", json.dumps(conn))


def ledger(tmp_path: Path) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "state" / "spool")


def outbox(tmp_path: Path) -> TriggerOutbox:
    return TriggerOutbox(tmp_path / "state" / "recovery_triggers")


def notify(notifier: RecoveryNotifier, context: dict) -> float:  # type: ignore[type-arg]
    started = time.monotonic()
    notifier(context)
    return time.monotonic() - started


def test_api_down_the_incident_is_recorded_and_the_run_request_kept(tmp_path: Path, api_down: None) -> None:
    notifier = RecoveryNotifier(budget_seconds=3)
    elapsed = notify(notifier, task_context(PermissionError(SSH_DENIED)))
    outcome = notifier.last_outcome
    assert outcome is not None
    assert elapsed < GENEROUS
    assert outcome.stage == "done"
    assert (outcome.root_cause, outcome.occurrences, outcome.incident_recorded) == ("credential", 1, True)
    assert outcome.triggered is False
    assert outcome.trigger_pending is True
    assert "Connection refused" in outcome.errors[0] or "ConnectError" in outcome.errors[0]
    incident = ledger(tmp_path).get_incident(outcome.fingerprint)
    assert incident is not None
    assert incident.dag_ids == ["build_vm"]
    (record,) = outbox(tmp_path).pending()
    assert record.run_id == outcome.recovery_run_id
    assert record.conf["failed_task_id"] == "create_vm"


def test_a_new_incident_starts_one_recovery_run_through_the_api(tmp_path: Path, stub: ApiStub) -> None:
    secret = "hvs.CAESIJlWb3RlIGZvciB0aGUgdGVzdHMgb25seQ"
    error = RuntimeError(f"vault: permission denied; X-Vault-Token: {secret}")
    notifier = RecoveryNotifier(budget_seconds=5)
    notify(notifier, task_context(error))
    first = notifier.last_outcome
    assert first is not None
    assert (first.triggered, first.new_incident, first.trigger_reason) == (True, True, "new incident")
    (trigger,) = stub.posts("/dagRuns")
    assert trigger.path == "/api/v2/dags/qubinode_failure_recovery/dagRuns"
    assert trigger.headers["Authorization"].startswith("Bearer token-")
    conf = trigger.body["conf"]
    assert {k: conf[k] for k in ("failed_dag_id", "failed_task_id", "failed_run_id")} == {
        "failed_dag_id": "build_vm",
        "failed_task_id": "create_vm",
        "failed_run_id": "manual__2026-01-01T00:00:00+00:00",
    }
    assert conf["fingerprint"] == first.fingerprint
    assert conf["root_cause"] == "credential"
    assert "permission denied" in conf["failure_message"]
    assert secret not in json.dumps(trigger.body)
    assert trigger.body["dag_run_id"] == first.recovery_run_id
    assert outbox(tmp_path).get(first.fingerprint).status == SENT  # type: ignore[union-attr]

    notify(notifier, task_context(error, run_id="manual__2026-01-02T00:00:00+00:00"))
    second = notifier.last_outcome
    assert second is not None
    assert (second.occurrences, second.triggered) == (2, False)
    assert "requested 0 min ago (sent)" in second.trigger_reason
    assert len(stub.posts("/dagRuns")) == 1


def test_pending_requests_are_delivered_later_exactly_once(
    tmp_path: Path, api_down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier = RecoveryNotifier(budget_seconds=3)
    notify(notifier, task_context(PermissionError(SSH_DENIED)))
    (pending,) = outbox(tmp_path).pending()
    server = start_stub()
    try:
        for name, value in server.connection_env().items():
            monkeypatch.setenv(name, value)
        (delivered,) = deliver_pending_triggers()
        assert delivered.status == SENT
        assert delivered.via == "api"
        assert (
            server.runs[("qubinode_failure_recovery", pending.run_id)]["conf"]["failed_dag_id"] == "build_vm"
        )
        assert deliver_pending_triggers() == []
        # a request that went through although the answer was lost is not started twice
        delivered.status = PENDING
        outbox(tmp_path).put(delivered)
        (again,) = deliver_pending_triggers()
        assert again.status == SENT
        assert len(server.posts("/dagRuns")) == 2
        assert len(server.runs) == 1
    finally:
        stop_stub(server)


def test_ledger_locked_the_incident_is_spooled_within_the_budget(tmp_path: Path, api_down: None) -> None:
    ledger(tmp_path).migrate()
    holder = sqlite3.connect(tmp_path / "ledger.db", timeout=1, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        notifier = RecoveryNotifier(budget_seconds=2)
        elapsed = notify(notifier, task_context(PermissionError(SSH_DENIED)))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    outcome = notifier.last_outcome
    assert outcome is not None
    assert elapsed < GENEROUS
    assert outcome.incident_spooled is True
    assert outcome.incident_recorded is False
    replay = ledger(tmp_path)
    assert replay.spool_status()["pending_events"] >= 1
    replay.flush_spool()
    incident = replay.get_incident(outcome.fingerprint)
    assert incident is not None
    assert incident.occurrences == 1


def test_libvirt_hanging_the_context_probe_is_cut_short(
    tmp_path: Path, api_down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_bin = tmp_path / "bin"
    executable(fake_bin, "systemctl", "sleep 60\n")
    monkeypatch.setenv("PATH", path_with(fake_bin))
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__SYSTEMD_UNITS", "libvirtd.service")
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__PROBE_TIMEOUT_SECONDS", "30")
    text = "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Connection refused"
    notifier = RecoveryNotifier(budget_seconds=2)
    elapsed = notify(notifier, task_context(RuntimeError(text)))
    outcome = notifier.last_outcome
    assert outcome is not None
    assert elapsed < GENEROUS
    assert outcome.root_cause == "service_dependency"
    assert outcome.incident_recorded is True


def test_a_stuck_step_is_rescued_to_the_spool(
    tmp_path: Path, api_down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def stuck(self: object, event: object, diagnosis: object) -> None:
        release.wait(60)
        raise RuntimeError("the stuck write gave up")

    monkeypatch.setattr(report_module.FailureReport, "_record", stuck)
    notifier = RecoveryNotifier(budget_seconds=1)
    try:
        elapsed = notify(notifier, task_context(PermissionError(SSH_DENIED)))
    finally:
        release.set()
    outcome = notifier.last_outcome
    assert outcome is not None
    assert elapsed < 1.5
    assert outcome.timed_out is True
    assert outcome.incident_spooled is True
    assert any("budget of 1s ran out at stage record" in e for e in outcome.errors)
    replay = ledger(tmp_path)
    replay.flush_spool()
    incident = replay.get_incident(outcome.fingerprint)
    assert incident is not None
    assert incident.root_cause == "credential"  # the rescue kept the diagnosis the worker had made


def test_dag_processor_callbacks_have_no_exception(tmp_path: Path, stub: ApiStub) -> None:
    notifier = RecoveryNotifier(budget_seconds=5)
    notify(notifier, processor_context(try_number=2))
    outcome = notifier.last_outcome
    assert outcome is not None
    assert outcome.incident_recorded is True
    assert outcome.triggered is True
    (trigger,) = stub.posts("/dagRuns")
    assert "killed from outside" in trigger.body["conf"]["failure_message"]
    assert trigger.body["conf"]["failed_try_number"] == 2


def test_the_log_tail_of_the_attempt_is_read_when_the_exception_says_little(
    tmp_path: Path, stub: ApiStub
) -> None:
    log = (
        tmp_path
        / "logs"
        / "dag_id=build_vm"
        / "run_id=manual__2026-01-01T00:00:00+00:00"
        / "task_id=create_vm"
    )
    log.mkdir(parents=True)
    (log / "attempt=1.log").write_text(json.dumps({"event": SSH_DENIED, "level": "info"}) + "\n")
    notifier = RecoveryNotifier(budget_seconds=5)
    notify(notifier, task_context(Exception("SSH operator error: exit status = 255")))
    outcome = notifier.last_outcome
    assert outcome is not None
    assert outcome.root_cause == "credential"
    assert outcome.text_source == "attempt log (1 lines)"
    message = stub.posts("/dagRuns")[0].body["conf"]["failure_message"]
    assert message.splitlines() == ["Exception: SSH operator error: exit status = 255", SSH_DENIED]


def test_dag_level_callbacks_are_recorded(tmp_path: Path, stub: ApiStub) -> None:
    notifier = RecoveryNotifier(budget_seconds=5)
    notify(notifier, dag_context())
    outcome = notifier.last_outcome
    assert outcome is not None
    assert outcome.incident_recorded is True
    incident = ledger(tmp_path).get_incident(outcome.fingerprint)
    assert incident is not None
    assert incident.dag_ids == ["build_vm"]
    assert "task_failure" in stub.posts("/dagRuns")[0].body["conf"]["failure_message"]


def test_without_a_connection_the_task_sdk_starts_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import ErrorType
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun

    comms = FakeComms()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    notifier = RecoveryNotifier(budget_seconds=5)
    notify(notifier, task_context(PermissionError(SSH_DENIED)))
    outcome = notifier.last_outcome
    assert outcome is not None
    assert outcome.triggered is True
    (sent,) = [m for m in comms.sent if isinstance(m, TriggerDagRun)]
    assert (sent.dag_id, sent.run_id) == ("qubinode_failure_recovery", outcome.recovery_run_id)
    assert sent.conf["fingerprint"] == outcome.fingerprint
    assert outbox(tmp_path).get(outcome.fingerprint).via == "task_sdk"  # type: ignore[union-attr]

    # the DAG processor's supervisor does not serve this request: never used there
    notify(notifier, processor_context(task_id="other_task"))
    other = notifier.last_outcome
    assert other is not None
    assert other.triggered is False
    assert other.trigger_pending is True
    assert len([m for m in comms.sent if isinstance(m, TriggerDagRun)]) == 1

    # a run that exists already counts as delivered
    comms.answer = ErrorResponse(error=ErrorType.DAGRUN_ALREADY_EXISTS)
    (record,) = outbox(tmp_path).pending()
    (done,) = deliver_pending_triggers(via="task_sdk")
    assert (done.fingerprint, done.status) == (record.fingerprint, SENT)


def test_a_dag_that_switched_auto_recovery_off_says_so(tmp_path: Path, stub: ApiStub) -> None:
    context = {**task_context(PermissionError(SSH_DENIED)), "params": {"qubinode_auto_recovery": "off"}}
    notify(RecoveryNotifier(budget_seconds=5), context)
    assert stub.posts("/dagRuns")[0].body["conf"]["enable_auto_recovery"] is False


def test_recording_only(tmp_path: Path, stub: ApiStub) -> None:
    notifier = RecoveryNotifier(budget_seconds=5, trigger_recovery=False)
    notify(notifier, task_context(PermissionError(SSH_DENIED)))
    assert notifier.last_outcome is not None
    assert notifier.last_outcome.incident_recorded is True
    assert stub.posts("/dagRuns") == []
    assert outbox(tmp_path).records() == []


def test_a_success_callback_records_nothing(tmp_path: Path) -> None:
    notifier = RecoveryNotifier(budget_seconds=3)
    notify(notifier, task_context(None, state="success"))
    assert notifier.last_outcome is not None
    assert notifier.last_outcome.stage.startswith("skipped")
    assert not (tmp_path / "ledger.db").exists()


@pytest.mark.parametrize("context", [{}, {"ti": object()}, {"exception": None, "ti": None, "dag": 42}])
def test_never_raises_on_odd_contexts(context: dict) -> None:  # type: ignore[type-arg]
    notifier = RecoveryNotifier(budget_seconds=3, trigger_recovery=False)
    notifier(context)
    assert notifier.last_outcome is not None


def test_bad_parameters_fail_at_dag_parse_time() -> None:
    with pytest.raises(ValueError, match="trigger_via"):
        RecoveryNotifier(trigger_via="smoke-signals")
    with pytest.raises(ValueError, match="budget_seconds"):
        RecoveryNotifier(budget_seconds=0)


def test_usable_on_a_task_in_default_args_and_for_a_dag() -> None:
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    notifier = RecoveryNotifier()
    with DAG(
        "qrp_callbacks",
        schedule=None,
        start_date=datetime.datetime(2024, 1, 1),
        default_args={"on_failure_callback": notifier, "on_retry_callback": notifier},
        on_failure_callback=RecoveryNotifier(),
    ) as dag:
        from_defaults = BashOperator(task_id="a", bash_command="exit 1")
        own = BashOperator(task_id="b", bash_command="exit 1", on_failure_callback=RecoveryNotifier())
    assert notifier in from_defaults.on_failure_callback
    assert isinstance(own.on_failure_callback[0], RecoveryNotifier)
    data = DagSerialization.to_dict(dag)
    assert data["dag"]["has_on_failure_callback"] is True
    tasks = {t["__var"]["task_id"]: t["__var"] for t in data["dag"]["tasks"]}
    assert tasks["a"]["has_on_failure_callback"] is True
    assert tasks["a"]["has_on_retry_callback"] is True


def test_the_outbox_finds_pending_requests_without_reading_the_rest(tmp_path: Path) -> None:
    box = outbox(tmp_path)
    for n in range(5):
        box.put(TriggerRecord(fingerprint=f"sent{n}", dag_id="d", run_id=f"r{n}", conf={}, status=SENT))
    box.put(TriggerRecord(fingerprint="waiting", dag_id="d", run_id="rw", conf={}))
    assert [r.fingerprint for r in box.pending()] == ["waiting"]
    assert [p.name for p in box.pending_directory.iterdir()] == ["waiting.json"]
    done = box.get("waiting")
    assert done is not None
    done.status = SENT
    box.put(done)
    assert box.pending() == []
    assert len(box.records()) == 6
    assert box.prune(datetime.timedelta(seconds=-1)) == 6
    assert box.records() == []
