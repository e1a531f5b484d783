from __future__ import annotations

from pathlib import Path

import pytest

from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary
from qubinode_recovery_provider.diagnosis.analyzer import Calibration

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def small_library() -> PatternLibrary:
    return PatternLibrary.load([FIXTURES], shipped=False)


@pytest.fixture(scope="session")
def small_analyzer(small_library: PatternLibrary) -> FailureAnalyzer:
    return FailureAnalyzer(small_library, Calibration())


@pytest.fixture(scope="session")
def analyzer() -> FailureAnalyzer:
    """The analyzer with the shipped library, as users get it."""
    return FailureAnalyzer(PatternLibrary.load())
