"""Airflow assets of the provider: ``libvirt://<host>/<domain>``, the VM a task must leave behind."""

from __future__ import annotations

from qubinode_recovery_provider.assets.libvirt import libvirt_domain

__all__ = ["libvirt_domain"]
