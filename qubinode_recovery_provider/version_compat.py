"""Airflow version gates, in one place instead of try/except imports scattered over the adapters.

Only the adapter folders (``policies/``, ``notifications/``, ``hooks/`` ...) import this module; the core
never does. Reading the version imports :mod:`airflow`, which every process that runs a DAG has loaded
already.
"""

from __future__ import annotations

from functools import cache


@cache
def get_base_airflow_version_tuple() -> tuple[int, int, int]:
    """Return Airflow's ``(major, minor, micro)``, ignoring pre-release and local suffixes."""
    from airflow import __version__
    from packaging.version import Version

    version = Version(__version__)
    return version.major, version.minor, version.micro


def airflow_at_least(major: int, minor: int, micro: int = 0) -> bool:
    """Whether the running Airflow is at least ``major.minor.micro``.

    :param major: major version.
    :param minor: minor version.
    :param micro: patch version.
    """
    return get_base_airflow_version_tuple() >= (major, minor, micro)


#: Retry policies (AIP-105): ``airflow.sdk.definitions.retry_policy``.
AIRFLOW_V_3_3_PLUS = airflow_at_least(3, 3)

__all__ = ["AIRFLOW_V_3_3_PLUS", "airflow_at_least", "get_base_airflow_version_tuple"]
