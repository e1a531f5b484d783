from __future__ import annotations

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


def test_a_regex_that_parses_but_does_not_compile_is_reported_by_the_checker(tmp_path: Path) -> None:
    path = _pack(tmp_path, regex="(?<=a+)No space left on device")  # variable-width look-behind
    library = PatternLibrary.load([tmp_path], shipped=False)  # loading only parses: lazy compile
    report = check_packs([path])
    assert report.problems == [
        f"{path}: unitdisk_001: regex does not compile: look-behind requires fixed-width pattern"
    ]
    from qubinode_recovery_provider.diagnosis.matcher import Matcher

    result = Matcher(library.patterns).scan_text("No space left on device")  # skipped, not raised
    assert not result.counts
