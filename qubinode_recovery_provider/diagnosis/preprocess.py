"""Turn structured failure blobs inside a log line into lines the patterns can read.

Ansible prints a failed task as one line, ``fatal: [host]: FAILED! => {"msg": "...", "stderr": ...}``;
the real error sits inside the JSON, escaped. :func:`expand_line` returns the line itself followed by
the text of the blob's ``msg``, ``stderr``, ``module_stderr`` and ``stdout`` values (and those of each
item in ``results``), one entry per line of that text.

JSON nested deeper than :data:`MAX_JSON_DEPTH` is not decoded (:func:`json_too_deep`): such a line stays
plain text, so a hostile line cannot exhaust the stack.
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any

from qubinode_recovery_provider.diagnosis.linear import compile_linear

BLOB_MARKER = "=> {"
_BLOB_START = compile_linear(r"(?:FAILED!|UNREACHABLE!|\(item=.*\)) => \{")
_MESSAGE_KEYS = ("msg", "err", "stderr", "module_stderr", "stdout", "exception")
MAX_EXPANDED_LINES = 80
#: Deeper JSON is kept as text (real Ansible results and Airflow records nest a handful of levels).
MAX_JSON_DEPTH = 64
_DECODER = json.JSONDecoder()
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = [0] * 256
_DEPTH_STEP[ord("[")] = _DEPTH_STEP[ord("{")] = 1
_DEPTH_STEP[ord("]")] = _DEPTH_STEP[ord("}")] = -1


def json_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON in ``text`` may nest deeper than ``limit`` (brackets inside strings do not count).

    Linear, and in C but for one step per bracket: escaped backslashes and quotes are dropped, the
    parts between quotes (the strings) are dropped, every byte but a bracket is deleted, and the
    running depth of what is left is measured.

    :param text: a JSON document, or a line with one in it.
    :param limit: the deepest nesting allowed.
    """
    if text.count("{") + text.count("[") <= limit:
        return False
    outside = "".join(text.replace("\\\\", "").replace('\\"', "").split('"')[::2])
    brackets = outside.encode("utf-8", "surrogatepass").translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > limit


def expand_line(line: str) -> list[str]:
    """Return ``[line]`` plus the message lines of an Ansible result blob in it, if any.

    :param line: one log line.
    """
    if BLOB_MARKER not in line:
        return [line]
    match = _BLOB_START.search(line)
    if match is None:
        return [line]
    start = match.end() - 1
    if json_too_deep(line[start:]):
        return [line]
    try:
        blob, _ = _DECODER.raw_decode(line, start)
    except (ValueError, RecursionError):
        return [line]
    extracted = list(_message_lines(blob))[:MAX_EXPANDED_LINES]
    return [line, *extracted]


def _message_lines(blob: Any, depth: int = 0) -> list[str]:
    if not isinstance(blob, dict) or depth > 2:
        return []
    lines: list[str] = []
    for key in _MESSAGE_KEYS:
        value = blob.get(key)
        if isinstance(value, str) and value.strip():
            lines.extend(part for part in value.splitlines() if part.strip())
        elif isinstance(value, list):
            lines.extend(str(part) for part in value if isinstance(part, str) and part.strip())
    for item in blob.get("results", []) if isinstance(blob.get("results"), list) else []:
        if isinstance(item, dict) and item.get("failed"):
            lines.extend(_message_lines(item, depth + 1))
    return lines
