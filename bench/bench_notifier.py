"""The time the failure notifier adds to a failing task, and the cost of the retry policy's decision.

    python bench/bench_notifier.py            # ordinary path and worst case -> bench/results/notifier.json
    python bench/bench_notifier.py --quick    # fewer repeats
    python bench/bench_notifier.py --sections worst_case        # one section only
    git worktree add /tmp/bench-before 382b7c5
    python bench/bench_notifier.py --sections compare --before-tree /tmp/bench-before --rounds 5

Results are merged into ``notifier.json``: a run of some sections keeps the others' earlier results.
What is timed, without an LLM, on this machine:

Ordinary path (section ``ordinary``):

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

Worst case (section ``worst_case``): each hostile input of ``tests/data/adversarial/make.py`` (and a
30 KB hex dump holding the word ``key``, and a 40 KB line of ``xN_key=vN`` assignments) is the error
line of the failed attempt's JSON-lines log, with a fresh ledger for each run. Timed:
``RecoveryNotifier(budget_seconds=5, trigger_recovery=False)`` (the exception's text is the input's
first 100,000 characters) and ``DiagnosisRetryPolicy(budget_seconds=1)`` (the exception is a
BashOperator's exit-code message, so the evidence is in the log): the median of 3 runs each, what the
notifier recorded, whether its budget ran out, and the policy's decision. A worker thread that outlives
its budget is waited for after the clock stops (reported as ``background_s``), so it does not slow the
next run.

Before and after (section ``compare``, needs ``--before-tree``): the ordinary-path measurements
(warm notifier, policy and notifier steps, the 64 MB log, fresh-process notifier and policy, with fewer
repeats than the ``ordinary`` section: :data:`COMPARE_COUNTS`) with the code of another checkout and with
this one, each in a child process whose ``PYTHONPATH`` and ``sys.path`` start with that checkout (the
child checks which package it imported), the two sides alternated ``--rounds`` times because the machine
is shared; the medians of the per-round medians are reported. Each side has its own pattern cache,
warmed before the first round.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
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
#: The checkout whose ``qubinode_recovery_provider`` is measured (``compare`` children set it).
CODE_ROOT = Path(os.environ.get("QRP_BENCH_CODE_ROOT") or ROOT).resolve()
sys.path.insert(0, str(CODE_ROOT))
BASH_EXIT = "Bash command failed. The command returned a non-zero exit code 1."

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
    from qubinode_recovery_provider.utils.task_failure import shared_analyzer

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
    from qubinode_recovery_provider.diagnosis.context import ContextCollector
    from qubinode_recovery_provider.notifications.failure_path import CPU_SAMPLE_SECONDS, ledger_for
    from qubinode_recovery_provider.utils import task_failure as tf

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


#: Reads of the 64 MB log (``large_log``).
LARGE_LOG_READS = 5


def large_log(base: Path) -> dict[str, Any]:
    from qubinode_recovery_provider.utils import task_failure as tf

    ti = TI("manual__large")
    path = write_attempt_log(base / "logs", ti, ERRORS[0].format(n=3), lines=10)
    line = json.dumps({"event": "x" * 180, "level": "info"}) + "\n"
    with open(path, "r+", encoding="utf-8") as handle:
        content = handle.read()
        handle.seek(0)
        handle.write(line * (64 * 1024 * 1024 // len(line)))
        handle.write(content)
    size = path.stat().st_size
    samples = [
        timed(lambda: tf.read_attempt_log(tf.task_key({"ti": ti}), 500)) for _ in range(LARGE_LOG_READS)
    ]
    return {**stats(samples), "bytes": size}


#: What a task process has imported before its callbacks run. On Linux Airflow's supervisor starts the
#: task process with a bare ``os.fork()`` (``supervisor.py``; fork and exec only on macOS), so the
#: supervisor module, which looking up a connection imports, is already there.
PRELOADED = (
    "airflow.sdk",
    "airflow.sdk.bases.notifier",
    "airflow.sdk.definitions.retry_policy",
    "airflow.sdk.execution_time.supervisor",
)


def cold_sample(base: Path, with_policy: bool) -> dict[str, float]:
    """Run in a fresh process: the first failure's costs, Airflow imported before the clock starts."""
    isolate(base)
    for module in PRELOADED:
        importlib.import_module(module)  # the worker has these loaded before the task runs
    server = start_api()
    context, exc = failure(base, 0)
    result: dict[str, float] = {}
    started = time.perf_counter()
    from qubinode_recovery_provider.notifications import RecoveryNotifier
    from qubinode_recovery_provider.policies import DiagnosisRetryPolicy

    result["import_s"] = time.perf_counter() - started
    if CODE_ROOT not in Path(sys.modules["qubinode_recovery_provider"].__file__ or "").resolve().parents:
        raise RuntimeError(f"the code measured is not the code under {CODE_ROOT}")
    if with_policy:
        cpu = time.process_time()
        result["policy_s"] = timed(lambda: DiagnosisRetryPolicy().evaluate(exc, 1, 3, context))
        result["policy_cpu_s"] = time.process_time() - cpu
    notifier = RecoveryNotifier()
    cpu = time.process_time()
    result["notifier_s"] = timed(lambda: notifier(context))
    # CPU of every thread of the process (not of the commands the probes run)
    result["notifier_cpu_s"] = time.process_time() - cpu
    server.shutdown()
    return result


def prepare_ledger(base: Path) -> None:
    """Create the ledger in another process: in production it exists before the first failure."""
    code = "import sys; from qubinode_recovery_provider.store import Ledger; Ledger(sys.argv[1]).migrate()"
    url = f"sqlite:///{base / 'ledger.db'}"
    subprocess.run(
        [sys.executable, "-c", code, url], check=True, capture_output=True, timeout=120, cwd=CODE_ROOT
    )


def _cpu_median(runs: list[dict[str, float]], key: str) -> float | None:
    """The median CPU time in ms of ``key`` over ``runs`` (None for runs of code that did not record it)."""
    values = [r[key] for r in runs if key in r]
    return round(statistics.median(values) * 1000, 1) if values else None


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
        "cpu_ms_median": {
            "notifier_cold": _cpu_median(runs["notifier"], "notifier_cpu_s"),
            "policy_cold": _cpu_median(runs["policy_then_notifier"], "policy_cpu_s"),
            "notifier_after_policy_cold": _cpu_median(runs["policy_then_notifier"], "notifier_cpu_s"),
        },
        "notifier_cold": stats(notifier_only),
        "policy_cold": stats(policy),
        "notifier_after_policy_cold": stats(after_policy),
        "policy_then_notifier_cold": stats([a + b for a, b in zip(policy, after_policy, strict=True)]),
        "import_ms_median": round(statistics.median(r["import_s"] for r in runs["notifier"]) * 1000, 3),
    }


# --- ordinary path ---------------------------------------------------------------------------------------


def ordinary(counts: tuple[int, int, int, int]) -> dict[str, Any]:
    """The ordinary-path measurements: warm notifier and policy, the notifier's steps and the 64 MB
    log in this process, then the fresh-process ones in children.

    :param counts: repeats of the warm notifier, the warm policy, the steps and the fresh processes.
    """
    warm_n, policy_n, step_n, cold_n = counts
    with tempfile.TemporaryDirectory(prefix="qrp-bench-") as tmp:
        base = Path(tmp)
        isolate(base)
        server = start_api()
        importlib.import_module("airflow.sdk")
        result: dict[str, Any] = {
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "log_tail_lines": 500,
            "notifier_warm": notifier_warm(base, warm_n),
            "policy_warm": policy_warm(base, policy_n),
        }
        result["steps_warm"] = steps_warm(base, step_n)
        result["large_log"] = large_log(base)
        server.shutdown()
    result.update(cold(cold_n))
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


# --- worst case: the adversarial corpus through the failure path ------------------------------------------


def _adversarial_make() -> Any:
    """``tests/data/adversarial/make.py`` (through ``tests/support/adversarial.py``)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from support.adversarial import make

    return make


def hex_dump_with_key(size: int = 30_000) -> str:
    """About ``size`` characters of hex words after the word ``key`` (a redaction stressor).

    :param size: the length of the line.
    """
    return "key " + " ".join(f"{(i * 2654435761) % 2**32:08x}" for i in range(size // 9))


def key_assignments(size: int = 40_000) -> str:
    """At most ``size`` characters of ``xN_key=vN`` assignments (a redaction stressor).

    :param size: the length of the line.
    """
    words, length = [], -1
    while length + len(f" x{len(words)}_key=v{len(words)}") <= size:
        words.append(f"x{len(words)}_key=v{len(words)}")
        length += len(words[-1]) + 1
    return " ".join(words)


def worst_case_inputs() -> dict[str, Callable[[], str]]:
    """The hostile inputs, by name (each built when called)."""
    adv = _adversarial_make()
    return {
        "hits_line_4MB": adv.hits_line,
        "jwt_line_80KB": adv.jwt_line,
        "ansible_result_2.7MB": adv.ansible_result_line,
        "deep_json_10000": adv.deep_json_line,
        "deep_ansible_10000": adv.deep_ansible_line,
        "hex_dump_with_key_30KB": hex_dump_with_key,
        "key_assignments_40KB": key_assignments,
    }


def write_hostile_log(folder: Path, ti: TI, line: str) -> None:
    """The attempt's JSON-lines log: one ordinary record, then the hostile line as the error record."""
    path = folder / f"dag_id={ti.dag_id}" / f"run_id={ti.run_id}" / f"task_id={ti.task_id}"
    path.mkdir(parents=True, exist_ok=True)
    records = [
        {"timestamp": "2026-11-02T10:00:00Z", "level": "info", "event": "Running command", "logger": "x"},
        {"timestamp": "2026-11-02T10:00:01Z", "level": "error", "event": line, "logger": "task.stdout"},
    ]
    (path / f"attempt={ti.try_number}.log").write_text("\n".join(json.dumps(r) for r in records) + "\n")


def wait_for_background(limit: float = 120.0) -> float:
    """Wait (at most ``limit`` seconds) for notifier and policy threads that outlived their budget;
    return the seconds waited."""
    started = time.perf_counter()
    for thread in threading.enumerate():
        if thread.name.startswith("qubinode-") and thread is not threading.current_thread():
            thread.join(timeout=max(0.0, limit - (time.perf_counter() - started)))
    return time.perf_counter() - started


def worst_case_once(base: Path, text: str) -> dict[str, Any]:
    """One run of the notifier and one of the policy on ``text``, with a fresh ledger under ``base``."""
    from qubinode_recovery_provider.notifications import RecoveryNotifier
    from qubinode_recovery_provider.policies import DiagnosisRetryPolicy
    from qubinode_recovery_provider.store import Ledger

    url = f"sqlite:///{base / 'ledger.db'}"
    os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(base / "logs")
    os.environ["AIRFLOW__QUBINODE_RECOVERY__STATE_DIR"] = str(base / "state")
    os.environ["AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL"] = url
    Ledger(url).migrate()  # in production the ledger exists before the failure
    ti = TI("manual__worst_case")
    write_hostile_log(base / "logs", ti, text)
    context = {"ti": ti, "task_instance": ti, "run_id": ti.run_id, "exception": RuntimeError(text[:100_000])}
    notifier = RecoveryNotifier(budget_seconds=5, trigger_recovery=False)
    notifier_s = timed(lambda: notifier(context))
    background = wait_for_background()
    outcome = notifier.last_outcome
    assert outcome is not None
    ledger = Ledger(url, base / "state" / "spool")
    ledger.flush_spool()
    occurrences = [incident.occurrences for incident in ledger.list_incidents()]
    policy = DiagnosisRetryPolicy(budget_seconds=1)
    decision: list[Any] = []
    policy_s = timed(lambda: decision.append(policy.evaluate(RuntimeError(BASH_EXIT), 1, 3, {"ti": ti})))
    background += wait_for_background()
    return {
        "notifier_s": notifier_s,
        "record_status": outcome.record_status,
        "timed_out": outcome.timed_out,
        "stage": outcome.stage,
        "root_cause": outcome.root_cause,
        "recorded_once": occurrences == [1],
        "policy_s": policy_s,
        "policy_action": str(getattr(decision[0].action, "value", decision[0].action)),
        "policy_reason": decision[0].reason,
        "background_s": background,
    }


def _distinct(runs: list[dict[str, Any]], key: str) -> str:
    return "/".join(sorted({str(run[key]) for run in runs}))


def worst_case(repeats: int) -> dict[str, Any]:
    """The notifier and the policy on every hostile input, ``repeats`` runs each (medians reported)."""
    from qubinode_recovery_provider.utils.task_failure import shared_analyzer

    shared_analyzer().analyze("warm up")  # in a worker the pattern library is loaded already
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="qrp-bench-worst-") as tmp:
        for name, make in worst_case_inputs().items():
            text = make()
            runs = [worst_case_once(Path(tmp) / name / str(i), text) for i in range(repeats)]
            rows[name] = {
                "bytes": len(text.encode()),
                "notifier_s_median": statistics.median(run["notifier_s"] for run in runs),
                "notifier_s_max": max(run["notifier_s"] for run in runs),
                "record_status": _distinct(runs, "record_status"),
                "notifier_timed_out": any(run["timed_out"] for run in runs),
                "notifier_stage": _distinct(runs, "stage"),
                "root_cause": _distinct(runs, "root_cause"),
                "recorded_exactly_once": all(run["recorded_once"] for run in runs),
                "policy_s_median": statistics.median(run["policy_s"] for run in runs),
                "policy_s_max": max(run["policy_s"] for run in runs),
                "policy_action": _distinct(runs, "policy_action"),
                "policy_timed_out": any("no diagnosis within" in run["policy_reason"] for run in runs),
                "background_s_max": max(run["background_s"] for run in runs),
            }
            print(f"worst case {name}: {rows[name]}", file=sys.stderr)
    return {
        "command": "python bench/bench_notifier.py --sections worst_case",
        "repeats": repeats,
        "notifier_budget_s": 5.0,
        "policy_budget_s": 1.0,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "inputs": rows,
    }


# --- before and after -------------------------------------------------------------------------------------

#: Repeats in each ``compare`` child: warm notifier, warm policy, notifier steps, fresh processes.
COMPARE_COUNTS = (100, 300, 30, 3)
COMPARE_METRICS = (
    "notifier_warm",
    "policy_warm",
    "notifier_cold",
    "policy_cold",
    "notifier_after_policy_cold",
    "policy_then_notifier_cold",
    "large_log",
    "steps_warm.read_log_and_redact",
    "steps_warm.collect_context",
    "steps_warm.analyze",
    "steps_warm.record_failure",
)


def run_child(args: list[str], env: dict[str, str], timeout: float) -> str:
    """Run a child process in its own session; kill its whole group if it is still there at the end."""
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed ({proc.returncode}): {err[-2000:]}")
    return out


def ordinary_child() -> dict[str, Any]:
    """The ordinary path with the code of ``QRP_BENCH_CODE_ROOT`` (run in a ``compare`` child)."""
    import qubinode_recovery_provider

    package = Path(qubinode_recovery_provider.__file__).resolve()
    if CODE_ROOT not in package.parents:
        raise RuntimeError(f"imported {package}, not the code under {CODE_ROOT}")
    return {"package": str(package), **ordinary(COMPARE_COUNTS)}


def _metric(run: dict[str, Any], name: str) -> float:
    """The median (ms) of ``name`` in a child's result; ``a.b`` is ``run[a][b]``."""
    row = run
    for part in name.split("."):
        row = row[part]
    return float(row["median_ms"])


def _git(tree: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def _side_env(tree: Path, cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "QRP_BENCH_CODE_ROOT": str(tree),
        "PYTHONPATH": str(tree),
        "QUBINODE_RECOVERY_CACHE_DIR": str(cache),
    }


def compare(before: Path, rounds: int) -> dict[str, Any]:
    """The ordinary path with the code of ``before`` and of this checkout, alternated ``rounds`` times."""
    sides = {"before": before.resolve(), "after": ROOT}
    per_round: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    warm_up = (  # the module moved to utils/; a "before" tree may predate that
        "try:\n"
        "    from qubinode_recovery_provider.utils.task_failure import shared_analyzer\n"
        "except ImportError:\n"
        "    from qubinode_recovery_provider.task_failure import shared_analyzer\n"
        "shared_analyzer().analyze('x')"
    )
    result: dict[str, Any] = {
        "command": (
            f"python bench/bench_notifier.py --sections compare --before-tree {before} --rounds {rounds}"
        ),
        "before_tree": str(before),
        "before_commit": _git(before, "rev-parse", "--short", "HEAD"),
        "after_commit": _git(ROOT, "rev-parse", "--short", "HEAD"),
        "after_has_uncommitted_changes": bool(
            _git(ROOT, "status", "--porcelain", "--", "qubinode_recovery_provider")
        ),
        "rounds": rounds,
        "counts_per_round": {
            "notifier_warm": COMPARE_COUNTS[0],
            "policy_warm": COMPARE_COUNTS[1],
            "notifier_steps": COMPARE_COUNTS[2],
            "large_log_reads": LARGE_LOG_READS,
            "fresh_processes": COMPARE_COUNTS[3],
        },
    }
    with tempfile.TemporaryDirectory(prefix="qrp-bench-compare-") as tmp:
        envs = {name: _side_env(tree, Path(tmp) / name) for name, tree in sides.items()}
        for name in sides:
            run_child([sys.executable, "-c", warm_up], envs[name], 600)  # fills the side's pattern cache
        for index in range(rounds):
            order = ("before", "after") if index % 2 == 0 else ("after", "before")
            for name in order:
                out = run_child([sys.executable, __file__, "--ordinary-child"], envs[name], 1800)
                per_round[name].append(json.loads(out.strip().splitlines()[-1]))
            print(f"compare round {index + 1}/{rounds}", file=sys.stderr)
    loads = [run["load_average_at_start"][0] for runs in per_round.values() for run in runs]
    result.update(
        {
            "packages": {name: runs[0]["package"] for name, runs in per_round.items()},
            "load_average_range": [min(loads), max(loads)],
        }
    )
    for metric in COMPARE_METRICS:
        medians = {name: [_metric(run, metric) for run in runs] for name, runs in per_round.items()}
        result[metric] = {
            **{f"{name}_median_ms": round(statistics.median(values), 3) for name, values in medians.items()},
            **{f"{name}_rounds_ms": values for name, values in medians.items()},
        }
    return result


# --- entry point ------------------------------------------------------------------------------------------

SECTIONS = ("ordinary", "worst_case", "compare")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sections", default="ordinary,worst_case", help=f"comma-separated, of {SECTIONS}")
    parser.add_argument("--before-tree", metavar="DIR", type=Path, help="a checkout of the earlier code")
    parser.add_argument("--rounds", type=int, default=5, help="before/after alternations (compare)")
    parser.add_argument("--cold-sample", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--with-policy", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ordinary-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_sample:
        print(json.dumps(cold_sample(Path(args.cold_sample), args.with_policy)))
        return
    if args.ordinary_child:
        print(json.dumps(ordinary_child()))
        return
    sections = set(args.sections.split(","))
    if "compare" in sections and args.before_tree is None:
        parser.error("--sections compare needs --before-tree")
    path = RESULTS / "notifier.json"
    result: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    result.update(
        {"python": platform.python_version(), "machine": platform.machine(), "cpu_count": os.cpu_count()}
    )
    if "ordinary" in sections:
        counts = (40, 100, 20, 3) if args.quick else (300, 1000, 100, 11)
        result.update(ordinary(counts))
        result["command"] = "python bench/bench_notifier.py"
    if "worst_case" in sections:
        result["worst_case"] = worst_case(1 if args.quick else 3)
    if "compare" in sections:
        result["before_after"] = compare(args.before_tree, args.rounds)
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
