"""The README's demo: the whole story on the embedded defaults, printed as it happens.

    make demo                 # or: .venv/bin/python scripts/demo.py [--diagnosis-only]

Part 1 diagnoses real failures: every sample in ``examples/failures.jsonl`` is text a real tool printed,
from the public issue named with it. The analyzer runs with the shipped pattern library (no network, no
Airflow), one report per failure, then the same batch through the CLI contract as JSON lines.

Part 2 runs Airflow itself: a scheduler, DAG processor, API server and triggerer on SQLite in a
temporary AIRFLOW_HOME, with the recovery DAG and the three example DAGs of ``dags/examples/``:

- ``example_flaky_network``: a DNS hiccup, retried by the retry policy after the delay of its cause;
- ``example_credential_failure``: Vault's 403, failed fast (one try of four), then escalated by the
  recovery DAG (outbox entry and Markdown report);
- ``example_kcli_vm_deploy``: SSH to a VM still booting fails once; the recovery DAG diagnoses it,
  waits, clears the failed task through the REST API and the run resumes from it.

It prints, per example DAG, the tries used, the diagnosis, the decision and the final state, then the
incidents in the ledger. Everything is stopped at the end; the files stay for a look.

Part 3 runs the shadow scan on the sample inputs of ``examples/shadow/`` (runs as the REST API returns
them, the OpenLineage events of real ``airflow dags test`` runs, the libvirt test driver's lab host):
runs Airflow calls a success although the VM was never created, is not running, or a task failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from qubinode_recovery_provider.cli.render import render_diagnosis  # noqa: E402
from qubinode_recovery_provider.diagnosis import FailureAnalyzer  # noqa: E402

SAMPLES = ROOT / "examples" / "failures.jsonl"
SHADOW = ROOT / "examples" / "shadow"
RECOVERY = "qubinode_failure_recovery"
FLAKY = "example_flaky_network"
CREDENTIAL = "example_credential_failure"
KCLI = "example_kcli_vm_deploy"
TIMEOUT = 300


def diagnose_samples() -> None:
    """Part 1: diagnose the real sample failures."""
    analyzer = FailureAnalyzer()
    samples = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    patterns = len(analyzer.library)
    print(f"qubinode-recovery demo: {len(samples)} real failures, {patterns} known-error patterns\n")
    for sample in samples:
        lines = sample["text"].splitlines()
        print("=" * 100)
        print(f"{sample['id']}  ({len(lines)} log lines, from {sample['source']})")
        print("-" * 100)
        print(render_diagnosis(analyzer.analyze(sample["text"], diagnosis_id=sample["id"])))
    print("=" * 100)
    print("The same batch through the CLI (qubinode-recovery diagnose --batch examples/failures.jsonl):\n")
    cli = Path(sys.executable).with_name("qubinode-recovery")
    out = subprocess.run(
        [str(cli), "diagnose", "--batch", str(SAMPLES)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    for line in out.splitlines():
        row = json.loads(line)
        print(
            f"  {row['id']:<18} {row['root_cause']:<20} confidence={row['confidence']:.2f} "
            f"retryable={json.dumps(row['retryable']):<5} fingerprint={row['fingerprint']}"
        )


# --- part 2 ----------------------------------------------------------------------------------------


def banner(text: str) -> None:
    print("\n" + "=" * 100 + f"\n{text}\n" + "=" * 100)


def policy_line(log: str) -> str:
    """The retry policy's decision from a try's log."""
    for line in log.splitlines():
        if line.startswith("Retry policy decision"):
            return line.removeprefix("Retry policy decision").strip()
    return "(no retry policy decision in the log)"


def tries(states: dict[str, tuple[str | None, int]]) -> str:
    return ", ".join(
        f"{task} {state} after {n} tr{'y' if n == 1 else 'ies'}" for task, (state, n) in states.items()
    )


def airflow_story() -> int:
    """Part 2: the example DAGs on a real scheduler, with the recovery DAG."""
    from local_airflow import LocalAirflow, prepare_dags_folder

    base = Path(tempfile.mkdtemp(prefix="qubinode-demo-"))
    examples = ROOT / "dags" / "examples"
    sources = [ROOT / "dags" / f"{RECOVERY}.py", examples / "bin"]
    dags = prepare_dags_folder(
        base / "dags", sources + [examples / f"{n}.py" for n in (FLAKY, CREDENTIAL, KCLI)]
    )
    (base / "state").mkdir()
    env = {
        "QUBINODE_EXAMPLES_STATE_DIR": str(base / "state"),
        "AIRFLOW__QUBINODE_RECOVERY__NOTIFIER_BUDGET_SECONDS": "20",
    }
    banner("Part 2: Airflow runs the example DAGs, the retry policy, the notifier and the recovery DAG")
    print(f"AIRFLOW_HOME={base / 'home'} (SQLite, LocalExecutor)")
    started = time.monotonic()
    with LocalAirflow(base / "home", dags, extra_env=env) as airflow:
        print(f"API server on {airflow.base_url}; starting scheduler, DAG processor and triggerer...")
        airflow.wait_ready([RECOVERY, FLAKY, CREDENTIAL, KCLI])
        runs = {dag_id: airflow.trigger(dag_id) for dag_id in (FLAKY, CREDENTIAL, KCLI)}
        print(f"Ready after {time.monotonic() - started:.0f}s; triggered {', '.join(runs)}.")
        print("The flaky pull waits 60s before its retry; the VM deployment waits 60s before its recovery.\n")
        facts = collect(airflow, runs)
        ledger_lines = incidents(airflow.home)
    report(facts, ledger_lines, base, time.monotonic() - started)
    return 0 if facts["ok"] else 1


def collect(airflow: Any, runs: dict[str, str]) -> dict[str, Any]:
    facts: dict[str, Any] = {"runs": runs}
    facts[CREDENTIAL] = airflow.wait_for_run(CREDENTIAL, runs[CREDENTIAL], TIMEOUT)
    print(f"  {CREDENTIAL}: {facts[CREDENTIAL]}")
    facts["credential_recovery"] = airflow.recovery_run_for(CREDENTIAL, runs[CREDENTIAL], TIMEOUT)
    facts["kcli_recovery"] = airflow.recovery_run_for(KCLI, runs[KCLI], TIMEOUT)
    print(
        f"  recovery runs started by the notifier: {facts['credential_recovery']}, {facts['kcli_recovery']}"
    )
    for key in ("credential_recovery", "kcli_recovery"):
        facts[f"{key}_state"] = airflow.wait_for_run(RECOVERY, facts[key], TIMEOUT)
        print(f"  {key.replace('_', ' ')}: {facts[f'{key}_state']}")
    for dag_id in (FLAKY, KCLI):
        facts[dag_id] = airflow.wait_for_run(dag_id, runs[dag_id], TIMEOUT)
        print(f"  {dag_id}: {facts[dag_id]}")
    for dag_id in (FLAKY, CREDENTIAL, KCLI):
        facts[f"{dag_id}_tasks"] = airflow.task_states(dag_id, runs[dag_id])
    facts["flaky_policy"] = policy_line(airflow.task_log(FLAKY, runs[FLAKY], "pull_image", 1))
    facts["credential_policy"] = policy_line(
        airflow.task_log(CREDENTIAL, runs[CREDENTIAL], "fetch_secret", 1)
    )
    for key in ("credential_recovery", "kcli_recovery"):
        facts[f"{key}_diagnosis"] = (airflow.xcom(RECOVERY, facts[key], "diagnose") or {}).get(
            "diagnosis", {}
        )
        facts[f"{key}_decision"] = airflow.xcom(RECOVERY, facts[key], "decide", "decision") or {}
        facts[f"{key}_report"] = airflow.xcom(RECOVERY, facts[key], "report") or {}
    facts["kcli_attempt"] = airflow.xcom(RECOVERY, facts["kcli_recovery"], "execute", "attempt") or {}
    facts["credential_escalation"] = airflow.xcom(RECOVERY, facts["credential_recovery"], "escalate") or {}
    facts["ok"] = (
        facts[FLAKY] == "success"
        and facts[KCLI] == "success"
        and facts[CREDENTIAL] == "failed"
        and facts["kcli_recovery_report"].get("outcome") == "recovered"
        and facts["credential_recovery_report"].get("outcome") == "escalated"
    )
    return facts


def incidents(home: Path) -> list[str]:
    from qubinode_recovery_provider.store import Ledger

    with Ledger(f"sqlite:///{home / 'qubinode_recovery' / 'ledger.db'}", home / "spool-demo") as ledger:
        return [
            f"  {i.fingerprint}  {i.root_cause.value:<12} {i.state.value:<10} occurrences={i.occurrences} "
            f"dags={','.join(i.dag_ids)}"
            for i in ledger.list_incidents()
        ]


def describe_diagnosis(diagnosis: dict[str, Any]) -> str:
    patterns = [m["pattern_id"] for m in diagnosis.get("matched_patterns", [])[:2]]
    return (
        f"{diagnosis.get('root_cause')} (confidence {float(diagnosis.get('confidence') or 0):.2f}, "
        f"retryable {diagnosis.get('retryable')}, patterns {', '.join(patterns) or '-'})"
    )


def report(facts: dict[str, Any], ledger_lines: list[str], base: Path, elapsed: float) -> None:
    banner("What happened")
    print(f"\n{FLAKY}: {facts[FLAKY]}")
    print(f"  tries: {tries(facts[f'{FLAKY}_tasks'])}")
    print(f"  retry policy after try 1: {facts['flaky_policy']}")
    print(f"\n{CREDENTIAL}: {facts[CREDENTIAL]}")
    print(f"  tries: {tries(facts[f'{CREDENTIAL}_tasks'])} (retries=3 allowed)")
    print(f"  retry policy after try 1: {facts['credential_policy']}")
    print(f"  diagnosis: {describe_diagnosis(facts['credential_recovery_diagnosis'])}")
    print(
        f"  decision: {facts['credential_recovery_decision'].get('route')}: "
        f"{'; '.join(facts['credential_recovery_decision'].get('reasons', []))}"
    )
    print(f"  outcome: {facts['credential_recovery_report'].get('headline')}")
    print(f"  escalation report: {facts['credential_escalation'].get('report_path')}")
    print(f"\n{KCLI}: {facts[KCLI]}")
    print(f"  tries: {tries(facts[f'{KCLI}_tasks'])}")
    print(f"  diagnosis: {describe_diagnosis(facts['kcli_recovery_diagnosis'])}")
    print(
        f"  decision: {facts['kcli_recovery_decision'].get('route')}: "
        f"{'; '.join(facts['kcli_recovery_decision'].get('reasons', []))}"
    )
    attempt = facts["kcli_attempt"]
    delay = attempt.get("action_args", {}).get("delay_seconds")
    print(f"  recovery: {attempt.get('action')} {attempt.get('outcome')} ({delay}s after the failure)")
    print(f"    {attempt.get('detail')}")
    print(f"  outcome: {facts['kcli_recovery_report'].get('headline')}")
    print("\nIncidents in the ledger:")
    print("\n".join(ledger_lines) or "  (none)")
    print(f"\nReports: {base / 'home' / 'qubinode_recovery' / 'reports'}")
    print(
        f"Whole story in {elapsed:.0f}s; Airflow stopped. {'OK' if facts['ok'] else 'SOMETHING WENT WRONG'}"
    )


def shadow_scan_argv() -> list[str]:
    """The ``qubinode-recovery scan`` command of part 3, on the sample inputs of ``examples/shadow/``."""
    return [
        "scan",
        "--runs-file",
        str(SHADOW / "runs.json"),
        "--lineage-file",
        str(SHADOW / "lineage.jsonl"),
        "--libvirt-uri",
        f"lab=test://{SHADOW / 'lab_node.xml'}",
    ]


def shadow_scan() -> int:
    """Part 3: the shadow scan on the sample inputs; 0 when it found the shadow errors it should."""
    argv = shadow_scan_argv()
    banner("Shadow errors: runs Airflow calls a success although the VMs or the task states disagree")
    print("qubinode-recovery " + " ".join(argv[:1] + [a.replace(str(ROOT), "$PWD") for a in argv[1:]]) + "\n")
    cli = Path(sys.executable).with_name("qubinode-recovery")
    done = subprocess.run(
        [str(cli), *argv], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    print(done.stdout + done.stderr)
    # exit code 1: the scan ran and reports findings, which is what the samples hold
    return 0 if done.returncode == 1 and "vm_not_created" in done.stdout else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diagnosis-only", action="store_true", help="only part 1 (no Airflow)")
    parser.add_argument("--shadow-only", action="store_true", help="only part 3 (the shadow scan)")
    args = parser.parse_args()
    if args.shadow_only:
        return shadow_scan()
    diagnose_samples()
    if args.diagnosis_only:
        return 0
    story = airflow_story()
    return shadow_scan() or story


if __name__ == "__main__":
    sys.exit(main())
