from __future__ import annotations

import json
from pathlib import Path

from qubinode_recovery_provider.cli import main

FIXTURES = Path(__file__).parent.parent / "diagnosis" / "fixtures"


def test_list_shows_every_pattern(capsys) -> None:
    assert main(["patterns", "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) >= 150
    assert rows[0].keys() >= {"id", "pack", "category", "severity", "retryable", "description"}


def test_check_passes_on_the_shipped_library(capsys) -> None:
    assert main(["patterns", "check"]) == 0
    assert "all examples pass" in capsys.readouterr().out


def test_check_fails_with_exit_1_on_a_broken_pack(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("pack: bad\npatterns:\n  - id: bad_001\n    regex: '(unclosed'\n")
    assert main(["patterns", "check", "--pack", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: bad_001: " in out


def test_check_missing_pack_is_bad_input(capsys, tmp_path: Path) -> None:
    assert main(["patterns", "check", "--pack", str(tmp_path / "none.yaml")]) == 2


def test_suggest_groups_unexplained_failures(capsys, tmp_path: Path) -> None:
    batch = tmp_path / "unknown.jsonl"
    texts = [f"ERROR frobnicator {n} exploded on node{n}" for n in range(4)] + ["No space left on device"]
    batch.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    code = main(["patterns", "suggest", "--batch", str(batch), "--patterns-dir", str(FIXTURES), "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert len(rows) == 1
    assert rows[0]["size"] == 4
    assert "frobnicator" in rows[0]["regex"]
