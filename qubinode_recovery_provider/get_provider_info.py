"""Provider metadata read by Airflow's provider manager (``apache_airflow_provider`` entry point)."""

from __future__ import annotations

from typing import Any

from qubinode_recovery_provider import __version__
from qubinode_recovery_provider.config import provider_config_section

#: The ``airflow_api`` connection form (``hooks.airflow_api.AirflowApiHook``): the fields Airflow's UI
#: shows, and the extras it shows as fields of their own (stored in ``extra``).
AIRFLOW_API_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["extra"],
    "relabeling": {
        "host": "API server (host name or URL)",
        "schema": "Scheme (http or https)",
        "login": "User",
    },
    "placeholders": {
        "host": "api-server, or https://airflow.example.com",
        "port": "8080",
        "schema": "http",
        "login": "a user allowed to trigger runs and clear task instances",
        "password": "exchanged for a token at /auth/token",
        "token": "a bearer token, instead of user and password",
        "base_path": "/airflow (a proxy prefix in front of /api/v2)",
        "verify": "true, false, or /path/to/ca-bundle.pem",
        "timeout": "10",
    },
}
AIRFLOW_API_CONN_FIELDS: dict[str, Any] = {
    "token": {
        "label": "Token",
        "description": "A bearer token used as is; leave empty to log in with user and password",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "base_path": {
        "label": "Base path",
        "description": "The path in front of /api/v2 when the API server sits behind a proxy prefix",
        "schema": {"type": ["string", "null"]},
    },
    "verify": {
        "label": "Verify TLS",
        "description": "true (default), false, or the path of a CA bundle",
        "schema": {"type": ["string", "null"]},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "For each request to the API server",
        "schema": {"type": ["number", "null"], "default": 10},
    },
}


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
        "plugins": [
            {
                "name": "qubinode_recovery",
                "plugin-class": "qubinode_recovery_provider.plugins.recovery_ui.RecoveryUIPlugin",
            }
        ],
        "hooks": [
            {
                "integration-name": "Qubinode Recovery",
                "python-modules": [
                    "qubinode_recovery_provider.hooks.libvirt",
                    "qubinode_recovery_provider.hooks.airflow_api",
                ],
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
                "hook-class-name": "qubinode_recovery_provider.hooks.airflow_api.AirflowApiHook",
                "hook-name": "Airflow REST API",
                "connection-type": "airflow_api",
                "ui-field-behaviour": AIRFLOW_API_UI_FIELD_BEHAVIOUR,
                "conn-fields": AIRFLOW_API_CONN_FIELDS,
            },
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
            },
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
