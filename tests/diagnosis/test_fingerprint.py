from __future__ import annotations

import pytest

from qubinode_recovery_provider.diagnosis.fingerprint import fingerprint, mask, template


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("uuid 123e4567-e89b-12d3-a456-426614174000 gone", "uuid <uuid> gone"),
        ("connect to 192.168.122.15:22 failed", "connect to <ipv4> failed"),
        ("mac 52:54:00:ab:cd:ef in use", "mac <mac> in use"),
        ("at 2026-11-02T10:11:12.345+00:00 it broke", "at <iso_datetime> it broke"),
        ("file /tmp/tmpa8x_3k/vm.xml missing", "file <tmp_path> missing"),
        ("run manual__2026-11-02T10:11:12+00:00 failed", "run <run_id> failed"),
        ("image sha256:" + "a" * 64 + " corrupt", "image <sha> corrupt"),
        ("exit status 137 after 12.5s", "exit status <number> after <number>s"),
        ("object 0x7f3a2b1c not found", "object <hex> not found"),
        ("domain vm-1a2b3c4d already exists", "domain vm-<hex> already exists"),
        ("domain vm-20261102 already exists", "domain vm<run_suffix> already exists"),
        ("at 10:11:12 it broke", "at <time> it broke"),
        ("addr fe80::5054:ff:fe12:3456 unreachable", "addr <ipv6> unreachable"),
    ],
)
def test_mask_replaces_variable_parts(line: str, expected: str) -> None:
    assert mask(line) == expected


def test_template_drops_log_prefix_and_folds_whitespace() -> None:
    line = "[2026-11-02T10:11:12.345+0000] {taskinstance.py:441} ERROR -   No   space left on device"
    assert template(line) == "No space left on device"


def test_same_failure_in_two_runs_has_one_fingerprint() -> None:
    a = template("Nov  2 10:11:12 host1 kcli: domain 'vm-manual__2026-11-02T10:11:12+00:00' already exists")
    b = template("Nov 28 23:59:01 host1 kcli: domain 'vm-manual__2026-11-28T23:59:01+00:00' already exists")
    assert a == b
    assert fingerprint("state_mismatch", ["kcli_001"], a) == fingerprint("state_mismatch", ["kcli_001"], b)


def test_different_failures_have_different_fingerprints() -> None:
    assert fingerprint("storage", ["disk_001"], "x") != fingerprint("storage", ["disk_002"], "x")
    assert fingerprint("storage", ["disk_001"], "x") != fingerprint("network", ["disk_001"], "x")
    assert len(fingerprint("storage", [], "x")) == 16
