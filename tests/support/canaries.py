"""The canary-secret corpus (``tests/data/canary_secrets.yaml``) and a leak check.

Every case is one shape of secret in the kind of line it turns up in, with unique canary values::

    from support.canaries import assert_no_canary, canary_items

    for text, canaries in canary_items():
        assert_no_canary(redact(text), canaries)

To prove a channel (ledger row, spool file, report, CLI output, HTTP body) never leaks, push
:func:`combined_text` (every case in one text) through it and check what came out with
``assert_no_canary(output, all_canaries())``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CORPUS = Path(__file__).resolve().parent.parent / "data" / "canary_secrets.yaml"

#: Canaries this long are also checked piecewise, so half a canary (a cut, a wrapped line) is a leak.
_PIECE = 16


@dataclass(frozen=True)
class CanaryCase:
    """One shape of secret.

    :param id: unique name of the case.
    :param shape: what the secret is, in words.
    :param text: the line(s) it appears in.
    :param canaries: the secret values; none may survive redaction, not even a 16-character piece.
    :param keeps: text around the secret that redaction must leave as it is.
    """

    id: str
    shape: str
    text: str
    canaries: tuple[str, ...]
    keeps: tuple[str, ...]


@dataclass(frozen=True)
class NearMiss:
    """A line that looks a little like a secret and must come out of redaction unchanged.

    :param id: unique name.
    :param text: the line(s).
    :param why: why it is not a secret.
    """

    id: str
    text: str
    why: str


@functools.cache
def _document() -> dict[str, list[dict[str, Any]]]:
    data = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{CORPUS}: not a mapping")
    return data


def cases() -> list[CanaryCase]:
    """Every canary case, in file order."""
    return [
        CanaryCase(
            id=str(item["id"]),
            shape=str(item["shape"]),
            text=str(item["text"]),
            canaries=tuple(str(c) for c in item["canaries"]),
            keeps=tuple(str(k) for k in item.get("keeps") or ()),
        )
        for item in _document()["cases"]
    ]


def canary_items() -> list[tuple[str, tuple[str, ...]]]:
    """``(text, canary_values)`` for every case."""
    return [(case.text, case.canaries) for case in cases()]


def near_misses() -> list[NearMiss]:
    """Every near miss, in file order."""
    return [NearMiss(str(i["id"]), str(i["text"]), str(i["why"])) for i in _document()["near_misses"]]


def all_canaries() -> tuple[str, ...]:
    """Every canary value of every case."""
    return tuple(c for case in cases() for c in case.canaries)


def combined_text() -> str:
    """Every case's text, one after the other, separated by blank lines (one big log tail)."""
    return "\n\n".join(case.text for case in cases())


def leaked(text_or_bytes: str | bytes, canaries: tuple[str, ...] | list[str]) -> list[str]:
    """The canaries found in the text, whole or as a 16-character piece.

    :param text_or_bytes: what a channel produced (bytes are decoded as UTF-8, bad bytes replaced).
    :param canaries: the values to look for.
    """
    text = text_or_bytes.decode("utf-8", "replace") if isinstance(text_or_bytes, bytes) else text_or_bytes
    found = []
    for canary in canaries:
        pieces = [canary]
        if len(canary) > 2 * _PIECE:
            pieces += [canary[i : i + _PIECE] for i in range(0, len(canary) - _PIECE + 1, _PIECE // 2)]
        if any(piece in text for piece in pieces):
            found.append(canary)
    return found


def assert_no_canary(text_or_bytes: str | bytes, canaries: tuple[str, ...] | list[str]) -> None:
    """Fail if any canary (or a 16-character piece of a long one) is in the text.

    :param text_or_bytes: what a channel produced.
    :param canaries: the values that must not be there.
    """
    found = leaked(text_or_bytes, canaries)
    assert not found, f"{len(found)} canary value(s) leaked: {found}"
