"""``diagnose --log-file -`` streams stdin like a file: memory stays bounded whatever the input size.

A memory bound is the contract here: the child's own peak RSS (``wait4`` rusage) with 64 MiB piped in
must stay within a generous margin of its peak with one line piped in. Holding stdin whole would cost
at least the input twice over (the text, then its UTF-8 bytes for the matcher).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from cli_process import run_cli

FIXTURES = Path(__file__).parent.parent / "diagnosis" / "fixtures"
MIB = 1024 * 1024
INPUT_BYTES = 64 * MIB
MARGIN_BYTES = 24 * MIB
DECISIVE = b"fatal: [kvm1]: UNREACHABLE! ssh: connect to host 10.1.1.5 port 22: No route to host\n"


def _log(total: int) -> Iterator[bytes]:
    """``total`` bytes of ordinary task log lines with one decisive line in the middle, in 1 MiB chunks."""
    line = b"2025-01-01T00:00:00 INFO step ok: copied 4096 bytes to /var/lib/libvirt/images/disk.qcow2\n"
    block = line * (MIB // len(line))
    sent = 0
    while sent < total:
        yield block
        sent += len(block)
        if sent >= total // 2 and sent - len(block) < total // 2:
            yield DECISIVE


def test_stdin_is_streamed_in_bounded_memory() -> None:
    argv = ["diagnose", "--patterns-dir", str(FIXTURES), "--log-file", "-", "--json"]
    small = run_cli(argv, stdin_chunks=[DECISIVE], timeout=120)
    large = run_cli(argv, stdin_chunks=_log(INPUT_BYTES), timeout=300)

    assert small.code == 0, small.err
    assert large.code == 0, large.err
    diagnosis = json.loads(large.out)
    assert diagnosis["root_cause"] == "network"
    assert diagnosis["matched_patterns"][0]["line_number"] > 300_000  # it read the whole stream
    assert large.max_rss_bytes < small.max_rss_bytes + MARGIN_BYTES, (
        f"peak RSS {large.max_rss_bytes / MIB:.0f} MiB for {INPUT_BYTES / MIB:.0f} MiB of stdin, "
        f"{small.max_rss_bytes / MIB:.0f} MiB for one line"
    )


def test_stdin_and_a_file_give_the_same_diagnosis(tmp_path: Path) -> None:
    log = tmp_path / "task.log"
    log.write_bytes(b"boot\n" + DECISIVE + b"done\n")
    argv = ["diagnose", "--patterns-dir", str(FIXTURES), "--json", "--log-file"]

    from_file = run_cli([*argv, str(log)], timeout=120)
    from_stdin = run_cli([*argv, "-"], stdin_chunks=[log.read_bytes()], timeout=120)

    assert from_file.code == from_stdin.code == 0, from_stdin.err
    first, second = json.loads(from_file.out), json.loads(from_stdin.out)
    assert first["matched_patterns"] == second["matched_patterns"]
    assert first["fingerprint"] == second["fingerprint"]
