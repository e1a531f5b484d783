"""Hostile inputs (tests/data/adversarial/make.py) go through the analyzer in bounded time.

The time bound is the contract here: each input below took from seconds to minutes (or never finished,
or crashed) before the matcher became linear, and must now be diagnosed within BOUND seconds of CPU
time. The inputs are built so that they would take at least ten times the bound if it did not hold.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from support import adversarial

from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary
from qubinode_recovery_provider.diagnosis.logs import parse_log_line, read_log_tail
from qubinode_recovery_provider.diagnosis.preprocess import expand_line
from qubinode_recovery_provider.models import Diagnosis, RootCause

BOUND = 2.0  # CPU seconds (about 0.4 s here); every input took > 20 s (or failed) before

T = TypeVar("T")


adv = adversarial.make


@pytest.fixture(scope="module")
def warm(analyzer: FailureAnalyzer) -> FailureAnalyzer:
    """The shipped analyzer with its prefilter built, so the bound measures the analysis only."""
    analyzer.analyze("warm up: No space left on device")
    return analyzer


def _within(bound: float, work: Callable[[], T]) -> T:
    """``work()``, which must cost at most ``bound`` CPU seconds of this process: the work the analysis
    does, whatever other processes of a busy machine take of the CPUs meanwhile."""
    start = time.process_time()
    value = work()
    cpu = time.process_time() - start
    assert cpu <= bound, f"took {cpu:.2f} CPU seconds (bound {bound} s)"
    return value


def test_a_4mb_line_full_of_hits(warm: FailureAnalyzer) -> None:
    line = adv.hits_line(4 * 1024 * 1024)  # used to take minutes: every hit rescanned the line
    diagnosis: Diagnosis = _within(BOUND, lambda: warm.analyze(line))
    assert diagnosis.root_cause is RootCause.STORAGE
    assert diagnosis.matched_patterns[0].line_number == 1
    assert "No space left on device" in diagnosis.matched_patterns[0].evidence


def test_a_line_built_to_match_every_pattern(warm: FailureAnalyzer) -> None:
    examples = [cp.pattern.examples[0].text for cp in warm.library]
    line = adv.many_patterns_line(examples, 4_000_000)  # 27 s before
    diagnosis: Diagnosis = _within(BOUND, lambda: warm.analyze(line))
    assert diagnosis.root_cause is not RootCause.UNKNOWN
    # windows around the prefilter's hits confirm patterns all along the line, not just its start
    assert len(diagnosis.matched_patterns) >= len(examples) // 2


def test_an_80kb_jwt_line(warm: FailureAnalyzer) -> None:
    line = adv.jwt_line(80 * 1024)
    diagnosis: Diagnosis = _within(BOUND, lambda: warm.analyze("Deploying vm vm-7\n" + line))
    assert diagnosis.root_cause is RootCause.CREDENTIAL
    assert diagnosis.matched_patterns[0].line_number == 2
    assert len(diagnosis.template) <= 300


def test_a_27mb_single_line_ansible_result(warm: FailureAnalyzer) -> None:
    line = adv.ansible_result_line(2_700_000)  # 24 s before: tens of thousands of hits on one line
    assert len(line) >= 2_700_000
    diagnosis: Diagnosis = _within(BOUND, lambda: warm.analyze("PLAY [hypervisors]\n" + line))
    assert diagnosis.root_cause is not RootCause.UNKNOWN
    assert {m.line_number for m in diagnosis.matched_patterns} == {2}
    assert any("No space left on device" in m.evidence for m in diagnosis.matched_patterns)


def test_deep_json_log_records_are_plain_text(warm: FailureAnalyzer, tmp_path: Path) -> None:
    line = adv.deep_json_line(10_000)  # RecursionError before
    assert parse_log_line(line) == [line]
    log = tmp_path / "attempt=1.log"
    ok = json.dumps({"level": "error", "event": "Task failed with exception"})
    log.write_text(f"{ok}\n{line}\n{ok}\n")
    assert read_log_tail(log, 10) == ["Task failed with exception", line, "Task failed with exception"]
    diagnosis = _within(BOUND, lambda: warm.analyze(line))
    assert diagnosis.root_cause is RootCause.STORAGE


def test_a_shallow_json_record_is_still_rendered() -> None:
    record = {"level": "error", "event": "boom", "error_detail": [{"exc_type": "OSError", "exc_value": "x"}]}
    assert parse_log_line(json.dumps(record)) == ["boom", "OSError: x"]


def test_a_deeply_nested_ansible_result_stays_a_plain_line(warm: FailureAnalyzer) -> None:
    line = adv.deep_ansible_line(10_000)  # RecursionError before
    assert expand_line(line) == [line]
    diagnosis = _within(BOUND, lambda: warm.analyze(line))
    assert diagnosis.root_cause is RootCause.STORAGE


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    blob = {"msg": "No space left on device", "stdout": "[" * 5000 + "{" * 5000, "rc": 1}
    line = "fatal: [h1]: FAILED! => " + json.dumps(blob)
    assert expand_line(line) == [line, "No space left on device", "[" * 5000 + "{" * 5000]


def test_the_redos_user_pack_and_its_stressor(tmp_path: Path) -> None:
    (tmp_path / "redos.yaml").write_text(yaml.safe_dump(adv.redos_pack()))
    analyzer = FailureAnalyzer(PatternLibrary.load([tmp_path], shipped=False))
    analyzer.analyze("warm up")
    line = adv.redos_line(64)  # Python re: 2**64 ways to split the first run; it never finished
    diagnosis = _within(BOUND, lambda: analyzer.analyze(f"step 1\n{line}\nstep 3"))
    assert diagnosis.root_cause is RootCause.CONFIGURATION
    assert diagnosis.matched_patterns[0].pattern_id == "redos_001"
    assert diagnosis.matched_patterns[0].line_number == 2


def test_the_redos_pack_passes_the_checker(tmp_path: Path) -> None:
    from qubinode_recovery_provider.diagnosis.checker import check_packs

    path = tmp_path / "redos.yaml"
    path.write_text(yaml.safe_dump(adv.redos_pack()))
    assert check_packs([path]).problems == []


def test_the_small_corpus_files_can_be_written(tmp_path: Path) -> None:
    written = adv.write_small(tmp_path)
    assert {p.name for p in written} >= {"hits_line_256k.log", "deep_json_10k.log", "redos_pack.yaml"}
    assert all(p.stat().st_size < 1024 * 1024 for p in written)
