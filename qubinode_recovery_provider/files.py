"""Private files in contained paths: everything the provider keeps on disk (ledger, spool, trigger records,
reports) holds log text, so it is created ``0600`` in ``0700`` directories and stays so; and no path built
from a DAG, run or task id (or a log template) may leave the folder it is meant to be in.

Plain Python, no Airflow.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


class PathEscape(ValueError):
    """A path built from outside input would leave its folder."""


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as ``0700``; tighten it when it exists with wider rights.

    Only the directory itself is tightened: parents that exist already (``AIRFLOW_HOME``) keep their mode.

    :param path: the directory.
    :raises OSError: when it cannot be created.
    """
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # not ours to change (another user's folder): leave it
        if path.stat().st_mode & 0o077:
            path.chmod(DIR_MODE)
    return path


def _parent_of(path: Path) -> Path:
    """The folder of ``path``, created ``0700`` when missing; an existing one keeps its mode.

    A folder that exists is not ours to tighten: ``/tmp``, a home directory, a CI workspace. Folders the
    provider owns (state, spool, pending runs) are made private by :func:`private_dir` where they are set up.
    """
    parent = path.parent
    if not parent.is_dir():
        private_dir(parent)
    return parent


def make_private(path: Path) -> None:
    """Set ``0600`` on a file that exists (no error when it does not, or is not ours).

    :param path: the file.
    """
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            path.chmod(FILE_MODE)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty as ``0600`` when it does not exist (so a library that opens it later, such as
    SQLite, does not create it with the process umask); tighten it when it exists.

    :param path: the file.
    :raises OSError: when it cannot be created.
    """
    _parent_of(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(fd)
    make_private(path)


def write_private(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + rename), the result ``0600``.

    :param path: the file.
    :param data: text (UTF-8) or bytes.
    :raises OSError: when the directory is not writable.
    """
    import tempfile  # here: it imports random, hashlib and shutil, which a reading process never needs

    parent = _parent_of(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=parent)  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def contained(base: Path, relative: str | Path) -> Path:
    """``base / relative``, refused when it would resolve outside ``base`` (``..``, an absolute part, a
    symlink pointing out).

    :param base: the folder the path must stay in.
    :param relative: the path built from outside input.
    :raises PathEscape: when the result leaves ``base``.
    """
    root = Path(os.path.realpath(base))
    candidate = Path(os.path.realpath(root / relative))
    if candidate != root and root not in candidate.parents:
        raise PathEscape(f"{str(relative)[:200]!r} leaves {str(base)!r}")
    return candidate


__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "PathEscape",
    "contained",
    "create_private_file",
    "make_private",
    "private_dir",
    "write_private",
]
