"""No secret leaves the process on the failure path: canaries of every shape (``tests/data/
canary_secrets.yaml``) planted in the exception text, the attempt's log, the API connection and the failed
run's params go through the retry policy and the failure notifier, and then every channel is read back:
the ledger's database file, the spool, the trigger outbox, the reports folder, the recovery run's request
to the Airflow API, the policy's reason and XCom, and our own log lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from notify_helpers import FakeTI, task_context
from support.api_stub import ApiStub, start_stub, stop_stub
from support.canaries import all_canaries, assert_no_canary, combined_text

from qubinode_recovery_provider.notifications import RecoveryNotifier
from qubinode_recovery_provider.policies import DiagnosisRetryPolicy

CONNECTION_CANARY = "CANARY-conn-extra-token-6f1d2c9a8b7e"
PARAMS_CANARY = "hvs.CANARYparamsTOKEN0123456789abcdef"


class XcomTI(FakeTI):
    def __init__(self) -> None:
        super().__init__()
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def _attempt_log(tmp_path: Path, ti: FakeTI, text: str) -> None:
    folder = tmp_path / "logs" / f"dag_id={ti.dag_id}" / f"run_id={ti.run_id}" / f"task_id={ti.task_id}"
    folder.mkdir(parents=True, exist_ok=True)
    records = [{"level": "error", "event": line, "logger": "task.stdout"} for line in text.splitlines()]
    (folder / f"attempt={ti.try_number}.log").write_text("\n".join(json.dumps(r) for r in records) + "\n")


def _channels(tmp_path: Path) -> dict[str, bytes]:
    """Every file the provider wrote: ledger (with its WAL), spool, outbox, reports."""
    found = {str(p): p.read_bytes() for p in tmp_path.glob("ledger.db*")}
    found.update({str(p): p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file()})
    return found


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiStub]:
    server = start_stub()
    env = server.connection_env(token_canary=CONNECTION_CANARY)
    conn = json.loads(env["AIRFLOW_CONN_AIRFLOW_API"])
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", json.dumps(conn))
    yield server
    stop_stub(server)


def test_no_canary_reaches_any_channel(
    tmp_path: Path, stub: ApiStub, caplog: pytest.LogCaptureFixture
) -> None:
    canaries = (*all_canaries(), CONNECTION_CANARY, PARAMS_CANARY)
    planted = combined_text()
    ti = XcomTI()
    _attempt_log(tmp_path, ti, planted)
    context = task_context(RuntimeError(planted))
    context["ti"] = context["task_instance"] = ti
    context["params"] = {"vault_token": PARAMS_CANARY, "note": planted}

    decision = DiagnosisRetryPolicy(budget_seconds=30).evaluate(RuntimeError(planted), 1, 3, context)
    notifier = RecoveryNotifier(budget_seconds=10)
    notifier(context)
    outcome = notifier.last_outcome
    assert outcome is not None
    assert outcome.record_status == "written", outcome.summary()
    assert outcome.triggered, outcome.summary()

    assert_no_canary(decision.reason, canaries)
    assert_no_canary(json.dumps(ti.pushed), canaries)
    for name, data in _channels(tmp_path).items():
        assert data, name
        assert_no_canary(data, canaries)
    bodies = [json.dumps(r.body) for r in stub.requests if not r.path.endswith("/auth/token")]
    assert bodies
    for body in bodies:
        assert_no_canary(body, canaries)
    assert_no_canary(caplog.text, canaries)
    assert_no_canary(outcome.summary(), canaries)
