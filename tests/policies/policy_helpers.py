"""Test doubles shared by the retry policy tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUN_ID = "manual__2026-01-01T00:00:00+00:00"


@dataclass
class FakeTI:
    """The parts of a RuntimeTaskInstance the policy reads, and the XComs it pushes."""

    dag_id: str = "build_vm"
    task_id: str = "create_vm"
    run_id: str = RUN_ID
    try_number: int = 1
    map_index: int = -1
    pushed: dict[str, Any] = field(default_factory=dict)
    fail_push: bool = False

    def xcom_push(self, key: str, value: Any) -> None:
        if self.fail_push:
            raise RuntimeError("xcom backend down")
        self.pushed[key] = value


def write_attempt_log(base: Path, ti: FakeTI, messages: list[str]) -> Path:
    """Write an Airflow 3 JSON-lines attempt log for ``ti`` under ``base``."""
    path = base / f"dag_id={ti.dag_id}" / f"run_id={ti.run_id}" / f"task_id={ti.task_id}"
    if ti.map_index >= 0:
        path = path / f"map_index={ti.map_index}"
    path = path / f"attempt={ti.try_number}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [
        {"timestamp": "2026-01-01T00:00:00Z", "level": "info", "event": m, "logger": "task.stdout"}
        for m in messages
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path
