from __future__ import annotations

from pathlib import Path

from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary
from qubinode_recovery_provider.diagnosis.analyzer import Calibration
from qubinode_recovery_provider.models import (
    Diagnosis,
    DiagnosticContext,
    DiskUsage,
    FailureEvent,
    Health,
    ResourceSnapshot,
    RootCause,
    ServiceHealth,
)

NOISE = [f"TASK [step {i}] ok: [hypervisor] => (item=vm-{i})" for i in range(300)]


def _log(cause_at: int, cause: str, last: str) -> str:
    lines = list(NOISE)
    lines[cause_at] = cause
    lines.append(last)
    return "\n".join(lines)


def test_cause_far_above_a_timeout_wins(small_analyzer: FailureAnalyzer) -> None:
    text = _log(20, "qemu-img: error writing: No space left on device", "Operation timed out after 600s")
    d = small_analyzer.analyze(text)
    assert d.root_cause is RootCause.STORAGE
    assert d.retryable is False
    assert [m.pattern_id for m in d.matched_patterns] == ["unitdisk_001", "unittimeout_001"]
    assert d.matched_patterns[0].line_number == 21
    assert "No space left on device" in d.matched_patterns[0].evidence


def test_only_a_symptom_is_less_certain_than_a_cause(small_analyzer: FailureAnalyzer) -> None:
    symptom = small_analyzer.analyze("Operation timed out after 600s")
    cause = small_analyzer.analyze("error: No space left on device")
    assert symptom.root_cause is RootCause.TIMEOUT
    assert symptom.confidence < cause.confidence


def test_unknown_failure_is_grouped_by_its_last_error_line(small_analyzer: FailureAnalyzer) -> None:
    a = small_analyzer.analyze("step 1\n2026-11-02T10:00:01Z ERROR frobnicator 42 exploded\nbye")
    b = small_analyzer.analyze("step 9\n2026-11-28T23:59:59Z ERROR frobnicator 7 exploded\nbye")
    assert a.root_cause is RootCause.UNKNOWN
    assert a.retryable is None
    assert a.template == "frobnicator <number> exploded"
    assert a.fingerprint == b.fingerprint
    assert a.confidence <= 0.5


def test_empty_text_is_unknown_not_an_error(small_analyzer: FailureAnalyzer) -> None:
    d = small_analyzer.analyze("")
    assert d.root_cause is RootCause.UNKNOWN


def test_same_failure_in_different_runs_shares_a_fingerprint(small_analyzer: FailureAnalyzer) -> None:
    a = small_analyzer.analyze("cp: error writing '/tmp/tmpab12/vm-1.qcow2': No space left on device")
    b = small_analyzer.analyze("cp: error writing '/tmp/tmpzz99/vm-1.qcow2': No space left on device")
    c = small_analyzer.analyze("Operation timed out")
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_service_down_on_the_host_corroborates(small_analyzer: FailureAnalyzer) -> None:
    text = "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory"
    down = DiagnosticContext(
        services=[ServiceHealth(name="libvirtd.service", kind="systemd", state=Health.DOWN, detail="failed")]
    )
    healthy = DiagnosticContext(
        services=[ServiceHealth(name="libvirtd", kind="systemd", state=Health.HEALTHY)]
    )
    plain = small_analyzer.analyze(text)
    corroborated = small_analyzer.analyze(text, down)
    contradicted = small_analyzer.analyze(text, healthy)
    assert corroborated.confidence > plain.confidence > contradicted.confidence
    assert corroborated.corroboration == ["systemd libvirtd.service is down: failed"]
    assert contradicted.contradictions == ["systemd libvirtd is healthy now"]
    assert plain.affected_services == ["libvirtd"]


def test_a_retry_claim_needs_a_transient_signal_on_the_decisive_line(small_analyzer: FailureAnalyzer) -> None:
    """The fixture pattern says ``retryable: true``; a missing socket is no evidence that the cause
    passes, a reset connection is, and then the pattern's retry delay applies."""
    missing = small_analyzer.analyze(
        "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory"
    )
    reset = small_analyzer.analyze(
        "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Connection reset by peer"
    )
    assert (missing.retryable, missing.retry_delay_seconds) == (None, None)
    assert (reset.retryable, reset.retry_delay_seconds) == (True, 90)


def test_full_disk_corroborates_a_storage_diagnosis(small_analyzer: FailureAnalyzer) -> None:
    context = DiagnosticContext(
        resources=ResourceSnapshot(state=Health.DOWN, disks=[DiskUsage(mount="/var", percent=99.0)])
    )
    d = small_analyzer.analyze("No space left on device", context)
    assert d.corroboration == ["/var is 99% full"]


def test_failure_event_carries_its_identity(small_analyzer: FailureAnalyzer) -> None:
    event = FailureEvent(
        dag_id="deploy_vm",
        task_id="create",
        run_id="manual__1",
        exception_type="OSError",
        exception_text="[Errno 28] No space left on device",
        log_tail=["copying image"],
    )
    d = small_analyzer.analyze(event, diagnosis_id="x1")
    assert (d.id, d.dag_id, d.task_id, d.run_id) == ("x1", "deploy_vm", "create", "manual__1")
    assert d.root_cause is RootCause.STORAGE
    assert d.matched_patterns[0].line_number == 2


def test_log_file_and_text_agree(small_analyzer: FailureAnalyzer, tmp_path: Path) -> None:
    text = _log(5, "No space left on device", "timed out")
    path = tmp_path / "attempt=1.log"
    path.write_text(text)
    by_file = small_analyzer.analyze_file(path)
    by_text = small_analyzer.analyze(text)
    assert by_file.model_dump(exclude={"diagnosed_at"}) == by_text.model_dump(exclude={"diagnosed_at"})


def test_diagnosis_round_trips_through_json_and_tolerates_new_fields(small_analyzer: FailureAnalyzer) -> None:
    d = small_analyzer.analyze("No space left on device")
    data = d.to_json_dict()
    assert data["schema_version"] == 1
    assert Diagnosis.model_validate(data) == d
    data["field_from_a_newer_version"] = {"x": 1}
    assert Diagnosis.model_validate(data).fingerprint == d.fingerprint


BASH_FAILED = (
    "airflow.exceptions.AirflowException: Bash command failed. The command returned a non-zero exit code 1."
)


def test_a_bare_wrapper_line_is_unknown_but_anchors_the_fingerprint(analyzer: FailureAnalyzer) -> None:
    d = analyzer.analyze("[2026-11-02, 10:14:05 UTC] {taskinstance.py:3311} ERROR - " + BASH_FAILED)
    assert d.root_cause is RootCause.UNKNOWN
    assert d.retryable is None
    assert [m.pattern_id for m in d.matched_patterns] == ["airflow_012"]
    assert d.template.startswith("airflow.exceptions.AirflowException: Bash command failed")


def test_the_cause_above_a_wrapper_line_wins(analyzer: FailureAnalyzer) -> None:
    text = "Deploying vm vm1\nerror: No space left on device\n" + BASH_FAILED
    d = analyzer.analyze(text)
    assert d.root_cause is RootCause.STORAGE
    assert d.matched_patterns[0].line_number == 2


def test_a_second_line_of_the_same_cause_raises_the_confidence(small_analyzer: FailureAnalyzer) -> None:
    once = small_analyzer.analyze("No space left on device")
    twice = small_analyzer.analyze("No space left on device\nwrite error: No space left on device")
    assert twice.confidence > once.confidence  # a second line agrees: more evidence


def _storage_analyzer(*regexes: str) -> FailureAnalyzer:
    """An analyzer whose only patterns are storage causes with these regexes."""
    library = PatternLibrary()
    patterns = [
        {
            "id": f"unitstorage_{number:03d}",
            "regex": regex,
            "category": "storage",
            "severity": "high",
            "retryable": False,
            "description": "The file system is full",
            "examples": [{"text": "cp: No space left on device", "source": "GNU coreutils"}],
            "near_misses": [{"text": "cp: No such file or directory", "source": "GNU coreutils"}],
        }
        for number, regex in enumerate(regexes, start=1)
    ]
    library.add_pack({"pack": "unit_storage", "patterns": patterns})
    return FailureAnalyzer(library, Calibration())


def test_patterns_matching_one_line_count_as_one_piece_of_evidence() -> None:
    line = "write error: No space left on device"
    alone = _storage_analyzer("No space left on device").analyze(line)
    together = _storage_analyzer("No space left on device", "left on device").analyze(line)
    assert [(m.pattern_id, m.line_number) for m in together.matched_patterns] == [
        ("unitstorage_001", 1),
        ("unitstorage_002", 1),
    ]
    assert together.confidence == alone.confidence


def test_an_error_level_line_outweighs_a_warning_level_line(small_analyzer: FailureAnalyzer) -> None:
    text = (
        "WARNING: ssh: connect to host 10.0.0.5 port 22: Connection timed out\n"
        "ERROR: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory\n"
    )
    assert small_analyzer.analyze(text).root_cause is RootCause.SERVICE_DEPENDENCY
