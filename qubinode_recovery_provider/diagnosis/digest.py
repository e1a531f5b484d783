"""SHA-256 for fingerprints and cache keys, without loading OpenSSL.

``hashlib`` loads OpenSSL's libcrypto when it is imported (several milliseconds of a one-line
``diagnose``, ``bench/bench_startup.py``); the interpreter's own SHA-256 module gives the same digests.
"""

from __future__ import annotations

from typing import Protocol

try:
    from _sha256 import sha256 as _new  # Python 3.11
except ImportError:  # pragma: no cover - other interpreters
    try:
        from _sha2 import sha256 as _new
    except ImportError:
        from hashlib import sha256 as _new


class Digest(Protocol):
    """What :func:`sha256` returns (a ``hashlib`` hash object)."""

    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...

    def hexdigest(self) -> str: ...


def sha256(data: bytes = b"") -> Digest:
    """A SHA-256 hash object of ``data``, as ``hashlib.sha256(data)``.

    :param data: the first bytes to hash.
    """
    digest: Digest = _new(data)
    return digest


__all__ = ["Digest", "sha256"]
