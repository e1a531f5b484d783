"""Private files: 0600 files, 0700 folders the provider creates, and no change to a folder that exists
(``/tmp``, a home directory, a CI workspace): ``diagnose --output /tmp/analysis.json`` or a ledger at
``sqlite:////tmp/ledger.db`` once turned ``/tmp`` into ``0700``, and PostgreSQL could no longer use it."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from qubinode_recovery_provider.files import create_private_file, private_dir, write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


WRITERS: list[Callable[[Path], object]] = [
    lambda path: write_private(path, "text"),
    create_private_file,
]


@pytest.mark.parametrize("writer", WRITERS, ids=["write_private", "create_private_file"])
@pytest.mark.parametrize("shared_mode", [0o1777, 0o755, 0o775])
def test_a_file_in_a_folder_that_exists_leaves_the_folder_as_it_was(
    tmp_path: Path, writer: Callable[[Path], object], shared_mode: int
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(shared_mode)
    writer(shared / "analysis.json")
    assert _mode(shared) == shared_mode
    assert _mode(shared / "analysis.json") == 0o600


@pytest.mark.parametrize("writer", WRITERS, ids=["write_private", "create_private_file"])
def test_a_missing_folder_is_created_private(tmp_path: Path, writer: Callable[[Path], object]) -> None:
    writer(tmp_path / "state" / "reports" / "report.md")
    assert _mode(tmp_path / "state" / "reports") == 0o700
    assert _mode(tmp_path / "state" / "reports" / "report.md") == 0o600


def test_private_dir_tightens_the_folder_it_is_given(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    spool = tmp_path / "spool"
    spool.mkdir()
    spool.chmod(0o755)
    private_dir(spool)
    assert _mode(spool) == 0o700
    assert _mode(tmp_path) == 0o755  # its parent is not touched


def test_the_reports_folder_is_made_private_where_it_is_set_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qubinode_recovery_provider import config
    from qubinode_recovery_provider.escalation.reports import reports_dir

    monkeypatch.setattr(config, "state_dir", lambda: tmp_path / "state")
    (tmp_path / "state" / "reports").mkdir(parents=True)
    (tmp_path / "state" / "reports").chmod(0o755)
    assert _mode(reports_dir()) == 0o700
