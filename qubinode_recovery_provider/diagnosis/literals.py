"""Derive the required literals of a regular expression, for the Aho-Corasick prefilter.

``required_literals(regex)`` returns a set of lower-case strings such that every match of the regex
contains at least one of them (or ``None`` when no such set can be proven). Among the candidate sets
the one whose shortest member is longest wins: it makes the most selective prefilter.
"""

from __future__ import annotations

import re

# Python 3.11 moved the regex parser to private modules (``sre_parse`` is a deprecated alias that warns on
# import). typeshed has no stubs for them: the narrow ignores make them ``Any``.
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

_LITERAL = sre_constants.LITERAL
_IN = sre_constants.IN
_BRANCH = sre_constants.BRANCH
_SUBPATTERN = sre_constants.SUBPATTERN
_ATOMIC = getattr(sre_constants, "ATOMIC_GROUP", None)
_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT}
if hasattr(sre_constants, "POSSESSIVE_REPEAT"):
    _REPEATS.add(sre_constants.POSSESSIVE_REPEAT)
# Zero-width items do not break a literal run: "foo\bbar" still requires "foobar"? No: \b sits between
# characters, so "foo" and "bar" are adjacent in the text and the run continues.
_ZERO_WIDTH = {sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT}

Candidate = frozenset[str]


def required_literals(regex: str) -> frozenset[str] | None:
    """Return lower-case literals of which every match contains one, or ``None``."""
    try:
        parsed = parse_regex(regex)
    except re.error:
        return None
    return literals_of_parsed(parsed)


def parse_regex(regex: str) -> Any:
    """Parse a regex (raises :class:`re.error` on a syntax error) without compiling it."""
    return sre_parse.parse(regex)


def literals_of_parsed(parsed: Any) -> frozenset[str] | None:
    """:func:`required_literals` of an already parsed regex."""
    return _best(_candidates(list(parsed)))


def _quality(candidate: Candidate) -> tuple[int, int]:
    return (min(len(s) for s in candidate), -len(candidate))


def _best(candidates: list[Candidate]) -> Candidate | None:
    usable = [c for c in candidates if c and all(c)]
    return max(usable, key=_quality) if usable else None


def _single_char(op: Any, arg: Any) -> str | None:
    """The lower-case character an item always matches, if it is one character (``a``, ``[Aa]``)."""
    if op == _LITERAL:
        return chr(arg).lower()
    if op == _IN:
        chars = {chr(v).lower() for o, v in arg if o == _LITERAL}
        if len(chars) == 1 and all(o == _LITERAL for o, _ in arg):
            return chars.pop()
    return None


def _candidates(items: list[tuple[Any, Any]]) -> list[Candidate]:
    """Candidate literal sets of a sequence: its literal runs and its mandatory sub-expressions."""
    found: list[Candidate] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            found.append(frozenset({"".join(run)}))
            run.clear()

    for op, arg in items:
        char = _single_char(op, arg)
        if char is not None:
            run.append(char)
            continue
        if op in _ZERO_WIDTH:
            continue
        close_run()
        sub = _sub_candidate(op, arg)
        if sub is not None:
            found.append(sub)
    close_run()
    return found


def _sub_candidate(op: Any, arg: Any) -> Candidate | None:
    if op == _SUBPATTERN:
        return _best(_candidates(list(arg[-1])))
    if _ATOMIC is not None and op == _ATOMIC:
        return _best(_candidates(list(arg)))
    if op in _REPEATS and arg[0] >= 1:
        return _best(_candidates(list(arg[2])))
    if op == _BRANCH:
        union: set[str] = set()
        for alternative in arg[1]:
            best = _best(_candidates(list(alternative)))
            if best is None:
                return None
            union |= best
        return frozenset(union)
    return None
