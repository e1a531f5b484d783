"""``python -m qubinode_recovery_provider`` runs the CLI."""

from __future__ import annotations

import sys

from qubinode_recovery_provider.cli import main

sys.exit(main())
