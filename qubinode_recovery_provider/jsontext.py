"""JSON text from outside the process, read so that no input can end in a traceback.

``json.loads`` raises ``RecursionError`` on a document nested deeper than the interpreter can walk
(``[[[[...``: a few kilobytes are enough). That is bad input like any other, so :func:`loads` reports
it as a :class:`json.JSONDecodeError` (a ``ValueError``), which every caller already handles.

Plain Python, no Airflow.
"""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes | bytearray) -> Any:
    """``json.loads(text)``; a document nested too deeply raises :class:`json.JSONDecodeError`.

    :param text: the JSON text.
    :raises json.JSONDecodeError: when ``text`` is not JSON or is nested too deeply to read.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", "", 0) from None
