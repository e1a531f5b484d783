"""Constants and helpers shared by the recovery tests (imported by name: no package under tests/)."""

from __future__ import annotations

from typing import Any

RUN_ID = "manual__2025-01-01T00:00:00+00:00"


def option_types(plan: Any) -> list[str]:
    return [option.type.value for option in plan.options]
