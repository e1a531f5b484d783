"""Tests of the journal probe (qubinode_recovery_provider.diagnosis.probes.journal), the reference guide's
``get_plugin_logs``. A fake ``journalctl`` placed first on ``PATH`` prints recorded JSON output."""

from __future__ import annotations

from pathlib import Path

from support.probe_fakes import write_executable

from qubinode_recovery_provider.diagnosis.probes.journal import (
    MAX_ENTRIES,
    MAX_SINCE_SECONDS,
    journal_entries,
)

RECORDED = (
    '{"__REALTIME_TIMESTAMP": "1700000000000000", "_SYSTEMD_UNIT": "libvirtd.service", '
    '"PRIORITY": "3", "MESSAGE": "internal error: password=hunter2 rejected"}\n'
    "not json\n"
    "[1, 2]\n"
    '{"MESSAGE": null}\n'
    '{"__REALTIME_TIMESTAMP": "1700000001000000", "MESSAGE": [104, 105]}\n'
)


def _journalctl(fake_bin: Path, tmp_path: Path, body: str) -> Path:
    argv_log = tmp_path / "argv"
    write_executable(fake_bin, "journalctl", f'printf "%s\\n" "$@" > "{argv_log}"\n{body}')
    return argv_log


def test_entries_are_parsed_redacted_and_bounded(
    fake_bin: Path, recorded_output: Path, tmp_path: Path
) -> None:
    recorded_output.write_text(RECORDED)
    argv_log = _journalctl(fake_bin, tmp_path, f'cat "{recorded_output}"\n')

    entries, reason = journal_entries("libvirtd", since_seconds=600)

    assert reason == ""
    assert argv_log.read_text().split() == [
        "--no-pager",
        "--output=json",
        "--since=-600s",
        f"--lines={MAX_ENTRIES}",
        "--unit=libvirtd",
    ]
    assert entries == [
        {
            "timestamp": "2023-11-14T22:13:20+00:00",
            "unit": "libvirtd.service",
            "priority": 3,
            "message": "internal error: password=*** rejected",
        },
        {"timestamp": "2023-11-14T22:13:21+00:00", "unit": "", "priority": None, "message": "hi"},
    ]


def test_the_window_and_the_count_are_clipped(fake_bin: Path, tmp_path: Path) -> None:
    argv_log = _journalctl(fake_bin, tmp_path, "")
    for since, lines, expected in (
        (10**12, 10**6, [f"--since=-{MAX_SINCE_SECONDS}s", f"--lines={MAX_ENTRIES}"]),
        (float("nan"), 0, ["--since=-300s", "--lines=1"]),
        (-5, 3, ["--since=-1s", "--lines=3"]),
    ):
        assert journal_entries("sshd", since, limit=lines) == ([], "")
        assert argv_log.read_text().split()[2:4] == expected


def test_a_name_is_never_an_option_and_failures_are_reasons(fake_bin: Path, tmp_path: Path) -> None:
    argv_log = _journalctl(fake_bin, tmp_path, 'echo "No journal files were found." >&2\nexit 1\n')
    assert journal_entries("--all") == ([], "invalid unit name '--all'")
    assert journal_entries("a b") == ([], "invalid unit name 'a b'")
    assert not argv_log.exists()
    assert journal_entries("sshd") == ([], "journalctl exited with 1: No journal files were found.")


def test_a_hanging_journalctl_is_killed_at_the_timeout(fake_bin: Path, tmp_path: Path) -> None:
    _journalctl(fake_bin, tmp_path, "sleep 30\n")
    assert journal_entries("sshd", timeout=0.3) == ([], "journalctl timed out after 0.3s")


def test_without_journalctl_there_is_a_reason(empty_path: None) -> None:
    assert journal_entries("sshd") == ([], "journalctl not found on PATH")
