"""Everything the CLI prints -- text and JSON, stdout and stderr, every subcommand -- is redacted and
stripped of terminal control sequences: canary secrets and ESC never reach the terminal."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from qubinode_recovery_provider.cli import main
from qubinode_recovery_provider.models import FailureEvent
from qubinode_recovery_provider.store import Ledger

FIXTURES = Path(__file__).parent.parent / "diagnosis" / "fixtures"
CANARIES = ("CANARY-xyz", "CANARYTOKEN1234567")
HOSTILE = (
    "password=CANARY-xyz \x1b[31mred\x1b[0m Authorization: Bearer CANARYTOKEN1234567 "
    "\x1b]0;pwned-title\x07 \x9b2J end"
)
ERROR_TEXT = f"error: No space left on device {HOSTILE}"
SECRET_RUN_ID = "manual__password=CANARY-xyz"


pytestmark = pytest.mark.usefixtures("isolated_config")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean(*texts: str) -> None:
    for text in texts:
        for canary in CANARIES:
            assert canary not in text
        assert "\x1b" not in text
        assert "\x07" not in text
        assert "\x9b" not in text
        assert "\\u001b" not in text.lower()  # not even escaped inside JSON
        assert "\\u0007" not in text


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_diagnose_prints_no_secret_and_no_escape(
    capsys: pytest.CaptureFixture[str], json_flag: list[str]
) -> None:
    code, out, err = run(
        capsys, "diagnose", "--patterns-dir", str(FIXTURES), "--error", ERROR_TEXT, *json_flag
    )

    assert code == 0
    assert "Authorization: Bearer ***" in out
    assert "password=***" in out
    assert_clean(out, err)


def test_diagnose_batch_cleans_the_echoed_ids_too(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    batch = tmp_path / "in.jsonl"
    record = {"id": f"r1 {HOSTILE}", "dag_id": "build\x1b[2Jvm", "text": ERROR_TEXT}
    batch.write_text(json.dumps(record) + "\n")

    code, out, err = run(capsys, "diagnose", "--patterns-dir", str(FIXTURES), "--batch", str(batch))

    assert code == 0
    row = json.loads(out)
    assert row["dag_id"].startswith("build")
    assert row["dag_id"].endswith("vm")
    assert row["root_cause"] == "storage"
    assert_clean(out, err)


@pytest.mark.parametrize("fmt", ["--json", "--markdown"])
def test_plan_prints_no_secret(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    code, out, err = run(
        capsys,
        "plan",
        "--error",
        ERROR_TEXT,
        "--dag-id",
        "build_vm",
        "--task-id",
        "create_vm",
        "--run-id",
        SECRET_RUN_ID,
        fmt,
    )
    assert code == 0
    assert "manual__password=***" in out
    assert_clean(out, err)


def test_plan_from_an_analysis_file_prints_no_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "d.json"
    path.write_text(
        json.dumps(
            {
                "root_cause": "storage",
                "confidence": 0.9,
                "fingerprint": "fp",
                "summary": HOSTILE,
                "dag_id": "build_vm",
                "task_id": "create_vm",
                "run_id": SECRET_RUN_ID,
            }
        )
    )
    code, out, err = run(capsys, "plan", "--analysis-file", str(path))
    assert code == 0
    assert "Recovery plan: storage failure" in out
    assert "manual__password=***" in out
    assert_clean(out, err)


@pytest.fixture
def dirty_ledger(tmp_path: Path) -> str:
    """A ledger whose rows hold a secret and escapes (written by an older version, or by hand)."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger(url, tmp_path / "spool", auto_flush_interval=0) as ledger:
        ledger.migrate()
        from qubinode_recovery_provider.cli.common import load_analyzer

        diagnosis = load_analyzer([str(FIXTURES)]).analyze("No space left on device")
        ledger.record_failure(FailureEvent(dag_id="build_vm", task_id="create_vm"), diagnosis)
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        db.execute("UPDATE qr_incidents SET summary = ?", (HOSTILE,))
        db.execute("UPDATE qr_incident_dags SET dag_id = ?", (f"build_vm {HOSTILE}",))
    return url


@pytest.mark.parametrize(
    "argv",
    [["list"], ["list", "--json"], ["show", "1"], ["show", "1", "--json"]],
)
def test_incidents_print_no_secret(
    capsys: pytest.CaptureFixture[str], dirty_ledger: str, argv: list[str]
) -> None:
    code, out, err = run(capsys, "incidents", argv[0], *argv[1:], "--ledger", dirty_ledger)
    assert code == 0, err
    assert "password=***" in out
    assert_clean(out, err)


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_scan_prints_no_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, json_flag: list[str]
) -> None:
    run_id = f"{SECRET_RUN_ID}\x1b[2J"
    runs = tmp_path / "runs.json"
    runs.write_text(
        json.dumps(
            {
                "dag_runs": [
                    {
                        "dag_id": "build_vm",
                        "dag_run_id": run_id,
                        "state": "success",
                        "start_date": "2025-01-01T00:00:00Z",
                        "end_date": "2025-01-01T00:10:00Z",
                    }
                ],
                "task_instances": [
                    {
                        "dag_id": "build_vm",
                        "dag_run_id": run_id,
                        "task_id": "create_vm",
                        "state": "failed",
                        "try_number": 1,
                        "map_index": -1,
                        "end_date": "2025-01-01T00:05:00Z",
                    }
                ],
            }
        )
    )
    code, out, err = run(capsys, "scan", "--runs-file", str(runs), "--summary", *json_flag)
    assert code == 1
    assert "state_mismatch" in out
    assert "manual__password=***" in out
    assert_clean(out, err)


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_patterns_list_prints_no_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, json_flag: list[str]
) -> None:
    description = json.dumps(f"Frobnicator exploded {HOSTILE}")  # a YAML double-quoted string
    (tmp_path / "mine.yaml").write_text(
        "pack: mine\nschema_version: 1\ndescription: canary pack\npatterns:\n"
        "- id: mine_001\n  regex: 'frobnicator exploded'\n  category: storage\n  severity: high\n"
        f"  retryable: false\n  role: cause\n  description: {description}\n  recovery_hint: fix it\n"
        "  examples:\n  - text: 'frobnicator exploded on node1'\n    source: https://example.com/1\n"
        "  near_misses:\n  - text: 'frobnicator is fine'\n    source: https://example.com/2\n"
    )
    code, out, err = run(capsys, "patterns", "list", "--patterns-dir", str(tmp_path), *json_flag)
    assert code == 0, err
    assert "Frobnicator exploded password=***" in out
    assert_clean(out, err)


@pytest.mark.parametrize(
    "argv",
    [
        ["incidents", "show", "password=CANARY-xyz"],  # not found: the id is echoed on stderr
        ["scan", "--since", "password=CANARY-xyz\x1b[2J"],  # argparse's own error echoes the value
        ["plan", "--analysis-file", "/nonexistent/token=CANARY-xyz\x1b[2J.json"],  # a UsageError
    ],
)
def test_error_lines_print_no_secret(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code in (1, 2)
    assert err.count("\n") == 1
    assert "***" in err
    assert_clean(out, err)
