from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from qubinode_recovery_provider.diagnosis import PatternLibrary
from qubinode_recovery_provider.diagnosis import matcher as matcher_module
from qubinode_recovery_provider.diagnosis.matcher import Matcher


@pytest.fixture(params=["hyperscan", "pyahocorasick"])
def index_kind(request: pytest.FixtureRequest) -> str:
    """Every test runs with both literal indexes."""
    return request.param


@pytest.fixture
def make_matcher(index_kind: str) -> Callable[..., Matcher]:
    return lambda patterns: Matcher(patterns, index_kind=index_kind)


def _ids(lib: PatternLibrary, result) -> dict[str, list[int]]:
    return {lib.patterns[h.pattern_index].id: [] for h in result.hits()} | {
        lib.patterns[i].id: sorted(h.line_number for h in result.hits() if h.pattern_index == i)
        for i in result.counts
    }


def test_finds_patterns_with_line_numbers(make_matcher, small_library: PatternLibrary) -> None:
    text = "start\nwriting: No space left on device\nmiddle\nOperation timed out\n"
    result = make_matcher(small_library.patterns).scan_text(text)
    assert _ids(small_library, result) == {"unitdisk_001": [2], "unittimeout_001": [4]}
    assert result.total_lines == 4


def test_matching_is_case_insensitive_by_default(make_matcher, small_library: PatternLibrary) -> None:
    result = make_matcher(small_library.patterns).scan_text("NO SPACE LEFT ON DEVICE")
    assert _ids(small_library, result) == {"unitdisk_001": [1]}


def test_ansible_blob_is_expanded(make_matcher, small_library: PatternLibrary) -> None:
    blob = (
        'fatal: [h1]: UNREACHABLE! => {"changed": false, "msg": "Failed to connect to the host via ssh: '
        'ssh: connect to host 10.0.0.1 port 22: Connection timed out", "unreachable": true}'
    )
    result = make_matcher(small_library.patterns).scan_text("PLAY [all]\n" + blob)
    ids = _ids(small_library, result)
    assert ids["unitssh_001"] == [2]
    hit = next(h for h in result.hits() if small_library.patterns[h.pattern_index].id == "unitssh_001")
    assert hit.text.startswith("Failed to connect to the host via ssh")


def test_broken_blob_json_is_kept_as_a_line(make_matcher, small_library: PatternLibrary) -> None:
    line = 'fatal: [h1]: FAILED! => {"msg": "No space left on device", '  # truncated JSON
    result = make_matcher(small_library.patterns).scan_text(line)
    assert _ids(small_library, result) == {"unitdisk_001": [1]}


def test_chunk_boundaries_keep_line_numbers(make_matcher, small_library: PatternLibrary, monkeypatch) -> None:
    monkeypatch.setattr(matcher_module, "CHUNK_BYTES", 64)
    lines = [f"noise line {i}" for i in range(200)]
    lines[150] = "error: No space left on device"
    lines[30] = "connection timed out"
    result = make_matcher(small_library.patterns).scan_text("\n".join(lines))
    assert _ids(small_library, result) == {"unitdisk_001": [151], "unittimeout_001": [31]}
    assert result.total_lines == 200
    assert result.tail[-1] == (200, "noise line 199")


def test_file_scan_equals_text_scan(
    make_matcher, small_library: PatternLibrary, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(matcher_module, "CHUNK_BYTES", 1000)
    text = "".join(
        f"line {i}\n" if i % 997 else "write failed: No space left on device\n" for i in range(5000)
    )
    path = tmp_path / "big.log"
    path.write_text(text)
    m = make_matcher(small_library.patterns)
    assert _ids(small_library, m.scan_file(path)) == _ids(small_library, m.scan_text(text))
    assert m.scan_file(path).counts == m.scan_text(text).counts


def test_hits_kept_per_pattern_are_bounded(make_matcher, small_library: PatternLibrary) -> None:
    text = "\n".join("No space left on device" for _ in range(10_000))
    result = make_matcher(small_library.patterns).scan_text(text)
    assert result.counts[0] == 10_000
    kept = [h.line_number for h in result.hits()]
    assert kept == [1, 2, 3, 9998, 9999, 10000]


def test_undecodable_bytes_do_not_stop_the_scan(
    make_matcher, small_library: PatternLibrary, tmp_path: Path
) -> None:
    path = tmp_path / "binary.log"
    path.write_bytes(b"\xff\xfe garbage\x00\nNo space left on device\n")
    result = make_matcher(small_library.patterns).scan_file(path)
    assert _ids(small_library, result) == {"unitdisk_001": [2]}


def test_very_long_line_is_searched_around_the_hit(make_matcher, small_library: PatternLibrary) -> None:
    line = "x" * 50_000 + " No space left on device " + "y" * 50_000
    result = make_matcher(small_library.patterns).scan_text(line)
    assert _ids(small_library, result) == {"unitdisk_001": [1]}


def test_multibyte_text_keeps_lines_and_offsets(make_matcher, small_library: PatternLibrary) -> None:
    text = "déjà vu ✓ ünïcödé\n日本語のログ: No space left on device ✗\nend"
    result = make_matcher(small_library.patterns).scan_text(text)
    (hit,) = result.hits()
    assert (hit.line_number, hit.text) == (2, "日本語のログ: No space left on device ✗")


def test_index_kind_is_reported(make_matcher, small_library: PatternLibrary, index_kind: str) -> None:
    assert make_matcher(small_library.patterns).index.kind == index_kind


def test_the_compiled_database_is_cached_and_a_damaged_cache_is_rebuilt(
    small_library: PatternLibrary, tmp_path: Path, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("QUBINODE_RECOVERY_CACHE_DIR", str(tmp_path))
    first = Matcher(small_library.patterns, index_kind="hyperscan")
    (cached,) = tmp_path.glob("hs-*.db")
    assert first.scan_text("No space left on device").counts
    cached.write_bytes(b"not a hyperscan database")
    second = Matcher(small_library.patterns, index_kind="hyperscan")
    assert second.scan_text("No space left on device").counts
    assert "ignoring unreadable pattern cache" in caplog.text
    assert cached.read_bytes() != b"not a hyperscan database"
    third = Matcher(small_library.patterns, index_kind="hyperscan")  # loaded from the rebuilt cache
    assert third.scan_text("No space left on device").counts


def test_the_cache_can_be_turned_off(small_library: PatternLibrary, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("QUBINODE_RECOVERY_CACHE_DIR", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Matcher(small_library.patterns, index_kind="hyperscan").scan_text("No space left on device").counts
    assert not list(tmp_path.rglob("hs-*.db"))


def test_noise_lines_with_common_words_reach_no_regex(analyzer) -> None:
    recap = "hypervisor-7 : ok=12   changed=2    unreachable=0    failed=0    skipped=3\n" * 1000
    hits = analyzer.matcher.index.find(recap.encode())
    assert hits == []


def test_a_cache_file_others_can_write_is_never_loaded(
    small_library: PatternLibrary, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("QUBINODE_RECOVERY_CACHE_DIR", str(tmp_path))
    Matcher(small_library.patterns, index_kind="hyperscan")
    (cached,) = tmp_path.glob("hs-*.db")
    assert cached.stat().st_mode & 0o777 == 0o600
    cached.write_bytes(b"planted by someone else")
    cached.chmod(0o666)
    matcher = Matcher(small_library.patterns, index_kind="hyperscan")  # rebuilt, not loaded
    assert matcher.scan_text("No space left on device").counts
    assert cached.read_bytes() != b"planted by someone else"
