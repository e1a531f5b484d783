"""The cheap paths stay cheap: what a fresh process imports to answer.

Each case runs in a child process of its own (``sys.modules`` of this test process is full) with a
cache folder of its own, and reports the modules it imported. Speed itself is measured by
``bench/bench_startup.py`` (docs/benchmarks.md), not asserted here.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from support import processes

from qubinode_recovery_provider.cli import SUBCOMMAND_MODULES

#: Never needed to diagnose one failure text from the command line, once the host's caches are warm.
HEAVY = (
    "airflow",
    "pydantic",
    "pydantic_core",
    "pydantic_ai",
    "github",
    "yaml",
    "sqlalchemy",
    "alembic",
    "jinja2",
    "requests",
    "httpx",
    "jsonschema",
    "psutil",
    "qubinode_recovery_provider.diagnosis.llm",
    "qubinode_recovery_provider.recovery",
    "qubinode_recovery_provider.store",
    "qubinode_recovery_provider.escalation",
    "qubinode_recovery_provider.shadow",
)
#: Standard-library modules a one-line diagnosis does without: ``shutil`` (with bz2, lzma) is what
#: argparse imports for the terminal width, ``tempfile`` (with random) is only for writing a cache file,
#: ``configparser`` only for an ``airflow.cfg`` that exists (the test's Airflow home has none).
STDLIB_NOT_NEEDED = ("shutil", "lzma", "bz2", "tempfile", "random", "configparser")
#: Other subcommands' modules: a run imports only its own.
OTHER_COMMANDS = tuple(
    f"qubinode_recovery_provider.cli.{name}" for name in SUBCOMMAND_MODULES if name != "diagnose"
)

CLI_CHILD = """
import json, sys
from qubinode_recovery_provider.cli import main
code = main(json.loads(sys.argv[2]))
with open(sys.argv[1], "w") as handle:
    json.dump({"code": code, "modules": sorted(sys.modules)}, handle)
"""

NOTIFIER_CHILD = """
import json, sys
import airflow.sdk
import airflow.sdk.bases.notifier
before = set(sys.modules)
from qubinode_recovery_provider.notifications import RecoveryNotifier
fields = {"dag_id": "d", "task_id": "t", "run_id": "manual__1", "try_number": 1, "map_index": -1}
ti = type("TI", (), fields)()
context = {"ti": ti, "task_instance": ti, "run_id": "manual__1", "exception": Exception(sys.argv[2])}
notifier = RecoveryNotifier(budget_seconds=30)
notifier(context)
outcome = notifier.last_outcome
with open(sys.argv[1], "w") as handle:
    json.dump({"recorded": outcome.record_status, "modules": sorted(set(sys.modules) - before)}, handle)
"""

POLICY_CHILD = """
import json, sys
import airflow.sdk
import airflow.sdk.definitions.retry_policy
before = set(sys.modules)
from qubinode_recovery_provider.policies import DiagnosisRetryPolicy
decision = DiagnosisRetryPolicy(push_xcom=False).evaluate(Exception(sys.argv[2]), 1, 3, {})
with open(sys.argv[1], "w") as handle:
    json.dump({"action": str(decision.action), "modules": sorted(set(sys.modules) - before)}, handle)
"""


def _loaded(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


def run_child(
    code: str, args: list[str], tmp_path: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> dict[str, object]:
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}.json"
    env = {
        **os.environ,
        "QUBINODE_RECOVERY_CACHE_DIR": str(tmp_path / "cache"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(tmp_path / "logs"),
        **(env or {}),
    }
    result = processes.run(
        [sys.executable, "-c", code, str(out), *args], timeout=180, env=env, input=stdin, check=True
    )
    assert out.exists(), result.stderr
    report: dict[str, object] = json.loads(out.read_text())
    return report


@pytest.mark.parametrize(
    ("argv", "stdin"),
    [
        pytest.param(["diagnose", "--error", "No space left on device"], None, id="error"),
        pytest.param(["diagnose", "--json", "--error", "No space left on device"], None, id="json"),
        pytest.param(["diagnose", "--log-file", "-"], "No space left on device\n", id="stdin"),
    ],
)
def test_one_line_diagnose_imports_nothing_heavy_once_the_cache_is_warm(
    argv: list[str], stdin: str | None, tmp_path: Path
) -> None:
    cold = run_child(CLI_CHILD, [json.dumps(argv)], tmp_path, stdin)
    assert cold["code"] == 0
    assert "yaml" in cold["modules"]  # type: ignore[operator]  # an empty cache reads the packs' YAML
    warm = run_child(CLI_CHILD, [json.dumps(argv)], tmp_path, stdin)
    assert warm["code"] == 0
    modules: list[str] = warm["modules"]  # type: ignore[assignment]
    assert _loaded(modules, HEAVY) == []
    assert _loaded(modules, STDLIB_NOT_NEEDED) == []
    assert _loaded(modules, OTHER_COMMANDS) == []
    assert "qubinode_recovery_provider.cli.diagnose" in modules


def test_batch_diagnose_imports_nothing_heavy(tmp_path: Path) -> None:
    batch = tmp_path / "batch.jsonl"
    batch.write_text(json.dumps({"id": "a", "text": "No space left on device"}) + "\n")
    argv = json.dumps(["diagnose", "--batch", str(batch)])
    run_child(CLI_CHILD, [argv], tmp_path)
    warm = run_child(CLI_CHILD, [argv], tmp_path)
    assert _loaded(warm["modules"], HEAVY) == []  # type: ignore[arg-type]


def test_the_first_retry_decision_imports_only_what_diagnosis_needs(tmp_path: Path) -> None:
    """No pydantic model either: the policy decides on the analyzer's plain results (Airflow's Task SDK
    has imported pydantic itself, but building our models' classes is ours to spare)."""
    run_child(CLI_CHILD, [json.dumps(["diagnose", "--error", "x"])], tmp_path)  # the host's caches
    report = run_child(POLICY_CHILD, ["No space left on device"], tmp_path)
    assert report["action"].endswith("FAIL") or report["action"] == "fail"  # type: ignore[union-attr]
    new: list[str] = report["modules"]  # type: ignore[assignment]
    forbidden = (
        "yaml",
        "sqlalchemy",
        "alembic",
        "pydantic_ai",
        "github",
        "requests",
        "psutil",
        "qubinode_recovery_provider.diagnosis.llm",
        "qubinode_recovery_provider.recovery",
        "qubinode_recovery_provider.store",
        "qubinode_recovery_provider.notifications",
        "qubinode_recovery_provider.escalation",
        "qubinode_recovery_provider.models",
    )
    assert _loaded(new, forbidden) == []
    assert "qubinode_recovery_provider.diagnosis.analyzer" in new


def test_the_first_failure_in_a_task_loads_no_planner_executor_or_llm(tmp_path: Path) -> None:
    """The notifier asks the recovery package's intake whether to start a run; the planner, the executor
    and the actions (the recovery DAG's) and the LLM module (none is configured) stay unloaded."""
    run_child(CLI_CHILD, [json.dumps(["diagnose", "--error", "x"])], tmp_path)  # the host's caches
    extra = {
        "AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "AIRFLOW__QUBINODE_RECOVERY__STATE_DIR": str(tmp_path / "state"),
        "AIRFLOW__QUBINODE_RECOVERY__PROBE_TIMEOUT_SECONDS": "1",
    }
    report = run_child(NOTIFIER_CHILD, ["No space left on device"], tmp_path, env=extra)
    assert report["recorded"] == "written"
    new: list[str] = report["modules"]  # type: ignore[assignment]
    assert "qubinode_recovery_provider.recovery.intake" in new
    forbidden = (
        "qubinode_recovery_provider.recovery.planner",
        "qubinode_recovery_provider.recovery.executor",
        "qubinode_recovery_provider.recovery.actions",
        "qubinode_recovery_provider.diagnosis.llm",
        "pydantic_ai",
    )
    assert _loaded(new, forbidden) == []


PROBES_CHILD = """
import json, sys
import qubinode_recovery_provider.diagnosis.context
with open(sys.argv[1], "w") as handle:
    json.dump({"modules": sorted(sys.modules)}, handle)
"""


def test_the_context_probes_start_without_the_models(tmp_path: Path) -> None:
    """The notifier's probes start first, in their own thread: importing the collector loads no
    pydantic model, so the CPU sample is not held up building the models' classes (they are built
    once the probes have measured)."""
    report = run_child(PROBES_CHILD, [], tmp_path)
    assert _loaded(report["modules"], ("qubinode_recovery_provider.models",)) == []  # type: ignore[arg-type]
