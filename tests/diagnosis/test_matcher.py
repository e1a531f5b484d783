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


def test_the_failure_path_kind_never_compiles_and_uses_hyperscan_once_it_is_cached(
    small_library: PatternLibrary, tmp_path: Path, monkeypatch
) -> None:
    """``cached``: the literal index while no compiled database is on disk (nothing is compiled, nothing
    written), Hyperscan once one is; the hits are the same."""
    monkeypatch.setenv("QUBINODE_RECOVERY_CACHE_DIR", str(tmp_path))
    text = "mount: /srv: No space left on device\nall good"
    before = Matcher(small_library.patterns, index_kind="cached")
    assert before.index.kind == "pyahocorasick"
    assert not list(tmp_path.glob("hs-*.db"))
    Matcher(small_library.patterns)  # what `patterns check` and the CLI do: compile and cache
    after = Matcher(small_library.patterns, index_kind="cached")
    assert after.index.kind == "hyperscan"
    assert before.scan_text(text).counts == after.scan_text(text).counts
    assert before.scan_text(text).counts


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


def test_many_hits_on_one_line_count_once_per_line(make_matcher, small_library: PatternLibrary) -> None:
    lines = ["write failed: No space left on device; " * 50 for _ in range(100)]
    result = make_matcher(small_library.patterns).scan_text("\n".join(lines))
    assert result.counts[0] == 100  # one per line, however many hits each line has
    assert [h.line_number for h in result.hits()] == [1, 2, 3, 98, 99, 100]


def test_hits_far_apart_on_a_long_line_are_all_found(make_matcher, small_library: PatternLibrary) -> None:
    line = "x" * 300_000 + " No space left on device " + "y" * 300_000 + " Operation timed out"
    result = make_matcher(small_library.patterns).scan_text("start\n" + line + "\nend")
    assert _ids(small_library, result) == {"unitdisk_001": [2], "unittimeout_001": [2]}
    (disk,) = (h for h in result.hits() if h.pattern_index == 0)
    assert len(disk.text) <= matcher_module.MAX_LINE_WINDOW  # the window, not the 600 KB line
    assert "No space left on device" in disk.text


def _exists_library() -> PatternLibrary:
    library = PatternLibrary()
    pattern = {
        "id": "exists_001",
        "regex": "already exists",
        "exclude": ["skipped: already exists"],
        "category": "state_mismatch",
        "severity": "medium",
        "retryable": False,
        "description": "x",
        "examples": [{"text": "volume already exists", "source": "t"}],
        "near_misses": [{"text": "blob skipped: already exists", "source": "t"}],
    }
    library.add_pack({"pack": "api", "patterns": [pattern]})
    return library


def test_a_pattern_is_tried_in_a_bounded_number_of_windows_per_line() -> None:
    matcher = Matcher(_exists_library().patterns)
    calls: list[int] = []
    real = matcher._try

    def counting(pattern_index: int, data: bytes, line_no: int, result) -> bool:
        calls.append(len(data))
        return real(pattern_index, data, line_no, result)

    matcher._try = counting  # type: ignore[method-assign]
    # 400 prefilter hits far apart on one line, each vetoed by the pattern's exclude
    line = ("z" * 5000 + " skipped: already exists ") * 400
    result = matcher.scan_text(line + "\nvolume vm1 already exists")
    assert [h.line_number for h in result.hits()] == [2]
    assert len(calls) == matcher_module.MAX_WINDOWS_PER_LINE + 1
    assert max(calls) <= matcher_module.MAX_LINE_WINDOW


def test_each_regex_call_reads_at_most_one_window(small_library: PatternLibrary) -> None:
    matcher = Matcher(small_library.patterns)
    sizes: list[int] = []
    real = matcher._try

    def measuring(pattern_index: int, data: bytes, line_no: int, result) -> bool:
        sizes.append(len(data))
        return real(pattern_index, data, line_no, result)

    matcher._try = measuring  # type: ignore[method-assign]
    text = "\n".join(["No space left on device " * 20_000, "Operation timed out", "q" * 9000 + "timed out"])
    result = matcher.scan_text(text)
    assert _ids(small_library, result) == {"unitdisk_001": [1], "unittimeout_001": [2, 3]}
    assert sizes
    assert max(sizes) <= matcher_module.MAX_LINE_WINDOW


def test_an_unverified_pattern_re2_cannot_compile_is_skipped_not_raised(caplog) -> None:
    library = PatternLibrary()
    pack = {
        "pack": "api",
        "patterns": [
            {
                "id": "look_001",
                "regex": "(?<!message )authentication failed",
                "category": "credential",
                "severity": "high",
                "retryable": False,
                "description": "x",
                "examples": [{"text": "authentication failed", "source": "t"}],
                "near_misses": [{"text": "message authentication failed", "source": "t"}],
            }
        ],
    }
    library.add_pack(pack, verify=False)  # the API lets a caller skip verification; the matcher copes
    result = Matcher(library.patterns).scan_text("authentication failed\nauthentication failed")
    assert not result.counts
    assert caplog.text.count("pattern look_001 is skipped: RE2 cannot compile it") == 1
