"""The learned text model beside the patterns: recall on wording no pattern has seen.

A linear classifier over hashed word, word-pair and character n-gram features of the failure's
decisive lines, trained at build time on the training side of the labelled corpus
(``scripts/train_model.py``, scikit-learn) and shipped as a few hundred KiB of package data
(:data:`MODEL_FILE`). Inference here is plain Python: no numpy, no scikit-learn.

- **Bounded input.** The model reads the lines a scan kept (:func:`model_lines`): the lines the
  patterns matched and the log's last lines, each cut to :data:`MAX_LINE_CHARS`, at most
  :data:`MAX_INPUT_CHARS` in all (the last ones). It never sees the rest of a large log.
- **Linear-time features.** The variable parts of each line are masked with the fingerprint table
  (:func:`~.fingerprint.mask`, the same shapes as the fingerprints), the line is lowercased and cut into
  words with :meth:`str.translate` and :meth:`bytes.split`; features are hashed with CRC-32.
- **Lazy.** The analyzer loads the model only when the patterns are not confident (never on the
  confident path), once per process; a missing or damaged file is a counted warning and the analyzer
  goes on with the patterns alone.

Plain Python, no Airflow.
"""

from __future__ import annotations

import json
import logging
import math
import struct
import zlib
from array import array
from dataclasses import dataclass, field, fields
from itertools import pairwise, repeat
from operator import mul
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.categories import RootCause, Severity
from qubinode_recovery_provider.diagnosis.fingerprint import fingerprint, mask, template
from qubinode_recovery_provider.diagnosis.preprocess import expand_line

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from qubinode_recovery_provider.diagnosis.matcher import ScanResult
    from qubinode_recovery_provider.models import Diagnosis, ModelOpinion

log = logging.getLogger(__name__)

MODEL_FILE = Path(__file__).with_name("text_model.bin.gz")
CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
#: The pattern id a diagnosis decided by the model is fingerprinted with.
MODEL_ID = "learned-model"
MAGIC = b"QRTM"
FORMAT_VERSION = 2
#: Characters of one line the model reads (the start of the line).
MAX_LINE_CHARS = 1000
#: Characters the model reads in all: the last lines of :func:`model_lines`.
MAX_INPUT_CHARS = 16384
#: Characters of a tail line the matcher keeps (its ``MAX_LINE_WINDOW`` bytes, for ASCII text).
TAIL_LINE_CHARS = 4096
#: Characters of one word that count (longer words are cut).
MAX_WORD_CHARS = 40
#: Character n-gram sizes, within words padded with a space on each side.
CHAR_NGRAMS = (3, 4, 5)
#: Evidence lines a model diagnosis shows.
EVIDENCE_LINES = 3
#: Words (of a line as :func:`normalise` made it) that make it an error line: a line that says
#: something failed, in the words tools use for it.
ERROR_WORDS = (
    b"err",
    b"fail",
    b"fatal",
    b"exception",
    b"denied",
    b"refus",
    b"cannot",
    b"can t",
    b"could not",
    b"couldn t",
    b"unable",
    b"not able",
    b"not found",
    b"no such",
    b"invalid",
    b"abort",
    b"panic",
    b"timed out",
    b"timeout",
    b"unreachable",
    b"unavailable",
    b"out of memory",
    b"oom",
    b"killed",
    b"sigkill",
    b"no space",
    b"not enough",
    b"insufficient",
    b"exceeded",
    b"too many",
    b"rejected",
    b"revoked",
    b"disabled",
    b"unhandled",
    b"stale",
    b"missing",
    b"no module",
    b"not available",
    b"not viable",
    b"not installed",
    b"no valid",
    b"does not",
    b"please ensure",
    b"please enable",
    b"exited with",
    b"exit status",
    b"exit code",
    b"non zero",
    b"interrupted",
    b"lock",
    b"crash",
    b"trouble",
    b"more space",
    b"reached",
)
#: How many times an error line's features count.
ERROR_LINE_WEIGHT = 2
_SEPARATORS = str.maketrans({c: " " for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~\t\r\n\x0b\x0c"})


class ModelError(ValueError):
    """The model file is missing, damaged or of another format version."""


def normalise(line: str) -> bytes:
    """A line as the model reads it: variable parts masked, lowercased, punctuation as spaces, UTF-8.

    :param line: one log line (only its first :data:`MAX_LINE_CHARS` characters are read).
    """
    return mask(line[:MAX_LINE_CHARS]).lower().translate(_SEPARATORS).encode("utf-8", "replace")


def line_features(line: str, mask_bits: int) -> list[int]:
    """The hashed features of one line (with repeats): words, word pairs and character n-grams.

    :param line: one log line.
    :param mask_bits: the hash space is ``2 ** mask_bits`` buckets.
    """
    return _features(normalise(line), mask_bits)


def error_line(normalised: bytes) -> bool:
    """Whether a line (as :func:`normalise` made it) says something failed: its features count
    :data:`ERROR_LINE_WEIGHT` times (the decisive line outweighs the context around it)."""
    return any(word in normalised for word in ERROR_WORDS)


def feature_counts(lines: Iterable[tuple[int, str]], mask_bits: int) -> tuple[dict[int, int], list[Any]]:
    """The bucket counts of a failure's lines (an error line's features count
    :data:`ERROR_LINE_WEIGHT` times), and ``(line_number, text, features, weight)`` of each line.

    :param lines: ``(line_number, text)`` pairs (:func:`model_lines`).
    :param mask_bits: the hash space is ``2 ** mask_bits`` buckets.
    """
    counts: dict[int, int] = {}
    per_line = []
    for number, text in lines:
        norm = normalise(text)
        feats = _features(norm, mask_bits)
        weight = ERROR_LINE_WEIGHT if error_line(norm) else 1
        per_line.append((number, text, feats, weight))
        for f in feats:
            counts[f] = counts.get(f, 0) + weight
    return counts, per_line


def _features(normalised: bytes, mask_bits: int) -> list[int]:
    hash_mask = (1 << mask_bits) - 1
    crc = zlib.crc32
    words = [w[:MAX_WORD_CHARS] for w in normalised.split() if len(w) > 1]
    out = [crc(b"w" + w) & hash_mask for w in words]
    out += [crc(b"b" + a + b" " + b) & hash_mask for a, b in pairwise(words)]
    for word in words:
        padded = b" " + word + b" "
        size = len(padded)
        for n in CHAR_NGRAMS:
            out.extend(crc(padded[i : i + n]) & hash_mask for i in range(size - n + 1))
    return out


def model_lines(scan: ScanResult) -> list[tuple[int, str]]:
    """The lines the model reads from a scan, ``(line_number, text)`` in line order: the log's last
    lines and every line a pattern matched above them (Ansible result blobs opened), bounded in size.
    For a text of up to :data:`~.matcher.TAIL_LINES` lines this is :func:`text_lines` of the text.

    :param scan: what the matcher kept of the log.
    """
    by_number = {number: text for number, text in scan.tail if text.strip()}
    for hit in scan.hits():  # lines above the tail (an expanded blob's hit is its line's, in the tail)
        by_number.setdefault(hit.line_number, hit.text)
    lines: list[tuple[int, str]] = []
    for number in sorted(by_number):
        lines.extend((number, part[:MAX_LINE_CHARS]) for part in expand_line(by_number[number]))
    return _last_chars(lines, MAX_INPUT_CHARS)


def text_lines(text: str) -> list[tuple[int, str]]:
    """:func:`model_lines` for a short text read whole (tests and tools)."""
    numbered = [(i, line[:TAIL_LINE_CHARS]) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    lines = [(n, part[:MAX_LINE_CHARS]) for n, line in numbered for part in expand_line(line)]
    return _last_chars(lines, MAX_INPUT_CHARS)


def _last_chars(lines: list[tuple[int, str]], budget: int) -> list[tuple[int, str]]:
    kept: list[tuple[int, str]] = []
    for number, text in reversed(lines):
        budget -= len(text) + 1
        if budget < 0:
            break
        kept.append((number, text))
    return kept[::-1]


@dataclass
class Prediction:
    """What the model says about one failure.

    :param category: the most probable category (a :class:`~.models.RootCause` value).
    :param probability: its probability (softmax of the linear scores times the temperature fitted
        at build time; the diagnosis's confidence is calibrated jointly with the patterns').
    :param runner_up: the second most probable category's probability.
    :param evidence: ``(line_number, text, weight)`` of the lines that weigh most for ``category``.
    :param lines: how many lines it read.
    :param error_lines: how many of them say something failed (:func:`error_line`).
    """

    category: str
    probability: float
    runner_up: float
    evidence: list[tuple[int, str, float]] = field(default_factory=list)
    lines: int = 0
    error_lines: int = 0


class TextModel:
    """A trained model: hashed-feature buckets, their IDF and per-class weights.

    :param header: the file's JSON header (classes, hash bits, bias, scale, unseen IDF, provenance).
    :param buckets: sorted bucket ids that have weights.
    :param idf: the IDF of each bucket, times :data:`IDF_SCALE` (unsigned 16-bit).
    :param weights: ``len(buckets) * len(classes)`` quantised weights (signed 16-bit), row per bucket.
    """

    IDF_SCALE = 4096.0

    def __init__(self, header: dict[str, Any], buckets: array[int], idf: array[int], weights: array[int]):
        self.header = header
        self.classes: list[str] = list(header["classes"])
        self.bits = int(header["bits"])
        self.bias: list[float] = [float(b) for b in header["bias"]]
        self.scale = float(header["scale"])
        self.unseen_idf = float(header["unseen_idf"])
        #: Scores are multiplied by this before the softmax (fitted on out-of-fold scores at build time).
        self.temperature = float(header.get("temperature", 1.0))
        self._row = {bucket: i for i, bucket in enumerate(buckets)}
        self._idf = idf
        self._weights = weights
        k = len(self.classes)
        if len(idf) != len(buckets) or len(weights) != len(buckets) * k or len(self.bias) != k:
            raise ModelError("model arrays do not agree in size")
        #: The weights of each class, one array per class (the file holds them bucket by bucket).
        self._by_class = [weights[c::k] for c in range(k)]

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> TextModel:
        """Read a model file.

        :param path: the file (``text_model.bin.gz``).
        :raises ModelError: when it is missing, damaged or of another format.
        """
        import gzip  # only when the model is needed

        try:
            return cls.from_bytes(gzip.decompress(path.read_bytes()))
        except ModelError:
            raise
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise ModelError(f"cannot read {path.name}: {exc}") from None

    @classmethod
    def from_bytes(cls, data: bytes) -> TextModel:
        """A model from the uncompressed file content (see :func:`pack`)."""
        try:
            if data[:4] != MAGIC:
                raise ModelError("not a text model file")
            version, header_len, n, k = struct.unpack_from("<IIII", data, 4)
            if version != FORMAT_VERSION:
                raise ModelError(f"model format {version}, expected {FORMAT_VERSION}")
            offset = 20
            header = json.loads(data[offset : offset + header_len])
            offset += header_len
            buckets, idf, weights = array("I"), array("H"), array("h")
            for arr, count in ((buckets, n), (idf, n), (weights, n * k)):
                size = count * arr.itemsize
                arr.frombytes(data[offset : offset + size])
                offset += size
            if offset != len(data) or len(header["classes"]) != k:
                raise ModelError("model file has the wrong size")
            return cls(header, buckets, idf, weights)
        except ModelError:
            raise
        except (ValueError, KeyError, TypeError, struct.error) as exc:
            raise ModelError(f"damaged model file: {exc}") from None

    def predict(self, lines: Sequence[tuple[int, str]]) -> Prediction:
        """The model's verdict on the lines of one failure (:func:`model_lines`).

        :param lines: ``(line_number, text)`` pairs.
        """
        counts, per_line = feature_counts(lines, self.bits)
        values, norm = self._tfidf(counts)
        probs = _softmax([s * self.temperature for s in self._scores(values, norm)])
        k = len(self.classes)
        order = sorted(range(k), key=lambda c: -probs[c])
        best = order[0]
        evidence = self._evidence(per_line, counts, values, norm, best)
        runner_up = probs[order[1]] if k > 1 else 0.0
        errors = sum(1 for *_, weight in per_line if weight > 1)
        return Prediction(
            self.classes[best], round(probs[best], 4), round(runner_up, 4), evidence, len(per_line), errors
        )

    def scores(self, lines: Sequence[tuple[int, str]]) -> list[float]:
        """The raw linear score of each class (before the temperature and the softmax)."""
        return self._scores(*self._tfidf(feature_counts(lines, self.bits)[0]))

    def _scores(self, values: dict[int, float], norm: float) -> list[float]:
        rows = [self._row[bucket] for bucket in values]
        xs = list(values.values())
        factor = self.scale / norm
        return [
            bias + factor * sum(map(mul, xs, map(weights.__getitem__, rows)))
            for bias, weights in zip(self.bias, self._by_class, strict=True)
        ]

    def _tfidf(self, counts: dict[int, int]) -> tuple[dict[int, float], float]:
        """Sublinear TF times IDF of the buckets that have weights; the L2 norm over all buckets."""
        values: dict[int, float] = {}
        total = 0.0
        for bucket, count in counts.items():
            row = self._row.get(bucket)
            idf = self.unseen_idf if row is None else self._idf[row] / self.IDF_SCALE
            x = (1.0 + math.log(count)) * idf
            total += x * x
            if row is not None:
                values[bucket] = x
        return values, math.sqrt(total) or 1.0

    def _evidence(
        self,
        per_line: Iterable[tuple[int, str, list[int], int]],
        counts: dict[int, int],
        values: dict[int, float],
        norm: float,
        best: int,
    ) -> list[tuple[int, str, float]]:
        """The lines whose features push hardest towards class ``best`` (a bucket's weight is shared
        among its occurrences, an error line's counting :data:`ERROR_LINE_WEIGHT` times)."""
        weights, rows, factor = self._by_class[best], self._row, self.scale / norm
        share = {f: x * weights[rows[f]] * factor / counts[f] for f, x in values.items()}
        weighed = []
        for number, text, feats, weight in per_line:
            total = weight * sum(map(share.get, feats, repeat(0.0)))
            if total > 0:
                weighed.append((number, text, round(total, 4)))
        weighed.sort(key=lambda e: (-e[2], e[0]))
        return weighed[:EVIDENCE_LINES]


def _softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def pack(header: dict[str, Any], buckets: array[int], idf: array[int], weights: array[int]) -> bytes:
    """The uncompressed file content of a model (the inverse of :meth:`TextModel.from_bytes`).

    :param header: JSON header; must hold ``classes``.
    :param buckets: sorted bucket ids.
    :param idf: IDF per bucket, times :attr:`TextModel.IDF_SCALE`.
    :param weights: quantised weights, one row of ``len(classes)`` per bucket.
    """
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    counts = struct.pack("<IIII", FORMAT_VERSION, len(head), len(buckets), len(header["classes"]))
    return MAGIC + counts + head + buckets.tobytes() + idf.tobytes() + weights.tobytes()


_loaded: dict[Path, TextModel | ModelError] = {}


def shipped_model(path: Path | None = None) -> TextModel | ModelError:
    """The model at ``path``, loaded once per process; the :class:`ModelError` when it cannot be.

    :param path: the model file; default: :data:`MODEL_FILE`, the shipped one.
    """
    path = path or MODEL_FILE
    if path not in _loaded:
        try:
            _loaded[path] = TextModel.load(path)
        except ModelError as exc:
            log.warning("learned model off, diagnosing with the patterns only: %s", exc)
            _loaded[path] = exc
    return _loaded[path]


@dataclass(frozen=True)
class ModelCalibration:
    """When the model is asked, when it decides, and the joint confidence (``calibration.json``,
    section ``model``, fitted by ``bench/accuracy.py --fit`` on out-of-fold model verdicts).

    :param consult_below: the model is asked when the pattern confidence is below this (always for
        an unknown cause); above it, it is not even loaded.
    :param decide_from: the model's probability from which it names the cause no pattern named, when
        one of the lines it read says something failed; otherwise unknown stays unknown.
    :param overrule_from: the model's probability from which it replaces the cause an unsure pattern
        diagnosis named (pattern confidence below ``consult_below``) by another known cause, when it
        read more than one line (a one-line message a pattern matched is the pattern's: the model
        reads nothing the pattern did not); above 1 (the default), a cause a pattern named is never
        replaced. Otherwise the model's agreement or disagreement moves the pattern diagnosis's
        confidence.
    :param bias: the joint confidence (of a diagnosis the model decided, or of an unsure pattern
        diagnosis) is a logistic function of the pattern confidence, the model's probability, whether
        they agree, whether the model decided and whether no pattern named a cause, with these
        coefficients.
    """

    consult_below: float = 0.75
    decide_from: float = 0.6
    overrule_from: float = 1.01
    bias: float = -2.0
    w_pattern: float = 2.0
    w_model: float = 2.0
    w_agree: float = 1.0
    w_decided: float = 0.0
    w_silent: float = 0.0

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE, data: dict[str, Any] | None = None) -> ModelCalibration:
        """The ``model`` section of the calibration file; the defaults when it has none.

        :param path: the calibration file, read when ``data`` is not given.
        :param data: the file's content, already read (:func:`read_calibration`).
        """
        data = read_calibration(path) if data is None else data
        return cls(**calibration_fields(cls, data.get("model")))

    def decides(self, pattern_cause: str, prediction: Prediction) -> bool:
        """Whether the model names the cause of a diagnosis it was asked about: it names a known cause
        and is sure enough, when no pattern named one (``decide_from``, and one of the lines it read
        says something failed: noise stays unknown) or, having read more than one line, to replace
        the one an unsure pattern diagnosis named (``overrule_from``).

        :param pattern_cause: the patterns' cause.
        :param prediction: the model's verdict.
        """
        unknown = RootCause.UNKNOWN.value
        if prediction.category in (unknown, pattern_cause):
            return False
        if pattern_cause == unknown:
            return prediction.error_lines > 0 and prediction.probability >= self.decide_from
        return prediction.lines > 1 and prediction.probability >= self.overrule_from

    def confidence(self, pattern: float, model: float, agree: bool, decided: bool, silent: bool) -> float:
        """The joint confidence of the diagnosis that comes out."""
        z = (
            self.bias
            + self.w_pattern * pattern
            + self.w_model * model
            + self.w_agree * agree
            + self.w_decided * decided
            + self.w_silent * silent
        )
        return round(1.0 / (1.0 + math.exp(-z)), 4)


def read_calibration(path: Path = CALIBRATION_FILE) -> dict[str, Any]:
    """The calibration file's JSON object (both the pattern and the model sections); ``{}`` when the
    file is missing or damaged, so that every section takes its defaults.

    :param path: the calibration file.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def calibration_fields(cls: type, section: Any) -> dict[str, float]:
    """The entries of one calibration ``section`` that name a field of the dataclass ``cls``, as floats.

    :param cls: the dataclass the section configures.
    :param section: the section as read (anything but a mapping gives no entries).
    """
    if not isinstance(section, dict):
        return {}
    names = {f.name for f in fields(cls)}
    return {k: float(v) for k, v in section.items() if k in names}


def combine(
    diagnosis: Diagnosis, prediction: Prediction, calibration: ModelCalibration, *, plain: bool = False
) -> Diagnosis:
    """The diagnosis once the model has been heard: the model's cause when it is sure enough
    (:meth:`ModelCalibration.decides`: no pattern named a cause, or an unsure one named another),
    else the patterns' verdict. The joint confidence
    replaces the patterns' when the model decided, or when the patterns named a cause (the model
    agreeing or not); an unknown that stays unknown keeps its own. The model's opinion is attached
    either way.

    :param diagnosis: the patterns' diagnosis (not confident, or unknown).
    :param prediction: the model's verdict on the same lines.
    :param calibration: thresholds and joint-confidence coefficients.
    :param plain: ``diagnosis`` is a :class:`.plain.PlainDiagnosis` (the opinion is made plain too).
    """
    opinion_type, evidence_type, match_type = _result_types(plain)
    silent = diagnosis.root_cause is RootCause.UNKNOWN
    agree = prediction.category == diagnosis.root_cause.value
    decided = calibration.decides(diagnosis.root_cause.value, prediction)
    opinion = opinion_type(
        root_cause=RootCause(prediction.category),
        probability=min(1.0, prediction.probability),
        pattern_root_cause=diagnosis.root_cause,
        pattern_confidence=diagnosis.confidence,
        decided=decided,
        evidence=[evidence_type(line_number=n, text=t[:500], weight=w) for n, t, w in prediction.evidence],
    )
    if decided or not silent:
        confidence = calibration.confidence(
            diagnosis.confidence, prediction.probability, agree, decided, silent
        )
        if decided:
            diagnosis = _decided_by_model(diagnosis, opinion, match_type)
        diagnosis.confidence = confidence
    diagnosis.model = opinion
    return diagnosis


def _result_types(plain: bool) -> tuple[Any, Any, Any]:
    """The classes of the opinion, its evidence and a pattern match: pydantic's, or the plain ones."""
    if plain:
        from qubinode_recovery_provider.diagnosis.plain import (
            PlainModelEvidence,
            PlainModelOpinion,
            PlainPatternMatch,
        )

        return PlainModelOpinion, PlainModelEvidence, PlainPatternMatch
    from qubinode_recovery_provider.models import ModelEvidence, ModelOpinion, PatternMatch

    return ModelOpinion, ModelEvidence, PatternMatch


def _decided_by_model(diagnosis: Diagnosis, opinion: ModelOpinion, match_type: Any) -> Diagnosis:
    """A diagnosis whose cause the model named: its decisive line first, then the patterns' matches
    (wrapper lines, or the unsure pattern it overruled), no retry claim, generic advice."""
    cause = opinion.root_cause
    decisive = template(opinion.evidence[0].text) if opinion.evidence else diagnosis.template
    return diagnosis.model_copy(
        update={
            "root_cause": cause,
            "summary": f"Learned model, {decided_reason(opinion)}: these lines read like a {cause.value} "
            "failure.",
            "severity": Severity.MEDIUM,
            "retryable": None,
            "retry_delay_seconds": None,
            "affected_services": [],
            "matched_patterns": [_as_match(opinion, match_type), *diagnosis.matched_patterns],
            "fingerprint": fingerprint(cause.value, [MODEL_ID], decisive),
            "template": decisive,
            "recommended_actions": [
                f"Check the decisive line: a learned model, not a known pattern, calls this a {cause.value} "
                "failure; confirm it before acting.",
                "If this failure recurs, add a pattern for it (qubinode-recovery patterns suggest).",
            ],
            "diagnostic_commands": [],
            "decided_by": "model",
        }
    )


def decided_reason(opinion: ModelOpinion) -> str:
    """Why the model's cause is the diagnosis's: no pattern matched, or the pattern was unsure."""
    if opinion.pattern_root_cause is RootCause.UNKNOWN:
        return "no pattern matched"
    return f"over an unsure pattern ({opinion.pattern_root_cause.value})"


def _as_match(opinion: ModelOpinion, match_type: Any) -> Any:
    """The model's decisive line as the first match (``learned-model``), so every reader of the
    decisive line (the retry policy's reason, the notifier's note) shows it."""
    top = opinion.evidence[0] if opinion.evidence else None
    return match_type(
        pattern_id=MODEL_ID,
        category=opinion.root_cause,
        line_number=top.line_number if top else 0,
        evidence=top.text if top else "",
        weight=top.weight if top else 0.0,
    )
