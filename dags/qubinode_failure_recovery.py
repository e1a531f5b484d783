# qubinode-recovery dags install: version 0.1.0, sha256 d0f4e90e1f3288ec62cc840d61ec9be0
"""Airflow DAG ``qubinode_failure_recovery`` of the qubinode recovery provider (docs/dags.md).

Written by ``qubinode-recovery dags install``. The DAG is defined in the installed package,
in qubinode_recovery_provider.dags.qubinode_failure_recovery,
so upgrading the provider upgrades it; configure it through ``[qubinode_recovery]``.
An edited copy is not overwritten without ``--force``.
"""

from qubinode_recovery_provider.dags.qubinode_failure_recovery import build

dag = build()
