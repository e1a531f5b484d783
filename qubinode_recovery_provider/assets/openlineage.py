"""The ``libvirtDomain`` OpenLineage dataset facet (imported only when lineage is emitted)."""

from __future__ import annotations

from attrs import define
from openlineage.client.generated.base import DatasetFacet

SCHEMA_URL = (
    "https://github.com/qubinode/qubinode-recovery-provider/blob/main/docs/shadow.md#the-libvirtdomain-facet"
)


@define
class LibvirtDomainDatasetFacet(DatasetFacet):
    """What a task promised about a libvirt domain.

    :param host: the inventory host name
    :param domain: the libvirt domain name
    :param expectedState: ``running`` or ``defined``
    """

    host: str
    domain: str
    expectedState: str

    _additional_skip_redact = ["host", "domain", "expectedState"]

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_URL
