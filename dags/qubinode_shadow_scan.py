# qubinode-recovery dags install: version 0.1.0, sha256 94df47ef73ef2c1ff099a1b13d4ff96f
"""Airflow DAG ``qubinode_shadow_scan`` of the qubinode recovery provider (docs/dags.md).

Written by ``qubinode-recovery dags install``. The DAG is defined in the installed package,
in qubinode_recovery_provider.dags.qubinode_shadow_scan,
so upgrading the provider upgrades it; configure it through ``[qubinode_recovery]``.
An edited copy is not overwritten without ``--force``.
"""

from qubinode_recovery_provider.dags.qubinode_shadow_scan import build

dag = build()
