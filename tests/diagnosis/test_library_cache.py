"""The host's pattern library cache (:mod:`qubinode_recovery_provider.diagnosis.library_cache`): a warm
load gives exactly the patterns of a load from the files; an edited user pack, a damaged or foreign
cache file and concurrent writers never give other patterns."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import processes

from qubinode_recovery_provider.diagnosis import PackError, PatternLibrary, library_cache

PACK = """\
pack: site
patterns:
  - id: site_disk_001
    regex: 'quota of (?:\\w+ )?tenant exceeded'
    category: {category}
    severity: high
    retryable: false
    description: The site's tenant quota is used up
    examples:
      - {{text: "error: quota of tenant exceeded", source: "https://example.org/a"}}
    near_misses:
      - {{text: "quota of tenant fine", source: "https://example.org/b"}}
"""
BROKEN = "pack: broken\npatterns:\n  - id: broken_001\n    regex: '(?<=x)y'\n"
AN_HOUR = 3600 * 10**9


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache folder of this test's own, with the counters at zero."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("QUBINODE_RECOVERY_CACHE_DIR", str(directory))
    library_cache.reset_counters()
    yield directory
    library_cache.reset_counters()


def write_pack(directory: Path, text: str, name: str = "site.yaml", age_ns: int = AN_HOUR) -> Path:
    """Write a user pack whose modification time lies ``age_ns`` in the past (older than the racy window)."""
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(text)
    stamp = time.time_ns() - age_ns
    os.utime(path, ns=(stamp, stamp))
    return path


def snapshot(library: PatternLibrary) -> list[tuple[str, str, dict[str, object], tuple[str, ...]]]:
    """Everything a library holds, validated: id, source, the pattern's fields, literals."""
    return [
        (cp.id, library.sources[cp.id], cp.pattern.model_dump(mode="json"), cp.literals) for cp in library
    ]


def cache_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("library-*.json"))


def test_a_warm_load_gives_the_patterns_of_the_files(cache: Path, tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    write_pack(packs, PACK.format(category="storage"))
    cold = PatternLibrary.load([packs])
    assert library_cache.counters.misses == 1
    assert library_cache.counters.written == 1
    warm = PatternLibrary.load([packs])
    assert library_cache.counters.hits == 1
    assert snapshot(warm) == snapshot(cold)
    assert len(warm) > 300
    assert warm.get("site_disk_001") is not None
    (path,) = cache_files(cache)
    assert path.stat().st_mode & 0o777 == 0o600
    assert cache.stat().st_mode & 0o777 == 0o700


def test_a_changed_user_pack_is_loaded_again(cache: Path, tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    write_pack(packs, PACK.format(category="storage"))
    assert PatternLibrary.load([packs]).get("site_disk_001").pattern.category.value == "storage"  # type: ignore[union-attr]
    write_pack(packs, PACK.format(category="resource_exhaustion"), age_ns=AN_HOUR // 2)
    changed = PatternLibrary.load([packs])
    assert changed.get("site_disk_001").pattern.category.value == "resource_exhaustion"  # type: ignore[union-attr]
    assert library_cache.counters.hits == 0
    assert library_cache.counters.misses == 2


def test_a_same_size_edit_with_a_new_time_is_loaded_again(cache: Path, tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    write_pack(packs, PACK.format(category="storage"))
    PatternLibrary.load([packs])
    write_pack(packs, PACK.format(category="storage").replace("high", "crit"), age_ns=AN_HOUR // 2)
    with pytest.raises(PackError, match="severity"):
        PatternLibrary.load([packs])


def test_an_added_or_removed_pack_is_another_key(cache: Path, tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    write_pack(packs, PACK.format(category="storage"))
    assert PatternLibrary.load([packs]).get("site_disk_001") is not None
    (packs / "site.yaml").unlink()
    assert PatternLibrary.load([packs]).get("site_disk_001") is None
    assert library_cache.counters.hits == 0


def test_a_pack_written_a_moment_ago_is_not_cached(cache: Path, tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    write_pack(packs, PACK.format(category="storage"), age_ns=0)
    assert PatternLibrary.load([packs]).get("site_disk_001") is not None
    assert library_cache.counters.written == 0
    assert cache_files(cache) == []


def test_a_broken_user_pack_is_reported_again_from_the_cache(cache: Path, tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    write_pack(packs, BROKEN, name="broken.yaml")
    first = PatternLibrary.load([packs], strict=False)
    second = PatternLibrary.load([packs], strict=False)
    assert library_cache.counters.hits == 1
    assert second.warnings == first.warnings
    assert len(first.warnings) == 1
    assert "broken" in first.warnings[0]
    with pytest.raises(PackError) as raised:
        PatternLibrary.load([packs], strict=True)
    assert str(raised.value) in first.warnings[0]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data.replace(b"No space left", b"No space right", 1), id="edited_body"),
        pytest.param(lambda data: b"not json\n" + data.partition(b"\n")[2], id="bad_header"),
        pytest.param(lambda data: b"", id="empty"),
    ],
)
def test_a_damaged_cache_file_is_a_counted_miss(cache: Path, damage: object) -> None:
    reference = snapshot(PatternLibrary.load())
    (path,) = cache_files(cache)
    data = path.read_bytes()
    assert b"No space left" in data
    path.write_bytes(damage(data))  # type: ignore[operator]
    library = PatternLibrary.load()
    assert snapshot(library) == reference
    assert library_cache.counters.damaged == 1
    assert library.warning_count == 1
    assert "pattern cache" in library.warnings[0]
    assert PatternLibrary.load().warning_count == 0  # written again whole
    assert library_cache.counters.hits == 1


def test_a_cache_file_of_other_packs_is_not_used(cache: Path, tmp_path: Path) -> None:
    PatternLibrary.load()
    (path,) = cache_files(cache)
    header, _, body = path.read_bytes().partition(b"\n")
    meta = json.loads(header)
    meta["key"] = "0" * 32
    path.write_bytes(json.dumps(meta).encode() + b"\n" + body)
    library = PatternLibrary.load()
    assert library_cache.counters.damaged == 1
    assert library_cache.counters.hits == 0
    assert len(library) > 300


def test_a_cache_file_others_can_write_is_ignored(cache: Path) -> None:
    PatternLibrary.load()
    (path,) = cache_files(cache)
    path.chmod(0o666)
    PatternLibrary.load()
    assert library_cache.counters.hits == 0
    assert library_cache.counters.misses == 2


def test_no_cache_folder_means_no_caching(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUBINODE_RECOVERY_CACHE_DIR", "")
    library_cache.reset_counters()
    assert len(PatternLibrary.load()) > 300
    assert library_cache.counters.written == 0


WRITER = """
import json, sys
from qubinode_recovery_provider.diagnosis import PatternLibrary
library = PatternLibrary.load([sys.argv[1]])
print(json.dumps([[cp.id, list(cp.literals)] for cp in library]))
"""


def test_concurrent_writers_leave_one_whole_file(cache: Path, tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    write_pack(packs, PACK.format(category="storage"))
    env = {**os.environ, "QUBINODE_RECOVERY_CACHE_DIR": str(cache)}
    argv = [sys.executable, "-c", WRITER, str(packs)]
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: processes.run(argv, timeout=120, env=env, check=True), range(4)))
    outputs = {result.stdout for result in results}
    assert len(outputs) == 1
    (_path,) = cache_files(cache)
    assert [p.name for p in cache.iterdir() if p.name.startswith(".tmp")] == []
    library = PatternLibrary.load([packs])
    assert library_cache.counters.hits == 1
    assert json.loads(outputs.pop()) == [[cp.id, list(cp.literals)] for cp in library]
