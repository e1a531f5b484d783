"""The hostile-input builders of ``tests/data/adversarial/make.py`` as a module (it is also a script)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

MAKE = Path(__file__).resolve().parents[1] / "data" / "adversarial" / "make.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("adversarial_make", MAKE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: ``make.py``: ``hits_line()``, ``jwt_line()``, ``ansible_result_line()``, ``deep_json_line()``, ...
make = _load()
