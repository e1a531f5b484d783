from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from qubinode_recovery_provider.diagnosis import PackError, PatternLibrary
from qubinode_recovery_provider.diagnosis.checker import check_packs
from qubinode_recovery_provider.diagnosis.patterns import SHIPPED_PACKS_DIR

FIXTURE = Path(__file__).parent / "fixtures" / "small_pack.yaml"


def _pack(tmp_path: Path, **overrides) -> Path:
    data = yaml.safe_load(FIXTURE.read_text())
    pattern = data["patterns"][0]
    for key, value in overrides.items():
        if value is None:
            pattern.pop(key, None)
        else:
            pattern[key] = value
    data["patterns"] = [pattern]
    path = tmp_path / "user_pack.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"regex": "(unclosed"}, "unitdisk_001: regex does not compile: missing ), unterminated subpattern"),
        ({"regex": "(ab|cd)"}, "unitdisk_001: regex has no required literal of 4+ characters"),
        ({"category": "weather"}, "unitdisk_001: category: Input should be"),
        ({"category": "unknown"}, "unitdisk_001: Value error, only a 'symptom' pattern can have the"),
        ({"id": "Disk-1"}, "Disk-1: id: Value error, id 'Disk-1' must look like name_001"),
        ({"examples": []}, "unitdisk_001: examples: List should have at least 1 item"),
        ({"near_misses": None}, "unitdisk_001: near_misses: Field required"),
        ({"retryable": "maybe"}, "unitdisk_001: retryable: Input should be a valid boolean"),
        ({"colour": "red"}, "unitdisk_001: colour: Extra inputs are not permitted"),
        ({"literals": ["no"]}, "unitdisk_001: literals must be at least 4 characters"),
    ],
)
def test_broken_pattern_gives_one_line_naming_file_id_and_problem(tmp_path: Path, overrides, problem) -> None:
    path = _pack(tmp_path, **overrides)
    with pytest.raises(PackError) as err:
        PatternLibrary.load([tmp_path], shipped=False)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert problem in message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("pack: x\npatterns:\n  - id: a_001\n    regex: [unclosed\n")
    with pytest.raises(PackError, match=r"bad\.yaml: invalid YAML at line \d+"):
        PatternLibrary.load([tmp_path], shipped=False)


def test_pack_without_patterns_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("pack: empty\npatterns: []\n")
    with pytest.raises(PackError, match="'patterns' must be a non-empty list"):
        PatternLibrary.load([tmp_path], shipped=False)


def test_user_pack_cannot_reuse_a_shipped_id(tmp_path: Path) -> None:
    shipped = PatternLibrary.load()
    first_id = shipped.patterns[0].id
    _pack(tmp_path, id=first_id)
    with pytest.raises(PackError, match=f"{first_id}: id already defined in .*packs"):
        PatternLibrary.load([tmp_path])


def test_missing_pattern_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(PackError, match="pattern directory does not exist"):
        PatternLibrary.load([tmp_path / "nope"], shipped=False)


def test_add_pack_through_the_api() -> None:
    library = PatternLibrary()
    data = yaml.safe_load(FIXTURE.read_text())
    added = library.add_pack(data, source="api:test")
    assert [p.id for p in added] == [p["id"] for p in data["patterns"]]
    assert library.get("unitdisk_001") is not None
    assert library.sources["unitdisk_001"] == "api:test"


def test_checker_reports_an_example_the_pattern_misses(tmp_path: Path) -> None:
    path = _pack(tmp_path, regex="No space left on disk")
    report = check_packs([path])
    assert not report.ok
    assert report.problems == [
        f"{path}: unitdisk_001: example 1 is not matched: cp: error writing "
        "'/var/lib/libvirt/images/vm.qcow2': No space left on device"
    ]


def test_checker_reports_a_matched_near_miss(tmp_path: Path) -> None:
    path = _pack(tmp_path, regex="(No space left on device|No such file)")
    report = check_packs([path])
    assert any("near miss 1 is matched" in p for p in report.problems)


def test_shipped_library_is_large_and_keeps_the_seed_ids() -> None:
    library = PatternLibrary.load()
    ids = [p.id for p in library]
    assert len(ids) >= 150
    seed = [
        "virsh_001",
        "libvirt_001",
        "network_001",
        "registry_001",
        "disk_001",
        "credential_001",
        "vault_001",
        "timeout_001",
        "airflow_001",
        "kcli_001",
    ]
    assert set(seed) <= set(ids)
    assert len({p.pattern.pack for p in library}) >= 10


def test_every_shipped_example_names_its_source() -> None:
    for cp in PatternLibrary.load():
        for example in [*cp.pattern.examples, *cp.pattern.near_misses]:
            assert example.source.strip(), cp.id


def test_shipped_packs_pass_the_checker() -> None:
    report = check_packs(sorted(SHIPPED_PACKS_DIR.glob("*.yaml")))
    assert report.problems == []
    assert report.patterns >= 150


@pytest.mark.parametrize(
    ("regex", "problem"),
    [
        (
            "(?<!message )No space left on device",
            "regex is not linear-time (RE2 cannot compile it: invalid perl operator: (?<!); RE2 has no "
            "look-around or back-references: write the context as 'exclude:' expressions",
        ),
        ("No space left on device(?! now)", "regex is not linear-time (RE2 cannot compile it: invalid perl"),
        (r"(No) space left on device \1", "regex is not linear-time (RE2 cannot compile it: invalid escape"),
    ],
)
def test_a_regex_re2_cannot_compile_is_refused_when_the_pack_loads(tmp_path: Path, regex, problem) -> None:
    path = _pack(tmp_path, regex=regex)
    with pytest.raises(PackError) as err:
        PatternLibrary.load([tmp_path], shipped=False)
    assert str(err.value).startswith(f"{path}: unitdisk_001: {problem}")
    assert "\n" not in str(err.value)
    report = check_packs([path])  # `patterns check` says the same, in one line
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"{path}: unitdisk_001: {problem}")


def test_an_exclude_re2_cannot_compile_is_refused_by_name(tmp_path: Path) -> None:
    path = _pack(tmp_path, exclude=["fine", "(?=lookahead)"])
    with pytest.raises(
        PackError, match=r"unitdisk_001: exclude\[1\] is not linear-time \(RE2 cannot compile"
    ):
        PatternLibrary.load([tmp_path], shipped=False)
    assert path.exists()


def test_a_linear_but_slow_regex_is_refused_with_its_measured_cost(tmp_path: Path) -> None:
    # RE2 runs this in linear time, but its NFA takes ~0.1-0.4 s per 4 KiB line of short words.
    path = _pack(tmp_path, regex=r"(?:\w+\s*){1,400}No space left on device")
    with pytest.raises(PackError) as err:
        PatternLibrary.load([tmp_path], shipped=False)
    message = str(err.value)
    assert message.startswith(f"{path}: unitdisk_001: regex is too slow: ")
    assert "probe lines of 4 KiB (limit 50 ms)" in message


@pytest.mark.parametrize(
    ("regex", "problem"),
    [
        (r"No space left on device (?:\S{1,1000}\s){2}", "invalid repetition size: {2}); RE2 allows counted"),
        ("No space left on device " + r"\S{1000}" * 30, "pattern too large - compile failed); RE2 refuses"),
    ],
)
def test_huge_counted_repetitions_are_refused(tmp_path: Path, regex, problem) -> None:
    path = _pack(tmp_path, regex=regex)
    with pytest.raises(PackError) as err:
        PatternLibrary.load([tmp_path], shipped=False)
    assert str(err.value).startswith(
        f"{path}: unitdisk_001: regex is not linear-time (RE2 cannot compile it: "
    )
    assert problem in str(err.value)


def test_the_classic_redos_regex_is_accepted_because_re2_runs_it_in_linear_time(tmp_path: Path) -> None:
    _pack(
        tmp_path,
        regex="No space left on device: (a+)+$",
        examples=[{"text": "No space left on device: aaa", "source": "t"}],
    )
    library = PatternLibrary.load([tmp_path], shipped=False)
    assert [cp.id for cp in library] == ["unitdisk_001"]


def test_exclude_vetoes_the_matches_it_overlaps_and_only_those(tmp_path: Path) -> None:
    _pack(
        tmp_path,
        regex="already exists",
        exclude=["skipped: already exists"],
        examples=[{"text": "volume vm1 already exists", "source": "t"}],
        near_misses=[{"text": "Copying blob fae5 skipped: already exists", "source": "t"}],
    )
    report = check_packs([tmp_path / "user_pack.yaml"])
    assert report.problems == []
    from qubinode_recovery_provider.diagnosis.matcher import Matcher

    library = PatternLibrary.load([tmp_path], shipped=False)
    matcher = Matcher(library.patterns)
    assert not matcher.scan_text("blob fae5 SKIPPED: Already Exists").counts  # ignore_case applies too
    both = matcher.scan_text("blob 1 skipped: already exists; then volume vm1 already exists")
    assert both.counts[0] == 1


def test_shipped_patterns_all_compile_with_re2() -> None:
    for cp in PatternLibrary.load():
        cp.pattern.compile()  # raises NotLinear otherwise


def test_a_missing_pattern_directory_is_a_recorded_warning_in_a_lenient_load(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    _pack(good)
    library = PatternLibrary.load([tmp_path / "nope", good], shipped=False, strict=False)
    assert [cp.id for cp in library] == ["unitdisk_001"]
    assert library.warnings == [f"{tmp_path / 'nope'}: pattern directory does not exist"]
    assert library.warning_count == 1


def test_a_broken_pack_is_skipped_and_counted_in_a_lenient_load(tmp_path: Path) -> None:
    path = _pack(tmp_path, regex="(?<=x)No space left on device")
    (tmp_path / "other.yaml").write_text("pack: [unclosed\n")
    library = PatternLibrary.load([tmp_path], strict=False)
    assert len(library) >= 150  # the shipped packs still load
    assert library.warning_count == 2
    assert any(w.startswith(f"{path}: unitdisk_001: regex is not linear-time") for w in library.warnings)
    assert any("other.yaml: invalid YAML" in w for w in library.warnings)


def test_an_unreadable_pattern_directory_is_a_warning(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file.yaml"
    not_a_dir.write_text("pack: x\n")
    library = PatternLibrary.load([not_a_dir], shipped=False, strict=False)
    assert library.warnings == [f"{not_a_dir}: pattern directory is not a directory"]


def test_the_analyzer_builds_whatever_pattern_dirs_says(tmp_path: Path, monkeypatch) -> None:
    from qubinode_recovery_provider.diagnosis import FailureAnalyzer

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.yaml").write_text("pack: bad\npatterns:\n  - id: bad_001\n    regex: '(?!x)abcd'\n")
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__PATTERN_DIRS", f"{tmp_path / 'missing'},{broken}")
    analyzer = FailureAnalyzer()
    assert analyzer.library.warning_count == 2
    assert analyzer.warnings[0] == f"{tmp_path / 'missing'}: pattern directory does not exist"
    assert analyzer.warnings[1].startswith(f"{broken / 'bad.yaml'}: bad_001: ")
    assert analyzer.analyze("No space left on device").root_cause.value == "storage"


def test_a_large_verified_pack_is_cached_and_the_cache_is_used(tmp_path: Path, monkeypatch) -> None:
    from qubinode_recovery_provider.diagnosis import patterns as patterns_module

    cache = tmp_path / "cache"
    monkeypatch.setenv("QUBINODE_RECOVERY_CACHE_DIR", str(cache))
    monkeypatch.setattr(patterns_module, "PACK_CACHE_MIN_PATTERNS", 2)
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "unit.yaml").write_bytes(FIXTURE.read_bytes())
    first = PatternLibrary.load([packs], shipped=False)
    (cached,) = cache.glob("pack-*.json")
    assert cached.stat().st_mode & 0o777 == 0o600
    calls: list[str] = []
    monkeypatch.setattr(patterns_module, "verify_pattern", lambda cp, source: calls.append(cp.id))
    second = PatternLibrary.load([packs], shipped=False)
    assert calls == []  # verified before: nothing compiled or probed again
    assert [(cp.pattern, cp.literals) for cp in second] == [(cp.pattern, cp.literals) for cp in first]
    (packs / "unit.yaml").write_bytes(FIXTURE.read_bytes() + b"\n# changed\n")
    PatternLibrary.load([packs], shipped=False)
    assert len(calls) == len(first)  # other bytes: verified again


def test_a_cache_file_others_can_write_is_ignored(tmp_path: Path, monkeypatch) -> None:
    from qubinode_recovery_provider.diagnosis import patterns as patterns_module

    cache = tmp_path / "cache"
    monkeypatch.setenv("QUBINODE_RECOVERY_CACHE_DIR", str(cache))
    monkeypatch.setattr(patterns_module, "PACK_CACHE_MIN_PATTERNS", 2)
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "unit.yaml").write_bytes(FIXTURE.read_bytes())
    PatternLibrary.load([packs], shipped=False)
    (cached,) = cache.glob("pack-*.json")
    planted = json.loads(cached.read_text())
    planted["patterns"][0]["pattern"]["regex"] = "(?<!x)planted"
    cached.write_text(json.dumps(planted))
    cached.chmod(0o666)
    library = PatternLibrary.load([packs], shipped=False)
    assert library.patterns[0].pattern.regex == "No space left on device"


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (
            {"description": "The disk is full. Inode exhaustion is left to unitinode_002."},
            "user-visible description: 'unitinode_002'",
        ),
        (
            {"recovery_hint": "Free space, then follow that pattern's advice."},
            "user-visible recovery_hint: 'that pattern'",
        ),
        ({"description": "The disk is full (the disk_* family)."}, "user-visible description: 'disk_*'"),
        ({"description": "The disk is full. TODO: quotas"}, "user-visible description: 'TODO'"),
        ({"diagnostic_commands": ["df -h", "see pattern quota"]}, "user-visible diagnostic_commands"),
        ({"description": "Full; a quota is not matched here."}, "user-visible description: 'is not matched'"),
    ],
)
def test_checker_refuses_maintainer_notes_in_user_visible_text(tmp_path: Path, overrides, problem) -> None:
    report = check_packs([_pack(tmp_path, **overrides)])
    assert len(report.problems) == 1
    assert f"unitdisk_001: {problem}" in report.problems[0]
    assert report.problems[0].endswith("is a maintainer's note (move it to maintainer_note)")


def test_a_maintainer_note_is_accepted_and_never_shown(tmp_path: Path, capsys) -> None:
    from qubinode_recovery_provider.cli import main
    from qubinode_recovery_provider.diagnosis import FailureAnalyzer

    note = "Inode exhaustion is left to unitinode_002; see pattern unitquota_003. TODO: quotas."
    path = _pack(tmp_path, maintainer_note=note)
    assert check_packs([path]).ok
    library = PatternLibrary.load([tmp_path], shipped=False)
    diagnosis = FailureAnalyzer(library, use_llm=False).analyze("write: No space left on device")
    assert diagnosis.decisive_pattern == "unitdisk_001"
    assert "unitinode" not in json.dumps(diagnosis.to_json_dict())
    assert main(["patterns", "list", "--patterns-dir", str(tmp_path), "--json"]) == 0
    assert "unitinode" not in capsys.readouterr().out


def test_no_shipped_diagnosis_shows_a_pattern_id(analyzer) -> None:
    """What the analyzer adds to a pattern's text says nothing internal either."""
    library = PatternLibrary.load()
    ids = {cp.id for cp in library}
    for cp in library:
        d = analyzer.analyze(cp.pattern.examples[0].text)
        shown = " ".join([d.summary, *d.recommended_actions, *d.diagnostic_commands, *d.affected_services])
        assert not [i for i in ids if i in shown], (cp.id, shown)
