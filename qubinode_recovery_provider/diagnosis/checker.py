"""Check pattern packs: every pack loads, every example is found, no near miss is, and the text users
see holds no maintainer's note (a pattern id, a reference to other patterns, a TODO).

Every pack, the shipped ones included, is loaded with verification: each regex (and ``exclude``) must
compile with RE2 and pass the cost probe (:func:`.patterns.verify_pattern`). Examples run through the
same :class:`Matcher` the analyzer uses, so a pattern whose prefilter, RE2 form or Ansible-blob handling
would hide a real match fails here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from qubinode_recovery_provider.diagnosis.matcher import Matcher
from qubinode_recovery_provider.diagnosis.patterns import (
    SHIPPED_PACKS_DIR,
    PackError,
    PatternLibrary,
    pack_files,
)

if TYPE_CHECKING:
    from qubinode_recovery_provider.diagnosis.pack_schema import Pattern


@dataclass
class CheckReport:
    """Result of checking a set of packs."""

    packs: int = 0
    patterns: int = 0
    examples: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_packs(files: list[Path]) -> CheckReport:
    """Load ``files`` in order into one library (verified) and run every example.

    :param files: the pack files.
    """
    report = CheckReport()
    library = PatternLibrary()
    for path in files:
        try:
            library.add_file(path)
        except PackError as exc:
            report.problems.append(str(exc))
            continue
        report.packs += 1
    report.patterns = len(library)
    _run_lint(library, report)
    _run_examples(library, report)
    return report


def default_pack_files(extra_dirs: list[str], extra_files: list[str]) -> list[Path]:
    """Shipped packs, then packs in ``extra_dirs``, then ``extra_files``."""
    files = pack_files(SHIPPED_PACKS_DIR)
    for directory in extra_dirs:
        path = Path(directory)
        files.extend(pack_files(path) if path.is_dir() else [path])
    files.extend(Path(f) for f in extra_files)
    return files


#: Fields whose text users see (the diagnosis's summary, actions, commands and services).
USER_VISIBLE_FIELDS = ("description", "recovery_hint", "diagnostic_commands", "services")
#: What belongs in ``maintainer_note``, not in text for users: a pattern id (``vault_012``,
#: ``ssh_*``), a reference to other patterns, a note left for later.
_INTERNAL = (
    re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)*_(?:[0-9]{3}\b|\*)"),  # ids are lower case
    re.compile(
        r"\b(?:see|that|this|other|specific|these|those) patterns?\b|\bpattern's\b"
        r"|\b(?:TODO|FIXME|XXX)\b|\bleft to\b|\b(?:is|are) (?:not )?matched\b",
        re.IGNORECASE,
    ),
)


def internal_notes(pattern: Pattern) -> list[str]:
    """The user-visible fields of ``pattern`` that hold a maintainer's note: ``field: the note``.

    :param pattern: a validated pattern.
    """
    found = []
    for name in USER_VISIBLE_FIELDS:
        value = getattr(pattern, name)
        for text in value if isinstance(value, list) else [value]:
            for rule in _INTERNAL:
                match = rule.search(text)
                if match:
                    found.append(f"{name}: {match.group(0)!r}")
                    break
    return found


def _run_lint(library: PatternLibrary, report: CheckReport) -> None:
    for cp in library.patterns:
        source = library.sources.get(cp.id, cp.pattern.pack)
        report.problems.extend(
            f"{source}: {cp.id}: user-visible {note} is a maintainer's note (move it to maintainer_note)"
            for note in internal_notes(cp.pattern)
        )


def _run_examples(library: PatternLibrary, report: CheckReport) -> None:
    matcher = Matcher(library.patterns)
    for index, cp in enumerate(library.patterns):
        source = library.sources.get(cp.id, cp.pattern.pack)
        for number, example in enumerate(cp.pattern.examples, start=1):
            report.examples += 1
            if index not in matcher.scan_text(example.text).counts:
                report.problems.append(
                    f"{source}: {cp.id}: example {number} is not matched: {_clip(example.text)}"
                )
        for number, near in enumerate(cp.pattern.near_misses, start=1):
            report.examples += 1
            if index in matcher.scan_text(near.text).counts:
                report.problems.append(
                    f"{source}: {cp.id}: near miss {number} is matched: {_clip(near.text)}"
                )


def _clip(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
