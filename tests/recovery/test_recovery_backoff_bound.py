"""The retry backoff never computes ``2 ** (try_number - 1)`` unbounded: an absurd try number plans at
once with the capped delay (before the clamp, try 10**20 grew the process to gigabytes).

The plan runs in a child process with an address-space limit and a hard time bound, so a regression
fails this test instead of taking the machine down."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from support import processes

from qubinode_recovery_provider.models import RecoveryActionType, RootCause
from qubinode_recovery_provider.recovery import RecoveryPlanner, TaskConfig
from qubinode_recovery_provider.recovery.options.retry import MAX_RETRY_DELAY_SECONDS

HERE = Path(__file__).parent
BOUND_SECONDS = 60  # generous: the plan takes well under a second; unbounded it never finishes

CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))
sys.path.insert(0, sys.argv[1])
from recovery_workers import make_diagnosis
from qubinode_recovery_provider.models import RootCause
from qubinode_recovery_provider.recovery import RecoveryPlanner, TaskConfig

task = TaskConfig(dag_id="build_vm", task_id="create_vm", run_id="manual__1", try_number=10**20)
plan = RecoveryPlanner(events=None).plan_recovery(make_diagnosis(RootCause.NETWORK), task)
retry = next(o for o in plan.options if o.type.value == "retry")
print(json.dumps({"delay": retry.action_args["delay_seconds"], "confidence": retry.confidence}))
"""


def test_try_number_10_pow_20_plans_at_once_with_the_capped_delay() -> None:
    proc = processes.run([sys.executable, "-c", CHILD, str(HERE)], timeout=BOUND_SECONDS)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["delay"] == MAX_RETRY_DELAY_SECONDS
    assert result["confidence"] == 0.0  # trusted less with every try, down to nothing


def test_the_clamp_changes_nothing_for_real_try_numbers(diagnosis) -> None:  # type: ignore[no-untyped-def]
    def retry_of(try_number: int) -> tuple[int, float]:
        task = TaskConfig(dag_id="build_vm", task_id="create_vm", run_id="manual__1", try_number=try_number)
        plan = RecoveryPlanner(events=None).plan_recovery(diagnosis(RootCause.NETWORK), task)
        retry = next(o for o in plan.options if o.type is RecoveryActionType.RETRY)
        return retry.action_args["delay_seconds"], retry.confidence

    assert [retry_of(n)[0] for n in (1, 2, 3, 4, 5, 6)] == [60, 120, 240, 480, 960, 1800]
    assert retry_of(65) == retry_of(10_000) == retry_of(10**20)
