"""The ``libvirt`` asset URI scheme: a VM a task must leave behind, declared as one of its outlets.

``libvirt://<host>/<domain>`` names the libvirt domain ``<domain>`` on the inventory host ``<host>``
(the ``host_name`` of a ``libvirt`` connection, or its URI's host). ``extra={"expected_state": ...}``
says what "left behind" means: ``running`` (default) or ``defined``::

    BashOperator(
        task_id="create_vm",
        bash_command="kcli create vm web1 -i centos9stream",
        outlets=[libvirt_domain("web1", host="kvm1")],
    )

The provider registers the scheme (``asset-uris`` in its provider info): :func:`sanitize_uri`
normalises URIs, :func:`convert_asset_to_openlineage` turns the asset into the OpenLineage output
dataset ``libvirt://<host>`` / ``<domain>`` with a ``libvirtDomain`` facet carrying the expected
state, which is how the shadow scan learns what each successful run promised.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset

from qubinode_recovery_provider.shadow.domains import (
    DEFAULT_HOST,
    FACET_NAME,
    SCHEME,
    check_state,
    domain_uri,
    parse_domain_uri,
    split_host_path,
)

if TYPE_CHECKING:
    from urllib.parse import SplitResult

GROUP = "libvirt_domain"


def libvirt_domain(
    name: str, host: str = DEFAULT_HOST, expected_state: str = "running", extra: dict[str, Any] | None = None
) -> Asset:
    """The asset of libvirt domain ``name`` on ``host``, for a task's ``outlets``.

    :param name: the libvirt domain name (as ``virsh list --all`` shows it)
    :param host: the inventory host name (``host_name`` of a ``libvirt`` connection)
    :param expected_state: ``running`` (default) or ``defined`` (exists in any state)
    :param extra: more asset extra (merged; ``expected_state`` wins)
    """
    state = check_state(expected_state)
    return Asset(uri=domain_uri(host, name), group=GROUP, extra={**(extra or {}), "expected_state": state})


def create_asset(
    *, name: str, host: str = DEFAULT_HOST, expected_state: str = "running", extra=None
) -> Asset:
    """Asset factory registered for the scheme (same as :func:`libvirt_domain`)."""
    return libvirt_domain(name, host=host, expected_state=expected_state, extra=extra)


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Normalise ``libvirt://Host/name`` (lower-case host, quoted name, no query or fragment)."""
    host, name = split_host_path(uri.netloc, uri.path, urllib.parse.urlunsplit(uri))
    return uri._replace(
        scheme=SCHEME,
        netloc=host,
        path="/" + urllib.parse.quote(name, safe=""),
        query="",
        fragment="",
    )


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any) -> Any:
    """The OpenLineage output dataset of a libvirt domain asset."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    from qubinode_recovery_provider.assets.openlineage import LibvirtDomainDatasetFacet

    host, name = parse_domain_uri(asset.uri)
    declared = (asset.extra or {}).get("expected_state")
    state = check_state(str(declared) if declared is not None else None)
    facet = LibvirtDomainDatasetFacet(host=host, domain=name, expectedState=state)
    return Dataset(namespace=f"{SCHEME}://{host}", name=name, facets={FACET_NAME: facet})
