"""Shadow errors: runs Airflow calls a success although the VM, the lineage or the task states disagree.

Plain Python, no Airflow import (the CLI and the benchmarks use it directly)::

    from qubinode_recovery_provider.airflow_api import AirflowAPIClient, APISettings
    from qubinode_recovery_provider.shadow import (
        AirflowRunsSource, FileLineageSource, InventoryTarget, parse_since, run_scan,
    )

    settings = APISettings.from_url("http://airflow:8080", username="admin", password="...")
    with AirflowAPIClient(settings) as client:
        result = run_scan(
            AirflowRunsSource(client),
            FileLineageSource("/opt/airflow/openlineage/events.jsonl"),
            targets=[InventoryTarget("qemu+ssh://root@kvm1/system", host="kvm1")],
            since=parse_since("1h"),
        )
    for finding in result.findings:        # ShadowError
        print(finding.type, finding.dag_id, finding.resource, finding.evidence)

:class:`ShadowErrorDetector` is the pure core (records in, findings out); the sources read runs
(:class:`AirflowRunsSource`, :class:`RunsFileSource`), lineage (:class:`FileLineageSource`,
:class:`MarquezLineageSource`) and libvirt hosts (:func:`read_inventories`).
"""

from __future__ import annotations

from qubinode_recovery_provider.shadow.detector import DetectionReport, ShadowErrorDetector
from qubinode_recovery_provider.shadow.domains import (
    PARAM_KEY,
    DomainURIError,
    declarations_from_params,
    domain_uri,
    parse_domain_uri,
)
from qubinode_recovery_provider.shadow.inventory import (
    InventoryTarget,
    list_domains,
    parse_target,
    read_inventories,
    read_inventory,
    uri_host,
)
from qubinode_recovery_provider.shadow.lineage import LineageIndex, LineageRecord, LineageSource
from qubinode_recovery_provider.shadow.lineage_file import FileLineageSource
from qubinode_recovery_provider.shadow.marquez import MarquezLineageSource
from qubinode_recovery_provider.shadow.records import (
    DeclaredDomain,
    DomainInfo,
    HostInventory,
    RunRecord,
    TaskRecord,
)
from qubinode_recovery_provider.shadow.runs import AirflowRunsSource, RunsFileSource, RunsSourceError
from qubinode_recovery_provider.shadow.scan import (
    ScanResult,
    lineage_source_from,
    parse_duration,
    parse_since,
    run_scan,
)

__all__ = [
    "PARAM_KEY",
    "AirflowRunsSource",
    "DeclaredDomain",
    "DetectionReport",
    "DomainInfo",
    "DomainURIError",
    "FileLineageSource",
    "HostInventory",
    "InventoryTarget",
    "LineageIndex",
    "LineageRecord",
    "LineageSource",
    "MarquezLineageSource",
    "RunRecord",
    "RunsFileSource",
    "RunsSourceError",
    "ScanResult",
    "ShadowErrorDetector",
    "TaskRecord",
    "declarations_from_params",
    "domain_uri",
    "lineage_source_from",
    "list_domains",
    "parse_domain_uri",
    "parse_duration",
    "parse_since",
    "parse_target",
    "read_inventories",
    "read_inventory",
    "run_scan",
    "uri_host",
]
