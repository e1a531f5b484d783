"""Provider metadata read by Airflow's provider manager (``apache_airflow_provider`` entry point)."""

from __future__ import annotations

from typing import Any

from qubinode_recovery_provider import __version__
from qubinode_recovery_provider.config import provider_config_section


def get_provider_info() -> dict[str, Any]:
    """Return the provider-info dictionary (schema: ``airflow/provider_info.schema.json``)."""
    return {
        "package-name": "qubinode-recovery-provider",
        "name": "Qubinode Recovery",
        "description": "Diagnoses failed infrastructure tasks (kcli/libvirt, Ansible, podman, Vault), "
        "plans and safely carries out recovery, escalates what it cannot fix, and finds shadow errors "
        "in runs Airflow calls a success.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Qubinode Recovery",
                "external-doc-url": "https://github.com/qubinode/qubinode-recovery-provider",
                "tags": ["service"],
            }
        ],
        "config": provider_config_section(),
    }
