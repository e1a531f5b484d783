"""At most 3 actions and 4 commands are shown by default, everywhere; --verbose shows all; the
diagnosis and the ledger keep everything (``output_limits``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from qubinode_recovery_provider.cli import main
from qubinode_recovery_provider.escalation.outbox import escalation_text
from qubinode_recovery_provider.models import Diagnosis, RecoveryPlan, RootCause
from qubinode_recovery_provider.output_limits import (
    NOT_SHOWN_KEY,
    OutputLimits,
    diagnosis_json,
    incident_data,
    shown_steps,
)
from qubinode_recovery_provider.recovery import RecoveryPlanner, plan_to_markdown

pytestmark = pytest.mark.usefixtures("isolated_config")

PACK = """\
pack: noisy
schema_version: 1
patterns:
  - id: noisy_001
    regex: 'frobnicator jammed'
    category: configuration
    severity: high
    retryable: false
    services: [frobd]
    description: The frobnicator is jammed
    recovery_hint: Unjam the frobnicator.
    diagnostic_commands: [frob status, frob log, frob config, frob version, frob doctor, frob env]
    examples:
      - {text: "error: frobnicator jammed at step 3", source: frob manual}
    near_misses:
      - {text: "frobnicator ready", source: frob manual}
"""
COMMANDS = ["frob status", "frob log", "frob config", "frob version", "frob doctor", "frob env"]
ERROR = "error: frobnicator jammed at step 3"


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "packs"
    directory.mkdir()
    (directory / "noisy.yaml").write_text(PACK, encoding="utf-8")
    return directory


def diagnose(capsys: pytest.CaptureFixture[str], pack_dir: Path, *argv: str) -> str:
    assert main(["diagnose", "--patterns-dir", str(pack_dir), "--error", ERROR, *argv]) == 0
    return capsys.readouterr().out


def make_diagnosis(actions: int, commands: int) -> Diagnosis:
    return Diagnosis(
        root_cause=RootCause.CONFIGURATION,
        confidence=0.9,
        fingerprint="fp-noisy",
        recommended_actions=[f"action {n}" for n in range(actions)],
        diagnostic_commands=[f"command {n}" for n in range(commands)],
    )


# --- the one function --------------------------------------------------------------------------------


def test_defaults_are_three_actions_and_four_commands() -> None:
    assert OutputLimits.configured() == OutputLimits(3, 4)
    data = diagnosis_json(make_diagnosis(8, 6), OutputLimits.configured())
    assert data["recommended_actions"] == ["action 0", "action 1", "action 2"]
    assert data["diagnostic_commands"] == [f"command {n}" for n in range(4)]
    assert data[NOT_SHOWN_KEY] == {"recommended_actions": 5, "diagnostic_commands": 2}


def test_verbose_shows_everything_and_nothing_is_hidden() -> None:
    data = diagnosis_json(make_diagnosis(8, 6), OutputLimits.configured(verbose=True))
    assert len(data["recommended_actions"]) == 8
    assert len(data["diagnostic_commands"]) == 6
    assert NOT_SHOWN_KEY not in data


def test_short_lists_say_nothing_is_hidden() -> None:
    assert NOT_SHOWN_KEY not in diagnosis_json(make_diagnosis(2, 1), OutputLimits())


def test_the_limits_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__MAX_ACTIONS_SHOWN", "1")
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__MAX_COMMANDS_SHOWN", "0")
    data = diagnosis_json(make_diagnosis(3, 3), OutputLimits.configured())
    assert data["recommended_actions"] == ["action 0"]
    assert data["diagnostic_commands"] == []


@pytest.mark.parametrize("value", ["many", "-1"])
def test_a_bad_limit_is_a_warning_and_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__MAX_COMMANDS_SHOWN", value)
    with caplog.at_level(logging.WARNING, logger="qubinode_recovery_provider.output_limits"):
        assert OutputLimits.configured().commands == 4
    assert "max_commands_shown" in caplog.text


def test_manual_steps_are_limited_per_kind() -> None:
    steps = [f"Check: `c{n}`" for n in range(6)] + [f"Fix: f{n}" for n in range(5)] + ["Other"]
    kept = shown_steps(steps, OutputLimits())
    assert kept == [*steps[:4], *steps[6:9], "Other"]
    assert shown_steps(steps, OutputLimits.everything()) == steps


# --- every presentation ----------------------------------------------------------------------------


def test_diagnose_text_shows_four_commands_and_says_more(capsys, pack_dir: Path) -> None:
    out = diagnose(capsys, pack_dir)
    assert all(f"$ {cmd}" in out for cmd in COMMANDS[:4])
    assert "frob doctor" not in out
    assert "2 more commands not shown (--verbose shows all)" in out
    verbose = diagnose(capsys, pack_dir, "--verbose")
    assert all(f"$ {cmd}" in verbose for cmd in COMMANDS)
    assert "not shown" not in verbose


def test_diagnose_json_is_limited_and_says_so(capsys, pack_dir: Path, tmp_path: Path) -> None:
    saved = tmp_path / "analysis.json"
    data = json.loads(diagnose(capsys, pack_dir, "--json", "--output", str(saved)))
    assert data["diagnostic_commands"] == COMMANDS[:4]
    assert data[NOT_SHOWN_KEY] == {"diagnostic_commands": 2}
    assert json.loads(saved.read_text())["diagnostic_commands"] == COMMANDS  # the file keeps all
    data = json.loads(diagnose(capsys, pack_dir, "--json", "--verbose"))
    assert data["diagnostic_commands"] == COMMANDS
    assert NOT_SHOWN_KEY not in data


def test_diagnose_batch_rows_are_limited(capsys, pack_dir: Path, tmp_path: Path) -> None:
    batch = tmp_path / "in.jsonl"
    batch.write_text(json.dumps({"id": "a", "text": ERROR}) + "\n", encoding="utf-8")
    assert main(["diagnose", "--patterns-dir", str(pack_dir), "--batch", str(batch)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert len(row["diagnostic_commands"]) == 4
    assert main(["diagnose", "--patterns-dir", str(pack_dir), "--batch", str(batch), "--verbose"]) == 0
    assert len(json.loads(capsys.readouterr().out)["diagnostic_commands"]) == 6


def test_plan_markdown_and_json_are_limited(capsys, pack_dir: Path) -> None:
    argv = ["plan", "--patterns-dir", str(pack_dir), "--error", ERROR]
    assert main(argv) == 0
    markdown = capsys.readouterr().out
    manual = markdown.split("Fix the configuration problem by hand", 2)[2]
    assert manual.count("Check: ") == 4
    assert "steps not shown (--verbose shows all)._" in manual
    assert main([*argv, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    steps = next(o["steps"] for o in plan["options"] if o["type"] == "manual_fix")
    assert sum(s.startswith("Check: ") for s in steps) == 4
    assert sum(s.startswith("Fix: ") for s in steps) <= 3
    assert main([*argv, "--json", "--verbose"]) == 0
    plan = json.loads(capsys.readouterr().out)
    steps = next(o["steps"] for o in plan["options"] if o["type"] == "manual_fix")
    assert sum(s.startswith("Check: ") for s in steps) > 4


def _plan(diagnosis: Diagnosis) -> RecoveryPlan:
    return RecoveryPlanner(events=None).plan_recovery(diagnosis)


def test_the_issue_body_is_limited_but_the_plan_keeps_every_step() -> None:
    plan = _plan(make_diagnosis(8, 6))
    manual = next(o for o in plan.options if o.type.value == "manual_fix")
    assert sum(s.startswith("Fix: ") for s in manual.steps) > 3
    _, body = escalation_text(plan, "no automatic option")
    section = body.split("Fix the configuration problem by hand", 2)[2].split("**Prerequisites**")[0]
    assert section.count("Check: ") == 4
    assert section.count("Fix: ") == 3
    assert f"not shown (`qubinode-recovery incidents show {plan.fingerprint} --verbose` shows all)" in section
    full = plan_to_markdown(plan)
    assert full.count("Fix: ") > body.count("Fix: ")


def test_incident_detail_is_limited_for_show() -> None:
    diagnosis = make_diagnosis(8, 6)
    plan = _plan(diagnosis)
    detail = {
        "incident": {},
        "diagnoses": [{"diagnosis": diagnosis.to_json_dict()}],
        "plans": [plan.model_dump(mode="json")],
    }
    shown = incident_data(detail, OutputLimits())
    assert shown is not None
    assert len(shown["diagnoses"][0]["diagnosis"]["recommended_actions"]) == 3
    assert shown["diagnoses"][0]["diagnosis"][NOT_SHOWN_KEY] == {
        "recommended_actions": 5,
        "diagnostic_commands": 2,
    }
    steps = next(o["steps"] for o in shown["plans"][0]["options"] if o["type"] == "manual_fix")
    assert sum(s.startswith("Check: ") for s in steps) == 4
    assert len(detail["diagnoses"][0]["diagnosis"]["recommended_actions"]) == 8  # input untouched
