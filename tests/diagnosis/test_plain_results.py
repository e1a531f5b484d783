"""The pydantic-free path of a one-line diagnosis gives what the models give: the same fields and
defaults as :class:`Diagnosis` and :class:`PatternMatch`, the same JSON and report for every text of
the labelled corpus, and a cached pattern reads as its validated definition."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from qubinode_recovery_provider.cli.render import render_diagnosis
from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary
from qubinode_recovery_provider.diagnosis.pack_schema import Pattern
from qubinode_recovery_provider.diagnosis.patterns import CompiledPattern, PatternRule
from qubinode_recovery_provider.diagnosis.plain import (
    JSON_ORDER,
    PlainDiagnosis,
    PlainFailureEvent,
    PlainPatternMatch,
)
from qubinode_recovery_provider.models import Diagnosis, FailureEvent, PatternMatch, RootCause

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus" / "train.jsonl"


def _defaults(model: type) -> dict[str, object]:
    return {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()  # type: ignore[attr-defined]
        if not info.is_required()
    }


def _plain_defaults(cls: type) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


@pytest.mark.parametrize(
    ("plain", "model"),
    [(PlainDiagnosis, Diagnosis), (PlainPatternMatch, PatternMatch), (PlainFailureEvent, FailureEvent)],
)
def test_the_plain_classes_have_the_models_fields_and_defaults(plain: type, model: type) -> None:
    assert {f.name for f in dataclasses.fields(plain)} == set(model.model_fields)  # type: ignore[attr-defined]
    plain_defaults, model_defaults = _plain_defaults(plain), _defaults(model)
    for moving in ("diagnosed_at", "occurred_at"):  # clock readings: compared by type
        if moving in model_defaults:
            assert type(plain_defaults.pop(moving)) is type(model_defaults.pop(moving))
    assert plain_defaults == model_defaults


def test_the_json_keys_are_in_the_models_order() -> None:
    assert tuple(Diagnosis.model_fields) == JSON_ORDER


@pytest.fixture(scope="module")
def analyzers() -> tuple[FailureAnalyzer, FailureAnalyzer]:
    previous = os.environ.get("QUBINODE_RECOVERY_CACHE_DIR")
    os.environ["QUBINODE_RECOVERY_CACHE_DIR"] = ""  # validated from the YAML
    try:
        library = PatternLibrary.load()
    finally:
        if previous is None:
            os.environ.pop("QUBINODE_RECOVERY_CACHE_DIR")
        else:
            os.environ["QUBINODE_RECOVERY_CACHE_DIR"] = previous
    PatternLibrary.load()
    cached = PatternLibrary.load()  # from the library cache: every pattern read through its rule
    assert all(isinstance(cp.rule, PatternRule) for cp in cached)
    return FailureAnalyzer(library, use_llm=False), FailureAnalyzer(cached, use_llm=False, plain_results=True)


def _without_clock(data: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in data.items() if k != "diagnosed_at"}


def test_every_corpus_text_gets_the_same_json_and_report(
    analyzers: tuple[FailureAnalyzer, FailureAnalyzer],
) -> None:
    models, plain = analyzers
    texts = [json.loads(line)["text"] for line in CORPUS.read_text().splitlines() if line.strip()]
    assert len(texts) > 500
    for text in texts:
        expected, got = models.analyze(text), plain.analyze(text)
        assert isinstance(got, PlainDiagnosis)
        assert _without_clock(got.to_json_dict()) == _without_clock(expected.to_json_dict()), text[:200]
        assert list(got.to_json_dict()) == list(expected.to_json_dict())
        got.diagnosed_at = expected.diagnosed_at
        assert got.to_json_dict() == expected.to_json_dict()
        assert render_diagnosis(got) == render_diagnosis(expected)  # type: ignore[arg-type]
        assert got.to_model() == expected


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"log_tail": ["a", "b: No space left on device"]},
        {"log_tail": ["a"], "exception_type": "OSError", "exception_text": "disk full"},
        {"exception_text": "exit code 1", "dag_id": "d", "task_id": "t", "run_id": "r", "try_number": 2},
    ],
)
def test_a_plain_event_reads_and_diagnoses_as_the_model(
    fields: dict[str, object], analyzers: tuple[FailureAnalyzer, FailureAnalyzer]
) -> None:
    plain_event = PlainFailureEvent(**fields)  # type: ignore[arg-type]
    model_event = plain_event.to_model()
    assert model_event == FailureEvent(**{**fields, "occurred_at": plain_event.occurred_at})  # type: ignore[arg-type]
    assert plain_event.text() == model_event.text()
    models, _ = analyzers
    expected, got = models.analyze(model_event), models.analyze(plain_event, plain=True)
    assert isinstance(got, PlainDiagnosis)
    got.diagnosed_at = expected.diagnosed_at
    assert got.to_json_dict() == expected.to_json_dict()
    as_model = models.analyze(plain_event)  # the model, when not asked for a plain result
    assert isinstance(as_model, Diagnosis)
    assert _without_clock(as_model.to_json_dict()) == _without_clock(expected.to_json_dict())


def test_the_clock_is_written_as_pydantic_writes_it() -> None:
    plain = PlainDiagnosis(root_cause=RootCause.UNKNOWN, confidence=0.1, fingerprint="f")
    for stamp in (plain.diagnosed_at, plain.diagnosed_at.replace(microsecond=0)):
        plain.diagnosed_at = stamp
        model = Diagnosis(root_cause="unknown", confidence=0.1, fingerprint="f", diagnosed_at=stamp)
        assert plain.to_json_dict()["diagnosed_at"] == model.to_json_dict()["diagnosed_at"]


def test_rule_defaults_are_the_schemas() -> None:
    assert _defaults(Pattern) == PatternRule.DEFAULTS


def test_a_cached_pattern_reads_as_its_definition() -> None:
    for cp in PatternLibrary.load():
        pattern = cp.pattern
        row = pattern.model_dump(mode="json", exclude_defaults=True)
        cached = CompiledPattern(None, cp.literals, row)
        rule = cached.rule
        assert isinstance(rule, PatternRule)
        for name in Pattern.model_fields:
            if name in {"examples", "near_misses"}:
                continue
            assert getattr(rule, name) == getattr(pattern, name), (cp.id, name)
        assert cached.regex_source == pattern.regex
        assert cached.ignore_case == pattern.ignore_case
    with pytest.raises(AttributeError):
        _ = rule.no_such_field
