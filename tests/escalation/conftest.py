"""Fixtures of the escalation tests: a migrated SQLite ledger, the local GitHub stand-in, a test clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.github_stub import Clock, GitHubStub, issues_for, start_github_stub, stop_github_stub

from qubinode_recovery_provider.escalation.github import GitHubIssues
from qubinode_recovery_provider.store import Ledger


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


@pytest.fixture
def issues(github: GitHubStub) -> GitHubIssues:
    return issues_for(github)
