"""The time the failure notifier adds to a failing task, and the cost of the retry policy's decision.

    python bench/bench_notifier.py            # writes bench/results/notifier.json
    python bench/bench_notifier.py --quick    # fewer repeats

What is timed, without an LLM, on this machine:

- ``notifier_warm``: ``RecoveryNotifier()(context)`` as a task's ``on_failure_callback`` calls it, in a
  process where the pattern library is loaded already (in a worker the retry policy has loaded it a
  moment earlier). Each failure has a 500-line JSON-lines attempt log with the error at its end, a
  SQLite ledger, default context probes (systemd units, psutil), and a local HTTP server standing in
  for the Airflow API (new incidents start a recovery run; repeats do not). Ten kinds of failure cycle,
  so most calls are repeats of known incidents, as in production.
- ``notifier_cold`` / ``policy_then_notifier_cold``: the first failure in a fresh process (every
  Airflow task attempt is one): the notifier alone, and the retry policy followed by the notifier.
  Importing Airflow itself is not counted (the worker has done it before the task ran).
- ``policy_warm``: ``DiagnosisRetryPolicy().evaluate(...)``, reading the attempt's log tail.
- ``steps_warm``: the notifier's steps one by one (context probes as the notifier runs them).
- ``large_log``: reading the tail of a 64 MB attempt log (bounded: the reader stops after the last
  ``log_tail_lines`` lines and at most 16 MB).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

ERRORS = [
    "root@10.0.0.{n}: Permission denied (publickey).",
    "dial tcp: lookup quay.io on 10.0.0.1:53: Temporary failure in name resolution",
    "qemu-img: /var/lib/libvirt/images/vm{n}.qcow2: Could not create: No space left on device",
    "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Connection refused",
    "Error making API request. Code: 403. Errors: * permission denied",
    "fatal: [web{n}]: UNREACHABLE! => ssh: connect to host 10.0.0.{n} port 22: Connection reset by peer",
    "error: operation failed: domain 'vm{n}' already exists with uuid 1234",
    "Out of memory: Killed process 4{n}21 (qemu-kvm)",
    "ERROR! the role 'kcli_vm' was not found in /opt/roles",
    "Timeout (12s) waiting for privilege escalation prompt: ",
]
NOISE = [
    "TASK [kcli_vm : Render the VM profile] *********************************************",
    "ok: [hypervisor-{n}] => (item=vm-{n})",
    "changed: [hypervisor-{n}]",
    "Deploying vm vm-{n} from profile rhel9 on pool default",
    "Copying blob sha256:{n:064x} done",
    "DEBUG: libvirt: connecting to qemu:///system (attempt {n})",
]


# --- environment -----------------------------------------------------------------------------------


def isolate(base: Path) -> None:
    """Point Airflow and the provider at ``base`` before anything reads the configuration."""
    home = base / "airflow_home"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(base / "logs"),
            "AIRFLOW__QUBINODE_RECOVERY__STATE_DIR": str(base / "state"),
            "AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL": f"sqlite:///{base / 'ledger.db'}",
        }
    )


class _ApiHandler(BaseHTTPRequestHandler):
    """Answers ``POST /auth/token`` and ``POST /api/v2/dags/{dag_id}/dagRuns`` like the API server."""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/auth/token":
            status, answer = 201, {"access_token": "bench-token"}
        else:
            status, answer = (
                200,
                {"dag_run_id": json.loads(body or b"{}").get("dag_run_id"), "state": "queued"},
            )
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start_api() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ApiHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": server.server_address[1],
        "login": "b",
        "password": "b",
    }
    os.environ["AIRFLOW_CONN_AIRFLOW_API"] = json.dumps(conn)
    return server


# --- a failing task ----------------------------------------------------------------------------------


class TI:
    """The parts of a task instance the notifier and the policy read."""

    def __init__(self, run_id: str, try_number: int = 1) -> None:
        self.dag_id, self.task_id, self.run_id = "build_vm", "create_vm", run_id
        self.try_number, self.map_index, self.state = try_number, -1, "failed"

    def xcom_push(self, key: str, value: Any) -> None:
        return


def write_attempt_log(base: Path, ti: TI, error: str, lines: int = 500) -> Path:
    path = (
        base
        / f"dag_id={ti.dag_id}"
        / f"run_id={ti.run_id}"
        / f"task_id={ti.task_id}"
        / f"attempt={ti.try_number}.log"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [
        {
            "timestamp": "2026-11-02T10:00:00Z",
            "level": "info",
            "event": NOISE[i % len(NOISE)].format(n=i),
            "logger": "task.stdout",
        }
        for i in range(lines - 2)
    ]
    records.append(
        {"timestamp": "2026-11-02T10:00:01Z", "level": "info", "event": error, "logger": "task.stdout"}
    )
    records.append(
        {
            "timestamp": "2026-11-02T10:00:01Z",
            "level": "error",
            "event": "Task failed with exception",
            "logger": "task",
            "error_detail": [
                {
                    "exc_type": "AirflowException",
                    "exc_value": "Bash command failed. The command returned a non-zero exit code 1.",
                    "frames": [],
                }
            ],
        }
    )
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def failure(base: Path, index: int) -> tuple[dict[str, Any], BaseException]:
    """The context and exception of failure number ``index`` (its log written)."""
    ti = TI(f"scheduled__2026-11-02T10:{index // 60 % 60:02d}:{index % 60:02d}+00:00")
    write_attempt_log(base / "logs", ti, ERRORS[index % len(ERRORS)].format(n=index % 7 + 2))
    exc = Exception("Bash command failed. The command returned a non-zero exit code 1.")
    return {"ti": ti, "task_instance": ti, "run_id": ti.run_id, "exception": exc}, exc


# --- measurements --------------------------------------------------------------------------------------


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(samples),
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(p95 * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def notifier_warm(base: Path, repeats: int) -> dict[str, Any]:
    from qubinode_recovery_provider.notifications import RecoveryNotifier
    from qubinode_recovery_provider.task_failure import shared_analyzer

    shared_analyzer()
    notifier = RecoveryNotifier()
    samples, triggered = [], 0
    for index in range(repeats):
        context, _ = failure(base, index)
        samples.append(timed(lambda context=context: notifier(context)))
        outcome = notifier.last_outcome
        assert outcome is not None
        assert not outcome.errors, outcome
        triggered += int(outcome.triggered)
    return {**stats(samples), "recovery_runs_started": triggered}


def policy_warm(base: Path, repeats: int) -> dict[str, Any]:
    from qubinode_recovery_provider.policies import DiagnosisRetryPolicy

    policy = DiagnosisRetryPolicy()
    contexts = [failure(base, 10_000 + i) for i in range(len(ERRORS))]
    policy.evaluate(contexts[0][1], 1, 3, contexts[0][0])
    samples = []
    for index in range(repeats):
        context, exc = contexts[index % len(contexts)]
        samples.append(timed(lambda context=context, exc=exc: policy.evaluate(exc, 1, 3, context)))
    return stats(samples)


def steps_warm(base: Path, repeats: int) -> dict[str, Any]:
    from qubinode_recovery_provider import task_failure as tf
    from qubinode_recovery_provider.diagnosis.context import ContextCollector
    from qubinode_recovery_provider.notifications.report import CPU_SAMPLE_SECONDS, ledger_for

    analyzer = tf.shared_analyzer()
    ledger = ledger_for(None, 2.0)
    times: dict[str, list[float]] = {
        "read_log_and_redact": [],
        "collect_context": [],
        "analyze": [],
        "record_failure": [],
    }
    collector = ContextCollector(cpu_interval=CPU_SAMPLE_SECONDS)
    for index in range(repeats):
        context, exc = failure(base, 20_000 + index)
        key = tf.task_key(context)
        t0 = time.perf_counter()
        tail = tf.read_attempt_log(key, 500)
        event = tf.failure_event(key, exc, tail)
        t1 = time.perf_counter()
        host = collector.collect(tail.lines[-50:])
        t2 = time.perf_counter()
        diagnosis = analyzer.analyze(event, host)
        t3 = time.perf_counter()
        ledger.record_failure(event, diagnosis)
        t4 = time.perf_counter()
        for name, seconds in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            times[name].append(seconds)
    return {name: stats(values) for name, values in times.items()}


def large_log(base: Path) -> dict[str, Any]:
    from qubinode_recovery_provider import task_failure as tf

    ti = TI("manual__large")
    path = write_attempt_log(base / "logs", ti, ERRORS[0].format(n=3), lines=10)
    line = json.dumps({"event": "x" * 180, "level": "info"}) + "\n"
    with open(path, "r+", encoding="utf-8") as handle:
        content = handle.read()
        handle.seek(0)
        handle.write(line * (64 * 1024 * 1024 // len(line)))
        handle.write(content)
    size = path.stat().st_size
    samples = [timed(lambda: tf.read_attempt_log(tf.task_key({"ti": ti}), 500)) for _ in range(5)]
    return {**stats(samples), "bytes": size}


def cold_sample(base: Path, with_policy: bool) -> dict[str, float]:
    """Run in a fresh process: the first failure's costs, Airflow imported before the clock starts."""
    isolate(base)
    for module in ("airflow.sdk", "airflow.sdk.bases.notifier", "airflow.sdk.definitions.retry_policy"):
        importlib.import_module(module)  # the worker has these loaded before the task runs
    server = start_api()
    context, exc = failure(base, 0)
    result: dict[str, float] = {}
    started = time.perf_counter()
    from qubinode_recovery_provider.notifications import RecoveryNotifier
    from qubinode_recovery_provider.policies import DiagnosisRetryPolicy

    result["import_s"] = time.perf_counter() - started
    if with_policy:
        result["policy_s"] = timed(lambda: DiagnosisRetryPolicy().evaluate(exc, 1, 3, context))
    notifier = RecoveryNotifier()
    result["notifier_s"] = timed(lambda: notifier(context))
    server.shutdown()
    return result


def prepare_ledger(base: Path) -> None:
    """Create the ledger in another process: in production it exists before the first failure."""
    code = "import sys; from qubinode_recovery_provider.store import Ledger; Ledger(sys.argv[1]).migrate()"
    url = f"sqlite:///{base / 'ledger.db'}"
    subprocess.run([sys.executable, "-c", code, url], check=True, capture_output=True, timeout=120, cwd=ROOT)


def cold(repeats: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {"notifier": [], "policy_then_notifier": []}
    for index in range(repeats):
        for name, flag in (("notifier", ""), ("policy_then_notifier", "--with-policy")):
            with tempfile.TemporaryDirectory(prefix="qrp-bench-cold-") as tmp:
                prepare_ledger(Path(tmp))
                args = [sys.executable, __file__, "--cold-sample", tmp] + ([flag] if flag else [])
                out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=300).stdout
                runs[name].append(json.loads(out.strip().splitlines()[-1]))
        print(f"cold sample {index + 1}/{repeats}", file=sys.stderr)
    notifier_only = [r["notifier_s"] for r in runs["notifier"]]
    policy = [r["policy_s"] for r in runs["policy_then_notifier"]]
    after_policy = [r["notifier_s"] for r in runs["policy_then_notifier"]]
    return {
        "notifier_cold": stats(notifier_only),
        "policy_cold": stats(policy),
        "notifier_after_policy_cold": stats(after_policy),
        "policy_then_notifier_cold": stats([a + b for a, b in zip(policy, after_policy, strict=True)]),
        "import_ms_median": round(statistics.median(r["import_s"] for r in runs["notifier"]) * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cold-sample", metavar="DIR")
    parser.add_argument("--with-policy", action="store_true")
    args = parser.parse_args()
    if args.cold_sample:
        print(json.dumps(cold_sample(Path(args.cold_sample), args.with_policy)))
        return
    warm_n, policy_n, step_n, cold_n = (40, 100, 20, 3) if args.quick else (300, 1000, 100, 11)
    with tempfile.TemporaryDirectory(prefix="qrp-bench-") as tmp:
        base = Path(tmp)
        isolate(base)
        server = start_api()
        importlib.import_module("airflow.sdk")

        result = {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "log_tail_lines": 500,
            "notifier_warm": notifier_warm(base, warm_n),
            "policy_warm": policy_warm(base, policy_n),
            "steps_warm": steps_warm(base, step_n),
            "large_log": large_log(base),
        }
        server.shutdown()
    result.update(cold(cold_n))
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "notifier.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
