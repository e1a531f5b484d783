"""What the recovery steps read from the approval: a person's answer, and the default applied when nobody
answers (the event Airflow's scheduler builds at the timeout)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from qubinode_recovery_provider.operators import common as c
from qubinode_recovery_provider.operators.approval import RecoveryApprovalOperator

AT = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


def test_a_person_s_reject_names_them() -> None:
    event = {
        "chosen_options": ["Reject"],
        "params_input": {},
        "responded_at": AT,
        "responded_by_user": {"id": "7", "name": "alice"},
        "timedout": False,
    }
    answer = c.answer_of(event)
    assert answer == {
        "choice": "Reject",
        "chosen_options": ["Reject"],
        "responded_by": "alice",
        "responded_at": AT.isoformat(),
        "timed_out": False,
    }
    assert c.approval_choice(answer) == "Reject"


def test_the_timeout_default_has_nobody_and_says_timed_out() -> None:
    event = {
        "chosen_options": ["Reject"],
        "params_input": {},
        "responded_at": AT,
        "responded_by_user": None,
        "timedout": True,
    }
    answer = c.answer_of(event)
    assert (answer["choice"], answer["responded_by"], answer["timed_out"]) == ("Reject", None, True)


class _TI:
    def __init__(self, xcoms: dict[tuple[str, str], Any]) -> None:
        self.xcoms = xcoms

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcoms.get((task_ids, key))


def test_the_answer_is_read_from_the_approval_xcom_else_from_a_plain_approval_operator() -> None:
    stored = c.answer_of({"chosen_options": ["Reject"], "responded_by_user": {"name": "bob"}})
    assert c.approval({"ti": _TI({("approve", c.APPROVAL_KEY): stored})}, "approve") == stored
    plain = {"chosen_options": ["Approve"], "responded_by_user": {"name": "eve"}, "responded_at": None}
    from_return = c.approval({"ti": _TI({("approve", "return_value"): plain})}, "approve")
    assert from_return is not None
    assert (from_return["choice"], from_return["responded_by"]) == ("Approve", "eve")
    assert c.approval({"ti": _TI({})}, "approve") is None


def test_the_operator_is_airflows_approval_operator() -> None:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    op = RecoveryApprovalOperator(task_id="approve", subject="s", defaults="Reject")
    assert isinstance(op, ApprovalOperator)
    assert op.options == ["Approve", "Reject"]


def test_notes_are_redacted_before_they_leave_the_process() -> None:
    from qubinode_recovery_provider.operators.report import run_note, task_note

    secret = "hunter2-CANARY-9f8e7d"
    facts = {
        "diagnose": {
            "failure": {"dag_id": "build_vm", "task_id": "fetch", "run_id": "r1"},
            "diagnosis": {"root_cause": "credential", "confidence": 0.9, "summary": f"password={secret}"},
        },
        "decision": {"route": "escalate", "reasons": [f"login failed: password={secret} \x1b[31m"]},
    }
    note = run_note("escalated", f"escalated: token: {secret}", facts, "/tmp/r.md")
    assert secret not in note
    assert "\x1b" not in note
    assert note.startswith("**Escalated to a person** - escalated: token: ***")
    assert secret not in task_note("escalated", facts, "rec1")
