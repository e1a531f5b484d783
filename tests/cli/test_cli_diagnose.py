from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support import processes

from qubinode_recovery_provider.cli import main

FIXTURES = Path(__file__).parent.parent / "diagnosis" / "fixtures"
REQUIRED = {
    "id",
    "root_cause",
    "confidence",
    "severity",
    "retryable",
    "fingerprint",
    "matched_patterns",
    "recommended_actions",
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["diagnose", "--patterns-dir", str(FIXTURES), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_error_text_gives_a_readable_report(capsys) -> None:
    code, out, _ = run(capsys, "--error", "write failed: No space left on device")
    assert code == 0
    assert out.startswith("Root cause:   storage")
    assert "Retryable:    no" in out
    assert "line 1" in out
    assert "unitdisk_001" in out
    assert "Commands to check it yourself (never run by this tool):\n  $ df -h" in out


def test_json_output_is_a_diagnosis(capsys) -> None:
    code, out, _ = run(capsys, "--error", "No space left on device", "--json")
    data = json.loads(out)
    assert code == 0
    assert set(data) >= REQUIRED
    assert data["root_cause"] == "storage"


def test_batch_follows_the_contract(capsys, tmp_path: Path) -> None:
    batch = tmp_path / "in.jsonl"
    rows = [
        {"id": "a", "text": "Operation timed out", "dag_id": "d1", "task_id": "t1"},
        {"text": "No space left on device"},
        {"id": 7, "text": "something nobody has seen"},
    ]
    batch.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" + json.dumps(rows[2]) + "\n")
    code, out, err = run(capsys, "--batch", str(batch))
    assert code == 0
    assert err == ""
    lines = [json.loads(line) for line in out.splitlines()]
    assert [row["id"] for row in lines] == ["a", "2", "7"]
    assert [row["root_cause"] for row in lines] == ["timeout", "storage", "unknown"]
    assert all(set(row) >= REQUIRED for row in lines)
    assert (lines[0]["dag_id"], lines[0]["task_id"]) == ("d1", "t1")


def test_batch_bad_json_line_exits_2_with_the_line_number(capsys, tmp_path: Path) -> None:
    batch = tmp_path / "in.jsonl"
    batch.write_text('{"text": "ok"}\n{"text": "broken"\n')
    code, out, err = run(capsys, "--batch", str(batch))
    assert code == 2
    assert out == ""
    assert (
        err.strip()
        == f"qubinode-recovery: error: {batch}:2: invalid JSON: Expecting ',' delimiter (column 18)"
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('["text"]', "each line must be a JSON object"),
        ('{"id": "x"}', "'text' is missing or not a string"),
        ('{"text": "a", "dag_id": ["x"]}', "'dag_id' must be a string"),
    ],
)
def test_batch_bad_records_exit_2(capsys, tmp_path: Path, line: str, problem: str) -> None:
    batch = tmp_path / "in.jsonl"
    batch.write_text(line + "\n")
    code, _, err = run(capsys, "--batch", str(batch))
    assert code == 2
    assert err.strip().endswith(f"{batch}:1: {problem}")


def test_missing_log_file_is_a_one_line_error(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "--log-file", str(tmp_path / "nope.log"))
    assert code == 2
    assert err.count("\n") == 1
    assert "does not exist" in err


def test_empty_error_is_rejected(capsys) -> None:
    code, _, err = run(capsys, "--error", "  ")
    assert code == 2
    assert "--error is empty" in err


def test_broken_user_pack_is_a_one_line_error(capsys, tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("pack: mine\npatterns: [{id: bad}]\n")
    code = main(["diagnose", "--patterns-dir", str(tmp_path), "--error", "x"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"qubinode-recovery: error: {tmp_path / 'mine.yaml'}: bad: ")
    assert err.count("\n") == 1


def test_log_file_from_stdin_through_the_installed_command(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("qubinode-recovery")
    proc = processes.run(
        [str(exe), "diagnose", "--patterns-dir", str(FIXTURES), "--log-file", "-", "--json"],
        input="boot\nerror: No space left on device\ntimed out\n",
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["matched_patterns"][0]["line_number"] == 2


def test_probe_adds_this_machines_context(capsys) -> None:
    code, out, _ = run(capsys, "--error", "No space left on device", "--json", "--probe")
    assert code == 0
    assert json.loads(out)["root_cause"] == "storage"
