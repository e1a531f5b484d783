from __future__ import annotations

import os
import socket
from collections.abc import Iterator
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


# ----------------------------------------- the probes' fixtures (tests/diagnosis/probes and the collector)


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory put first on PATH for fake tools (the rest of PATH stays for `cat`, `sleep`)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ.get('PATH', '')}")
    return directory


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH on which no tool at all can be found."""
    directory = tmp_path / "nothing"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))


@pytest.fixture
def recorded_output(tmp_path: Path) -> Path:
    return tmp_path / "output"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server
    server.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port that nothing listens on (bound then released)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port
