"""``python -m qubinode_recovery_provider`` runs the CLI."""

from __future__ import annotations

from qubinode_recovery_provider.cli import console_main

console_main()
