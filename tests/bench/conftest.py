"""The benchmarks under ``bench/`` and the build scripts under ``scripts/`` import as packages of the
repository root: put it on the import path once for every test here."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
