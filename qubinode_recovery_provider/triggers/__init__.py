"""Triggers (run in the triggerer) of the provider's deferrable sensors."""

from __future__ import annotations

from qubinode_recovery_provider.triggers.recovery import RecoveredRunTrigger

__all__ = ["RecoveredRunTrigger"]
