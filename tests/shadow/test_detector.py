"""The detector's rules one by one, on small hand-made inputs (the real-parts tests run it end to end)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qubinode_recovery_provider.models import Severity, ShadowErrorType
from qubinode_recovery_provider.shadow import (
    DeclaredDomain,
    DomainInfo,
    HostInventory,
    LineageIndex,
    LineageRecord,
    RunRecord,
    ShadowErrorDetector,
    TaskRecord,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DAG, RUN = "kcli_build", "scheduled__2026-01-01T00:00:00+00:00"


def run(
    *tasks: TaskRecord | tuple[str, str], run_id: str = RUN, end: str = "2026-01-01T00:10:00Z", **kw
) -> RunRecord:
    records = [t if isinstance(t, TaskRecord) else TaskRecord(t[0], state=t[1], try_number=1) for t in tasks]
    return RunRecord(DAG, run_id, "success", end_date=end, tasks=records, **kw)


def task_events(task_id: str, *types: str, run_id: str = RUN, outputs=(), try_number: int = 1, **kw):
    return [
        LineageRecord(
            "task",
            kind,
            DAG,
            run_id,
            task_id,
            try_number=try_number,
            event_time=f"2026-01-01T00:0{i}:00",
            outputs=tuple(outputs),
            **kw,
        )
        for i, kind in enumerate(types)
    ]


def dag_events(*types: str, run_id: str = RUN, **kw) -> list[LineageRecord]:
    return [
        LineageRecord("dag", kind, DAG, run_id, event_time=f"2026-01-01T00:0{i}:30", **kw)
        for i, kind in enumerate(types)
    ]


def index(*groups: list[LineageRecord]) -> LineageIndex:
    built = LineageIndex(None)
    for group in groups:
        built.add_all(group)
    return built.finish()


def lab(**domains: str) -> HostInventory:
    return HostInventory(
        "lab", "test:///lab.xml", True, {n: DomainInfo(n, s) for n, s in domains.items()}, listed_at="now"
    )


def detect(runs, lineage=None, inventories=()):
    return ShadowErrorDetector(now=NOW).detect(runs, lineage, inventories)


def kinds(report) -> list[tuple[str, str | None, str | None]]:
    return sorted((f.type.value, f.task_id, f.resource) for f in report.findings)


WEB1 = DeclaredDomain("lab", "web1", task_id="create_vm")


def complete_run(**domains: str):
    lineage = index(
        task_events("create_vm", "START", "COMPLETE", outputs=[WEB1]),
        task_events("configure", "START", "COMPLETE"),
        dag_events("START", "COMPLETE"),
    )
    return [run(("create_vm", "success"), ("configure", "success"))], lineage, [lab(**domains)]


def test_a_correct_run_gives_nothing() -> None:
    report = detect(*complete_run(web1="running"))
    assert report.findings == []
    assert report.stats["declarations_verified"] == 1


def test_declared_vm_absent_is_vm_not_created_with_evidence() -> None:
    report = detect(*complete_run(other="running"))
    (finding,) = report.findings
    assert finding.type == ShadowErrorType.VM_NOT_CREATED
    assert (finding.dag_id, finding.run_id, finding.task_id) == (DAG, RUN, "create_vm")
    assert finding.resource == "libvirt://lab/web1"
    assert finding.severity == Severity.CRITICAL
    assert finding.detected_at == NOW
    assert any("'web1' is not among them" in e for e in finding.evidence)


@pytest.mark.parametrize(("state", "expected", "flagged"), [
    ("shutoff", "running", True),
    ("paused", "running", True),
    ("blocked", "running", False),
    ("shutoff", "defined", False),
])  # fmt: skip
def test_the_expected_state_decides_vm_not_running(state: str, expected: str, flagged: bool) -> None:
    declared = DeclaredDomain("lab", "web1", expected, "create_vm")
    lineage = index(task_events("create_vm", "START", "COMPLETE", outputs=[declared]), dag_events("COMPLETE"))
    report = detect([run(("create_vm", "success"))], lineage, [lab(web1=state)])
    assert kinds(report) == ([("vm_not_running", "create_vm", "libvirt://lab/web1")] if flagged else [])


def test_a_failed_task_promises_nothing() -> None:
    lineage = index(
        task_events("create_vm", "START", "FAIL", outputs=[WEB1]),
        task_events("report", "START", "COMPLETE"),
        dag_events("COMPLETE"),
    )
    runs = [run(("create_vm", "failed"), ("report", "success"))]
    report = detect(runs, lineage, [lab()])
    assert kinds(report) == [("state_mismatch", "create_vm", None)]  # failed task in a green run


def test_only_the_latest_run_declaring_a_vm_is_checked() -> None:
    old_run = run(("create_vm", "success"), run_id="r1", end="2026-01-01T00:01:00Z")
    new_run = run(("create_vm", "success"), run_id="r2", end="2026-01-01T00:09:00Z")
    lineage = index(
        task_events("create_vm", "COMPLETE", run_id="r1", outputs=[WEB1]),
        task_events("create_vm", "COMPLETE", run_id="r2", outputs=[WEB1]),
        dag_events("COMPLETE", run_id="r1"),
        dag_events("COMPLETE", run_id="r2"),
    )
    report = detect([new_run, old_run], lineage, [lab()])
    (finding,) = report.findings
    assert finding.run_id == "r2"
    assert any("1 earlier runs" in e for e in finding.evidence)


def test_the_param_convention_declares_vms_without_outlets() -> None:
    conf = {"qubinode_vm": [{"name": "web1", "host": "lab"}, "lab/db1", "libvirt://lab/cache1"]}
    runs = [run(("start", "success"), conf=conf)]
    lineage = index(task_events("start", "COMPLETE"), dag_events("COMPLETE"))
    report = detect(runs, lineage, [lab(web1="running", cache1="shutoff")])
    assert kinds(report) == [
        ("vm_not_created", None, "libvirt://lab/db1"),
        ("vm_not_running", None, "libvirt://lab/cache1"),
    ]
    assert {f.confidence for f in report.findings} == {0.85, 0.8}


def test_dag_default_params_count_unless_the_conf_overrides_them() -> None:
    with_default = run(("start", "success"), dag_params={"qubinode_vm": {"value": "lab/db1", "schema": {}}})
    overridden = run(("start", "success"), run_id="r2", conf={"qubinode_vm": "lab/web1"})
    overridden.dag_params = {"qubinode_vm": "lab/db1"}
    report = detect([with_default, overridden], None, [lab(web1="running")])
    assert [(f.run_id, f.resource) for f in report.findings] == [(RUN, "libvirt://lab/db1")]


def test_a_bad_param_value_is_a_warning() -> None:
    report = detect([run(("start", "success"), conf={"qubinode_vm": "a/b/c"})], None, [lab()])
    assert report.findings == []
    assert "qubinode_vm ignored" in report.warnings[0]


def test_a_run_without_any_event_is_one_lineage_missing() -> None:
    report = detect([run(("a", "success"), ("b", "success"))], index(), [])
    (finding,) = report.findings
    assert (finding.type, finding.task_id) == (ShadowErrorType.LINEAGE_MISSING, None)
    assert "no event at all" in finding.evidence[1]
    assert "2 successful tasks" in finding.evidence[2]


def test_a_successful_task_without_complete_is_lineage_missing() -> None:
    lineage = index(task_events("a", "START", "COMPLETE"), task_events("b", "START"), dag_events("COMPLETE"))
    report = detect([run(("a", "success"), ("b", "success"), ("c", "skipped"))], lineage)
    assert kinds(report) == [("lineage_missing", "b", None)]
    assert "only START" in report.findings[0].evidence[-1]


def test_empty_operators_never_emit_and_are_not_missed() -> None:
    lineage = index(task_events("a", "START", "COMPLETE"), dag_events("COMPLETE"))
    runs = [run(("a", "success"), TaskRecord("done", state="success", operator="EmptyOperator"))]
    assert detect(runs, lineage).findings == []


def test_a_missing_dag_run_complete_event_is_reported_for_the_run() -> None:
    lineage = index(task_events("a", "START", "COMPLETE"))
    report = detect([run(("a", "success"))], lineage)
    assert kinds(report) == [("lineage_missing", None, None)]
    assert report.findings[0].confidence == 0.6


def test_fail_event_for_a_successful_task_is_state_mismatch() -> None:
    lineage = index(task_events("a", "START", "FAIL", error="exit 1"), dag_events("COMPLETE"))
    report = detect([run(("a", "success"))], lineage)
    (finding,) = report.findings
    assert (finding.type, finding.task_id) == (ShadowErrorType.STATE_MISMATCH, "a")
    assert "OpenLineage errorMessage: exit 1" in finding.evidence


def test_a_retry_that_succeeded_is_not_a_mismatch() -> None:
    lineage = index(
        task_events("a", "START", "FAIL", try_number=1),
        task_events("a", "START", "COMPLETE", try_number=2),
        dag_events("COMPLETE"),
    )
    tasks = [TaskRecord("a", state="success", try_number=2)]
    assert detect([RunRecord(DAG, RUN, "success", tasks=tasks)], lineage).findings == []


def test_a_retry_whose_complete_is_missing_is_lineage_missing() -> None:
    lineage = index(task_events("a", "START", "FAIL", try_number=1), dag_events("COMPLETE"))
    tasks = [TaskRecord("a", state="success", try_number=2)]
    report = detect([RunRecord(DAG, RUN, "success", tasks=tasks)], lineage)
    assert kinds(report) == [("lineage_missing", "a", None)]


def test_dag_run_fail_event_for_a_successful_run_is_state_mismatch() -> None:
    lineage = index(task_events("a", "COMPLETE"), dag_events("START", "FAIL", dag_run_state="failed"))
    report = detect([run(("a", "success"))], lineage)
    assert kinds(report) == [("state_mismatch", None, None)]


def test_mapped_tasks_are_matched_by_map_index() -> None:
    events = [
        LineageRecord("task", kind, DAG, RUN, "build", map_index=i, try_number=1, event_time="t")
        for i in (0, 1)
        for kind in ("START", "COMPLETE")
    ]
    events.append(
        LineageRecord("task", "START", DAG, RUN, "build", map_index=2, try_number=1, event_time="t")
    )
    tasks = [TaskRecord("build", map_index=i, state="success", try_number=1) for i in range(3)]
    report = detect([RunRecord(DAG, RUN, "success", tasks=tasks)], index(events, dag_events("COMPLETE")))
    (finding,) = report.findings
    assert (finding.task_id, finding.type) == ("build", ShadowErrorType.LINEAGE_MISSING)
    assert "build[2]" in finding.evidence[1]


def test_announced_tasks_that_never_reported_are_lineage_incomplete() -> None:
    announced = {
        "a": ("airflow.providers.standard.operators.bash.BashOperator", True),
        "b": ("airflow.providers.standard.operators.bash.BashOperator", True),
        "audit": ("airflow.providers.standard.operators.python.PythonOperator", True),
        "quiet": ("airflow.providers.standard.operators.bash.BashOperator", False),
        "skipped_one": ("airflow.providers.standard.operators.bash.BashOperator", True),
        "noop": ("airflow.providers.standard.operators.empty.EmptyOperator", True),
    }
    lineage = index(
        dag_events("START", announced=announced),
        task_events("a", "START", "COMPLETE"),
        task_events("b", "START"),
        dag_events("COMPLETE"),
    )
    runs = [run(("a", "success"), ("b", "success"), ("skipped_one", "skipped"))]
    report = detect(runs, lineage)
    assert kinds(report) == [("lineage_incomplete", None, None), ("lineage_missing", "b", None)]
    incomplete = next(f for f in report.findings if f.type == ShadowErrorType.LINEAGE_INCOMPLETE)
    assert incomplete.evidence[-1] == "no event from: audit"
    assert "announces 4 tasks" in incomplete.evidence[1]


def test_without_task_instances_the_airflow_state_facet_stands_in() -> None:
    lineage = index(
        task_events("a", "START", "COMPLETE"),
        dag_events("COMPLETE", tasks_state={"a": "success", "b": "failed"}),
    )
    report = detect([RunRecord(DAG, RUN, "success")], lineage)
    (finding,) = report.findings
    assert (finding.type, finding.task_id) == (ShadowErrorType.STATE_MISMATCH, "b")
    assert "OpenLineage airflowState" in finding.evidence[1]


def test_failed_runs_are_not_shadow_errors() -> None:
    failed = RunRecord(DAG, RUN, "failed", tasks=[TaskRecord("a", state="failed")])
    report = detect([failed], index())
    assert report.findings == []
    assert report.stats["runs_ignored"] == 1


def test_unreachable_host_is_a_finding_and_its_vms_stay_unverified() -> None:
    runs, lineage, _ = complete_run()
    dead = HostInventory("lab", "qemu+ssh://lab/system", False, error="no answer within 20 s")
    report = detect(runs, lineage, [dead])
    (finding,) = report.findings
    assert finding.type == ShadowErrorType.INVENTORY_UNREACHABLE
    assert finding.resource == "libvirt://lab"
    assert "1 declared VMs left unverified: libvirt://lab/web1" in finding.evidence[-1]
    assert report.stats["declarations_unverified"] == 1


def test_a_host_without_inventory_is_a_warning() -> None:
    runs, lineage, _ = complete_run()
    report = detect(runs, lineage, [])
    assert report.findings == []
    assert "no libvirt connection for that host" in report.warnings[0]


def test_hosts_are_matched_by_alias() -> None:
    runs, lineage, _ = complete_run()
    inventory = HostInventory(
        "kvm1", "qemu+ssh://lab/system", True, {"web1": DomainInfo("web1", "running")}, aliases=("lab",)
    )
    assert detect(runs, lineage, [inventory]).findings == []


def test_without_lineage_the_lineage_rules_are_skipped() -> None:
    unavailable = index()
    unavailable.report.available = False
    report = detect([run(("a", "success"))], unavailable)
    assert report.findings == []


def test_dedup_keys_are_stable_between_scans() -> None:
    first = detect(*complete_run(other="running")).findings
    second = ShadowErrorDetector().detect(*complete_run(other="running")).findings
    assert [f.dedup_key for f in first] == [f.dedup_key for f in second]
