"""The type checks of ``make lint`` are what ``pyproject.toml`` says: the core under every check of
``mypy --strict``, the adapters under mypy's defaults."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from mypy.config_parser import parse_config_file
from mypy.main import process_options
from mypy.options import Options

ROOT = Path(__file__).resolve().parent.parent
CORE = [
    "qubinode_recovery_provider.diagnosis",
    "qubinode_recovery_provider.diagnosis.matcher",
    "qubinode_recovery_provider.recovery.executor",
    "qubinode_recovery_provider.shadow.runs",
    "qubinode_recovery_provider.escalation",
    "qubinode_recovery_provider.store.migrations.versions.0001_initial",
    "qubinode_recovery_provider.models",
]
ADAPTERS = ["qubinode_recovery_provider.operators.execute", "qubinode_recovery_provider.cli.scan", "dags"]


def _configured(module: str) -> Options:
    """The options mypy checks ``module`` with under ``pyproject.toml``."""
    options = Options()
    strict_set: list[bool] = []
    parse_config_file(options, lambda: strict_set.append(True), str(ROOT / "pyproject.toml"), io.StringIO())
    assert not strict_set, "`strict = true` in pyproject.toml makes every module strict, adapters included"
    return options.clone_for_module(module)


def _strict_flags() -> dict[str, object]:
    """Every option ``mypy --strict`` changes, with its strict value (read from mypy itself, so a flag a
    newer mypy adds to ``--strict`` shows up here)."""

    def options(*argv: str) -> Options:
        _, parsed = process_options([*argv, "-c", "pass"], stdout=io.StringIO(), stderr=io.StringIO())
        return parsed

    strict, plain = options("--strict", "--config-file="), options("--config-file=")
    names = [name for name in dir(strict) if not name.startswith("_") and not callable(getattr(strict, name))]
    changed = {name: getattr(strict, name) for name in names if getattr(strict, name) != getattr(plain, name)}
    assert "disallow_untyped_defs" in changed
    return changed


@pytest.mark.parametrize("module", CORE)
def test_the_core_gets_every_check_of_strict(module: str) -> None:
    configured = _configured(module)
    assert {name: getattr(configured, name) for name in _strict_flags()} == _strict_flags()


@pytest.mark.parametrize("module", ADAPTERS)
def test_the_adapters_keep_the_default_checks(module: str) -> None:
    """The core's flags stay in the core (a per-module ``strict = true`` would make every module strict)."""
    configured, plain = _configured(module), Options()
    assert configured.disallow_untyped_defs is plain.disallow_untyped_defs is False
    assert configured.warn_return_any is plain.warn_return_any is False
