"""Test doubles of the notifier tests: task instances, callback contexts, a supervisor channel."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUN_ID = "manual__2026-01-01T00:00:00+00:00"
SSH_DENIED = "root@10.0.0.5: Permission denied (publickey)."


@dataclass
class FakeTI:
    dag_id: str = "build_vm"
    task_id: str = "create_vm"
    run_id: str = RUN_ID
    try_number: int = 1
    map_index: int = -1
    state: str = "failed"


def task_context(exception: BaseException | str | None = None, **ti: Any) -> dict[str, Any]:
    """A task callback context as the task runner builds it (``exception`` always present)."""
    instance = FakeTI(**ti)
    return {"ti": instance, "task_instance": instance, "run_id": instance.run_id, "exception": exception}


def processor_context(**ti: Any) -> dict[str, Any]:
    """A task callback context as the DAG processor builds it: no ``exception`` key."""
    instance = FakeTI(**ti)
    return {"ti": instance, "task_instance": instance, "run_id": instance.run_id}


@dataclass
class FakeDag:
    dag_id: str = "build_vm"


def dag_context(reason: str = "task_failure") -> dict[str, Any]:
    """A DAG-level callback context without a task instance."""
    return {"dag": FakeDag(), "run_id": RUN_ID, "reason": reason}


@dataclass
class FakeComms:
    """Stands in for the task process's channel to its supervisor."""

    answer: Any = None
    sent: list[Any] = field(default_factory=list)

    def send(self, msg: Any) -> Any:
        self.sent.append(msg)
        return self.answer


def executable(directory: Path, name: str, body: str) -> Path:
    """Write a shell script ``name`` into ``directory`` (put first on PATH by the caller)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def path_with(directory: Path) -> str:
    return f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"
