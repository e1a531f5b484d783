"""Names of promised VMs: the ``libvirt://`` asset URI and the ``qubinode_vm`` param convention.

A task declares the VM it must leave behind as an output asset ``libvirt://<host>/<domain>``; the
OpenLineage provider reports it as an output dataset with namespace ``libvirt://<host>`` and name
``<domain>``. A DAG without outlets names its VMs in the run's conf (or the DAG's params) under
:data:`PARAM_KEY`, in any of these forms::

    "web1"                                       # on host "localhost", expected running
    "kvm1/web1"                                  # host/name
    "libvirt://kvm1/web1"
    {"name": "web1", "host": "kvm1", "state": "defined", "task_id": "create_vm"}
    ["kvm1/web1", {"name": "db1", "host": "kvm2"}]
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

from qubinode_recovery_provider.shadow.records import (
    DEFAULT_EXPECTED_STATE,
    EXPECTED_STATES,
    DeclaredDomain,
)

SCHEME = "libvirt"
PARAM_KEY = "qubinode_vm"
DEFAULT_HOST = "localhost"
FACET_NAME = "libvirtDomain"

_HOST_RE = re.compile(r"^[A-Za-z0-9_.\-]+(:\d+)?$")


class DomainURIError(ValueError):
    """A ``libvirt://`` URI or a ``qubinode_vm`` value that does not name one VM."""


def check_host(host: str) -> str:
    """Return ``host`` lower-cased; raise :class:`DomainURIError` unless it is a plain host name."""
    host = (host or "").strip().lower()
    if not host or not _HOST_RE.match(host):
        raise DomainURIError(f"invalid libvirt host name {host!r}: use a host name such as 'kvm1'")
    return host


def check_name(name: str) -> str:
    """Return the domain name; raise :class:`DomainURIError` when it is empty or contains ``/``."""
    if not name or not name.strip() or "/" in name:
        raise DomainURIError(f"invalid libvirt domain name {name!r}")
    return name


def check_state(state: str | None) -> str:
    """Return the expected state (default ``running``); raise unless it is ``running`` or ``defined``."""
    text = state is None or isinstance(state, str)  # (a conf may hold a number, a list or an object)
    value = (state or DEFAULT_EXPECTED_STATE).strip().lower() if text else None
    if value not in EXPECTED_STATES:
        raise DomainURIError(f"expected state must be one of {', '.join(EXPECTED_STATES)}, got {state!r}")
    return value


def domain_uri(host: str, name: str) -> str:
    """The asset URI of domain ``name`` on ``host``: ``libvirt://host/name`` (name percent-quoted)."""
    return f"{SCHEME}://{check_host(host)}/{urllib.parse.quote(check_name(name), safe='')}"


def parse_domain_uri(uri: str) -> tuple[str, str]:
    """Split ``libvirt://host/name`` into ``(host, name)``."""
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:  # ("libvirt://[web1": an unclosed IPv6 bracket, or a netloc NFKC changes)
        raise DomainURIError(f"not a libvirt domain URI: {uri!r}") from None
    if parts.scheme.lower() != SCHEME:
        raise DomainURIError(f"not a libvirt domain URI: {uri!r}")
    return split_host_path(parts.netloc, parts.path, uri)


def split_host_path(netloc: str, path: str, original: str = "") -> tuple[str, str]:
    """Validate the host and the single path segment of a libvirt domain URI."""
    segments = [s for s in path.split("/") if s]
    if len(segments) != 1:
        raise DomainURIError(f"a libvirt domain URI is libvirt://<host>/<domain>, got {original or path!r}")
    _, _, host = netloc.rpartition("@")
    return check_host(host), check_name(urllib.parse.unquote(segments[0]))


def namespace_host(namespace: str) -> str | None:
    """The host of an OpenLineage dataset namespace ``libvirt://host``; None for other namespaces."""
    prefix = f"{SCHEME}://"
    if not namespace.lower().startswith(prefix):
        return None
    host = namespace[len(prefix) :].strip("/")
    return host.lower() or None


def declared_from_dataset(
    namespace: str, name: str, facets: Mapping[str, Any] | None, task_id: str | None
) -> DeclaredDomain | None:
    """The promise carried by one OpenLineage output dataset, or None when it is not a libvirt domain."""
    facet = (facets or {}).get(FACET_NAME) or {}
    state = facet.get("expectedState") if isinstance(facet, Mapping) else None
    return declared_from_state(namespace, name, state, task_id)


def declared_from_state(namespace: str, name: str, state: Any, task_id: str | None) -> DeclaredDomain | None:
    """:func:`declared_from_dataset` once the ``libvirtDomain`` facet's ``expectedState`` was read."""
    if state is not None and not isinstance(state, str):
        state = str(state)
    return _declared_from_dataset(namespace, name, state, task_id)


@functools.lru_cache(maxsize=8192)
def _declared_from_dataset(
    namespace: str, name: str, state: str | None, task_id: str | None
) -> DeclaredDomain | None:
    """Cached: the tasks of a DAG declare the same domains run after run (the result is immutable)."""
    host = namespace_host(namespace)
    if host is None or not name:
        return None
    try:
        return DeclaredDomain(host, check_name(urllib.parse.unquote(name)), check_state(state), task_id)
    except DomainURIError:
        return None


def _unwrap_param(value: Any) -> Any:
    """Serialized DAG params (REST ``/details``) wrap the value as ``{"value": ..., "schema": ...}``."""
    if isinstance(value, Mapping) and "value" in value and "name" not in value:
        return value["value"]
    return value


def _one_declaration(item: Any) -> DeclaredDomain:
    if isinstance(item, str):
        text = item.strip()
        if text.lower().startswith(f"{SCHEME}://"):
            host, name = parse_domain_uri(text)
        elif "/" in text:
            host_part, _, name = text.partition("/")
            host = check_host(host_part)
        else:
            host, name = DEFAULT_HOST, text
        return DeclaredDomain(host, check_name(name), DEFAULT_EXPECTED_STATE, None, "param")
    if isinstance(item, Mapping):
        name = str(item.get("name") or "")
        host = check_host(str(item.get("host") or DEFAULT_HOST))
        state = check_state(item.get("state") or item.get("expected_state"))
        task_id = item.get("task_id") or item.get("task")
        return DeclaredDomain(host, check_name(name), state, str(task_id) if task_id else None, "param")
    raise DomainURIError(f"{PARAM_KEY} must be a string, an object or a list of them, got {type(item)}")


def declarations_from_params(value: Any) -> Iterator[DeclaredDomain]:
    """The VMs named by a ``qubinode_vm`` conf or param value (see the module docstring)."""
    value = _unwrap_param(value)
    if value is None or value == "" or value == []:
        return
    items = value if isinstance(value, list | tuple) else [value]
    for item in items:
        yield _one_declaration(item)
