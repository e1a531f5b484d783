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
        "notifications": ["qubinode_recovery_provider.notifications.RecoveryNotifier"],
        "hooks": [
            {
                "integration-name": "Qubinode Recovery",
                "python-modules": ["qubinode_recovery_provider.hooks.libvirt"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Qubinode Recovery",
                "python-modules": [
                    "qubinode_recovery_provider.sensors.libvirt",
                    "qubinode_recovery_provider.sensors.recovery",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": "Qubinode Recovery",
                "python-modules": [
                    "qubinode_recovery_provider.operators.diagnose",
                    "qubinode_recovery_provider.operators.plan",
                    "qubinode_recovery_provider.operators.decide",
                    "qubinode_recovery_provider.operators.approval",
                    "qubinode_recovery_provider.operators.execute",
                    "qubinode_recovery_provider.operators.escalate",
                    "qubinode_recovery_provider.operators.report",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Qubinode Recovery",
                "python-modules": ["qubinode_recovery_provider.triggers.recovery"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "qubinode_recovery_provider.hooks.libvirt.LibvirtHook",
                "hook-name": "Libvirt",
                "connection-type": "libvirt",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "port", "login", "password", "extra"],
                    "relabeling": {},
                    "placeholders": {},
                },
                "conn-fields": {
                    "uri": {
                        "label": "Libvirt URI",
                        "description": "qemu:///system, qemu+ssh://root@kvm1/system?no_tty=1 or "
                        "test:///default",
                        "schema": {"type": ["string", "null"], "default": "test:///default"},
                    },
                    "host_name": {
                        "label": "Host name",
                        "description": "The host name DAGs use in libvirt_domain(name, host=...); "
                        "default: the URI's host, or localhost for a local URI",
                        "schema": {"type": ["string", "null"]},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "After this long an unanswered host counts as unreachable",
                        "schema": {"type": ["number", "null"], "default": 20},
                    },
                },
            }
        ],
        "asset-uris": [
            {
                "schemes": ["libvirt"],
                "handler": "qubinode_recovery_provider.assets.libvirt.sanitize_uri",
                "factory": "qubinode_recovery_provider.assets.libvirt.create_asset",
                "to_openlineage_converter": "qubinode_recovery_provider.assets.libvirt."
                "convert_asset_to_openlineage",
            }
        ],
    }
