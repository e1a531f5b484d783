"""Names a package exports but imports on first use (PEP 562), so that importing the package stays
cheap: the start-up paths (``bench/bench_startup.py``, ``tests/test_startup_imports.py``) load only
what they use."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def from_module(module: str, names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """The entries of :func:`lazy_attributes`'s table for ``names``, each under its own name in ``module``.

    :param module: the dotted module path that defines them.
    :param names: the names.
    """
    return {name: (module, name) for name in names}


def lazy_attributes(
    package: str, where: Mapping[str, tuple[str, str]], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``where[name] = (module, attribute)`` on first access and
    keeps it in ``namespace`` (the package's ``globals()``), so the next access is a plain lookup.

    :param package: the package's ``__name__``, for the error of an unknown name.
    :param where: exported name -> (dotted module path, attribute name there).
    :param namespace: the package's ``globals()``.
    """

    def __getattr__(name: str) -> Any:
        target = where.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(target[0]), target[1])
        namespace[name] = value
        return value

    return __getattr__
