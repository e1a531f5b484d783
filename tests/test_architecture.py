"""docs/architecture.md matches the code: every module it names exists and holds the symbol it names."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
#: A table row that names a module file and a symbol: ``| ... | `pkg/mod.py` | `Symbol` | ...``.
ROW = re.compile(r"^\|[^|\n]*\|\s*`(qubinode_recovery_provider/[\w/]+\.py)`\s*\|\s*`(\w+)`\s*\|", re.M)
#: Any module file named in the prose.
NAMED = re.compile(r"`((?:qubinode_recovery_provider/)?[a-z_]+(?:/[a-z_]+)*\.py)`")
PACKAGE = Path(__file__).resolve().parents[1] / "qubinode_recovery_provider"


def _rows() -> list[tuple[str, str]]:
    return ROW.findall(DOC.read_text(encoding="utf-8"))


def _module_name(path: str) -> str:
    dotted = path.removesuffix(".py").replace("/", ".")
    return dotted.removesuffix(".__init__")


def test_the_page_names_every_step_of_a_failure_and_a_public_api() -> None:
    rows = _rows()
    assert len(rows) >= 40
    symbols = {symbol for _, symbol in rows}
    for step in ("RecoveryNotifier", "FailureAnalyzer", "Ledger", "failure_starts_run", "decide"):
        assert step in symbols


@pytest.mark.parametrize(("path", "symbol"), _rows())
def test_each_named_symbol_is_where_the_page_says(path: str, symbol: str) -> None:
    module = importlib.import_module(_module_name(path))
    assert hasattr(module, symbol), f"{path} has no {symbol}"


def test_each_module_file_named_in_the_prose_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in set(NAMED.findall(text)):
        relative = name.removeprefix("qubinode_recovery_provider/")
        assert (PACKAGE / relative).is_file() or (PACKAGE.parent / relative).is_file(), name
