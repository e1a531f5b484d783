"""The plain records the shadow scan reads: finished runs, VM inventories and declared VMs.

They are small slotted dataclasses rather than pydantic models because a scan builds tens of thousands
of them; only the findings (:class:`~qubinode_recovery_provider.models.ShadowError`) are pydantic.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from qubinode_recovery_provider.redaction import redact

EXPECTED_STATES = ("running", "defined")
"""What a task can promise about a VM: it runs, or it merely exists (in any state)."""

NEGATIVE_STATES = frozenset({"stopped", "absent"})
"""What an inferred ``stop`` or ``delete`` leaves: it cancels an earlier promise, nothing is checked."""

DEFAULT_EXPECTED_STATE = "running"

# Domain states that count as "running": a blocked vCPU is still a running guest.
RUNNING_STATES = frozenset({"running", "blocked"})

# Task instance states in which a task ran to its end successfully.
SUCCESS = "success"
FAILED_TASK_STATES = frozenset({"failed", "upstream_failed"})
# Task instance states in which a task never ran, so no lineage event is expected from it.
NOT_RUN_STATES = frozenset({"skipped", "upstream_failed", "removed", "none", "scheduled", "queued"})


@dataclass(frozen=True, slots=True)
class DeclaredDomain:
    """A VM a run promised to leave behind: ``name`` on the libvirt host ``host`` in ``expected_state``.

    :param host: the inventory host name (``localhost`` for a local hypervisor)
    :param name: the libvirt domain name
    :param expected_state: ``running`` (default) or ``defined``
    :param task_id: the task that made the promise (None: the run as a whole, param convention)
    :param source: ``outlet`` (an OpenLineage output dataset), ``param`` (the run's conf or params) or
        ``inferred`` (read from the task's command line, lineage facets or log)
    :param confidence: how sure an inferred contract is (None for declarations)
    :param evidence: where an inferred contract was read
    """

    host: str
    name: str
    expected_state: str = DEFAULT_EXPECTED_STATE
    task_id: str | None = None
    source: str = "outlet"
    uri: str = field(init=False, repr=False, compare=False)
    confidence: float | None = field(default=None, compare=False)
    evidence: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        # the asset URI (libvirt://host/name), computed once: it keys every lookup of the promise
        object.__setattr__(self, "uri", f"libvirt://{self.host}/{urllib.parse.quote(self.name, safe='')}")


@dataclass(slots=True)
class TaskRecord:
    """One Airflow task instance of a finished run, as the REST API reports it.

    ``rendered`` holds its rendered template fields (text values only, and only when one of them names
    a VM tool); ``log`` the log of its last try when the scan fetched it.
    """

    task_id: str
    map_index: int = -1
    state: str | None = None
    try_number: int = 0
    operator: str | None = None
    end_date: str | None = None
    rendered: dict[str, str] | None = None
    log: str | None = None


@dataclass(slots=True)
class RunRecord:
    """One finished DAG run, with its task instances when the source knows them (``tasks`` None: unknown).

    ``conf`` is the run's conf; ``dag_params`` the DAG's default params when the source resolved them;
    ``dag_tags`` the DAG's tags when it did.
    """

    dag_id: str
    run_id: str
    state: str
    end_date: str | None = None
    start_date: str | None = None
    run_type: str | None = None
    conf: dict[str, Any] = field(default_factory=dict)
    dag_params: dict[str, Any] | None = None
    tasks: list[TaskRecord] | None = None
    dag_tags: tuple[str, ...] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.dag_id, self.run_id)


@dataclass(slots=True)
class DomainInfo:
    """One libvirt domain as listed on its host."""

    name: str
    state: str
    reason: str | None = None
    uptime_seconds: float | None = None
    persistent: bool | None = None

    def satisfies(self, expected_state: str) -> bool:
        """True when the domain is in the state a task promised (``defined`` accepts any state)."""
        if expected_state == "defined":
            return True
        return self.state in RUNNING_STATES

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "reason": self.reason,
            "uptime_seconds": self.uptime_seconds,
            "persistent": self.persistent,
        }


@dataclass(slots=True)
class HostInventory:
    """Every domain of one libvirt host, or why the host could not be listed.

    :param host: the inventory host name that ``libvirt_domain(host=...)`` refers to
    :param uri: the libvirt URI that was listed (credentials never included)
    :param reachable: False when the host did not answer or refused the listing
    :param aliases: other names the host is known by (the connection id, the URI's host name)
    """

    host: str
    uri: str
    reachable: bool
    domains: dict[str, DomainInfo] = field(default_factory=dict)
    error: str | None = None
    listed_at: str | None = None
    elapsed_seconds: float = 0.0
    aliases: tuple[str, ...] = ()
    conn_id: str | None = None

    def names(self) -> set[str]:
        """Every name a declaration may use for this host (lower case)."""
        return {n.lower() for n in (self.host, *self.aliases) if n}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for XCom and the CLI)."""
        return {
            "host": self.host,
            "uri": self.uri,
            "reachable": self.reachable,
            "error": self.error,
            "listed_at": self.listed_at,
            "elapsed_seconds": round(self.elapsed_seconds, 4),
            "aliases": list(self.aliases),
            "conn_id": self.conn_id,
            "domains": [d.to_dict() for d in self.domains.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostInventory:
        domains = [DomainInfo(**d) for d in data.get("domains") or []]
        return cls(
            host=data["host"],
            uri=data.get("uri", ""),
            reachable=bool(data.get("reachable")),
            domains={d.name: d for d in domains},
            error=data.get("error"),
            listed_at=data.get("listed_at"),
            elapsed_seconds=float(data.get("elapsed_seconds") or 0.0),
            aliases=tuple(data.get("aliases") or ()),
            conn_id=data.get("conn_id"),
        )


@dataclass(slots=True)
class SourceReport:
    """What reading one source cost and what it skipped: counts and one-line warnings."""

    name: str
    available: bool = True
    items: int = 0
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)
    max_warnings: int = 20
    suppressed: int = 0

    def warn(self, message: str) -> None:
        """Keep the first ``max_warnings`` warnings (redacted: they quote URLs and errors), count the rest."""
        if len(self.warnings) < self.max_warnings:
            self.warnings.append(redact(message))
        else:
            self.suppressed += 1

    def all_warnings(self) -> list[str]:
        extra = [f"{self.name}: {self.suppressed} more warnings not shown"] if self.suppressed else []
        return [*self.warnings, *extra]
