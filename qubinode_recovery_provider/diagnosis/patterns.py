"""The known-error library: YAML pattern packs, their schema, loading and checking.

A pack is data (see ``docs/patterns.md``). Loading validates every pattern and derives the literals the
matcher's prefilter needs; a user pack's regexes must also compile with RE2 (linear time) and pass the
cost probe (:mod:`.linear`). Any problem is a :class:`PackError`, whose message is one line naming the
file, the pattern id and the problem. :meth:`PatternLibrary.load` raises it; the lenient load that
:meth:`PatternLibrary.from_config` does (the analyzer inside a failing task) skips the pack instead and
records the problem in :attr:`PatternLibrary.warnings`.

Verifying a large pack costs time (YAML, validation, RE2 compilation and probing: seconds for 20,000
patterns), so a verified pack of :data:`PACK_CACHE_MIN_PATTERNS` or more patterns is cached on disk as
JSON, keyed by the file's bytes (see :mod:`.cache`); the next process loads it in a fraction of that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from qubinode_recovery_provider import __version__
from qubinode_recovery_provider.categories import RootCause, Severity
from qubinode_recovery_provider.diagnosis import library_cache
from qubinode_recovery_provider.diagnosis.cache import cache_dir, read_trusted, write_atomically
from qubinode_recovery_provider.diagnosis.linear import (
    MAX_PROBE_SECONDS,
    RE2_MAX_MEM,
    LinearPattern,
    NotLinear,
    probe_lines,
    probe_seconds,
)
from qubinode_recovery_provider.diagnosis.literals import literals_of_parsed, parse_regex
from qubinode_recovery_provider.lazy import from_module, lazy_attributes

if TYPE_CHECKING:
    from qubinode_recovery_provider.diagnosis.pack_schema import Pattern

log = logging.getLogger(__name__)

PACK_SCHEMA_VERSION = 1
SHIPPED_PACKS_DIR = Path(__file__).parent / "packs"
MIN_LITERAL_LENGTH = 4
#: A verified pack with this many patterns or more is cached on disk (smaller ones load fast anyway).
PACK_CACHE_MIN_PATTERNS = 200
PACK_CACHE_VERSION = 1
#: Problems recorded by a lenient load (one line each); more are counted, not kept.
MAX_WARNINGS = 100
#: What verification of a user pack depends on (part of the library cache's key).
_VERIFY_LIMITS = (MIN_LITERAL_LENGTH, MAX_PROBE_SECONDS, RE2_MAX_MEM)


class PackError(ValueError):
    """A pattern pack cannot be used. ``str()`` is one line: ``file: pattern_id: problem``."""

    def __init__(self, source: str, pattern_id: str | None, problem: str) -> None:
        self.source = source
        self.pattern_id = pattern_id
        self.problem = problem
        where = f"{source}: {pattern_id}" if pattern_id else source
        super().__init__(f"{where}: {problem}")


class PatternRule:
    """What the analyzer reads of a cached pattern, without validating it again (no pydantic): the
    fields of :class:`~.pack_schema.Pattern`, from the cache row (validated when it was written,
    guarded by the cache's checksum), with the schema's defaults for the fields the row leaves out.

    :param raw: the cache row.
    """

    #: The defaults of :class:`~.pack_schema.Pattern`'s optional fields (a test holds them equal).
    DEFAULTS: dict[str, Any] = {
        "ignore_case": True,
        "role": "cause",
        "retry_delay_seconds": None,
        "services": [],
        "recovery_hint": "",
        "diagnostic_commands": [],
        "references": [],
        "literals": None,
        "exclude": [],
        "pack": "",
        "transient_evidence": "",
        "maintainer_note": "",
    }

    __slots__ = ("_raw", "category", "severity")

    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw
        self.category = RootCause(raw["category"])
        self.severity = Severity(raw["severity"])

    def __getattr__(self, name: str) -> Any:
        try:
            return self._raw[name]
        except KeyError:
            pass
        if name in self.DEFAULTS:
            default = self.DEFAULTS[name]
            return list(default) if isinstance(default, list) else default
        raise AttributeError(name)


class CompiledPattern:
    """A validated pattern with its prefilter literals (lower case) and its RE2 expression, compiled on
    first use: a failing task's process loads every pattern but runs only the few whose prefilter
    finds a candidate line. A pattern read from a cache is validated only when its full definition is
    asked for (:attr:`pattern`); the prefilter and the analyzer read its fields as they are
    (:attr:`rule`).

    :param pattern: the validated pattern, or None when ``raw`` is given.
    :param literals: its prefilter literals.
    :param raw: the pattern as the caches store it (validated when :attr:`pattern` is first read).
    """

    __slots__ = ("_linear", "_pattern", "_raw", "_rule", "id", "literals")

    def __init__(
        self, pattern: Pattern | None, literals: tuple[str, ...], raw: dict[str, Any] | None = None
    ) -> None:
        self._pattern = pattern
        self._raw = raw
        self._rule: PatternRule | None = None
        self.literals = literals
        self.id: str = pattern.id if pattern is not None else str((raw or {})["id"])
        self._linear: LinearPattern | None = None

    @property
    def pattern(self) -> Pattern:
        """The validated pattern (its examples and near misses too)."""
        if self._pattern is None:
            from qubinode_recovery_provider.diagnosis.pack_schema import Pattern

            self._pattern = Pattern.model_validate(self._raw)
        return self._pattern

    @property
    def rule(self) -> Pattern:
        """The pattern's fields for matching and weighing: the validated pattern, or for a cached one
        a :class:`PatternRule` over its cache row (typed as the pattern it stands for)."""
        if self._pattern is not None:
            return self._pattern
        if self._rule is None:
            self._rule = PatternRule(self._raw or {})
        return cast("Pattern", self._rule)

    @property
    def regex_source(self) -> str:
        """The regex text (without validating a cached pattern)."""
        return self.rule.regex

    @property
    def ignore_case(self) -> bool:
        """Whether the regex ignores case (without validating a cached pattern)."""
        return self.rule.ignore_case

    @property
    def linear(self) -> LinearPattern:
        """The compiled RE2 pattern (compiled now if it was not; raises :class:`.NotLinear`)."""
        if self._linear is None:
            rule = self.rule
            self._linear = LinearPattern.compile(rule.regex, rule.exclude, rule.ignore_case)
        return self._linear


@dataclass
class PatternLibrary:
    """All loaded patterns, in load order (shipped packs first, then user packs).

    :param patterns: the patterns.
    :param sources: where each pattern id came from.
    :param warnings: problems a lenient load skipped (one line each: ``file: id: problem``).
    :param warning_count: how many problems there were (``warnings`` keeps the first
        :data:`MAX_WARNINGS`).
    """

    patterns: list[CompiledPattern] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0

    def __iter__(self) -> Iterator[CompiledPattern]:
        return iter(self.patterns)

    def __len__(self) -> int:
        return len(self.patterns)

    def get(self, pattern_id: str) -> CompiledPattern | None:
        return next((p for p in self.patterns if p.id == pattern_id), None)

    def add_pack(
        self, data: dict[str, Any], source: str = "<api>", *, verify: bool = True
    ) -> list[CompiledPattern]:
        """Validate a pack given as a dict and add its patterns. Raises :class:`PackError`.

        :param data: the pack.
        :param source: where it came from (named in errors).
        :param verify: also check that every regex is linear-time and cheap (RE2 and the cost probe).
        """
        return self._add(parse_pack(data, source, verify=verify), source)

    def add_file(self, path: Path, *, verify: bool = True) -> list[CompiledPattern]:
        """Read, validate and add a pack file (a verified large pack comes from the cache when it can).

        :param path: the YAML file.
        :param verify: also check that every regex is linear-time and cheap.
        """
        return self._add(_read_pack(path, verify), str(path))

    def _add(self, compiled: list[CompiledPattern], source: str) -> list[CompiledPattern]:
        for cp in compiled:
            if cp.id in self.sources:
                raise PackError(source, cp.id, f"id already defined in {self.sources[cp.id]}")
        for cp in compiled:
            self.sources[cp.id] = source
            self.patterns.append(cp)
        return compiled

    def warn(self, problem: str) -> None:
        """Record (and log) a problem a lenient load skipped.

        :param problem: one line naming the file, the pattern and the problem.
        """
        log.warning("pattern library: %s (skipped)", problem)
        self.warning_count += 1
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(problem)

    @classmethod
    def load(
        cls, extra_dirs: Iterable[str | Path] = (), *, shipped: bool = True, strict: bool = True
    ) -> PatternLibrary:
        """Load the shipped packs, then every ``*.yaml``/``*.yml`` in ``extra_dirs``.

        The shipped packs are trusted (``patterns check`` and the tests verify them); user packs are
        verified (:func:`parse_pack`).

        :param extra_dirs: directories of user packs.
        :param shipped: load the shipped packs first.
        :param strict: raise :class:`PackError` on the first problem (a missing directory, a broken
            pack); otherwise skip what is broken and record it in :attr:`warnings`.
        """
        library = cls()
        sources: list[tuple[Path, bool]] = []
        if shipped:
            sources.extend((path, False) for path in pack_files(SHIPPED_PACKS_DIR))
        for directory in extra_dirs:
            try:
                sources.extend((path, True) for path in _user_pack_files(Path(directory)))
            except PackError as exc:
                if strict:
                    raise
                library.warn(str(exc))
        library._load_files(sources, strict)
        return library

    def _load_files(self, sources: list[tuple[Path, bool]], strict: bool) -> None:
        """Add the packs of ``sources``: from the host's library cache when they were loaded before
        (:mod:`.library_cache`), else from their files (and cache the result)."""
        key = library_cache.library_key(sources, _VERIFY_LIMITS)
        entries, problem = library_cache.read(key) if key is not None else (None, None)
        if problem is not None:
            self.warn(problem)
        if entries is None or len(entries) != len(sources):
            entries = [self._load_entry(path, verify) for path, verify in sources]
            if key is not None:
                library_cache.write(key, entries)
        for (path, _), entry in zip(sources, entries, strict=True):
            try:
                if isinstance(entry, library_cache.PackFailure):
                    raise PackError(entry.source, entry.pattern_id, entry.problem)
                self._add([CompiledPattern(None, tuple(lit), raw) for raw, lit in entry], str(path))
            except PackError as exc:
                if strict:
                    raise
                self.warn(str(exc))

    @staticmethod
    def _load_entry(path: Path, verify: bool) -> library_cache.PackEntry:
        try:
            compiled = _read_pack(path, verify)
        except PackError as exc:
            return library_cache.PackFailure(exc.source, exc.pattern_id, exc.problem)
        return [(_dump(cp), list(cp.literals)) for cp in compiled]

    @classmethod
    def from_config(cls) -> PatternLibrary:
        """Shipped packs plus ``[qubinode_recovery] pattern_dirs``, loaded leniently: a missing
        directory or a broken pack is a warning in :attr:`warnings`, never an exception."""
        try:
            from qubinode_recovery_provider import config

            directories = config.get_list("pattern_dirs")
        except Exception as exc:  # the analyzer must work whatever the configuration says
            library = cls.load(strict=False)
            library.warn(f"[qubinode_recovery] pattern_dirs: cannot be read: {exc}")
            return library
        return cls.load(directories, strict=False)


def _read_pack(path: Path, verify: bool) -> list[CompiledPattern]:
    """The patterns of one pack file (a verified large pack from the pack cache when it can)."""
    raw = _read_bytes(path)
    compiled = _cached_pack(raw) if verify else None
    if compiled is None:
        compiled = parse_pack(_parse_yaml(raw, path), str(path), verify=verify)
        if verify and len(compiled) >= PACK_CACHE_MIN_PATTERNS:
            _store_pack(raw, compiled)
    return compiled


def _dump(cp: CompiledPattern) -> dict[str, Any]:
    """A validated pattern as the caches store it (re-validated on first use)."""
    return cp.pattern.model_dump(mode="json", exclude_defaults=True)


def pack_files(directory: Path) -> list[Path]:
    """The ``*.yaml`` and ``*.yml`` files of ``directory``, sorted.

    :param directory: a pack directory.
    """
    return sorted(p for p in directory.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())


def _user_pack_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "does not exist"
        raise PackError(str(directory), None, f"pattern directory {problem}")
    try:
        return pack_files(directory)
    except OSError as exc:
        raise PackError(str(directory), None, f"pattern directory cannot be read: {exc.strerror}") from None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PackError(str(path), None, f"cannot read: {exc.strerror}") from None


def _parse_yaml(raw: bytes, path: Path) -> dict[str, Any]:
    import yaml  # only when a pack is read from its file (not from the library cache)

    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(raw.decode("utf-8"), Loader=loader)  # noqa: S506 (a safe loader)
    except UnicodeDecodeError as exc:
        raise PackError(str(path), None, f"not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PackError(str(path), None, f"invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise PackError(str(path), None, "a pack must be a mapping with 'pack' and 'patterns'")
    return data


def parse_pack(data: dict[str, Any], source: str, *, verify: bool = True) -> list[CompiledPattern]:
    """Validate one pack and derive its patterns' literals.

    :param data: the pack.
    :param source: where it came from (named in errors).
    :param verify: also check that every regex compiles with RE2 and passes the cost probe.
    """
    name = data.get("pack")
    if not isinstance(name, str) or not name:
        raise PackError(source, None, "missing 'pack' name")
    version = data.get("schema_version", PACK_SCHEMA_VERSION)
    if version != PACK_SCHEMA_VERSION:
        raise PackError(source, None, f"schema_version {version!r} is not supported (expected 1)")
    raw_patterns = data.get("patterns")
    if not isinstance(raw_patterns, list) or not raw_patterns:
        raise PackError(source, None, "'patterns' must be a non-empty list")
    compiled: list[CompiledPattern] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_patterns):
        cp = _compile_pattern(raw, name, source, index)
        if verify:
            verify_pattern(cp, source)
        if cp.id in seen:
            raise PackError(source, cp.id, "duplicate id in this pack")
        seen.add(cp.id)
        compiled.append(cp)
    return compiled


def _compile_pattern(raw: Any, pack: str, source: str, index: int) -> CompiledPattern:
    if not isinstance(raw, dict):
        raise PackError(source, f"patterns[{index}]", "a pattern must be a mapping")
    from pydantic import ValidationError

    from qubinode_recovery_provider.diagnosis.pack_schema import Pattern

    pattern_id = str(raw.get("id") or f"patterns[{index}]")
    try:
        pattern = Pattern.model_validate({**raw, "pack": pack})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(part) for part in err["loc"])
        raise PackError(source, pattern_id, f"{loc}: {err['msg']}" if loc else err["msg"]) from None
    try:  # parsing finds syntax errors; RE2 compiles the regex on first use (or when verifying)
        parsed = parse_regex(pattern.regex)
    except re.error as exc:
        raise PackError(source, pattern_id, f"regex does not compile: {exc}") from None
    return CompiledPattern(pattern, _literals_for(pattern, source, parsed))


def _literals_for(pattern: Pattern, source: str, parsed: Any) -> tuple[str, ...]:
    if pattern.literals is not None:
        literals = [lit.lower() for lit in pattern.literals]
        short = [lit for lit in literals if len(lit) < MIN_LITERAL_LENGTH]
        if not literals or short:
            raise PackError(source, pattern.id, f"literals must be at least {MIN_LITERAL_LENGTH} characters")
        return tuple(literals)
    derived = literals_of_parsed(parsed)
    if derived is None or min(len(lit) for lit in derived) < MIN_LITERAL_LENGTH:
        raise PackError(
            source,
            pattern.id,
            f"regex has no required literal of {MIN_LITERAL_LENGTH}+ characters in every alternative "
            "(the prefilter needs one; add 'literals:' or make the regex more specific)",
        )
    return tuple(sorted(derived))


def verify_pattern(cp: CompiledPattern, source: str) -> None:
    """Refuse a pattern RE2 cannot compile (not linear-time) or that is too slow on the probe lines.

    The compiled expression is dropped afterwards: the matcher compiles it again on the first candidate
    line, so a large pack costs no memory for patterns that never come close to matching.

    :param cp: the pattern.
    :param source: its file (named in the error).
    :raises PackError: with a one-line reason.
    """
    try:
        linear = cp.pattern.compile()
    except NotLinear as exc:
        raise PackError(source, cp.id, _not_linear(str(exc))) from None
    seconds = probe_seconds(linear, cp.literals)
    if seconds > MAX_PROBE_SECONDS:
        raise PackError(
            source,
            cp.id,
            f"regex is too slow: {seconds * 1000:.0f} ms on {len(probe_lines(cp.literals))} probe lines of "
            f"4 KiB (limit {MAX_PROBE_SECONDS * 1000:.0f} ms); make its repetitions smaller or more specific",
        )


def _not_linear(reason: str) -> str:
    part, _, detail = reason.partition(": ") if reason.startswith("exclude[") else ("regex", "", reason)
    hint = ""
    if "perl operator" in detail or "invalid escape sequence: \\" in detail:
        hint = "; RE2 has no look-around or back-references: write the context as 'exclude:' expressions"
    elif "too large" in detail:
        hint = f"; RE2 refuses programs over {RE2_MAX_MEM >> 20} MiB: use smaller counted repetitions"
    elif "repetition size" in detail:
        hint = "; RE2 allows counted repetitions up to 1000 in all (nested counts multiply)"
    return f"{part} is not linear-time (RE2 cannot compile it: {detail}){hint}"


def _pack_cache_path(raw: bytes) -> Path | None:
    directory = cache_dir()
    if directory is None:
        return None
    # Anything that changes what verification accepts or what loading derives is part of the key.
    key = (
        f"{PACK_CACHE_VERSION}|{__version__}|{MIN_LITERAL_LENGTH}|{MAX_PROBE_SECONDS}|{RE2_MAX_MEM}|".encode()
    )
    return directory / f"pack-{hashlib.sha256(key + raw).hexdigest()[:32]}.json"


def _cached_pack(raw: bytes) -> list[CompiledPattern] | None:
    """The verified patterns of a pack file whose exact bytes were verified before, or None. Each is
    validated again only when it is first used (see :class:`CompiledPattern`)."""
    path = _pack_cache_path(raw)
    data = read_trusted(path) if path is not None else None
    if data is None:
        return None
    try:
        document = json.loads(data)
        if document.get("version") != PACK_CACHE_VERSION:
            return None
        compiled = []
        for row in document["patterns"]:
            pattern, literals = row["pattern"], row["literals"]
            if not (isinstance(pattern["id"], str) and isinstance(pattern["regex"], str) and literals):
                raise TypeError("a cached pattern without id, regex or literals")
            compiled.append(CompiledPattern(None, tuple(literals), pattern))
        return compiled
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # damaged: verify the pack again
        log.warning("ignoring unreadable pack cache %s: %s", path, exc)
        return None


def _store_pack(raw: bytes, compiled: list[CompiledPattern]) -> None:
    path = _pack_cache_path(raw)
    if path is None:
        return
    rows = [{"pattern": _dump(cp), "literals": list(cp.literals)} for cp in compiled]
    write_atomically(path, json.dumps({"version": PACK_CACHE_VERSION, "patterns": rows}).encode())


#: ``Pattern``, ``Example`` and ``ID_RE`` (from :mod:`.pack_schema`), imported on first use.
__getattr__ = lazy_attributes(
    __name__,
    from_module("qubinode_recovery_provider.diagnosis.pack_schema", ("Pattern", "Example", "ID_RE")),
    globals(),
)


class KnownErrorPattern:
    """The reference guide's in-code pattern (``analyzer._patterns.append(KnownErrorPattern(...))``): not
    supported. A pattern here is data with its own examples and near misses, checked by ``qubinode-recovery
    patterns check``; an in-code pattern without them would skip that check.

    :raises TypeError: always, saying how to add a pattern instead
    """

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        raise TypeError(
            "KnownErrorPattern is not supported: write the pattern in a YAML pack with examples and near "
            "misses (docs/patterns.md) and load it with [qubinode_recovery] pattern_dirs, "
            "--patterns-dir or PatternLibrary.add_file"
        )
