from __future__ import annotations

import random
import time

import pytest

from qubinode_recovery_provider.diagnosis.fingerprint import MASKS, fingerprint, mask, template


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


def _python_only_mask(line: str) -> str:
    for name, regex in MASKS:
        line = regex.sub(f"<{name}>", line)
    return line


def test_the_linear_url_and_email_masks_give_the_same_templates_as_python_re() -> None:
    """Stored fingerprints must not change: RE2 on the ASCII view finds what Python's Unicode-aware
    ``re`` finds, with word characters, spaces and case folds outside ASCII."""
    rng = random.Random(20261202)
    alphabet = "aZ09_.-+@:/ \t\v\x1c'\"<>é\u0130\u0131\u017f\u212aß✓\xa0\u2028日"
    lines = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 48))) for _ in range(20_000)]
    lines += [
        "Get https://quay.io/v2/: EOF and mail ops@example.com",
        "vm josé@example.org \u0131http://x.y/z \u0130map://h \u017fftp://h \u212aftp://h",
        "see\vhttp://a.b/c\x1cd and http://a.b/\u2028x",
    ]
    assert [mask(line) for line in lines] == [_python_only_mask(line) for line in lines]


@pytest.mark.parametrize("unit", ["a-", "a.", "é-"])
def test_masking_a_hostile_line_is_linear(unit: str) -> None:
    """A hard bound: the Python url and email masks took 0.2 s on 4 KiB of ``a-a-a-`` and grow with
    the square of the length; 64 KiB would take ~50 s. CPU seconds of this process (about 0.05 s
    here), so other work on a busy machine does not count."""
    line = unit * 32 * 1024
    start = time.process_time()
    masked = mask(line)
    assert time.process_time() - start <= 1.0
    assert len(masked) >= len(line) // 2
