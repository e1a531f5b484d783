"""What the in-memory task log capture costs on the logging hot path, and reading its tail.

    python bench/bench_task_log_capture.py           # writes bench/results/task_log_capture.json
    python bench/bench_task_log_capture.py --quick   # fewer records

Logging is set up exactly as in a task process under the supervisor (``airflow.sdk.log.configure_logging(
json_output=True, sending_to_supervisor=True)``, the JSON records written to ``/dev/null``), and a
BashOperator-like logger logs ``log.info("%s", line)`` for each output line:

- ``baseline``: no capture installed;
- ``installed_idle``: installed, no task executing (a scheduler or DAG processor that built a policy);
- ``installed_in_task``: installed, inside Airflow's current task context (every record kept);
- ``read_tail``: reading a full 500-line tail, control characters stripped and redacted.

The three are interleaved in each of ``--repeats`` runs of ``--records`` calls (medians reported), and
the processor is also timed alone (``processor_alone``), which is the overhead without the noise of
JSON rendering on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

LINE = "TASK [kcli_vm : Render the VM profile] ok: [hypervisor-3] => (item=vm-17) changed=1 rc=0"


def _setup_logging() -> Any:
    import structlog
    from airflow.sdk.log import configure_logging

    sink = open(os.devnull, "wb")  # noqa: SIM115 - lives as long as the process
    configure_logging(json_output=True, output=sink, sending_to_supervisor=True)
    return structlog.get_logger("airflow.task.hooks.airflow.providers.standard.hooks.subprocess.Subprocess")


def _time_ns(call: Any, records: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(records):
        call()
    return (time.perf_counter_ns() - start) / records


def _summary(runs: list[float]) -> dict[str, float]:
    return {"median_ns": statistics.median(runs), "min_ns": min(runs), "max_ns": max(runs)}


def _end_to_end(log: Any, records: int, repeats: int) -> dict[str, dict[str, float]]:
    """The three set-ups interleaved in each repeat, so machine load hits them alike."""
    import structlog
    from airflow.sdk.execution_time.context import set_current_context

    from qubinode_recovery_provider.utils import task_log_capture as tlc

    ti = SimpleNamespace(dag_id="bench", run_id="run", task_id="bash", map_index=-1, try_number=1)
    runs: dict[str, list[float]] = {"baseline": [], "installed_idle": [], "installed_in_task": []}

    def emit() -> None:
        log.info("%s", LINE)

    for _ in range(repeats):
        processors = structlog.get_config()["processors"]
        if tlc.capture() in processors:
            processors.remove(tlc.capture())
        runs["baseline"].append(_time_ns(emit, records))
        assert tlc.ensure_installed()
        runs["installed_idle"].append(_time_ns(emit, records))
        with set_current_context({"ti": ti}):  # type: ignore[typeddict-item]
            runs["installed_in_task"].append(_time_ns(emit, records))
    return {name: _summary(values) for name, values in runs.items()}


def _processor_alone(records: int, repeats: int) -> dict[str, dict[str, float]]:
    """The processor called directly: idle (no task) and keeping a record."""
    from qubinode_recovery_provider.utils import task_log_capture as tlc

    key = tlc.attempt_key("bench", "run", "direct", -1, 1)
    idle, busy = tlc.TaskLogCapture(lambda: None), tlc.TaskLogCapture(lambda: key)
    event = {"event": LINE, "logger": "airflow.task.hooks.SubprocessHook", "level": "info"}
    runs: dict[str, list[float]] = {"idle": [], "in_task": []}
    for _ in range(repeats):
        runs["idle"].append(_time_ns(lambda: idle(None, "info", event), records))
        runs["in_task"].append(_time_ns(lambda: busy(None, "info", event), records))
    return {name: _summary(values) for name, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    records, repeats = (10_000, 3) if args.quick else (args.records, args.repeats)

    from qubinode_recovery_provider.utils import task_log_capture as tlc

    log = _setup_logging()
    log.info("warm up")
    results: dict[str, Any] = {"end_to_end": _end_to_end(log, records, repeats)}
    results["processor_alone"] = _processor_alone(records * 4, repeats)
    key = tlc.attempt_key("bench", "run", "bash", -1, 1)
    stats = tlc.capture().stats(key)
    assert stats["lines"] == tlc.MAX_LINES, stats

    reads = []
    lines: list[str] = []
    for _ in range(max(repeats, 5)):
        start = time.perf_counter()
        lines = tlc.read_tail("bench", "run", "bash", -1, 1, tlc.MAX_LINES)
        reads.append((time.perf_counter() - start) * 1000)
    results["read_tail_500_lines_ms"] = {"median": statistics.median(reads), "max": max(reads)}
    results["kept"] = {**stats, "lines_read": len(lines)}
    results["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "records": records,
        "repeats": repeats,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "task_log_capture.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
