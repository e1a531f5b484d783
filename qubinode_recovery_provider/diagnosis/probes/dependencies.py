"""The service dependency map: service -> what depends on it, validated, and its transitive
dependents."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any


def _service_key(name: str) -> str:
    """Normalise a service name for dependency look-ups (``.service`` is optional).

    :param name: a unit, container or tool name.
    """
    return name.strip().removesuffix(".service")


def normalize_dependency_map(raw: Any) -> tuple[dict[str, list[str]], list[str]]:
    """Validate a dependency map: an object of service -> list of dependents.

    :param raw: decoded JSON (or a dict given in code); ``None`` means an empty map.
    :return: the usable map and one error text per entry that was dropped.
    """
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        return {}, [f"dependency_map must be a JSON object, got {type(raw).__name__}"]
    result: dict[str, list[str]] = {}
    errors: list[str] = []
    for key, value in raw.items():
        items = [value] if isinstance(value, str) else value
        if not isinstance(key, str) or not isinstance(items, list | tuple):
            errors.append(f"dependency_map entry {key!r} must map a name to a list of names")
            continue
        result[key] = [str(item) for item in items if isinstance(item, str | int) and str(item).strip()]
    return result, errors


def dependents_of(service: str, dependency_map: Mapping[str, Iterable[str]]) -> list[str]:
    """Return everything that depends on ``service``, directly or transitively, in breadth-first order.

    Names match with or without a ``.service`` suffix; cycles are harmless and ``service`` itself is
    never part of the answer.

    :param service: the service whose dependents are wanted.
    :param dependency_map: service -> names that depend on it.
    """
    graph: dict[str, list[str]] = {}
    for key, values in dependency_map.items():
        graph.setdefault(_service_key(key), []).extend(values)
    start = _service_key(service)
    seen = {start}
    found: list[str] = []
    queue: deque[str] = deque([start])
    while queue:
        for dependent in graph.get(queue.popleft(), []):
            key = _service_key(dependent)
            if key in seen:
                continue
            seen.add(key)
            found.append(dependent)
            queue.append(key)
    return found
