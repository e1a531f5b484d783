"""The analyzer's on-disk cache: compiled Hyperscan databases and verified pattern packs.

Files live in ``$QUBINODE_RECOVERY_CACHE_DIR`` (an empty value turns the cache off), else
``$XDG_CACHE_HOME/qubinode-recovery`` or ``~/.cache/qubinode-recovery``. They are written private to
the user (0600, in a 0700 directory) and atomically; a file somebody else owns or could have written
is never read, and a cache that cannot be written (a read-only home) only costs time.

Plain Python, no Airflow.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def cache_dir() -> Path | None:
    """Where cache files are kept; None when caching is turned off."""
    configured = os.environ.get("QUBINODE_RECOVERY_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qubinode-recovery"


def trusted(path: Path) -> bool:
    """Whether ``path`` is a cache file this user owns that nobody else can write.

    :param path: the cache file.
    """
    try:
        info = path.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def read_trusted(path: Path) -> bytes | None:
    """The bytes of a trusted cache file, or None (missing, untrusted or unreadable).

    :param path: the cache file.
    """
    if not trusted(path):
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def write_atomically(path: Path, data: bytes) -> None:
    """Write a private cache file atomically; a failure is logged, never raised.

    :param path: the cache file.
    :param data: its content.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home is fine: the work is just not cached
        log.info("cache file not written (%s): %s", path, exc)


__all__ = ["cache_dir", "read_trusted", "trusted", "write_atomically"]
