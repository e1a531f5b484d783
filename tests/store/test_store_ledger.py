"""The ledger's API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from store_workers import make_attempt, make_diagnosis, make_event

from qubinode_recovery_provider.models import (
    AttemptOutcome,
    IncidentState,
    RecoveryActionType,
    RecoveryOption,
    RecoveryPlan,
    RootCause,
    ShadowError,
    ShadowErrorType,
    utcnow,
)
from qubinode_recovery_provider.store import Ledger, LedgerURLError
from qubinode_recovery_provider.store import schema as t


def test_record_failure_creates_then_counts_occurrences(ledger: Ledger) -> None:
    first = ledger.record_failure(make_event(dag_id="build_vm", host="kvm-01"), make_diagnosis())
    assert first.id is not None
    assert first.occurrences == 1
    assert first.state is IncidentState.OPEN
    second = ledger.record_failure(make_event(dag_id="deploy_vault", host="kvm-02"), make_diagnosis())
    third = ledger.record_failure(make_event(dag_id="build_vm", host=None), make_diagnosis())
    assert second.id == third.id == first.id
    assert third.occurrences == 3
    assert third.dag_ids == ["build_vm", "deploy_vault"]
    assert third.hosts == ["kvm-01", "kvm-02"]
    assert third.root_cause is RootCause.VIRTUALIZATION
    with ledger.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(t.diagnoses)) == 3


def test_first_and_last_seen_follow_event_time_not_arrival(ledger: Ledger) -> None:
    now = utcnow()
    ledger.record_failure(make_event(when=now), make_diagnosis(summary="newest"))
    ledger.record_failure(make_event(when=now - timedelta(hours=2)), make_diagnosis(summary="older"))
    incident = ledger.get_incident("fp-virt-0001")
    assert incident is not None
    assert incident.first_seen == now - timedelta(hours=2)
    assert incident.last_seen == now
    assert incident.summary == "newest"  # a late-arriving older event does not overwrite the summary


def test_resolved_incident_reopens_escalated_stays(ledger: Ledger) -> None:
    ledger.record_failure(make_event(), make_diagnosis("fp-a"))
    ledger.record_failure(make_event(), make_diagnosis("fp-b"))
    ledger.set_incident_state("fp-a", IncidentState.RESOLVED)
    ledger.set_incident_state("fp-b", IncidentState.ESCALATED)
    assert ledger.get_incident("fp-a").state is IncidentState.RESOLVED
    assert ledger.record_failure(make_event(), make_diagnosis("fp-a")).state is IncidentState.OPEN
    assert ledger.record_failure(make_event(), make_diagnosis("fp-b")).state is IncidentState.ESCALATED


def test_get_incident_by_id_fingerprint_or_numeric_string(ledger: Ledger) -> None:
    incident = ledger.record_failure(make_event(), make_diagnosis("abc123"))
    assert ledger.get_incident(incident.id).fingerprint == "abc123"
    assert ledger.get_incident(str(incident.id)).fingerprint == "abc123"
    assert ledger.get_incident("abc123").id == incident.id
    assert ledger.get_incident("nope") is None
    assert ledger.get_incident(999999) is None


def test_list_incidents_filters_orders_and_limits(ledger: Ledger) -> None:
    now = utcnow()
    for n in range(5):
        ledger.record_failure(make_event(when=now - timedelta(minutes=n)), make_diagnosis(f"fp-{n}"))
    ledger.set_incident_state("fp-3", IncidentState.RECOVERING)
    assert [i.fingerprint for i in ledger.list_incidents()] == ["fp-0", "fp-1", "fp-2", "fp-3", "fp-4"]
    assert [i.fingerprint for i in ledger.list_incidents(limit=2)] == ["fp-0", "fp-1"]
    assert [i.fingerprint for i in ledger.list_incidents(state=IncidentState.RECOVERING)] == ["fp-3"]
    assert ledger.list_incidents(state=IncidentState.RESOLVED) == []


def test_begin_attempt_claims_a_key_once_and_finish_records_outcome(ledger: Ledger) -> None:
    assert ledger.begin_attempt(make_attempt("plan-1:step-0")) is True
    assert ledger.begin_attempt(make_attempt("plan-1:step-0")) is False
    ledger.finish_attempt("plan-1:step-0", AttemptOutcome.SUCCEEDED, "libvirtd active")
    attempt = ledger.get_attempt("plan-1:step-0")
    assert attempt.outcome is AttemptOutcome.SUCCEEDED
    assert attempt.detail == "libvirtd active"
    assert attempt.finished_at is not None
    assert attempt.action_args == {"unit": "libvirtd.service"}


def test_attempts_filters_for_the_circuit_breaker(ledger: Ledger) -> None:
    old = utcnow() - timedelta(hours=3)
    ledger.begin_attempt(make_attempt("k-old", started_at=old))
    ledger.begin_attempt(make_attempt("k-real"))
    ledger.begin_attempt(make_attempt("k-dry", dry_run=True))
    ledger.begin_attempt(make_attempt("k-blocked"))
    ledger.finish_attempt("k-blocked", AttemptOutcome.BLOCKED, "circuit open")
    ledger.begin_attempt(make_attempt("k-other-host", host="kvm-09"))
    ledger.begin_attempt(make_attempt("k-other-fp", fingerprint="fp-other"))

    keys = [a.idempotency_key for a in ledger.attempts(fingerprint="fp-virt-0001")]
    assert keys == ["k-old", "k-real", "k-other-host"]
    recent = ledger.attempts(fingerprint="fp-virt-0001", since=utcnow() - timedelta(hours=1))
    assert [a.idempotency_key for a in recent] == ["k-real", "k-other-host"]
    assert [a.idempotency_key for a in ledger.attempts(host="kvm-09")] == ["k-other-host"]
    everything = ledger.attempts(automatic_only=False)
    assert len(everything) == 6


def test_action_outcomes_count_real_successes_and_failures(ledger: Ledger) -> None:
    for n, outcome in enumerate([AttemptOutcome.SUCCEEDED, AttemptOutcome.SUCCEEDED, AttemptOutcome.FAILED]):
        ledger.begin_attempt(make_attempt(f"k{n}"))
        ledger.finish_attempt(f"k{n}", outcome)
    ledger.begin_attempt(make_attempt("dry", dry_run=True))
    ledger.finish_attempt("dry", AttemptOutcome.SUCCEEDED)
    assert ledger.action_outcomes("fp-virt-0001", "restart_service") == (2, 1)
    assert ledger.action_outcomes("fp-virt-0001", "other_action") == (0, 0)


def test_checkpoints_latest_wins(ledger: Ledger) -> None:
    assert ledger.latest_checkpoint("build_vm", "create_vm") is None
    ledger.record_checkpoint("build_vm", "create_vm", "run-1", {"step": 1, "vms": ["a"]}, host="kvm-01")
    ledger.record_checkpoint("build_vm", "create_vm", "run-1", {"step": 2, "vms": ["a", "b"]})
    ledger.record_checkpoint("build_vm", "create_vm", "run-2", {"step": 1})
    assert ledger.latest_checkpoint("build_vm", "create_vm") == {"step": 1}
    assert ledger.latest_checkpoint("build_vm", "create_vm", "run-1") == {"step": 2, "vms": ["a", "b"]}
    records = ledger.checkpoints("build_vm", run_id="run-1")
    assert [r["state"]["step"] for r in records] == [2, 1]
    assert records[1]["host"] == "kvm-01"


def test_plans_and_everything_show_in_incident_detail(ledger: Ledger) -> None:
    event = make_event()
    incident = ledger.record_failure(event, make_diagnosis())
    option = RecoveryOption(
        type=RecoveryActionType.RETRY,
        title="Restart libvirtd and retry",
        priority=1,
        confidence=0.8,
        automatic=True,
        action="restart_service",
    )
    plan = RecoveryPlan(
        fingerprint="fp-virt-0001",
        root_cause=RootCause.VIRTUALIZATION,
        options=[option],
        recommended_index=0,
        dag_id=event.dag_id,
        run_id=event.run_id,
    )
    ledger.record_plan(plan)
    ledger.begin_attempt(make_attempt("p1:0"))
    ledger.enqueue_escalation("fp-virt-0001", "libvirtd keeps failing", "body", ["qubinode"])
    ledger.record_checkpoint(event.dag_id, event.task_id, event.run_id, {"created": ["vm1"]})
    ledger.record_checkpoint(event.dag_id, event.task_id, "unrelated-run", {"created": []})

    detail = ledger.incident_detail(incident.id)
    json.dumps(detail)  # JSON-ready
    assert detail["incident"]["fingerprint"] == "fp-virt-0001"
    assert detail["diagnoses"][0]["diagnosis"]["root_cause"] == "virtualization"
    assert detail["diagnoses"][0]["exception_type"] == "AirflowException"
    assert detail["plans"][0]["options"][0]["title"] == "Restart libvirtd and retry"
    assert detail["attempts"][0]["idempotency_key"] == "p1:0"
    assert detail["escalations"][0]["title"] == "libvirtd keeps failing"
    assert [c["state"] for c in detail["checkpoints"]] == [{"created": ["vm1"]}]
    assert ledger.incident_detail("missing") == {}


def test_recorded_diagnosis_prefers_the_same_run_then_the_newest(ledger: Ledger) -> None:
    ledger.record_failure(make_event(run_id="run-a", host="kvm-01"), make_diagnosis(summary="in run a"))
    ledger.record_failure(make_event(run_id="run-b", host="kvm-02"), make_diagnosis(summary="in run b"))

    same = ledger.recorded_diagnosis("fp-virt-0001", dag_id="build_vm", run_id="run-a", task_id="create_vm")
    assert same is not None
    assert (same.diagnosis.summary, same.host) == ("in run a", "kvm-01")
    other_run = ledger.recorded_diagnosis("fp-virt-0001", dag_id="build_vm", run_id="run-c")
    assert other_run is not None
    assert other_run.diagnosis.summary == "in run b"
    assert (
        ledger.recorded_diagnosis("fp-virt-0001", dag_id="build_vm", run_id="run-c", same_run_only=True)
        is None
    )
    assert ledger.recorded_diagnosis("fp-unknown") is None


def test_a_recorded_diagnosis_that_no_longer_validates_reads_as_none(ledger: Ledger) -> None:
    ledger.record_failure(make_event(run_id="run-a"), make_diagnosis())
    with ledger.engine.begin() as conn:
        conn.execute(t.diagnoses.update().values(diagnosis={"root_cause": "not-a-cause"}))
    assert ledger.recorded_diagnosis("fp-virt-0001", run_id="run-a") is None


def test_escalation_outbox(ledger: Ledger) -> None:
    first = ledger.enqueue_escalation("fp-1", "title 1", "body 1", ["a", "b"])
    second = ledger.enqueue_escalation("fp-2", "title 2", "body 2", [])
    assert first > 0
    assert [e["id"] for e in ledger.pending_escalations()] == [first, second]
    ledger.mark_escalation_failed(first, "GitHub said 502")
    ledger.mark_escalated(second, "https://github.com/o/r/issues/7")
    pending = ledger.pending_escalations()
    assert [(e["id"], e["tries"], e["last_error"], e["labels"]) for e in pending] == [
        (first, 1, "GitHub said 502", ["a", "b"])
    ]


def test_shadow_errors_are_deduplicated(ledger: Ledger) -> None:
    finding = ShadowError(
        type=ShadowErrorType.VM_NOT_CREATED,
        dag_id="build_vm",
        run_id="r1",
        task_id="create_vm",
        resource="libvirt://kvm-01/vm1",
        confidence=0.7,
        evidence=["no domain vm1"],
    )
    row_id, is_new = ledger.record_shadow_error(finding)
    assert is_new is True
    again = finding.model_copy(update={"confidence": 0.9, "evidence": ["still no domain vm1"]})
    assert ledger.record_shadow_error(again) == (row_id, False)
    other = finding.model_copy(update={"run_id": "r2"})
    assert ledger.record_shadow_error(other)[1] is True
    stored = {s["run_id"]: s for s in ledger.shadow_errors()}
    assert stored["r1"]["seen_count"] == 2
    assert stored["r1"]["confidence"] == 0.9
    assert stored["r1"]["evidence"] == ["still no domain vm1"]


def test_purge_removes_only_old_rows(ledger: Ledger) -> None:
    old = utcnow() - timedelta(days=120)
    ledger.record_failure(make_event(when=old), make_diagnosis("fp-old"))
    ledger.record_failure(make_event(), make_diagnosis("fp-new"))
    ledger.begin_attempt(make_attempt("old-done", started_at=old))
    ledger.finish_attempt("old-done", AttemptOutcome.SUCCEEDED)
    ledger.begin_attempt(make_attempt("old-pending", started_at=old))
    ledger.record_failure(make_event(when=old), make_diagnosis("fp-recovering"))
    ledger.set_incident_state("fp-recovering", IncidentState.RECOVERING)

    deleted = ledger.purge(90)
    # fp-old (incident, dag, host, diagnosis), fp-recovering's old diagnosis, the finished attempt
    assert deleted == 6
    assert ledger.get_incident("fp-old") is None
    assert ledger.get_incident("fp-new") is not None
    assert ledger.get_incident("fp-recovering") is not None
    assert [a.idempotency_key for a in ledger.attempts(automatic_only=False)] == ["old-pending"]
    assert ledger.purge(90) == 0


def test_purge_defaults_to_retention_days(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__RETENTION_DAYS", "1")
    ledger.record_failure(make_event(when=utcnow() - timedelta(days=2)), make_diagnosis("fp-2d"))
    assert ledger.purge() > 0
    assert ledger.get_incident("fp-2d") is None
    with pytest.raises(ValueError):
        ledger.purge(-1)


def test_first_use_migrates_an_empty_database(ledger_url: str, tmp_path: Path) -> None:
    with Ledger(ledger_url, tmp_path / "spool", auto_flush_interval=0) as fresh:
        assert fresh.list_incidents() == []
        assert fresh.record_failure(make_event(), make_diagnosis()).id is not None


@pytest.mark.parametrize("url", ["not a url", "mysql://u@h/db", "oracle://x"])
def test_bad_urls_are_rejected(url: str, tmp_path: Path) -> None:
    with pytest.raises(LedgerURLError):
        Ledger(url, tmp_path)


def test_postgres_scheme_uses_psycopg(tmp_path: Path) -> None:
    assert Ledger("postgres://u@h/db", tmp_path).url.drivername == "postgresql+psycopg"
    assert Ledger("postgresql://u@h/db", tmp_path).url.drivername == "postgresql+psycopg"
