"""Turn structured failure blobs inside a log line into lines the patterns can read.

Ansible prints a failed task as one line, ``fatal: [host]: FAILED! => {"msg": "...", "stderr": ...}``;
the real error sits inside the JSON, escaped. :func:`expand_line` returns the line itself followed by
the text of the blob's ``msg``, ``stderr``, ``module_stderr`` and ``stdout`` values (and those of each
item in ``results``), one entry per line of that text.
"""

from __future__ import annotations

import json
import re
from typing import Any

BLOB_MARKER = "=> {"
_BLOB_START = re.compile(r"(?:FAILED!|UNREACHABLE!|\(item=.*\)) => \{")
_MESSAGE_KEYS = ("msg", "err", "stderr", "module_stderr", "stdout", "exception")
MAX_EXPANDED_LINES = 80
_DECODER = json.JSONDecoder()


def expand_line(line: str) -> list[str]:
    """Return ``[line]`` plus the message lines of an Ansible result blob in it, if any."""
    if BLOB_MARKER not in line:
        return [line]
    match = _BLOB_START.search(line)
    if match is None:
        return [line]
    try:
        blob, _ = _DECODER.raw_decode(line, match.end() - 1)
    except ValueError:
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
