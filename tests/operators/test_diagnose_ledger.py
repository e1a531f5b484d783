"""The recovery DAG's first task finds the one diagnosis of a failure: the notifier's, read back from the
ledger (also when it still waits in the spool), or else the message's own under its own fingerprint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qubinode_recovery_provider import api, config
from qubinode_recovery_provider.models import FailureEvent
from qubinode_recovery_provider.operators.diagnose import DiagnoseFailureOperator
from qubinode_recovery_provider.store import Ledger
from qubinode_recovery_provider.store.ledger import SPOOLED
from qubinode_recovery_provider.utils.task_failure import shared_analyzer

RUN = "manual__2026-12-03T08:00:00+00:00"
NOTIFIER_LOG = [
    "Warning: Permanently added '10.0.0.5' (ED25519) to the list of known hosts.",
    "admin@10.0.0.5: Permission denied (publickey).",
]


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    """A real SQLite ledger, configured as the API's, with a spool under ``tmp_path``."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    config.clear_cache()
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool", auto_flush_interval=0) as led:
        led.migrate()
        api.configure(ledger=led)
        yield led
    api.reset()
    config.clear_cache()


def _notifier_event() -> FailureEvent:
    return FailureEvent(
        dag_id="build_vm", task_id="ssh_step", run_id=RUN, try_number=1, log_tail=NOTIFIER_LOG
    )


def _diagnose(fingerprint: str | None, message: str) -> tuple[Any, ...]:
    operator = DiagnoseFailureOperator(
        task_id="diagnose",
        failed_dag_id="build_vm",
        failed_task_id="ssh_step",
        failed_run_id=RUN,
        failure_message=message,
        fingerprint=fingerprint,
    )
    return operator._diagnose(operator.checked_input())


def test_the_notifiers_diagnosis_waiting_in_the_spool_is_the_one_used(ledger: Ledger, tmp_path: Path) -> None:
    event = _notifier_event()
    notified = shared_analyzer().analyze(event)
    not_a_dir = tmp_path / "not-a-directory"
    not_a_dir.write_text("the ledger cannot be created below a file")
    down = Ledger(f"sqlite:///{not_a_dir / 'ledger.db'}", tmp_path / "spool")
    assert down.record_occurrence(event, notified).status == SPOOLED

    diagnosis, incident, source, _host = _diagnose(
        notified.fingerprint, "Bash command failed. exit code 255."
    )

    assert source == "ledger (recorded by the notifier)"
    assert diagnosis == notified
    assert incident is not None
    assert (incident["fingerprint"], incident["occurrences"]) == (notified.fingerprint, 1)


def test_without_the_notifiers_record_the_message_is_diagnosed_under_its_own_fingerprint(
    ledger: Ledger,
) -> None:
    notified = shared_analyzer().analyze(_notifier_event())

    diagnosis, incident, source, _host = _diagnose(
        notified.fingerprint, "curl: (6) Could not resolve host: x"
    )

    assert source == "failure_message (recorded now)"
    assert diagnosis.fingerprint != notified.fingerprint
    assert ledger.get_incident(notified.fingerprint) is None
    assert incident is not None
    assert incident["fingerprint"] == diagnosis.fingerprint
    recorded = ledger.recorded_diagnosis(diagnosis.fingerprint, run_id=RUN)
    assert recorded is not None
    assert recorded.diagnosis.fingerprint == diagnosis.fingerprint
