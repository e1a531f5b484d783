"""``qubinode-recovery dags install``: the recovery and shadow-scan DAGs into an Airflow DAGs folder.

Each DAG becomes one small file in the folder that builds the DAG with the installed package
(:mod:`qubinode_recovery_provider.dags`), so upgrading the provider upgrades the DAG. Its first line
records the provider version that wrote it and the SHA-256 of the rest of the file (its first 32 hex digits):

- a missing file is written (``installed``); the same file again is left alone (``unchanged``);
- a file written by an older (or the same) version, unedited, is rewritten (``updated``);
- a file edited since it was written, a file without the header, or one written by a newer provider
  is left alone (``refused``, exit 1) unless ``--force`` (``overwritten``).

The folder is ``--dags-folder``, else Airflow's own ``[core] dags_folder`` (``AIRFLOW__CORE__DAGS_FOLDER``,
then ``airflow.cfg`` in ``AIRFLOW_CONFIG`` or ``AIRFLOW_HOME``), else ``$AIRFLOW_HOME/dags``. A folder
that is a file, or whose parent does not exist, is one line on stderr (exit 2).
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from qubinode_recovery_provider import __version__
from qubinode_recovery_provider.cli import EXIT_OK, EXIT_PROBLEM, UsageError, output

#: DAG id -> the module of the installed package whose ``build()`` makes it.
DAG_MODULES = {
    "qubinode_failure_recovery": "qubinode_recovery_provider.dags.qubinode_failure_recovery",
    "qubinode_shadow_scan": "qubinode_recovery_provider.dags.qubinode_shadow_scan",
}
HEADER = "# qubinode-recovery dags install: version {version}, sha256 {digest}"
HEADER_RE = re.compile(r"^# qubinode-recovery dags install: version (\S+), sha256 ([0-9a-f]{32})$")
MAX_FILE_CHARS = 1_000_000


@dataclass(frozen=True)
class InstalledFile:
    """What ``dags install`` did with one DAG file.

    :param dag_id: the DAG
    :param path: the file in the DAGs folder
    :param action: ``installed``, ``updated``, ``unchanged``, ``overwritten`` or ``refused``
    :param reason: why, for ``updated``, ``overwritten`` and ``refused``
    """

    dag_id: str
    path: str
    action: str
    reason: str = ""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dags", help="put the recovery and shadow-scan DAGs into a DAGs folder")
    sub = parser.add_subparsers(dest="dags_command", metavar="ACTION", required=True)
    install = sub.add_parser(
        "install", help="write (or update) the two DAG files in Airflow's DAGs folder, idempotently"
    )
    install.add_argument(
        "--dags-folder",
        metavar="PATH",
        help="the DAGs folder (default: Airflow's [core] dags_folder, else $AIRFLOW_HOME/dags)",
    )
    install.add_argument(
        "--force", action="store_true", help="overwrite files that were edited or written by others"
    )
    install.add_argument("--json", action="store_true", help="machine output")
    install.set_defaults(func=run_install)


def shim_body(dag_id: str) -> str:
    """The file of ``dag_id`` below its header line.

    :param dag_id: one of :data:`DAG_MODULES`
    """
    module = DAG_MODULES[dag_id]
    return (
        f'"""Airflow DAG ``{dag_id}`` of the qubinode recovery provider (docs/dags.md).\n\n'
        f"Written by ``qubinode-recovery dags install``. The DAG is defined in the installed package,\n"
        f"in {module},\n"
        f"so upgrading the provider upgrades it; configure it through ``[qubinode_recovery]``.\n"
        f"An edited copy is not overwritten without ``--force``.\n"
        f'"""\n\n'
        f"from {module} import build\n\n"
        f"dag = build()\n"
    )


def render(dag_id: str, version: str = __version__) -> str:
    """The whole file of ``dag_id`` as ``dags install`` writes it.

    :param dag_id: one of :data:`DAG_MODULES`
    :param version: the provider version recorded in the header
    """
    body = shim_body(dag_id)
    return HEADER.format(version=version, digest=_digest(body)) + "\n" + body


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def default_dags_folder(environ: Mapping[str, str] | None = None) -> Path:
    """Airflow's ``[core] dags_folder`` as Airflow would read it, else ``$AIRFLOW_HOME/dags``.

    :param environ: the environment (default ``os.environ``)
    :raises UsageError: when ``airflow.cfg`` cannot be parsed
    """
    env = os.environ if environ is None else environ
    if env.get("AIRFLOW__CORE__DAGS_FOLDER"):
        return Path(env["AIRFLOW__CORE__DAGS_FOLDER"]).expanduser()
    home = Path(env.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser()
    cfg = Path(env.get("AIRFLOW_CONFIG") or home / "airflow.cfg")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(cfg, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {cfg}: {output.one_line(str(exc), 200)}") from None
    value = parser.get("core", "dags_folder", fallback="").strip()
    if not value:
        return home / "dags"
    return Path(value.replace("{AIRFLOW_HOME}", str(home))).expanduser()


def _usable_folder(folder: Path) -> Path:
    """The folder, created when only it is missing; a file or a missing parent is a :class:`UsageError`."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"DAGs folder {folder} is not a directory")
    if not folder.exists():
        if not folder.parent.is_dir():
            raise UsageError(f"DAGs folder {folder} does not exist, nor does its parent")
        try:
            folder.mkdir()
        except OSError as exc:
            raise UsageError(f"cannot create DAGs folder {folder}: {exc.strerror or exc}") from None
    return folder


def decide(existing: str | None, wanted: str, force: bool) -> tuple[str, str]:
    """What to do with a DAG file whose current text is ``existing`` (None: absent).

    :param existing: the file's text, or None
    :param wanted: the text this version writes
    :param force: overwrite what would be refused
    :return: ``(action, reason)``
    """
    if existing is None:
        return "installed", ""
    if existing == wanted:
        return "unchanged", ""
    header, _, body = existing.partition("\n")
    match = HEADER_RE.match(header)
    if match is None:
        problem = "not written by dags install"
    elif _digest(body) != match.group(2):
        problem = f"edited since version {match.group(1)} wrote it"
    elif _newer(match.group(1)):
        problem = f"written by a newer provider ({match.group(1)})"
    else:
        return "updated", f"from version {match.group(1)}"
    if force:
        return "overwritten", problem
    return "refused", f"{problem}; --force overwrites it"


def _newer(version: str) -> bool:
    try:
        return Version(version) > Version(__version__)
    except InvalidVersion:
        return False


def install(folder: Path, force: bool = False) -> list[InstalledFile]:
    """Install the DAG files into ``folder``.

    :param folder: the DAGs folder
    :param force: overwrite edited or foreign files
    :raises UsageError: when the folder or a file cannot be used
    """
    folder = _usable_folder(folder)
    results = []
    for dag_id in DAG_MODULES:
        path = folder / f"{dag_id}.py"
        wanted = render(dag_id)
        action, reason = decide(_read(path), wanted, force)
        if action not in {"unchanged", "refused"}:
            _write(path, wanted)
        results.append(InstalledFile(dag_id, str(path), action, reason))
    return results


def _read(path: Path) -> str | None:
    if not path.exists() and not path.is_symlink():
        return None
    if not path.is_file():
        raise UsageError(f"{path} exists and is not a file")
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return handle.read(MAX_FILE_CHARS)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a DAG processor never parses half a file)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def run_install(args: argparse.Namespace) -> int:
    """``dags install``: write the DAG files, report what was done."""
    folder = Path(args.dags_folder).expanduser() if args.dags_folder else default_dags_folder()
    results = install(folder, force=args.force)
    if args.json:
        output.write_json(
            {"dags_folder": str(folder), "version": __version__, "files": [asdict(r) for r in results]}
        )
    else:
        for result in results:
            reason = f" ({result.reason})" if result.reason else ""
            output.write(f"{result.action:<11} {result.path}{reason}\n")
    return EXIT_PROBLEM if any(r.action == "refused" for r in results) else EXIT_OK


__all__ = ["DAG_MODULES", "InstalledFile", "decide", "default_dags_folder", "install", "register", "render"]
