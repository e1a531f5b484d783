"""Fixtures of the escalation tests: a migrated SQLite ledger, the local GitHub stand-in, a test clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.github_stub import FULL_NAME, TOKEN, GitHubStub, start_github_stub, stop_github_stub

from qubinode_recovery_provider.escalation.github import GitHubIssues, github_client
from qubinode_recovery_provider.store import Ledger


class Clock:
    """A clock the test moves (thread-safe)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self.now += timedelta(seconds=seconds)
            return self.now


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(ledger_url: str, tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(ledger_url, tmp_path / "spool") as opened:
        opened.migrate()
        yield opened


@pytest.fixture
def github() -> Iterator[GitHubStub]:
    stub = start_github_stub()
    try:
        yield stub
    finally:
        stop_github_stub(stub)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def issues_for(stub: GitHubStub) -> GitHubIssues:
    """The real PyGithub client pointed at the stand-in (no write spacing: the stand-in needs none)."""
    client = github_client(
        TOKEN, base_url=stub.url, timeout=10, seconds_between_requests=None, seconds_between_writes=None
    )
    return GitHubIssues(client, FULL_NAME)


@pytest.fixture
def issues(github: GitHubStub) -> GitHubIssues:
    return issues_for(github)
