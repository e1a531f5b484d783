from __future__ import annotations

import json
from pathlib import Path

import yaml

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


def _user_pack(path: Path, regex: str, **extra: object) -> Path:
    pattern = {
        "id": "mine_001",
        "regex": regex,
        "category": "configuration",
        "severity": "high",
        "retryable": False,
        "description": "a user pattern",
        "examples": [{"text": "Failure: aaaa", "source": "my logs"}],
        "near_misses": [{"text": "Failure: bbbb", "source": "my logs"}],
        **extra,
    }
    path.write_text(yaml.safe_dump({"pack": "mine", "patterns": [pattern]}))
    return path


def test_check_refuses_a_look_around_with_one_line_naming_file_id_and_problem(capsys, tmp_path: Path) -> None:
    pack = _user_pack(tmp_path / "mine.yaml", "(?<!no )Failure: a+")
    assert main(["patterns", "check", "--pack", str(pack)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"{pack}: mine_001: regex is not linear-time (RE2 cannot compile it: invalid perl operator: (?<!); "
        "RE2 has no look-around or back-references: write the context as 'exclude:' expressions"
    )
    assert out[-1].endswith("1 problems")


def test_check_accepts_the_same_pattern_written_with_exclude(capsys, tmp_path: Path) -> None:
    pack = _user_pack(tmp_path / "mine.yaml", "Failure: a+", exclude=["no Failure: a"])
    assert main(["patterns", "check", "--pack", str(pack), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert report["problems"] == []


def test_check_accepts_a_redos_classic_that_re2_runs_in_linear_time(capsys, tmp_path: Path) -> None:
    pack = _user_pack(tmp_path / "mine.yaml", "Failure: (a+)+$")
    assert main(["patterns", "check", "--pack", str(pack)]) == 0
    assert "all examples pass" in capsys.readouterr().out


def test_check_refuses_a_slow_pattern_with_its_cost(capsys, tmp_path: Path) -> None:
    pack = _user_pack(tmp_path / "mine.yaml", r"(?:\w+\s*){1,400}Failure: a+")
    assert main(["patterns", "check", "--pack", str(pack)]) == 1
    (problem,) = [line for line in capsys.readouterr().out.splitlines() if "mine_001" in line]
    assert problem.startswith(f"{pack}: mine_001: regex is too slow: ")
