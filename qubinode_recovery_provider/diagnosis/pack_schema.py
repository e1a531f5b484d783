"""The schema of one pattern in a pack (pydantic): what :mod:`.patterns` validates a pack's entries
against. Imported only when a pack is read from its file or a pattern's full definition is needed
(``patterns check``, ``patterns list``): the analyzer reads a cached pattern's fields without it
(:attr:`.patterns.CompiledPattern.rule`).

Plain Python, no Airflow.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qubinode_recovery_provider.diagnosis.linear import LinearPattern
from qubinode_recovery_provider.models import RootCause, Severity

ID_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*_[0-9]{3}$")


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
    #: why a ``retryable: true`` cause is transient by nature (the rule in docs/categories.md)
    transient_evidence: str = ""
    role: str = "cause"
    retry_delay_seconds: int | None = Field(default=None, ge=1, le=86400)
    services: list[str] = Field(default_factory=list)
    description: str = Field(min_length=1)
    recovery_hint: str = ""
    diagnostic_commands: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    #: For the pack's maintainers (why a wording is left to another pattern...): never shown to users.
    maintainer_note: str = ""
    literals: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
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

    def compile(self) -> LinearPattern:
        """The RE2 form of ``regex`` and ``exclude`` (raises :class:`.NotLinear`)."""
        return LinearPattern.compile(self.regex, self.exclude, self.ignore_case)


__all__ = ["ID_RE", "Example", "Pattern"]
