"""Shadow findings quote what others wrote (OpenLineage error messages, libvirt errors, source
warnings): none of it reaches the evidence, the escalation body or the recovery conf unredacted."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from shadow_site import REAL_EVENTS
from support.canaries import CanaryCase, assert_no_canary, cases

from qubinode_recovery_provider.escalation.findings import finding_body
from qubinode_recovery_provider.models import ShadowErrorType
from qubinode_recovery_provider.shadow import (
    FileLineageSource,
    HostInventory,
    LineageIndex,
    LineageRecord,
    RunRecord,
    ShadowErrorDetector,
    TaskRecord,
)
from qubinode_recovery_provider.shadow.handoff import recovery_conf
from qubinode_recovery_provider.shadow.records import SourceReport

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DAG, RUN = "kcli_build", "scheduled__2026-11-30T00:00:00+00:00"
SNAPSHOT_DAG, SNAPSHOT_RUN = "example_kcli_snapshot_lab", "manual__2026-11-28T06:55:31.464193+00:00"
CASES = cases()


def _fail_lineage(error: str) -> LineageIndex:
    index = LineageIndex(None)
    index.add_all(
        [
            LineageRecord(
                "task", "START", DAG, RUN, "create_vm", try_number=1, event_time="2026-11-30T00:01:00"
            ),
            LineageRecord(
                "task",
                "FAIL",
                DAG,
                RUN,
                "create_vm",
                try_number=1,
                event_time="2026-11-30T00:02:00",
                error=error,
            ),
            LineageRecord("dag", "COMPLETE", DAG, RUN, event_time="2026-11-30T00:03:00"),
        ]
    )
    return index.finish()


def _texts_of(finding: object) -> list[str]:
    return [*finding.evidence, finding_body(finding), json.dumps(recovery_conf(finding, dry_run=True))]  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_an_openlineage_error_message_is_redacted_in_the_evidence(case: CanaryCase) -> None:
    run = RunRecord(
        DAG,
        RUN,
        "success",
        end_date="2026-11-30T00:04:00Z",
        tasks=[TaskRecord("create_vm", state="success", try_number=1)],
    )
    report = ShadowErrorDetector(now=NOW).detect([run], _fail_lineage("kcli failed: " + case.text), [])
    (finding,) = report.findings
    assert finding.type == ShadowErrorType.STATE_MISMATCH
    assert any(line.startswith("OpenLineage errorMessage: kcli failed: ") for line in finding.evidence)
    for text in _texts_of(finding):
        assert_no_canary(text, case.canaries)


def test_a_real_fail_event_carrying_secrets_gives_redacted_findings(tmp_path: Path) -> None:
    chosen = [c for c in CASES if c.id in {"pgpassword_env", "mysql_p_attached", "curl_u"}]
    message = "Bash command failed. " + " ; ".join(c.text for c in chosen)
    canaries = [c for case in chosen for c in case.canaries]
    # without redaction every canary would be inside the 300 characters the evidence keeps
    assert all(message.index(c) + len(c) <= 300 for c in canaries)
    lines = []
    for line in REAL_EVENTS.read_text().splitlines():
        event = json.loads(line) if line.strip() else None
        if event and event["eventType"] == "FAIL" and "errorMessage" in event["run"]["facets"]:
            event["run"]["facets"]["errorMessage"]["message"] = message
            line = json.dumps(event)
        lines.append(line)
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    assert "CANARY-pgpassword" in events.read_text()

    lineage = FileLineageSource(events).read(None)
    tasks = [
        TaskRecord("snapshot_vms", state="success", try_number=1),
        TaskRecord("report", state="success", try_number=1),
    ]
    run = RunRecord(SNAPSHOT_DAG, SNAPSHOT_RUN, "success", end_date="2026-11-28T06:56:00Z", tasks=tasks)
    report = ShadowErrorDetector(now=NOW).detect([run], lineage, [])
    quoted = [f for f in report.findings if any("OpenLineage errorMessage" in line for line in f.evidence)]
    assert quoted, [f.evidence for f in report.findings]
    for finding in quoted:
        assert any("Bash command failed. PGPASSWORD=***" in line for line in finding.evidence)
        for text in _texts_of(finding):
            assert_no_canary(text, canaries)


def test_a_libvirt_error_quoting_credentials_is_redacted() -> None:
    secret = "CANARY-libvirt-5e1f0a2b"
    dead = HostInventory(
        "lab",
        f"qemu+ssh://root:{secret}@lab/system",
        False,
        error=f"Cannot recv data: qemu+ssh://root:{secret}@lab/system: Connection reset by peer",
    )
    report = ShadowErrorDetector(now=NOW).detect([], None, [dead])
    (finding,) = report.findings
    assert finding.type == ShadowErrorType.INVENTORY_UNREACHABLE
    assert "Connection reset by peer" in finding.evidence[0]
    for text in _texts_of(finding):
        assert_no_canary(text, [secret])


def test_source_warnings_are_redacted() -> None:
    source = SourceReport("marquez")
    source.warn(
        "marquez: http://admin:CANARY-marquez-77aa12@marquez.lab:5000 unusable: 401 token=CANARY-tok-9911aa"
    )
    assert source.warnings == ["marquez: http://admin:***@marquez.lab:5000 unusable: 401 token=***"]
