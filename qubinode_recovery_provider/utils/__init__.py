"""Small Airflow-adapter helpers (may import Airflow lazily; the plain-Python core never imports them)."""

from __future__ import annotations
