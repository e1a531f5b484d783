"""The reference guide's CLI examples 1 and 2, run as written by the installed ``qubinode-recovery``
(example 4, ``detect-shadows``, is in tests/shadow beside the scan it aliases), and the new forms' flags:
``diagnose --plugin/--output``, ``plan --output`` (format by suffix), ``plan --decide``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from support import processes
from support.canaries import all_canaries, assert_no_canary, combined_text

from qubinode_recovery_provider.cli import main
from qubinode_recovery_provider.models import Diagnosis

EXE = str(Path(sys.executable).with_name("qubinode-recovery"))
TIMEOUT = 120
TIMED_OUT = "Operation timed out after 300 seconds waiting for the API"
RESET = "curl: (56) Recv failure: Connection reset by peer"


def cli(*argv: str, cwd: Path) -> processes.Completed:
    return processes.run([EXE, *argv], timeout=TIMEOUT, cwd=cwd)


def test_examples_1_and_2_run_as_written(tmp_path: Path) -> None:
    diagnosed = cli(
        "diagnose",
        "--plugin",
        "HetznerDeploymentPlugin",
        "--error",
        "Failed to connect to registry.redhat.io",
        "--output",
        str(tmp_path / "analysis.json"),
        cwd=tmp_path,
    )
    assert diagnosed.returncode == 0, diagnosed.stderr
    assert diagnosed.stdout.startswith("=" * 60 + "\nFailure Diagnosis: HetznerDeploymentPlugin\n" + "=" * 60)
    assert "Root cause:" in diagnosed.stdout
    assert diagnosed.stdout.endswith(f"\n[OK] Analysis saved to {tmp_path / 'analysis.json'}\n")
    analysis = Diagnosis.model_validate_json((tmp_path / "analysis.json").read_text())
    assert analysis.dag_id == "HetznerDeploymentPlugin"

    planned = cli(
        "plan",
        "--analysis-file",
        str(tmp_path / "analysis.json"),
        "--output",
        str(tmp_path / "recovery_plan.md"),
        cwd=tmp_path,
    )
    assert planned.returncode == 0, planned.stderr
    document = (tmp_path / "recovery_plan.md").read_text()
    assert document.startswith("# Recovery plan: ")
    assert "HetznerDeploymentPlugin" in document
    assert planned.stdout == document + f"\n[OK] Recovery plan saved to {tmp_path / 'recovery_plan.md'}\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_diagnose_json_output_keeps_stdout_machine_readable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "a.json"
    code, out, err = run(
        capsys, "diagnose", "--plugin", "ci job", "--error", TIMED_OUT, "--output", str(target), "--json"
    )
    assert code == 0
    assert json.loads(out) == json.loads(target.read_text())
    assert json.loads(out)["dag_id"] == "ci job"
    assert err == f"[OK] Analysis saved to {target}\n"


def test_plan_output_format_follows_the_suffix(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    analysis = tmp_path / "analysis.json"
    assert run(capsys, "diagnose", "--plugin", "e2e", "--error", TIMED_OUT, "--output", str(analysis))[0] == 0
    code, out, err = run(
        capsys, "plan", "--analysis-file", str(analysis), "--output", str(tmp_path / "p.JSON")
    )
    assert code == 0
    assert err == ""
    data = json.loads((tmp_path / "p.JSON").read_text())
    assert data["dag_id"] == "e2e"
    assert data["recommended"]["type"] == "retry"
    assert out.startswith("# Recovery plan: timeout failure")  # stdout stays Markdown
    code, out, err = run(
        capsys, "plan", "--analysis-file", str(analysis), "--output", str(tmp_path / "p.txt"), "--json"
    )
    assert code == 0
    assert (tmp_path / "p.txt").read_text().startswith("# Recovery plan: ")  # not .json: Markdown
    assert json.loads(out)["recommended"]["type"] == "retry"
    assert err == f"[OK] Recovery plan saved to {tmp_path / 'p.txt'}\n"


def decide(capsys: pytest.CaptureFixture[str], error: str, tmp_path: Path, *flags: str) -> dict[str, Any]:
    """Diagnose ``error`` into a file, then ``plan --analysis-file FILE --decide --json`` with ``flags``."""
    analysis = tmp_path / "analysis.json"
    run(capsys, "diagnose", "--plugin", "build_vm", "--error", error, "--output", str(analysis))
    code, out, err = run(capsys, "plan", "--analysis-file", str(analysis), "--decide", *flags, "--json")
    assert code == 0, err
    plan: dict[str, Any] = json.loads(out)
    return plan


def test_plan_decide_applies_the_one_decision_rule(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plan = decide(
        capsys, "password authentication failed for user airflow", tmp_path, "--enable-auto-recovery", "on"
    )
    decision, recommended = plan["decision"], plan["recommended"]
    assert decision["route"] == "escalate"
    assert decision["reasons"] == [
        f"the recommended option is carried out by a person: {recommended['type']} - {recommended['title']}"
    ]
    assert decision["summary"].startswith("escalate only: ")
    code, out, _ = run(capsys, "plan", "--analysis-file", str(tmp_path / "analysis.json"), "--decide")
    assert code == 0
    assert "\n## Decision\n\nescalate only: " in out


def test_plan_decide_lets_a_retry_run_unattended_only_when_switched_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    no_run = decide(capsys, RESET, tmp_path)
    assert no_run["decision"]["route"] == "escalate"  # no run to resume: nothing can re-run
    ids = ["--task-id", "create_vm", "--run-id", "manual__1"]
    on = decide(capsys, RESET, tmp_path, *ids, "--enable-auto-recovery", "true")["decision"]
    off = decide(capsys, RESET, tmp_path, *ids, "--enable-auto-recovery", "false")["decision"]
    assert on["route"] == "auto"
    assert off["route"] == "approval"
    assert off["reasons"] == ["automatic recovery is off for this run (enable_auto_recovery)"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["diagnose", "--plugin", "", "--error", "x"],
            "argument --plugin: must be 1 to 250 printable characters",
        ),
        (
            ["diagnose", "--plugin", "a\x1bb", "--error", "x"],
            "argument --plugin: must be 1 to 250 printable characters",
        ),
        (["diagnose", "--plugin", "p" * 251, "--error", "x"], "argument --plugin: must be 1 to 250"),
        (
            ["diagnose", "--batch", "in.jsonl", "--output", "o.json"],
            "--plugin and --output are for one failure",
        ),
        (["diagnose", "--error", "x", "--output", "no/such/dir/a.json"], "cannot write no/such/dir/a.json"),
        (
            ["plan", "--error", "x", "--enable-auto-recovery", "true"],
            "--enable-auto-recovery is the switch of --decide",
        ),
        (["plan", "--error", "x", "--decide", "--enable-auto-recovery", "maybe"], "must be true or false"),
        (["plan", "--error", "x", "--output", "."], "cannot write ."),
        (["detect-shadows", "--scan-hours", "0"], "argument --scan-hours: must be from 1 to 175680"),
        (["detect-shadows", "--scan-hours", "1.5"], "argument --scan-hours: not a whole number"),
        (["detect-shadows", "--scan-hours", "2", "--since", "1h"], "give --scan-hours or --since, not both"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text('{"text": "x"}\n')
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert message in err


def test_the_analysis_and_plan_files_hold_no_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    analysis, plan = tmp_path / "analysis.json", tmp_path / "plan.md"
    code, _, _ = run(
        capsys, "diagnose", "--plugin", "leaky", "--error", combined_text(), "--output", str(analysis)
    )
    assert code == 0
    assert run(capsys, "plan", "--analysis-file", str(analysis), "--output", str(plan))[0] == 0
    assert (
        run(capsys, "plan", "--analysis-file", str(analysis), "--output", str(tmp_path / "plan.json"))[0] == 0
    )
    for written in (analysis, plan, tmp_path / "plan.json"):
        assert_no_canary(written.read_text(), all_canaries())
