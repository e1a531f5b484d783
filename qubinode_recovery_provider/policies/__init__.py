"""Airflow retry policies (Airflow 3.3+, AIP-105) driven by the failure's diagnosis.

``retry_policy=DiagnosisRetryPolicy()``. Importing this package is cheap: the analyzer and the pattern
library load on the first failure, in the worker.
"""

from __future__ import annotations

from qubinode_recovery_provider.version_compat import AIRFLOW_V_3_3_PLUS

if not AIRFLOW_V_3_3_PLUS:  # pragma: no cover - the provider requires 3.3
    raise ImportError("qubinode_recovery_provider.policies needs Airflow 3.3+ (retry policies, AIP-105)")

from qubinode_recovery_provider.policies.retry import DiagnosisRetryPolicy, PolicySettings

__all__ = ["DiagnosisRetryPolicy", "PolicySettings"]
