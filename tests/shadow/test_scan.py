"""The shadow scan pauses the cyclic garbage collector while it builds its many small objects, and
hands them to the oldest generation when it resumes, so no young collection walks them all at once."""

from __future__ import annotations

import gc
import signal
from typing import Any

import pytest

from qubinode_recovery_provider.shadow import lineage_file as lf
from qubinode_recovery_provider.shadow.lineage import LineageIndex
from qubinode_recovery_provider.shadow.scan import no_cyclic_gc


@pytest.fixture(autouse=True)
def _collector_on() -> Any:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:  # pragma: no cover
        gc.disable()


def test_objects_built_during_the_pause_go_to_the_oldest_generation() -> None:
    with no_cyclic_gc():
        assert not gc.isenabled()
        built = [{"n": [n]} for n in range(50_000)]  # 100,000 tracked containers
        assert gc.get_count()[0] > 50_000  # (counted, not collected, while paused)
    assert gc.isenabled()
    assert gc.get_count()[0] < 1_000  # nothing left for a young collection to walk
    assert gc.get_freeze_count() == 0  # unfrozen again: the collector may still visit them
    assert len(built) == 50_000


def test_a_nested_pause_leaves_the_collector_to_the_outer_one() -> None:
    with no_cyclic_gc():
        with no_cyclic_gc():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_lineage_worker_reads_with_the_collector_off(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []

    def read(path: str, begin: int, end: int, wanted: Any) -> lf._Chunk:
        seen.append(gc.isenabled())
        return lf._Chunk(LineageIndex(None))

    class Pipe:
        def __init__(self) -> None:
            self.sent: list[bytes] = []

        def send_bytes(self, data: bytes) -> None:
            self.sent.append(data)

        def close(self) -> None:
            pass

    monkeypatch.setattr(lf, "_read_range", read)
    pipe = Pipe()
    handler = signal.getsignal(signal.SIGINT)
    try:
        lf._child(pipe, [], "events.jsonl", 0, 0)  # (in a forked worker, the process ends here)
    finally:
        signal.signal(signal.SIGINT, handler)  # (the worker ignores Ctrl-C; this process must not)
        gc.enable()
    assert seen == [False]
    assert lf._Chunk.from_bytes(pipe.sent[0]).lines == 0


def test_the_pause_leaves_objects_the_caller_froze_frozen() -> None:
    """A process forked after ``gc.freeze`` (Airflow's executors freeze before they fork) keeps its
    permanent generation: unfreezing it would touch every page shared with the parent."""
    kept = [{"n": [n]} for n in range(1_000)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen >= 2_000
        with no_cyclic_gc():
            built = [{"n": [n]} for n in range(1_000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() == frozen  # neither thawed nor joined by the scan's objects
    finally:
        gc.unfreeze()
    assert len(kept) == len(built)


def test_the_collector_state_is_restored_after_an_exception_and_when_it_was_off() -> None:
    with pytest.raises(KeyboardInterrupt), no_cyclic_gc():
        raise KeyboardInterrupt
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    gc.disable()
    try:
        with pytest.raises(RuntimeError), no_cyclic_gc():
            raise RuntimeError("boom")
        assert not gc.isenabled()  # the caller's choice stands
    finally:
        gc.enable()
