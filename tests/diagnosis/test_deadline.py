"""The analyzer's deadline and input cap: it stops where it must and says what it did not read."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary
from qubinode_recovery_provider.diagnosis import matcher as matcher_module
from qubinode_recovery_provider.diagnosis.analyzer import PARTIAL_SCAN_NOTE, Calibration
from qubinode_recovery_provider.diagnosis.matcher import Matcher
from qubinode_recovery_provider.models import RootCause

DISK = "error: No space left on device"


class _Clock:
    """A monotonic clock that moves one second each time it is read: the scan's clock reads are
    counted, so where it stops is exact and the test takes no time."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture(params=["hyperscan", "pyahocorasick"])
def matcher(request: pytest.FixtureRequest, small_library: PatternLibrary) -> Matcher:
    return Matcher(small_library.patterns, index_kind=request.param)


def test_a_deadline_that_has_passed_reads_nothing_and_the_diagnosis_says_so(
    small_analyzer: FailureAnalyzer,
) -> None:
    text = f"step 1\n{DISK}\nstep 3\n"
    assert small_analyzer.analyze(text).root_cause is RootCause.STORAGE
    late = small_analyzer.analyze(text, deadline=time.monotonic() - 1.0)
    assert late.root_cause is RootCause.UNKNOWN
    assert PARTIAL_SCAN_NOTE in late.summary
    assert "stopped at its deadline before the first line" in late.summary
    assert any("without a time limit" in action for action in late.recommended_actions)


def test_a_deadline_far_away_changes_nothing(small_analyzer: FailureAnalyzer) -> None:
    text = f"step 1\n{DISK}\nOperation timed out\n"
    plain = small_analyzer.analyze(text)
    timed = small_analyzer.analyze(text, deadline=time.monotonic() + 3600)
    assert timed.model_dump(exclude={"diagnosed_at"}) == plain.model_dump(exclude={"diagnosed_at"})
    assert PARTIAL_SCAN_NOTE not in timed.summary


def test_the_scan_stops_between_lines_once_the_deadline_passes(matcher: Matcher, monkeypatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(matcher_module, "time", clock)
    text = "\n".join(f"{DISK} (line {n})" for n in range(1, 101))
    result = matcher.scan_text(text, deadline=10.0)
    assert result.stopped == "deadline"
    # clock reads: before the chunk, after the prefilter, then after each line: lines 1..8 were read
    assert result.total_lines == 8
    assert result.counts[0] == 8
    assert [h.line_number for h in result.hits()] == [1, 2, 3, 6, 7, 8]
    assert result.tail[-1] == (8, f"{DISK} (line 8)")


def test_the_prefilter_itself_stops_at_the_deadline(matcher: Matcher, monkeypatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(matcher_module, "time", clock)
    text = f"{DISK}\n" * 20_000  # 20,000 prefilter hits: the clock is read every 4096 of them
    result = matcher.scan_text(text, deadline=3.0)
    assert result.stopped == "deadline"
    assert clock.now == 4.0  # before the chunk, at hits 4096 and 8192 (stop), after the prefilter
    assert result.total_lines == 0
    assert not result.counts


def test_a_partial_diagnosis_uses_what_was_read(small_library: PatternLibrary, monkeypatch) -> None:
    analyzer = FailureAnalyzer(small_library, Calibration())
    analyzer.analyze("warm up")
    monkeypatch.setattr(matcher_module, "time", _Clock())
    lines = [DISK] + ["Operation timed out"] * 50 + ["error: Failed to connect socket to '/run/libvirt-sock'"]
    diagnosis = analyzer.analyze("\n".join(lines), deadline=5.0)
    assert diagnosis.root_cause is RootCause.STORAGE
    assert "after line 3" in diagnosis.summary
    assert diagnosis.summary.startswith("The file system is full")


def test_a_file_scan_stops_at_the_deadline_too(matcher: Matcher, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(matcher_module, "CHUNK_BYTES", 64)
    path = tmp_path / "attempt=1.log"
    path.write_text("".join(f"noise {n}\n" if n % 10 else f"{DISK}\n" for n in range(1, 1001)))
    monkeypatch.setattr(matcher_module, "time", _Clock())
    result = matcher.scan_file(path, deadline=20.0)
    assert result.stopped == "deadline"
    assert 0 < result.counts[0] < 100


def test_the_deadline_stops_a_prefilter_drowning_in_hits(tmp_path: Path) -> None:
    """A hard bound: a pattern whose prefilter literal repeats at every byte of a 16 MB log costs
    about one microsecond per byte (16 s here); with a deadline 0.3 s away the analysis must answer
    within the deadline plus 0.5 s."""
    pack = {
        "pack": "degenerate",
        "patterns": [
            {
                "id": "degenerate_001",
                "regex": "aaaa+ ✗",  # not ASCII: prefiltered by its literal
                "literals": ["aaaa"],
                "category": "configuration",
                "severity": "low",
                "retryable": False,
                "description": "A literal that repeats in its own text",
                "examples": [{"text": "aaaa ✗", "source": "test"}],
                "near_misses": [{"text": "aaaa", "source": "test"}],
            }
        ],
    }
    (tmp_path / "degenerate.yaml").write_text(yaml.safe_dump(pack, allow_unicode=True))
    analyzer = FailureAnalyzer(PatternLibrary.load([tmp_path], shipped=False))
    analyzer.analyze("warm up")
    text = ("a" * (1024 * 1024 - 1) + "\n") * 16
    start = time.monotonic()
    diagnosis = analyzer.analyze(text, deadline=start + 0.3)
    elapsed = time.monotonic() - start
    assert elapsed <= 0.8, f"took {elapsed:.2f} s"
    assert PARTIAL_SCAN_NOTE in diagnosis.summary


def test_only_the_end_of_an_over_long_text_is_scanned(matcher: Matcher, monkeypatch) -> None:
    monkeypatch.setattr(matcher_module, "MAX_SCAN_BYTES", 1000)
    lines = [f"noise {n:04d}" for n in range(1, 301)]  # 11 bytes a line
    lines[9] = DISK  # line 10: in the part that is skipped
    lines[289] = DISK  # line 290: read
    result = matcher.scan_text("\n".join(lines) + "\n")
    assert result.skipped_bytes > 2000
    assert result.line_numbers_exact
    assert [h.line_number for h in result.hits()] == [290]
    assert result.total_lines == 300


def test_only_the_end_of_an_over_long_file_is_scanned(
    small_analyzer: FailureAnalyzer, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(matcher_module, "MAX_SCAN_BYTES", 1000)
    lines = [f"noise {n:04d}" for n in range(1, 301)]
    lines[9] = DISK
    lines[289] = "Operation timed out"
    path = tmp_path / "attempt=1.log"
    path.write_text("\n".join(lines) + "\n")
    diagnosis = small_analyzer.analyze_file(path)
    assert diagnosis.root_cause is RootCause.TIMEOUT  # the storage error above was not read
    assert PARTIAL_SCAN_NOTE in diagnosis.summary
    assert "were not read" in diagnosis.summary
    assert "line numbers count from the first line read" in diagnosis.summary
    assert any("part of the log that was not read" in a for a in diagnosis.recommended_actions)
