"""One way to read JSON whether :mod:`msgspec` decoded it into typed structs or :mod:`json` into dicts.

The shadow scan decodes large inputs (lineage events, REST pages) with msgspec's typed decoders, which
skip the fields nobody reads. Where msgspec is missing, or an input has an unexpected shape, the
standard library parses it and :class:`View` gives the dicts the same attribute access, so one
extraction function serves both paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

try:  # pragma: no branch
    import msgspec
except ImportError:  # pragma: no cover - exercised only where msgspec is absent
    msgspec = None  # type: ignore[assignment]

_RAW: Any = msgspec.Raw if msgspec is not None else ()
_ANY = msgspec.json.Decoder() if msgspec is not None else None


class View:
    """Attribute access over a JSON object: ``View(d).a.b`` is ``d["a"]["b"]`` or None."""

    __slots__ = ("data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def __getattr__(self, name: str) -> Any:
        value = self.data.get(name)
        return View(value) if isinstance(value, Mapping) else value


def is_raw(value: Any) -> bool:
    """True for an undecoded msgspec JSON fragment."""
    return msgspec is not None and isinstance(value, _RAW)


def mapping(value: Any) -> dict[str, Any] | None:
    """A plain dict from a raw JSON fragment, a :class:`View` or a mapping (None otherwise)."""
    if value is None or type(value) is dict:
        return value
    if isinstance(value, View):
        value = value.data
    elif is_raw(value):
        if not bytes(value):
            return None
        value = _ANY.decode(value)
    return dict(value) if isinstance(value, Mapping) else None


_CONTAINERS = (View, dict, list)


def as_str(value: Any) -> str | None:
    """A JSON scalar as text; None for null and for objects."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, _CONTAINERS):
        return None
    return str(value)


def as_int(value: Any, default: int) -> int:
    """A JSON scalar as an integer, or ``default``."""
    if value is None or isinstance(value, (*_CONTAINERS, bool)):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


#: ``msgspec`` is the module, or ``None`` where it is not installed: the decoders test it.
__all__ = ["View", "as_int", "as_str", "is_raw", "mapping", "msgspec"]
