"""The reference guide's CLI examples and its CI workflow run with this test's configuration alone."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated(isolated_config: None) -> None:
    """No ``airflow.cfg``, option or connection of the machine running the tests (see the root conftest)."""
