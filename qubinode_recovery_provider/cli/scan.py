"""``qubinode-recovery scan``: find shadow errors, the same detector as the ``qubinode_shadow_scan`` DAG.

Sources come from the flags, else from the provider's configuration (``[qubinode_recovery]``
``lineage_file`` / ``marquez_url``, ``libvirt_conn_ids`` and ``recovery_conn_id``, whose Airflow
connections are read from ``AIRFLOW_CONN_<ID>`` environment variables, since the CLI runs without
Airflow). Exit codes: 0 no finding, 1 findings reported, 2 bad input (one line on stderr). Unreadable
lineage, malformed events and unreachable hosts are warnings or findings, never a failed scan.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import urllib.parse
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider import config
from qubinode_recovery_provider.cli import EXIT_OK, EXIT_PROBLEM, UsageError, output
from qubinode_recovery_provider.cli.common import (
    MAX_CALL_TIMEOUT_SECONDS,
    JSONProblem,
    call_timeout,
    decode_json,
    describe,
    window_start,
    workers,
)
from qubinode_recovery_provider.jsontext import loads as json_loads

if TYPE_CHECKING:
    from qubinode_recovery_provider.airflow_api import APISettings
    from qubinode_recovery_provider.models import ShadowError
    from qubinode_recovery_provider.shadow import InventoryTarget, ScanResult
    from qubinode_recovery_provider.shadow.kcli import KcliCheck
    from qubinode_recovery_provider.shadow.scan import RunsSource
    from qubinode_recovery_provider.shadow.watermarks import IncrementalScan
    from qubinode_recovery_provider.store import Ledger

DEFAULT_SINCE = "24h"
#: Deepest nesting in a --runs-file (a run's ``conf`` is the user's own data, so deeper than elsewhere).
MAX_RUNS_DEPTH = 256


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="find shadow errors: successful runs whose VM, lineage or task states disagree",
        description="Check the runs that succeeded in a time window against OpenLineage events and "
        "the VMs really present on the libvirt hosts.",
    )
    parser.add_argument(
        "--since",
        type=window_start,
        metavar="DURATION",
        help="runs that ended in this window: 90s, 15m, 2h, 1d (at most 20 years), or an ISO timestamp "
        f"(default {DEFAULT_SINCE}; with --runs-file: every run in the file)",
    )
    parser.add_argument(
        "--until",
        type=window_start,
        metavar="TIMESTAMP",
        help="runs that ended before this, a timestamp or a duration ago (default: now)",
    )
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
        "--libvirt-timeout",
        type=call_timeout,
        default=20.0,
        metavar="SECONDS",
        help=f"per host (default 20, at most {MAX_CALL_TIMEOUT_SECONDS:g})",
    )
    parser.add_argument(
        "--kcli-config",
        metavar="PATH",
        help="kcli's client config (default ~/.kcli/config.yml): its KVM clients are the hosts listed "
        "when no --libvirt-uri or libvirt connection is given",
    )
    parser.add_argument(
        "--kcli-check",
        action="store_true",
        help="also run `kcli -C CLIENT list vm` on each listed host that is a kcli client; kcli failing or "
        "disagreeing with libvirt is a kcli_check_failed finding",
    )
    parser.add_argument(
        "--kcli-command", metavar="PATH", default="kcli", help="the kcli program (default kcli)"
    )
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument("--airflow-url", metavar="URL", help="Airflow api-server (http://user:pass@host:8080)")
    runs.add_argument(
        "--runs-file", metavar="PATH", help="runs and task instances as the REST API returns them"
    )
    parser.add_argument("--airflow-token", metavar="TOKEN", help="bearer token (env QUBINODE_AIRFLOW_TOKEN)")
    parser.add_argument(
        "--lineage-workers",
        type=workers,
        default="auto",
        metavar="N",
        help="processes reading a large lineage file side by side (default auto: one per CPU, at most 4; "
        "at most 64)",
    )
    parser.add_argument(
        "--http-timeout",
        type=call_timeout,
        default=10.0,
        metavar="SECONDS",
        help=f"per request (default 10, at most {MAX_CALL_TIMEOUT_SECONDS:g})",
    )
    parser.add_argument(
        "--explain",
        metavar="RUN_ID",
        help="also show which VMs were inferred for this run (from its command lines, lineage and log) "
        "and why",
    )
    parser.add_argument(
        "--no-infer",
        action="store_true",
        help="check only declared VMs (outlets, qubinode_vm), infer none from command lines",
    )
    parser.add_argument("--json", action="store_true", help="one JSON finding per line on stdout")
    parser.add_argument("--summary", action="store_true", help="also print a JSON summary on stderr")
    parser.add_argument("--record", action="store_true", help="record the findings in the ledger")
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="read each source from its watermark in the ledger (what is new since the last incremental "
        "scan, plus a 10-minute overlap); records the findings and stores the new watermarks",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="like --incremental, but read the whole window and store fresh watermarks (a rescan)",
    )
    parser.add_argument("--ledger", metavar="URL", help="ledger URL for --record (default: configured)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Scan and print the findings; exit 1 when there are any.

    :param args: the parsed arguments.
    """
    from qubinode_recovery_provider.shadow import lineage_source_from
    from qubinode_recovery_provider.shadow.scan import begin_lineage_read, no_cyclic_gc

    since, until = _window(args)
    stateful = args.incremental or args.full
    lineage = lineage_source_from(
        args.lineage_file,
        args.marquez_url,
        args.marquez_namespace or None,
        timeout=args.http_timeout,
        workers=args.lineage_workers,
    )
    # a full scan's lineage workers read while the runs file is checked (forked before any thread)
    early = begin_lineage_read(lineage, since, None) if not stateful else None
    try:
        with no_cyclic_gc():  # (the check of the runs file too: tens of MB of decoded JSON)
            return _scan(args, since, until, stateful, lineage, early)
    finally:
        if early is not None:
            early.cancel()  # (nothing left to stop once the scan read it)


def _scan(
    args: argparse.Namespace,
    since: datetime | None,
    until: datetime | None,
    stateful: bool,
    lineage: Any,
    early: Any,
) -> int:
    from qubinode_recovery_provider.shadow import RunsSourceError, ShadowErrorDetector, run_scan
    from qubinode_recovery_provider.shadow.watermarks import IncrementalScan

    with contextlib.ExitStack() as stack:
        runs_source = _runs_source(args, stack)
        ledger = _ledger_to_record_in(args.ledger) if args.record or stateful else None
        if stateful and ledger is None:
            ledger = _configured_ledger()
        incremental = IncrementalScan(ledger, full=args.full) if stateful and ledger is not None else None
        if args.marquez_url:
            _http_url(args.marquez_url, "--marquez-url")
        kcli = _kcli_check(args)
        targets = _targets(args)
        detector = ShadowErrorDetector(
            infer=not args.no_infer, explain=[args.explain] if args.explain else ()
        )
        try:
            result = run_scan(
                runs_source,
                lineage,
                targets=targets,
                since=since,
                until=until,
                detector=detector,
                incremental=incremental,
                kcli=kcli,
                early_read=early,
            )
        except RunsSourceError as exc:
            raise UsageError(str(exc)) from None
        except RecursionError:  # safety net: a JSON document nested too deeply for a reader below
            raise UsageError(
                "an input document is nested too deeply to read (lineage or runs file)"
            ) from None
    if args.record or stateful:
        _record(result.findings, ledger)
    if incremental is not None and ledger is not None:
        _commit(incremental, ledger)
    _print(result, args)
    return EXIT_PROBLEM if result.findings else EXIT_OK


# --- inputs -----------------------------------------------------------------------------------------


def _window(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until`` (checked by :func:`~.common.window_start` while parsing)."""
    since = args.since
    if since is None and not args.runs_file:
        since = window_start(DEFAULT_SINCE)
    return since, args.until


def check_runs_file(name: str) -> list[Any] | None:
    """Check a ``--runs-file`` before the scan: one JSON document, or JSON lines, of REST pages, runs or
    task instances. A truncated or malformed file is bad input naming the line, never "0 findings".

    :param name: the path.
    :returns: the decoded pages when the fast check decoded them (for the scan to reuse), else None.
    """
    pages = _pages_at_c_speed(name)
    if pages is not None:
        return pages
    text = _read_runs_text(name)
    try:
        _check_runs_shape(decode_json(text, MAX_RUNS_DEPTH, strict_numbers=False), None)
    except JSONProblem as whole:
        lines = text.splitlines()
        first = next(i for i, line in enumerate(lines) if line.strip())
        if not whole.syntax or not _is_json(lines[first]):
            raise UsageError(describe(whole, f"runs file {name}")) from None
        for number, line in enumerate(lines[first:], start=first + 1):
            if line.strip():
                try:
                    _check_runs_shape(decode_json(line, MAX_RUNS_DEPTH, strict_numbers=False), number)
                except JSONProblem as problem:
                    raise UsageError(describe(problem, f"runs file {name}", number)) from None
    return None


def _pages_at_c_speed(name: str) -> list[Any] | None:
    """The file's pages when it decodes whole as REST pages (msgspec's typed decoder, which also checks that
    every run, task instance and DAG is an object) within :data:`MAX_RUNS_DEPTH` levels. msgspec counts
    each level it enters, skipped fields included, against the interpreter's recursion limit (Python
    3.11; later versions count C levels apart, and the test of a 257-level file would say so), which is
    set here so that it stops before that depth; anything it refuses (a deeper file, another shape, a
    syntax error, bytes that are not UTF-8) gets the exact check, which names the line and column. A
    file of tens of MB costs a tenth of the exact check, and the scan reuses the pages."""
    from qubinode_recovery_provider.shadow.runs import decode_pages

    try:
        content = Path(name).read_bytes()
    except OSError:
        return None  # the exact check says why
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(_stack_depth() + MAX_RUNS_DEPTH - 8)
    try:
        return decode_pages(content)
    except RecursionError:
        return None
    finally:
        sys.setrecursionlimit(limit)


def _stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1  # type: ignore[assignment]
    return depth


def _read_runs_text(name: str) -> str:
    path = Path(name)
    if path.is_dir():
        raise UsageError(f"runs file {name} is a directory, not a file")
    if not path.is_file():
        raise UsageError(f"runs file {name} does not exist or is not a file")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read runs file {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"runs file {name}: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise UsageError(f"runs file {name} is empty")
    return text


def _is_json(line: str) -> bool:
    try:
        decode_json(line, MAX_RUNS_DEPTH, strict_numbers=False)
    except JSONProblem:
        return False
    return True


_RUN_LISTS = ("dag_runs", "task_instances", "dags")


def _check_runs_shape(data: Any, line: int | None) -> None:
    items = data if isinstance(data, list) and line is None else [data]
    for item in items:
        if not isinstance(item, dict):
            raise JSONProblem(
                f"expected a REST page, a run or a task instance (a JSON object), got {type(item).__name__}",
                syntax=False,
            )
        for key in _RUN_LISTS:
            value = item.get(key)
            if value is not None and not _list_of_objects(value):
                raise JSONProblem(f"'{key}' must be a list of JSON objects", syntax=False)


def _list_of_objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _runs_source(args: argparse.Namespace, stack: contextlib.ExitStack) -> RunsSource:
    """The ``--runs-file``, else the REST API of ``--airflow-url`` or of the ``recovery_conn_id``
    connection (its client is closed with ``stack``)."""
    from qubinode_recovery_provider.shadow import AirflowRunsSource, RunsFileSource

    if args.runs_file:
        pages = check_runs_file(args.runs_file)
        return RunsFileSource(args.runs_file, pages=pages)
    from qubinode_recovery_provider.airflow_api import AirflowAPIClient

    return AirflowRunsSource(stack.enter_context(AirflowAPIClient(_api_settings(args))))


def _api_settings(args: argparse.Namespace) -> APISettings:
    """The API server from ``--airflow-url`` (user and password in the URL), else from the
    ``recovery_conn_id`` connection in ``AIRFLOW_CONN_<ID>``, read by the same rules as in Airflow;
    ``--airflow-token`` (or ``QUBINODE_AIRFLOW_TOKEN``) and ``--http-timeout`` apply to both."""
    from qubinode_recovery_provider.airflow_api import AirflowAPIConfigError, APISettings

    token = args.airflow_token or os.environ.get("QUBINODE_AIRFLOW_TOKEN") or None
    conn_id = config.get("recovery_conn_id")
    conn = None if args.airflow_url else connection_from_env(conn_id)
    try:
        if args.airflow_url:
            _http_url(args.airflow_url, "--airflow-url")
            return APISettings.from_url(args.airflow_url, token=token, timeout=args.http_timeout)
        if conn is None:
            raise UsageError("no runs source: give --airflow-url URL or --runs-file PATH")
        fields = {name: conn.get(name) for name in _CONNECTION_FIELDS}
        settings = APISettings.from_connection_fields(**fields).with_timeout(args.http_timeout)
    except AirflowAPIConfigError as exc:
        raise UsageError(f"AIRFLOW_CONN_{conn_id.upper()}: {exc}" if conn else str(exc)) from None
    return replace(settings, token=token) if token else settings


#: The fields of a connection that describe the API server (:meth:`APISettings.from_connection_fields`).
_CONNECTION_FIELDS = ("host", "port", "schema", "login", "password", "extra", "conn_type")


def _http_url(url: str, flag: str) -> urllib.parse.SplitResult:
    """``url`` split, when it is an http(s) URL with a host; else a :class:`UsageError` naming ``flag``."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise UsageError(f"{flag} must be an http(s) URL, got {url[:200]!r}")
    return parts


def _targets(args: argparse.Namespace) -> list[InventoryTarget]:
    from qubinode_recovery_provider.shadow import parse_target

    if args.libvirt_uri:
        return [parse_target(spec, timeout=args.libvirt_timeout) for spec in args.libvirt_uri]
    targets, missing = _connection_targets(args)
    if not targets:  # no usable libvirt connection: the hosts of kcli's config, if any
        targets = _kcli_targets(args)
        if targets:
            return targets
    for conn_id in missing:
        env = f"AIRFLOW_CONN_{conn_id.upper()}"
        output.warn(f"libvirt connection {conn_id} not found in {env}; give --libvirt-uri")
    return targets


def _kcli_clients(args: argparse.Namespace, required: bool) -> list[Any]:
    """kcli's KVM clients from ``--kcli-config`` (else its default file, when it exists)."""
    from qubinode_recovery_provider.shadow.kcli import DEFAULT_CONFIG, KcliConfigError, read_kcli_config

    path = Path(args.kcli_config).expanduser() if args.kcli_config else DEFAULT_CONFIG.expanduser()
    if not args.kcli_config and not required and not path.is_file():
        return []
    try:
        return read_kcli_config(path)[1]
    except KcliConfigError as exc:
        raise UsageError(str(exc)) from None


def _kcli_targets(args: argparse.Namespace) -> list[InventoryTarget]:
    from qubinode_recovery_provider.shadow import InventoryTarget

    clients = _kcli_clients(args, required=False)
    if clients:
        output.notice(f"libvirt hosts from kcli's config: {', '.join(c.name for c in clients)}")
    return [InventoryTarget(uri=c.uri, host=c.name, timeout=args.libvirt_timeout) for c in clients]


def _kcli_check(args: argparse.Namespace) -> KcliCheck | None:
    from qubinode_recovery_provider.shadow.kcli import KcliCheck

    if not args.kcli_check:
        return None
    clients = [c.name for c in _kcli_clients(args, required=True)]
    return KcliCheck(clients, command=(args.kcli_command,), timeout=args.libvirt_timeout)


def _connection_targets(args: argparse.Namespace) -> tuple[list[InventoryTarget], list[str]]:
    """The hosts of the ``libvirt_conn_ids`` connections, from ``AIRFLOW_CONN_<ID>``, and the ids of
    the connections not found there."""
    from qubinode_recovery_provider.shadow import InventoryTarget

    targets, missing = [], []
    for conn_id in config.get_list("libvirt_conn_ids"):
        conn = connection_from_env(conn_id)
        if conn is None:
            missing.append(conn_id)
            continue
        extra = conn.get("extra") or {}
        targets.append(
            InventoryTarget(
                uri=str(extra.get("uri") or "test:///default"),
                host=extra.get("host_name") or None,
                conn_id=conn_id,
                timeout=_connection_timeout(conn_id, extra.get("timeout"), args.libvirt_timeout),
            )
        )
    return targets, missing


def _connection_timeout(conn_id: str, value: Any, default: float) -> float:
    """The ``timeout`` of a connection's extra, checked like ``--libvirt-timeout``."""
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_CALL_TIMEOUT_SECONDS):
        raise UsageError(
            f"AIRFLOW_CONN_{conn_id.upper()}: extra timeout must be more than 0 and at most "
            f"{MAX_CALL_TIMEOUT_SECONDS:g} seconds, got {str(value)[:40]!r}"
        )
    return seconds


def connection_from_env(conn_id: str) -> dict[str, Any] | None:
    """An Airflow connection from ``AIRFLOW_CONN_<ID>`` (JSON or URI form), as a dict; None if unset."""
    value = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if not value:
        return None
    if value.lstrip().startswith("{"):
        try:
            data = json_loads(value)
        except ValueError:
            raise UsageError(f"AIRFLOW_CONN_{conn_id.upper()} is not valid JSON") from None
        extra = data.get("extra")
        try:
            data["extra"] = json_loads(extra) if isinstance(extra, str) and extra else extra or {}
        except ValueError:
            raise UsageError(f"AIRFLOW_CONN_{conn_id.upper()}: its extra is not valid JSON") from None
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


# --- outputs ----------------------------------------------------------------------------------------


def _ledger_to_record_in(url: str | None) -> Ledger | None:
    """The ``--ledger`` URL checked before the scan (no connection yet); None for the configured one."""
    from qubinode_recovery_provider.store import Ledger, LedgerError

    if not url:
        return None
    try:
        return Ledger(url=url)
    except LedgerError as exc:
        raise UsageError(f"cannot open the ledger: {exc}") from None


def _configured_ledger() -> Ledger:
    from qubinode_recovery_provider.store import Ledger, LedgerError

    try:
        return Ledger.from_config()
    except LedgerError as exc:
        raise UsageError(f"cannot open the ledger: {exc}") from None


def _commit(incremental: IncrementalScan, ledger: Ledger) -> None:
    """Store the new watermarks in ``ledger`` (after the findings are recorded)."""
    with ledger:
        stored = incremental.commit()
    output.notice(f"stored {stored} watermarks" + (" (full rescan)" if incremental.full else ""))


def _record(findings: list[ShadowError], ledger: Ledger | None) -> None:
    """Record the findings and queue the escalation of raised ones (the shadow hand-off, without
    starting recovery runs: that is the scan DAG's part)."""
    from qubinode_recovery_provider.shadow.handoff import hand_off

    if ledger is None:
        ledger = _configured_ledger()
    with ledger:
        result = hand_off(findings, ledger, start_recovery=False)
    output.notice(
        f"recorded {result.recorded} findings ({result.new} new or changed, {result.escalated} escalated)"
    )


def _print(result: ScanResult, args: argparse.Namespace) -> None:
    if args.json:
        for finding in result.findings:
            output.write_json(finding.model_dump(mode="json"))
    else:
        for finding in result.findings:
            output.write(_render(finding))
        counts = Counter(f.type.value for f in result.findings)
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        output.write(
            f"{len(result.findings)} findings{f' ({detail})' if detail else ''} in "
            f"{result.stats.get('runs_checked', 0)} successful runs, "
            f"{result.stats.get('domains_listed', 0)} domains on {result.stats.get('hosts', 0)} hosts\n"
        )
    if args.explain:
        _explain(result, args.explain, as_json=args.json)
    for warning in result.warnings:
        output.warn(warning)
    if args.summary:
        output.write_json(result.summary(), stream=sys.stderr)


def _explain(result: ScanResult, run_id: str, as_json: bool) -> None:
    """What was inferred for ``run_id`` (``--explain``): on stdout, or as one JSON line with ``--json``."""
    found = {key: value for key, value in result.explanations.items() if key[1] == run_id}
    if not found:
        output.warn(f"--explain {run_id}: no successful run with this id in the scan window (see --since)")
    for (dag_id, run), inference in sorted(found.items()):
        if as_json:
            output.write_json({"explain": {"dag_id": dag_id, "run_id": run, "lines": inference.lines()}})
            continue
        output.write(f"inferred VM contracts of {dag_id} / {run}:\n")
        output.write("".join(f"  {line}\n" for line in inference.lines()))


def _render(finding: ShadowError) -> str:
    where = " / ".join(p for p in (finding.dag_id, finding.run_id, finding.task_id) if p)
    head = f"{finding.type.value:<22} {finding.severity.value:<8} {finding.confidence:.2f}  {where}"
    if finding.inferred:
        head += "  (inferred)"
    if finding.resource:
        head += f"  {finding.resource}"
    return head + "\n" + "".join(f"    {line}\n" for line in finding.evidence)
