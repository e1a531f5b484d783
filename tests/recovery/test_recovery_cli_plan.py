"""``qubinode-recovery plan``: from a diagnosis JSON or a new error, as Markdown or JSON; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qubinode_recovery_provider.cli import main

LIBVIRT_DOWN = "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_from_an_error_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "plan",
        "--error",
        LIBVIRT_DOWN,
        "--json",
        "--dag-id",
        "build_vm",
        "--task-id",
        "create_vm",
        "--run-id",
        "manual__1",
    )
    assert code == 0, err
    plan = json.loads(out)
    assert plan["root_cause"] == "service_dependency"
    assert plan["recommended"]["type"] == "wait"
    assert plan["recommended"]["action_args"]["service"] == "libvirtd.service"
    assert plan["recommended"]["action_args"]["then_retry"]["task_ids"] == ["create_vm"]
    assert [o["priority"] for o in plan["options"]] == list(range(1, len(plan["options"]) + 1))


def test_plan_from_a_diagnose_json_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(
        capsys,
        "diagnose",
        "--error",
        "fatal: [web1]: UNREACHABLE! ssh: connect to host 10.0.0.5 port 22: No route to host",
        "--json",
    )
    assert code == 0
    path = tmp_path / "diagnosis.json"
    path.write_text(out)

    code, markdown, err = run(capsys, "plan", "--analysis-file", str(path))
    assert code == 0, err
    assert markdown.startswith("# Recovery plan: network failure")
    assert "**Recommended:** 1." in markdown
    code, again, _ = run(capsys, "plan", "--analysis-file", str(path), "--markdown")
    assert again.split("- Created:")[0] == markdown.split("- Created:")[0]


def test_timeout_plan_uses_the_given_timeout(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(
        json.dumps(
            {
                "root_cause": "timeout",
                "confidence": 0.9,
                "fingerprint": "fp1",
                "retryable": True,
                "dag_id": "d",
                "task_id": "t",
                "run_id": "r",
            }
        )
    )
    code, out, _ = run(capsys, "plan", "--analysis-file", str(path), "--execution-timeout", "900", "--json")
    assert code == 0
    assert json.loads(out)["recommended"]["action_args"]["execution_timeout_seconds"] == 1800


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{bad", "invalid JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
        ("[1, 2]", "expected one diagnosis JSON object, got list"),
        ('{"root_cause": "network"}', "not a diagnosis: confidence: Field required"),
        ('{"root_cause": "weather", "confidence": 1, "fingerprint": "x"}', "not a diagnosis: root_cause:"),
        ("", "invalid JSON: Expecting value (line 1, column 1)"),
    ],
)
def test_bad_analysis_files_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "d.json"
    path.write_text(content)
    code, out, err = run(capsys, "plan", "--analysis-file", str(path))

    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"qubinode-recovery: error: {path}: ")
    assert message in err


def test_missing_file_and_empty_error_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "plan", "--analysis-file", str(tmp_path / "nope.json"))
    assert code == 2
    assert "cannot read" in err
    code, _, err = run(capsys, "plan", "--error", "  ")
    assert code == 2
    assert "--error is empty" in err
    code, _, err = run(capsys, "plan", "--error", "x", "--try-number", "-1")
    assert code == 2


def test_source_and_format_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--error", "x", "--json", "--markdown"]) == 2
    assert "not allowed with argument --json" in capsys.readouterr().err
    assert main(["plan"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "one of the arguments --analysis-file --error is required" in err
