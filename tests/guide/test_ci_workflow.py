"""The reference guide's CI workflow (``.github/workflows/failure-recovery-agent.yml``): ``actionlint``
passes on it (and fails on a broken copy, so it cannot pass by checking nothing), it follows our rules
(inputs through the environment only, least privilege, pinned actions, artifacts between jobs), and every
``qubinode-recovery`` command line in it is a form our CLI accepts -- run here, in job order, on a sample
failure, ``escalate`` against the local GitHub stand-in (the real PyGithub client)."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from string import Template
from typing import Any

import pytest
import yaml
from support import processes
from support.github_stub import FULL_NAME, TOKEN, start_github_stub, stop_github_stub

from qubinode_recovery_provider.cli import _build_parser, main
from qubinode_recovery_provider.models import Diagnosis

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "failure-recovery-agent.yml"
BIN = Path(sys.executable).parent
INPUTS = {"failed_job", "failure_message", "enable_auto_recovery"}
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")
RESET = "curl: (56) Recv failure: Connection reset by peer"


def load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def triggers(data: dict[str, Any]) -> dict[str, Any]:
    on: dict[str, Any] = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as True
    return on


def actionlint(path: Path) -> processes.Completed:
    argv = [
        str(BIN / "actionlint"),
        "-no-color",
        f"-shellcheck={BIN / 'shellcheck'}",
        "-pyflakes=",
        str(path),
    ]
    return processes.run(argv, timeout=120)


def test_actionlint_passes_on_the_workflow() -> None:
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("    needs: plan\n", "    needs: plans\n", 'needs job "plans" which does not exist'),
        ('recovery: ${FAILED_JOB}"', 'recovery: ${{ github.event.issue.title }}"', "potentially untrusted"),
        ("  contents: read\n      issues: write\n", "  contents: read\n      issues: writ\n", '"writ"'),
        ('was made."; fi', 'was made."; done', "shellcheck reported issue"),
    ],
    ids=["missing job", "script injection", "bad permission", "shell syntax"],
)  # fmt: skip
def test_actionlint_fails_on_a_broken_copy(tmp_path: Path, old: str, new: str, complaint: str) -> None:
    text = WORKFLOW.read_text()
    assert old in text
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(text.replace(old, new, 1))
    result = actionlint(broken)
    assert result.returncode == 1
    assert complaint in result.stdout


def test_it_is_reusable_and_dispatchable_with_the_guides_inputs() -> None:
    on = triggers(load())
    assert set(on) == {"workflow_call", "workflow_dispatch"}
    call, dispatch = on["workflow_call"]["inputs"], on["workflow_dispatch"]["inputs"]
    assert set(call) == set(dispatch) == INPUTS
    for name in INPUTS:
        assert call[name]["type"] == dispatch[name]["type"]
    assert call["enable_auto_recovery"]["type"] == "boolean"
    assert call["enable_auto_recovery"]["default"] is False
    assert set(on["workflow_call"]["outputs"]) == {"route", "action_type"}


def test_jobs_run_diagnose_plan_decide_report_with_least_privilege() -> None:
    data = load()
    jobs = data["jobs"]
    assert list(jobs) == ["diagnose", "plan", "decide", "report"]
    assert [jobs[j].get("needs") for j in jobs] == [None, "diagnose", "plan", ["diagnose", "plan", "decide"]]
    assert data["permissions"] == {}
    for name, job in jobs.items():
        writes = {scope for scope, level in job["permissions"].items() if level != "read"}
        assert writes == ({"issues"} if name == "report" else set()), name
        assert job["timeout-minutes"] <= 30


def steps() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, job in load()["jobs"].items():
        for step in job["steps"]:
            yield name, step


def test_actions_are_pinned_and_inputs_reach_scripts_only_through_the_environment() -> None:
    uses = [step["uses"] for _, step in steps() if "uses" in step]
    assert uses
    assert all(PINNED.match(u) for u in uses), uses
    scripts = [step["run"] for _, step in steps() if "run" in step]
    assert scripts
    assert not any("${{" in script for script in scripts)
    assert all(
        step.get("with", {}).get("persist-credentials") is False
        for _, step in steps()
        if "checkout" in step.get("uses", "")
    )


def test_artifacts_carry_the_analysis_and_plan_between_jobs() -> None:
    uploaded: dict[str, str] = {}
    downloaded: set[tuple[str, str]] = set()
    for job, step in steps():
        if "upload-artifact" in step.get("uses", ""):
            uploaded[step["with"]["name"]] = job
        if "download-artifact" in step.get("uses", ""):
            downloaded.add((job, step["with"]["name"]))
    assert uploaded == {
        "failure-analysis": "diagnose",
        "recovery-plan": "plan",
        "recovery-decision": "decide",
    }
    assert downloaded == {
        ("plan", "failure-analysis"),
        ("decide", "failure-analysis"),
        ("report", "failure-analysis"),
        ("report", "recovery-plan"),
    }


def command_lines() -> list[tuple[str, list[str], str | None]]:
    """Every ``qubinode-recovery`` command line of the workflow, in job order: (job, argv, the file its
    stdout is redirected to)."""
    found = []
    for job, step in steps():
        script = step.get("run", "").replace("\\\n", " ")
        for line in script.splitlines():
            words = shlex.split(line)
            if not words or words[0] != "qubinode-recovery":
                continue
            target = words[words.index(">") + 1] if ">" in words else None
            argv = words[1 : words.index(">")] if ">" in words else words[1:]
            found.append((job, argv, target))
    return found


def test_the_workflow_calls_the_guides_cli_forms() -> None:
    forms = [(job, argv[0]) for job, argv, _ in command_lines()]
    assert forms == [("diagnose", "diagnose"), ("plan", "plan"), ("decide", "plan"), ("report", "escalate")]
    diagnose, plan, _decide, escalate = (argv for _, argv, _ in command_lines())
    assert diagnose == [
        "diagnose",
        "--plugin=$FAILED_JOB",
        "--error=$FAILURE_MESSAGE",
        "--output",
        "analysis.json",
    ]
    assert plan[:5] == ["plan", "--analysis-file", "analysis.json", "--output", "plan.md"]
    assert escalate == ["escalate", "--analysis-file", "analysis.json", "--json"]
    report = load()["jobs"]["report"]["steps"]
    assert report[-1]["if"] == "${{ needs.decide.outputs.route != 'auto' }}"
    assert set(report[-1]["env"]) == {"AIRFLOW_HOME", "GITHUB_TOKEN"}


@pytest.mark.parametrize(("switch", "route"), [("true", "auto"), ("false", "approval")])
def test_each_command_line_runs_here_on_a_sample_failure(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    switch: str,
    route: str,
) -> None:
    env = {
        "FAILED_JOB": "E2E Integration Test",
        "FAILURE_MESSAGE": RESET,
        "ENABLE_AUTO_RECOVERY": switch,
        "GITHUB_RUN_ID": "4242",
    }
    monkeypatch.chdir(tmp_path)
    github = start_github_stub()  # what GitHub Actions sets for the report job
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", FULL_NAME)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    try:
        _run_each_command_line(env, tmp_path, capsys)
    finally:
        stop_github_stub(github)

    assert (
        Diagnosis.model_validate_json((tmp_path / "analysis.json").read_text()).dag_id
        == "E2E Integration Test"
    )
    assert (tmp_path / "plan.md").read_text().startswith("# Recovery plan: network failure")
    import json

    assert json.loads((tmp_path / "plan.json").read_text())["dag_id"] == "E2E Integration Test"
    decision = json.loads((tmp_path / "decision.json").read_text())
    assert decision["decision"]["route"] == route  # what `jq -r .decision.route` reads
    assert decision["recommended"]["type"] == "retry"  # what `jq -r .recommended.type` reads
    (issue,) = github.issues.values()  # the report job filed one deduplicated issue
    assert issue["title"].startswith("[qubinode-recovery] network failure")
    assert "qubinode-recovery:fingerprint=" in issue["body"]


def _run_each_command_line(env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run the workflow's command lines in job order, each output saved where the step saves it."""
    subcommands = _subcommands()
    for job, argv, target in command_lines():
        argv = [Template(word).substitute(env) for word in argv]
        assert argv[0] in subcommands, f"{job}: qubinode-recovery {argv[0]} does not exist"
        with pytest.raises(SystemExit) as parsed:
            _build_parser().parse_args([*argv, "--help"])
        assert parsed.value.code == 0  # every flag before --help was accepted
        capsys.readouterr()
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 0, f"{job}: {' '.join(argv)}: {err}"
        if target:
            (tmp_path / target).write_text(out)


def _subcommands() -> set[str]:
    import argparse

    parser = _build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(action.choices)


@pytest.mark.parametrize(
    ("failed_job", "message"),
    [
        ("-lint", "-bash: kcli: command not found"),
        ("--help", "--- FAIL: TestRegistry (0.01s)\n    lookup quay.io: no such host"),
    ],
)
def test_the_diagnose_line_takes_inputs_that_start_with_a_dash(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failed_job: str,
    message: str,
) -> None:
    """A shell's or a test runner's error often starts with ``-``: it is the value, never an option."""
    monkeypatch.chdir(tmp_path)
    (job, argv, _), *_ = command_lines()
    assert job == "diagnose"
    env = {"FAILED_JOB": failed_job, "FAILURE_MESSAGE": message}
    code = main([Template(word).substitute(env) for word in argv])
    assert code == 0, capsys.readouterr().err
    analysis = Diagnosis.model_validate_json((tmp_path / "analysis.json").read_text())
    assert analysis.dag_id == failed_job
