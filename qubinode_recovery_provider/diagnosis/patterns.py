"""The known-error library: YAML pattern packs, their schema, loading and checking.

A pack is data (see ``docs/patterns.md``). Loading validates every pattern and derives the literals the
matcher's Aho-Corasick prefilter needs; any problem is raised as :class:`PackError`, whose message is one
line naming the file, the pattern id and the problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from qubinode_recovery_provider.diagnosis.literals import literals_of_parsed, parse_regex
from qubinode_recovery_provider.models import RootCause, Severity

PACK_SCHEMA_VERSION = 1
SHIPPED_PACKS_DIR = Path(__file__).parent / "packs"
MIN_LITERAL_LENGTH = 4
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
ID_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*_[0-9]{3}$")


class PackError(ValueError):
    """A pattern pack cannot be used. ``str()`` is one line: ``file: pattern_id: problem``."""

    def __init__(self, source: str, pattern_id: str | None, problem: str) -> None:
        self.source = source
        self.pattern_id = pattern_id
        self.problem = problem
        where = f"{source}: {pattern_id}" if pattern_id else source
        super().__init__(f"{where}: {problem}")


class Example(BaseModel):
    """A real text a real tool printed, with where it was published."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    source: str = Field(min_length=1)


class Pattern(BaseModel):
    """One known error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    regex: str
    ignore_case: bool = True
    category: RootCause
    severity: Severity
    retryable: bool | None
    role: str = "cause"
    retry_delay_seconds: int | None = Field(default=None, ge=1, le=86400)
    services: list[str] = Field(default_factory=list)
    description: str = Field(min_length=1)
    recovery_hint: str = ""
    diagnostic_commands: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    literals: list[str] | None = None
    examples: list[Example] = Field(min_length=1)
    near_misses: list[Example] = Field(min_length=1)
    pack: str = ""

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not ID_RE.match(value):
            raise ValueError(f"id {value!r} must look like name_001 (lower case, 3-digit suffix)")
        return value

    @field_validator("role")
    @classmethod
    def _check_role(cls, value: str) -> str:
        if value not in {"cause", "symptom"}:
            raise ValueError(f"role must be 'cause' or 'symptom', not {value!r}")
        return value

    @model_validator(mode="after")
    def _check_category(self) -> Pattern:
        if self.category is RootCause.UNKNOWN and self.role != "symptom":
            raise ValueError("only a 'symptom' pattern can have the category 'unknown'")
        return self

    def compile(self) -> re.Pattern[str]:
        return re.compile(self.regex, re.IGNORECASE if self.ignore_case else 0)


class CompiledPattern:
    """A validated pattern with its prefilter literals (lower case) and its regex, compiled on first
    use: a failing task's process loads every pattern but runs only the few whose literals occur."""

    __slots__ = ("_regex", "literals", "pattern")

    def __init__(
        self, pattern: Pattern, literals: tuple[str, ...], regex: re.Pattern[str] | None = None
    ) -> None:
        self.pattern = pattern
        self.literals = literals
        self._regex = regex

    @property
    def regex(self) -> re.Pattern[str]:
        if self._regex is None:
            self._regex = self.pattern.compile()
        return self._regex

    @property
    def id(self) -> str:
        return self.pattern.id


@dataclass
class PatternLibrary:
    """All loaded patterns, in load order (shipped packs first, then user packs)."""

    patterns: list[CompiledPattern] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[CompiledPattern]:
        return iter(self.patterns)

    def __len__(self) -> int:
        return len(self.patterns)

    def get(self, pattern_id: str) -> CompiledPattern | None:
        return next((p for p in self.patterns if p.id == pattern_id), None)

    def add_pack(self, data: dict[str, Any], source: str = "<api>") -> list[CompiledPattern]:
        """Validate a pack given as a dict and add its patterns. Raises :class:`PackError`."""
        compiled = parse_pack(data, source)
        for cp in compiled:
            if cp.id in self.sources:
                raise PackError(source, cp.id, f"id already defined in {self.sources[cp.id]}")
        for cp in compiled:
            self.sources[cp.id] = source
            self.patterns.append(cp)
        return compiled

    def add_file(self, path: Path) -> list[CompiledPattern]:
        return self.add_pack(read_pack_file(path), str(path))

    @classmethod
    def load(cls, extra_dirs: Iterable[str | Path] = (), *, shipped: bool = True) -> PatternLibrary:
        """Load the shipped packs, then every ``*.yaml``/``*.yml`` in ``extra_dirs``."""
        library = cls()
        if shipped:
            for path in pack_files(SHIPPED_PACKS_DIR):
                library.add_file(path)
        for directory in extra_dirs:
            directory = Path(directory)
            if not directory.is_dir():
                raise PackError(str(directory), None, "pattern directory does not exist")
            for path in pack_files(directory):
                library.add_file(path)
        return library

    @classmethod
    def from_config(cls) -> PatternLibrary:
        """Shipped packs plus ``[qubinode_recovery] pattern_dirs``."""
        from qubinode_recovery_provider import config

        return cls.load(config.get_list("pattern_dirs"))


def pack_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())


def read_pack_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
    except OSError as exc:
        raise PackError(str(path), None, f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PackError(str(path), None, f"invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise PackError(str(path), None, "a pack must be a mapping with 'pack' and 'patterns'")
    return data


def parse_pack(data: dict[str, Any], source: str) -> list[CompiledPattern]:
    """Validate one pack and compile its patterns."""
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
        if cp.id in seen:
            raise PackError(source, cp.id, "duplicate id in this pack")
        seen.add(cp.id)
        compiled.append(cp)
    return compiled


def _compile_pattern(raw: Any, pack: str, source: str, index: int) -> CompiledPattern:
    if not isinstance(raw, dict):
        raise PackError(source, f"patterns[{index}]", "a pattern must be a mapping")
    pattern_id = str(raw.get("id") or f"patterns[{index}]")
    try:
        pattern = Pattern.model_validate({**raw, "pack": pack})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(part) for part in err["loc"])
        raise PackError(source, pattern_id, f"{loc}: {err['msg']}" if loc else err["msg"]) from None
    try:  # parsing finds syntax errors; the regex itself is compiled on first use (or by the checker)
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
