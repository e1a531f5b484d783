"""Shadow scan: find runs Airflow calls a success although the VM, the lineage or the task states disagree.

Every ``[qubinode_recovery] shadow_scan_schedule`` (default every 15 minutes) the scan checks the runs
that ended in the run's data interval (shifted back two minutes, so that late lineage events have
arrived), incrementally: each source is read from its watermark in the ledger (the runs from the last
end date seen, the lineage file from its last offset), so the cost follows new work, not history.
Triggered by hand, the **window** param (``2h``, ``1d``) scans that far back instead (watermarks left
as they are); **full_rescan** reads the whole window and stores fresh watermarks.

1. ``list_host`` -- one mapped task per ``libvirt`` connection in ``libvirt_conn_ids``: a single bulk
   listing of the host's domains, abandoned after the connection's timeout (an unreachable host becomes
   an ``inventory_unreachable`` finding, never a failed task).
2. ``scan`` -- the finished runs (Airflow REST API v2 through the ``recovery_conn_id`` connection),
   the OpenLineage events (``marquez_url`` or ``lineage_file``) and the listings go through the shadow
   detector; where kcli is set up (``kcli_config`` exists, ``kcli_command`` is found, ``kcli_check``
   on), kcli's own view of each listed host that is a kcli client is compared with libvirt's
   (``kcli_check_failed`` when kcli fails or disagrees); findings are recorded in the ledger (repeats
   are deduplicated), new ones of high severity are queued for escalation.
3. ``start_recovery`` -- one ``qubinode_failure_recovery`` run per new critical finding, when the
   **start_recovery** param is on (default: ``auto_recovery_enabled``).
4. ``deliver_escalations`` -- with ``github_repository`` set, the escalation outbox goes to GitHub
   issues: the new findings, and whatever an outage or a rate limit left behind (docs/escalation.md).

See docs/shadow.md for the findings and how to declare the VMs a task must leave behind.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Param, get_current_context, task

from qubinode_recovery_provider import config
from qubinode_recovery_provider.operators.escalate import DeliverEscalationsOperator

log = logging.getLogger(__name__)

SETTLE = timedelta(minutes=2)
MANUAL_WINDOW = timedelta(hours=1)


@task
def scan_window() -> dict[str, str]:
    """The window of run end times to scan, from the param or the data interval."""
    from qubinode_recovery_provider.shadow import parse_duration

    context = get_current_context()
    window = str(context["params"].get("window") or "").strip()
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if window:
        until = datetime.now(UTC)
        since = until - parse_duration(window)
    elif start is not None and end is not None and end > start:
        since, until = start - SETTLE, end - SETTLE
    else:
        until = datetime.now(UTC)
        since = until - MANUAL_WINDOW
    log.info("Scanning runs that ended in [%s, %s)", since.isoformat(), until.isoformat())
    return {"since": since.isoformat(), "until": until.isoformat()}


@task
def libvirt_connections() -> list[str]:
    return config.get_list("libvirt_conn_ids")


@task(map_index_template="{{ libvirt_conn_id }}")
def list_host(libvirt_conn_id: str) -> dict[str, Any]:
    """One host's domains; an unusable connection is an unreachable host, not a failed task."""
    from qubinode_recovery_provider.hooks.libvirt import LibvirtHook
    from qubinode_recovery_provider.shadow.records import HostInventory

    get_current_context()["libvirt_conn_id"] = libvirt_conn_id  # type: ignore[typeddict-unknown-key]
    try:
        inventory = LibvirtHook(libvirt_conn_id=libvirt_conn_id).list_domains()
    except Exception as exc:
        inventory = HostInventory(
            host=libvirt_conn_id, uri="", reachable=False, error=f"connection unusable: {exc}"
        )
    log.info(
        "%s (%s): %s",
        inventory.host,
        inventory.uri,
        inventory.error or f"{len(inventory.domains)} domains",
    )
    return inventory.to_dict()


@task(trigger_rule="none_failed")
def scan(window: dict[str, str], inventories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Detect, record, escalate; returns the confs of the recovery runs to start."""
    from qubinode_recovery_provider.hooks.airflow_api import AirflowApiHook
    from qubinode_recovery_provider.shadow import AirflowRunsSource, lineage_source_from, run_scan
    from qubinode_recovery_provider.shadow.handoff import hand_off
    from qubinode_recovery_provider.shadow.records import HostInventory
    from qubinode_recovery_provider.shadow.watermarks import IncrementalScan
    from qubinode_recovery_provider.store import Ledger

    params = get_current_context()["params"]
    kcli = _kcli_check()
    ledger = Ledger.from_config()
    full = bool(params.get("full_rescan"))
    incremental = IncrementalScan(ledger, full=full) if full or not params.get("window") else None
    with AirflowApiHook().get_client() as client:  # [qubinode_recovery] recovery_conn_id
        result = run_scan(
            AirflowRunsSource(client),
            lineage_source_from(),
            inventories=[HostInventory.from_dict(inventories[i]) for i in range(len(inventories or ()))],
            since=datetime.fromisoformat(window["since"]),
            until=datetime.fromisoformat(window["until"]),
            incremental=incremental,
            kcli=kcli,
        )
    for warning in result.warnings:
        log.warning("%s", warning)
    for finding in result.findings:
        log.info(
            "%s %s/%s/%s %s: %s",
            finding.type.value,
            finding.dag_id,
            finding.run_id,
            finding.task_id,
            finding.resource or "",
            " | ".join(finding.evidence),
        )
    with ledger:
        handoff = hand_off(
            result.findings,
            ledger,
            start_recovery=bool(params.get("start_recovery")),
            dry_run=config.get_bool("dry_run"),
        )
        if incremental is not None:
            incremental.commit()  # only once the findings are recorded
    log.info("Scan summary: %s; hand-off: %s", result.summary()["stats"], handoff.to_dict())
    return handoff.recovery_confs


def _kcli_check() -> Any:
    """kcli's check of the hosts it knows, when kcli is set up where the scan runs (else None)."""
    from qubinode_recovery_provider.shadow.kcli import available_check

    if not config.get_bool("kcli_check"):
        log.info("kcli check off: [qubinode_recovery] kcli_check is false")
        return None
    check, why = available_check(config.get("kcli_config") or None, config.get("kcli_command") or "kcli")
    log.info("%s", why)
    return check


def build() -> DAG:
    """The ``qubinode_shadow_scan`` DAG, built with the configuration as it is now."""
    with DAG(
        dag_id="qubinode_shadow_scan",
        schedule=config.get("shadow_scan_schedule") or None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
        params={
            "window": Param(
                "",
                type="string",
                title="Time window",
                description="Scan the runs that ended this far back: 15m, 2h, 1d. Empty: the run's data "
                "interval (one hour for a manual run).",
            ),
            "full_rescan": Param(
                False,
                type="boolean",
                title="Full rescan",
                description="Ignore the stored watermarks: read every source over the whole window, then "
                "store fresh watermarks.",
            ),
            "start_recovery": Param(
                config.get_bool("auto_recovery_enabled"),
                type="boolean",
                title="Start recovery runs",
                description="Start a qubinode_failure_recovery run for each new critical finding.",
            ),
        },
        tags=["qubinode", "shadow-errors"],
        doc_md=__doc__,
    ) as dag:
        hosts = list_host.expand(libvirt_conn_id=libvirt_connections())
        recovery_confs = scan(scan_window(), hosts)  # type: ignore[arg-type]  # XComArgs resolve at run time
        TriggerDagRunOperator.partial(
            task_id="start_recovery", trigger_dag_id="qubinode_failure_recovery"
        ).expand(conf=recovery_confs)
        # the findings just escalated, and what a GitHub outage or rate limit left in the outbox
        recovery_confs >> DeliverEscalationsOperator(task_id="deliver_escalations", trigger_rule="all_done")
    return dag
