"""``qubinode-recovery scan``: find shadow errors, the same detector as the ``qubinode_shadow_scan`` DAG.

Sources come from the flags, else from the provider's configuration (``[qubinode_recovery]``
``lineage_file`` / ``marquez_url``, ``libvirt_conn_ids`` and ``recovery_conn_id``, whose Airflow
connections are read from ``AIRFLOW_CONN_<ID>`` environment variables, since the CLI runs without
Airflow). Exit codes: 0 no finding, 1 findings reported, 2 bad input (one line on stderr). Unreadable
lineage, malformed events and unreachable hosts are warnings or findings, never a failed scan.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from collections import Counter
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider import config
from qubinode_recovery_provider.cli import EXIT_OK, EXIT_PROBLEM, UsageError

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import ShadowError
    from qubinode_recovery_provider.shadow import InventoryTarget, ScanResult
    from qubinode_recovery_provider.shadow.scan import RunsSource

DEFAULT_SINCE = "24h"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="find shadow errors: successful runs whose VM, lineage or task states disagree",
        description="Check the runs that succeeded in a time window against OpenLineage events and "
        "the VMs really present on the libvirt hosts.",
    )
    parser.add_argument(
        "--since",
        metavar="DURATION",
        help="runs that ended in this window: 90s, 15m, 2h, 1d, or an ISO timestamp "
        f"(default {DEFAULT_SINCE}; with --runs-file: every run in the file)",
    )
    parser.add_argument("--until", metavar="TIMESTAMP", help="runs that ended before this (default: now)")
    lineage = parser.add_mutually_exclusive_group()
    lineage.add_argument("--lineage-file", metavar="PATH", help="OpenLineage file transport output")
    lineage.add_argument("--marquez-url", metavar="URL", help="Marquez base URL (http://marquez:5000)")
    parser.add_argument(
        "--marquez-namespace", action="append", default=[], metavar="NS", help="only these job namespaces"
    )
    parser.add_argument(
        "--libvirt-uri",
        action="append",
        default=[],
        metavar="[HOST=]URI",
        help="a libvirt host to list (repeatable); HOST= names it as DAGs do in libvirt_domain(host=...)",
    )
    parser.add_argument(
        "--libvirt-timeout", type=float, default=20.0, metavar="SECONDS", help="per host (default 20)"
    )
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument("--airflow-url", metavar="URL", help="Airflow api-server (http://user:pass@host:8080)")
    runs.add_argument(
        "--runs-file", metavar="PATH", help="runs and task instances as the REST API returns them"
    )
    parser.add_argument("--airflow-token", metavar="TOKEN", help="bearer token (env QUBINODE_AIRFLOW_TOKEN)")
    parser.add_argument(
        "--lineage-workers",
        default="auto",
        metavar="N",
        help="processes reading a large lineage file side by side (default auto: one per CPU, at most 4)",
    )
    parser.add_argument("--http-timeout", type=float, default=10.0, metavar="SECONDS", help="per request")
    parser.add_argument("--json", action="store_true", help="one JSON finding per line on stdout")
    parser.add_argument("--summary", action="store_true", help="also print a JSON summary on stderr")
    parser.add_argument("--record", action="store_true", help="record the findings in the ledger")
    parser.add_argument("--ledger", metavar="URL", help="ledger URL for --record (default: configured)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qubinode_recovery_provider.shadow import RunsSourceError, lineage_source_from, run_scan

    since, until = _window(args)
    runs_source = _runs_source(args)
    lineage = lineage_source_from(
        args.lineage_file,
        args.marquez_url,
        args.marquez_namespace or None,
        timeout=args.http_timeout,
        workers=_workers(args.lineage_workers),
    )
    targets = _targets(args)
    try:
        result = run_scan(runs_source, lineage, targets=targets, since=since, until=until)
    except RunsSourceError as exc:
        raise UsageError(str(exc)) from None
    if args.record:
        _record(result.findings, args.ledger)
    _print(result, args)
    return EXIT_PROBLEM if result.findings else EXIT_OK


# --- inputs -----------------------------------------------------------------------------------------


def _window(args: argparse.Namespace) -> tuple[Any, Any]:
    from qubinode_recovery_provider.shadow import parse_since

    since_text = args.since if args.since is not None else (None if args.runs_file else DEFAULT_SINCE)
    try:
        since = parse_since(since_text) if since_text else None
        until = parse_since(args.until) if args.until else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return since, until


def _workers(value: str) -> int:
    from qubinode_recovery_provider.shadow.lineage_file import auto_workers

    if value == "auto":
        return auto_workers()
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"--lineage-workers must be auto or a positive number, got {value!r}")
    return int(value)


def _runs_source(args: argparse.Namespace) -> RunsSource:
    from qubinode_recovery_provider.shadow import AirflowRunsSource, RunsFileSource

    if args.runs_file:
        if not os.path.isfile(args.runs_file):
            raise UsageError(f"runs file {args.runs_file} does not exist")
        return RunsFileSource(args.runs_file)
    url = args.airflow_url or _api_url_from_connection()
    if not url:
        raise UsageError("no runs source: give --airflow-url URL or --runs-file PATH")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--airflow-url must be an http(s) URL, got {url!r}")
    base = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return AirflowRunsSource(
        base,
        token=args.airflow_token or os.environ.get("QUBINODE_AIRFLOW_TOKEN"),
        username=urllib.parse.unquote(parts.username) if parts.username else None,
        password=urllib.parse.unquote(parts.password) if parts.password else None,
        timeout=args.http_timeout,
    )


def _targets(args: argparse.Namespace) -> list[InventoryTarget]:
    from qubinode_recovery_provider.shadow import InventoryTarget, parse_target

    if args.libvirt_uri:
        return [parse_target(spec, timeout=args.libvirt_timeout) for spec in args.libvirt_uri]
    targets = []
    for conn_id in config.get_list("libvirt_conn_ids"):
        conn = connection_from_env(conn_id)
        if conn is None:
            print(
                f"qubinode-recovery: warning: libvirt connection {conn_id} not found in AIRFLOW_CONN_"
                f"{conn_id.upper()}; give --libvirt-uri",
                file=sys.stderr,
            )
            continue
        extra = conn.get("extra") or {}
        targets.append(
            InventoryTarget(
                uri=str(extra.get("uri") or "test:///default"),
                host=extra.get("host_name") or None,
                conn_id=conn_id,
                timeout=float(extra.get("timeout") or args.libvirt_timeout),
            )
        )
    return targets


def connection_from_env(conn_id: str) -> dict[str, Any] | None:
    """An Airflow connection from ``AIRFLOW_CONN_<ID>`` (JSON or URI form), as a dict; None if unset."""
    value = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if not value:
        return None
    if value.lstrip().startswith("{"):
        try:
            data = json.loads(value)
        except ValueError:
            raise UsageError(f"AIRFLOW_CONN_{conn_id.upper()} is not valid JSON") from None
        extra = data.get("extra")
        data["extra"] = json.loads(extra) if isinstance(extra, str) and extra else extra or {}
        return data
    parts = urllib.parse.urlsplit(value)
    return {
        "conn_type": parts.scheme.replace("-", "_"),
        "host": urllib.parse.unquote(parts.hostname or ""),
        "port": parts.port,
        "login": urllib.parse.unquote(parts.username) if parts.username else None,
        "password": urllib.parse.unquote(parts.password) if parts.password else None,
        "schema": parts.path.lstrip("/"),
        "extra": dict(urllib.parse.parse_qsl(parts.query)),
    }


def _api_url_from_connection() -> str | None:
    conn = connection_from_env(config.get("recovery_conn_id"))
    if conn is None:
        return None
    extra = conn.get("extra") or {}
    if extra.get("base_url"):
        return str(extra["base_url"])
    host = str(conn.get("host") or "")
    if not host:
        return None
    if "://" not in host:
        scheme = "https" if conn.get("conn_type") == "https" or conn.get("schema") == "https" else "http"
        host = f"{scheme}://{host}" + (f":{conn['port']}" if conn.get("port") else "")
    parts = urllib.parse.urlsplit(host)
    if conn.get("login"):
        user = urllib.parse.quote(str(conn["login"]), safe="")
        secret = urllib.parse.quote(str(conn.get("password") or ""), safe="")
        parts = parts._replace(netloc=f"{user}:{secret}@{parts.netloc}")
    return urllib.parse.urlunsplit(parts)


# --- outputs ----------------------------------------------------------------------------------------


def _record(findings: list[ShadowError], ledger_url: str | None) -> None:
    from qubinode_recovery_provider.store import Ledger, LedgerError

    try:
        ledger = Ledger(url=ledger_url) if ledger_url else Ledger.from_config()
    except LedgerError as exc:
        raise UsageError(f"cannot open the ledger: {exc}") from None
    with ledger:
        new = sum(1 for finding in findings if ledger.record_shadow_error(finding)[1])
    print(f"recorded {len(findings)} findings ({new} new)", file=sys.stderr)


def _print(result: ScanResult, args: argparse.Namespace) -> None:
    out = sys.stdout
    if args.json:
        for finding in result.findings:
            out.write(json.dumps(finding.model_dump(mode="json"), ensure_ascii=False) + "\n")
    else:
        for finding in result.findings:
            out.write(_render(finding))
        counts = Counter(f.type.value for f in result.findings)
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        out.write(
            f"{len(result.findings)} findings{f' ({detail})' if detail else ''} in "
            f"{result.stats.get('runs_checked', 0)} successful runs, "
            f"{result.stats.get('domains_listed', 0)} domains on {result.stats.get('hosts', 0)} hosts\n"
        )
    for warning in result.warnings:
        print(f"qubinode-recovery: warning: {warning}", file=sys.stderr)
    if args.summary:
        print(json.dumps(result.summary()), file=sys.stderr)


def _render(finding: ShadowError) -> str:
    where = " / ".join(p for p in (finding.dag_id, finding.run_id, finding.task_id) if p)
    head = f"{finding.type.value:<22} {finding.severity.value:<8} {finding.confidence:.2f}  {where}"
    if finding.resource:
        head += f"  {finding.resource}"
    return head + "\n" + "".join(f"    {line}\n" for line in finding.evidence)
