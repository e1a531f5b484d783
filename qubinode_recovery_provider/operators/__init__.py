"""Airflow operators of the recovery DAG: thin adapters over the core.

``DiagnoseFailureOperator`` -> ``PlanRecoveryOperator`` -> ``RecoveryDecisionOperator`` (branch) ->
(``RecoveryApprovalOperator``) -> ``ExecuteRecoveryOperator`` -> (``RecoveredRunSensor``) ->
``EscalateOperator`` -> ``RecoveryReportOperator``.
Importing this package is cheap: each operator imports the core when it runs.
"""

from __future__ import annotations

from qubinode_recovery_provider.operators.approval import RecoveryApprovalOperator
from qubinode_recovery_provider.operators.decide import RecoveryDecisionOperator
from qubinode_recovery_provider.operators.diagnose import DiagnoseFailureOperator
from qubinode_recovery_provider.operators.escalate import DeliverEscalationsOperator, EscalateOperator
from qubinode_recovery_provider.operators.execute import ExecuteRecoveryOperator
from qubinode_recovery_provider.operators.plan import PlanRecoveryOperator
from qubinode_recovery_provider.operators.report import RecoveryReportOperator

__all__ = [
    "DeliverEscalationsOperator",
    "DiagnoseFailureOperator",
    "EscalateOperator",
    "ExecuteRecoveryOperator",
    "PlanRecoveryOperator",
    "RecoveryApprovalOperator",
    "RecoveryDecisionOperator",
    "RecoveryReportOperator",
]
