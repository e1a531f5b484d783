"""The learned text model: its inference, its file, how the analyzer asks it, and what it never does."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest
from support import processes

from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary
from qubinode_recovery_provider.diagnosis import model as learned
from qubinode_recovery_provider.diagnosis.model import (
    MAX_INPUT_CHARS,
    ModelCalibration,
    ModelError,
    TextModel,
    model_lines,
    text_lines,
)
from qubinode_recovery_provider.models import RootCause

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "tests" / "data" / "corpus" / "train.jsonl"
NOISE = [
    "lorem ipsum dolor sit amet, consectetur adipiscing elit",
    "hello world",
    "xyzzy plugh 42 frob",
    "aaaa bbbb cccc",
]


def _train_items() -> dict[str, dict[str, object]]:
    with TRAIN.open(encoding="utf-8") as handle:
        return {item["id"]: item for item in map(json.loads, handle)}


@pytest.fixture(scope="module")
def shipped() -> TextModel:
    return TextModel.load()


@pytest.fixture(scope="module")
def library() -> PatternLibrary:
    return PatternLibrary.load()


def test_the_shipped_model_reads_training_texts_as_their_labels(shipped: TextModel) -> None:
    items = _train_items()
    texts = [items[i] for i in ("a-libvirt-001", "a-cloud-init-007", "b-ansible-015")]
    for item in texts:
        prediction = shipped.predict(text_lines(str(item["text"])))
        assert prediction.category == item["category"], item["id"]
        assert 0.0 < prediction.runner_up <= prediction.probability <= 1.0
        assert prediction.evidence, "the lines that weighed most are given"
        assert prediction.evidence[0][2] >= prediction.evidence[-1][2]


def test_the_model_says_which_line_decided(shipped: TextModel) -> None:
    text = "starting the job\nloading settings\nsudo: a password is required\ncleaning up"
    prediction = shipped.predict(text_lines(text))
    assert prediction.evidence[0][:2] == (3, "sudo: a password is required")


@pytest.mark.parametrize("noise", NOISE)
def test_noise_stays_unknown(library: PatternLibrary, noise: str) -> None:
    d = FailureAnalyzer(library, use_llm=False, text_model=True).analyze(noise)
    assert d.root_cause is RootCause.UNKNOWN
    assert d.decided_by == "patterns"
    assert d.model is not None
    assert not d.model.decided
    said_unknown = d.model.root_cause is RootCause.UNKNOWN
    unsure = d.model.probability < ModelCalibration.load().decide_from
    assert said_unknown or unsure or not learned.error_line(learned.normalise(noise)), (
        "no line says it failed"
    )


def test_a_diagnosis_the_model_decides_says_so_and_claims_no_retry(library: PatternLibrary) -> None:
    item = _train_items()["a-cloud-init-007"]
    analyzer = FailureAnalyzer(library, use_llm=False, text_model=True)
    d = analyzer.analyze(str(item["text"]))
    assert d.decided_by == "model"
    assert d.root_cause.value == item["category"]
    assert d.retryable is None
    assert d.retry_delay_seconds is None
    assert d.summary.startswith("Learned model, no pattern matched")
    assert d.model is not None
    assert d.model.decided
    assert d.model.evidence
    assert d.model.pattern_root_cause is RootCause.UNKNOWN
    first = d.matched_patterns[0]
    assert (first.pattern_id, first.category, first.line_number) == (
        "learned-model",
        d.root_cause,
        d.model.evidence[0].line_number,
    )
    assert d.primary_pattern == "learned-model"
    assert d.template
    assert d.fingerprint == analyzer.analyze(str(item["text"])).fingerprint
    assert FailureAnalyzer(library, use_llm=False, text_model=False).analyze(str(item["text"])).model is None


def test_the_model_can_be_turned_off_in_the_configuration(
    library: PatternLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = str(_train_items()["a-cloud-init-007"]["text"])
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LEARNED_MODEL", "False")
    d = FailureAnalyzer(library, use_llm=False).analyze(text)
    assert (d.root_cause, d.decided_by, d.model) == (RootCause.UNKNOWN, "patterns", None)
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LEARNED_MODEL", "True")
    assert FailureAnalyzer(library, use_llm=False).analyze(text).decided_by == "model"


def test_a_confident_pattern_diagnosis_is_left_alone(library: PatternLibrary) -> None:
    text = "qemu-img: error writing: No space left on device"
    d = FailureAnalyzer(library, use_llm=False, text_model=True).analyze(text)
    assert d.confidence >= ModelCalibration.load().consult_below
    assert (d.root_cause, d.decided_by, d.model) == (RootCause.STORAGE, "patterns", None)
    assert d.matched_patterns


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",
        lambda data: data[: len(data) // 2],
        lambda data: gzip.compress(b"QRTM" + gzip.decompress(data)[4:-7]),
        lambda data: gzip.compress(b"not a model at all"),
    ],
    ids=["empty", "truncated", "short-arrays", "foreign"],
)
def test_a_damaged_model_file_is_a_counted_warning_and_the_patterns_decide(
    library: PatternLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: object
) -> None:
    path = tmp_path / "text_model.bin.gz"
    path.write_bytes(damage(learned.MODEL_FILE.read_bytes()))  # type: ignore[operator]
    with pytest.raises(ModelError):
        TextModel.load(path)
    monkeypatch.setattr(learned, "MODEL_FILE", path)
    analyzer = FailureAnalyzer(library, use_llm=False)
    d = analyzer.analyze(str(_train_items()["a-cloud-init-007"]["text"]))
    assert (d.root_cause, d.decided_by, d.model) == (RootCause.UNKNOWN, "patterns", None)
    (warning,) = analyzer.warnings
    assert warning.startswith("learned model off, diagnosing with the patterns only")
    analyzer.analyze("hello world")
    assert len(analyzer.warnings) == 1


def test_a_missing_model_file_is_a_warning_too(
    library: PatternLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(learned, "MODEL_FILE", tmp_path / "absent.bin.gz")
    analyzer = FailureAnalyzer(library, use_llm=False)
    assert analyzer.analyze("hello world").model is None
    assert "absent.bin.gz" in analyzer.warnings[0]


def test_the_model_reads_the_same_lines_from_a_scan_as_from_the_text(library: PatternLibrary) -> None:
    analyzer = FailureAnalyzer(library, use_llm=False, text_model=False)
    for item in list(_train_items().values())[:40]:
        text = str(item["text"])
        assert model_lines(analyzer.matcher.scan_text(text)) == text_lines(text), item["id"]


def test_the_model_reads_a_bounded_part_of_a_large_log(library: PatternLibrary) -> None:
    text = "\n".join(f"step {i}: " + "x" * 3000 for i in range(400)) + "\nsudo: a password is required"
    lines = model_lines(FailureAnalyzer(library, use_llm=False).matcher.scan_text(text))
    assert sum(len(t) + 1 for _, t in lines) <= MAX_INPUT_CHARS
    assert lines[-1] == (401, "sudo: a password is required")


def test_no_training_library_is_imported_and_a_confident_diagnosis_loads_no_model() -> None:
    code = (
        "import sys\n"
        "from qubinode_recovery_provider.diagnosis import FailureAnalyzer, model\n"
        "a = FailureAnalyzer(use_llm=False)\n"
        "a.analyze('qemu-img: error writing: No space left on device')\n"
        "print(len(model._loaded))\n"
        "d = a.analyze('hello world')\n"
        "print(len(model._loaded), d.model is not None)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'numpy', 'scipy')))\n"
    )
    proc = processes.run([sys.executable, "-c", code], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[:3] == ["0", "1 True", "[]"]


def test_the_shipped_model_is_reproducible_from_the_corpus() -> None:
    proc = processes.run([sys.executable, "scripts/train_model.py", "--check"], cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_the_report_says_the_model_decided_and_shows_its_line(library: PatternLibrary) -> None:
    from qubinode_recovery_provider.cli.render import render_diagnosis

    d = FailureAnalyzer(library, use_llm=False, text_model=True).analyze(
        str(_train_items()["a-cloud-init-007"]["text"])
    )
    report = render_diagnosis(d)
    assert "Decided by:   learned model, no pattern matched" in report
    assert f"line {d.model.evidence[0].line_number:<6} learned-model" in report  # type: ignore[union-attr]
    assert "Retryable:    not known" in report


def test_the_model_is_not_asked_once_the_deadline_has_stopped_the_scan(library: PatternLibrary) -> None:
    text = str(_train_items()["a-cloud-init-007"]["text"])
    d = FailureAnalyzer(library, use_llm=False, text_model=True).analyze(text, deadline=0.0)
    assert d.model is None
    assert d.decided_by == "patterns"


def test_by_default_a_cause_a_pattern_named_is_never_replaced_but_its_confidence_is_joint() -> None:
    from qubinode_recovery_provider.diagnosis.model import Prediction, combine
    from qubinode_recovery_provider.models import Diagnosis

    calibration = ModelCalibration(consult_below=0.8, decide_from=0.5)
    unsure = Diagnosis(root_cause=RootCause.TIMEOUT, confidence=0.6, fingerprint="f", retryable=None)
    disagreeing = Prediction("network", 0.99, 0.01, [(1, "connect: no route to host", 1.0)])
    d = combine(unsure.model_copy(), disagreeing, calibration)
    assert (d.root_cause, d.decided_by) == (RootCause.TIMEOUT, "patterns")
    assert d.model is not None
    assert not d.model.decided
    assert d.confidence == calibration.confidence(0.6, 0.99, False, False, False)
    agreeing = Prediction("timeout", 0.9, 0.05, [(1, "timed out", 1.0)])
    assert combine(unsure.model_copy(), agreeing, calibration).confidence == calibration.confidence(
        0.6, 0.9, True, False, False
    )


def _unsure(root_cause: RootCause) -> object:
    from qubinode_recovery_provider.models import Diagnosis, PatternMatch

    match = PatternMatch(pattern_id="timeout_001", category=root_cause, line_number=2, evidence="timed out")
    return Diagnosis(
        root_cause=root_cause,
        confidence=0.6,
        fingerprint="f",
        retryable=True,
        retry_delay_seconds=30,
        matched_patterns=[match],
        affected_services=["sshd"],
    )


def test_a_sure_model_overrules_an_unsure_pattern_when_it_read_more_than_one_line() -> None:
    from qubinode_recovery_provider.cli.render import render_diagnosis
    from qubinode_recovery_provider.diagnosis.model import Prediction, combine

    calibration = ModelCalibration(consult_below=0.8, decide_from=0.5, overrule_from=0.7)
    evidence = [(1, "dial tcp 10.0.0.7:443: connect: no route to host", 1.0), (2, "timed out", 0.2)]
    sure = Prediction("network", 0.8, 0.1, evidence, lines=2, error_lines=1)
    d = combine(_unsure(RootCause.TIMEOUT), sure, calibration)  # type: ignore[arg-type]
    assert (d.root_cause, d.decided_by) == (RootCause.NETWORK, "model")
    assert d.summary.startswith("Learned model, over an unsure pattern (timeout)")
    assert (d.retryable, d.retry_delay_seconds, d.affected_services) == (None, None, [])
    assert [m.pattern_id for m in d.matched_patterns] == ["learned-model", "timeout_001"]
    assert d.model is not None
    assert d.model.decided
    assert d.model.pattern_root_cause is RootCause.TIMEOUT
    assert d.confidence == calibration.confidence(0.6, 0.8, False, True, False)
    assert "Decided by:   learned model, over an unsure pattern (timeout)" in render_diagnosis(d)


@pytest.mark.parametrize(
    ("probability", "lines", "overrule_from"),
    [(0.69, 2, 0.7), (0.99, 1, 0.7), (0.99, 2, 1.01)],
    ids=["not-sure-enough", "one-line", "off"],
)
def test_the_pattern_keeps_its_cause(probability: float, lines: int, overrule_from: float) -> None:
    from qubinode_recovery_provider.diagnosis.model import Prediction, combine

    calibration = ModelCalibration(consult_below=0.8, decide_from=0.5, overrule_from=overrule_from)
    prediction = Prediction("network", probability, 0.01, [(1, "no route to host", 1.0)], lines, lines)
    d = combine(_unsure(RootCause.TIMEOUT), prediction, calibration)  # type: ignore[arg-type]
    assert (d.root_cause, d.decided_by, d.retryable) == (RootCause.TIMEOUT, "patterns", True)
    assert d.model is not None
    assert not d.model.decided


def test_an_error_line_weighs_more_than_a_context_line() -> None:
    counts, per_line = learned.feature_counts([(1, "loading settings"), (2, "Error: disk full")], 18)
    assert [weight for *_, weight in per_line] == [1, learned.ERROR_LINE_WEIGHT]
    words = {w: learned.line_features(w, 18)[0] for w in ("settings", "disk")}
    assert (counts[words["settings"]], counts[words["disk"]]) == (1, learned.ERROR_LINE_WEIGHT)


def test_the_model_names_no_cause_when_no_line_it_read_says_something_failed() -> None:
    calibration = ModelCalibration(decide_from=0.5)
    quiet = learned.Prediction("configuration", 0.9, 0.05, [(1, "something nobody has seen", 1.0)], 1, 0)
    assert not calibration.decides("unknown", quiet)
    failed = learned.Prediction("configuration", 0.9, 0.05, [(1, "invalid value for key", 1.0)], 1, 1)
    assert calibration.decides("unknown", failed)
