"""A synthetic Qubinode estate for the shadow-scan benchmark: runs, lineage events and VMs.

    python bench/estate.py OUT_DIR [--runs 10000] [--events 100000] [--domains 2000] [--hosts 10]

writes

- ``runs.json``: the finished runs and their task instances exactly as Airflow's REST API v2 returns
  them (``{"dag_runs": [...], "task_instances": [...], "dags": [...]}``, every response field; the
  ``create_vm`` tasks' rendered ``bash_command`` is a real ``kcli create vm`` line, also in their
  ``sourceCode`` facet, so the scan's contract inference runs on every run);
- ``events.jsonl``: OpenLineage events shaped like the Airflow OpenLineage provider's (the same facets,
  about 5 KB each): per run a DAG-run START (with the ``airflow`` job facet listing the tasks), START
  and COMPLETE per task, and a DAG-run COMPLETE with ``airflowState``; ``create_vm`` declares its VM
  as the output dataset ``libvirt://<host>`` / ``<domain>``;
- ``<host>.xml``: one libvirt test-driver node per host with its domains (a few shut off);
- ``expected.json``: the shadow errors planted, by type, which the scan must report exactly.

Planted, on disjoint runs: VMs declared but absent (``vm_not_created``), every shut-off VM declared
(``vm_not_running``), a task without its COMPLETE event and runs without any event
(``lineage_missing``), FAIL events for successful tasks and failed tasks in successful runs
(``state_mismatch``), and announced tasks that never reported (``lineage_incomplete``).
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/2.20.3"
NAMESPACE = "qubinode"
BASE_TIME = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
TASKS = [
    "preflight", "create_vm", "configure_vm", "verify_vm", "notify",
    "register_dns", "install_agent", "smoke_test", "update_inventory", "cleanup_cache",
]  # fmt: skip
OPERATORS = {
    "create_vm": ("BashOperator", "airflow.providers.standard.operators.bash.BashOperator"),
    "notify": ("PythonOperator", "airflow.providers.standard.operators.python.PythonOperator"),
}
DEFAULT_OPERATOR = ("BashOperator", "airflow.providers.standard.operators.bash.BashOperator")


def _facet(schema: str) -> dict[str, str]:
    return {"_producer": PRODUCER, "_schemaURL": f"https://openlineage.io/spec/{schema}"}


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Plan:
    """Which runs carry which planted shadow error."""

    ghost: set[int] = field(default_factory=set)
    missing_complete: set[int] = field(default_factory=set)
    no_events: set[int] = field(default_factory=set)
    fail_event: set[int] = field(default_factory=set)
    failed_task: set[int] = field(default_factory=set)
    incomplete: set[int] = field(default_factory=set)


@dataclass
class Estate:
    """Where an estate was written and what it contains."""

    directory: Path
    runs_file: Path
    lineage_file: Path
    hosts: dict[str, Path]
    expected: dict[str, int]
    counts: dict[str, int]

    def libvirt_args(self) -> list[str]:
        args = []
        for host, path in self.hosts.items():
            args += ["--libvirt-uri", f"{host}=test://{path.resolve()}"]
        return args


class EstateWriter:
    """Builds the estate run by run, streaming the events to disk."""

    def __init__(
        self, runs: int, events: int, domains: int, hosts: int, seed: int = 7, anchor: datetime = BASE_TIME
    ) -> None:
        self.n_runs, self.n_events, self.n_domains, self.n_hosts = runs, events, domains, hosts
        self.anchor = anchor
        self.random = random.Random(seed)
        self.hosts = [f"kvm-{i:02d}" for i in range(hosts)]
        self.domains = [(self.hosts[i % hosts], f"vm-{i:05d}") for i in range(domains)]
        self.shutoff = {i for i in range(domains) if i % 50 == 7}
        per_run = max(4, events / max(1, runs))
        self.tasks_per_run = max(2, min(len(TASKS), round((per_run - 2) / 2)))
        self._last_declared = ("", "")
        self.plan = self._plan()
        self.counts: Counter[str] = Counter()
        self.visible: set[int] = set()  # domains declared by a run whose events are written

    def _plan(self) -> Plan:
        pool = list(range(self.n_runs))
        self.random.shuffle(pool)
        size = max(1, self.n_runs // 500)
        picks = [set(pool[i * size : (i + 1) * size]) for i in range(6)]
        return Plan(*picks)

    # --- identities ------------------------------------------------------------------------------

    def dag_of(self, run: int) -> str:
        return f"kcli_deploy_{run % 50:02d}"

    def times(self, run: int) -> tuple[datetime, datetime]:
        start = self.anchor + timedelta(seconds=run * 7)
        return start, start + timedelta(seconds=60 + run % 120)

    def run_id(self, run: int) -> str:
        return f"scheduled__{_z(self.times(run)[0] - timedelta(minutes=15))}"

    def task_ids(self) -> list[str]:
        return TASKS[: self.tasks_per_run]

    def declared(self, run: int) -> tuple[str, str]:
        if run in self.plan.ghost:
            return self.hosts[run % self.n_hosts], f"ghost-{run:06d}"
        return self.domains[run % self.n_domains]

    def command(self, run: int, task_id: str) -> str:
        """The task's rendered Bash command: ``create_vm`` runs kcli (the scan infers the same VM its
        outlet declares, and the outlet wins), the others echo. Runs without lineage echo too."""
        if task_id != "create_vm" or run in self.plan.no_events:
            return f"echo {task_id}"
        host, domain = self.declared(run)
        return f"kcli -C {host} create vm {domain} -i centos9stream -P memory=4096 2>&1 || true"

    # --- REST JSON ----------------------------------------------------------------------------------

    def dag_run(self, run: int) -> dict[str, Any]:
        dag_id = self.dag_of(run)
        start, end = self.times(run)
        logical = start - timedelta(minutes=15)
        version = {
            "id": str(uuid.UUID(int=run % 50 + 1)),
            "version_number": 1,
            "dag_id": dag_id,
            "bundle_name": "dags-folder",
            "bundle_version": None,
            "created_at": _z(BASE_TIME - timedelta(days=1)),
            "dag_display_name": dag_id,
            "bundle_url": None,
        }
        return {
            "dag_run_id": self.run_id(run),
            "dag_id": dag_id,
            "logical_date": _z(logical),
            "queued_at": _z(start - timedelta(seconds=2)),
            "start_date": _z(start),
            "end_date": _z(end),
            "duration": (end - start).total_seconds(),
            "data_interval_start": _z(logical),
            "data_interval_end": _z(start),
            "run_after": _z(start),
            "last_scheduling_decision": _z(end),
            "run_type": "scheduled",
            "state": "success",
            "triggered_by": "timetable",
            "triggering_user_name": None,
            "conf": {},
            "note": None,
            "dag_versions": [version],
            "bundle_version": None,
            "dag_display_name": dag_id,
            "partition_key": None,
            "partition_date": None,
        }

    def task_instance(self, run: int, task_id: str, index: int, state: str) -> dict[str, Any]:
        start, _ = self.times(run)
        t0 = start + timedelta(seconds=5 + index * 10)
        operator = OPERATORS.get(task_id, DEFAULT_OPERATOR)[0]
        return {
            "id": str(uuid.UUID(int=(run << 8) + index)),
            "task_id": task_id,
            "dag_id": self.dag_of(run),
            "dag_run_id": self.run_id(run),
            "map_index": -1,
            "logical_date": _z(start - timedelta(minutes=15)),
            "run_after": _z(start),
            "start_date": _z(t0),
            "end_date": _z(t0 + timedelta(seconds=8)),
            "duration": 8.0,
            "state": state,
            "try_number": 1,
            "max_tries": 2,
            "task_display_name": task_id,
            "dag_display_name": self.dag_of(run),
            "hostname": "worker-1",
            "unixname": "airflow",
            "pool": "default_pool",
            "pool_slots": 1,
            "queue": "default",
            "priority_weight": 1,
            "operator": operator,
            "operator_name": operator,
            "queued_when": _z(t0 - timedelta(seconds=1)),
            "scheduled_when": _z(t0 - timedelta(seconds=2)),
            "pid": 4000 + index,
            "executor": None,
            "executor_config": "{}",
            "note": None,
            "rendered_map_index": None,
            "rendered_fields": {"bash_command": self.command(run, task_id), "env": None, "cwd": None},
            "trigger": None,
            "triggerer_job": None,
            "dag_version": None,
        }

    # --- OpenLineage events -------------------------------------------------------------------------

    def _dag_run_info(self, run: int) -> dict[str, Any]:
        start, _ = self.times(run)
        logical = (start - timedelta(minutes=15)).isoformat()
        return {
            "clear_number": 0,
            "conf": {},
            "dag_id": self.dag_of(run),
            "data_interval_end": start.isoformat(),
            "data_interval_start": logical,
            "logical_date": logical,
            "run_after": start.isoformat(),
            "run_id": self.run_id(run),
            "run_type": "scheduled",
            "start_date": start.isoformat(),
        }

    def _dag_info(self, run: int) -> dict[str, Any]:
        return {
            "dag_id": self.dag_of(run),
            "fileloc": f"/opt/airflow/dags/{self.dag_of(run)}.py",
            "owner": "airflow",
            "owner_links": {},
            "start_date": "2025-01-01T00:00:00+00:00",
            "tags": "['qubinode', 'kcli']",
            "timetable": {},
            "timetable_summary": "*/15 * * * *",
        }

    def _task_info(self, task_id: str, outlets: str) -> dict[str, Any]:
        name, path = OPERATORS.get(task_id, DEFAULT_OPERATOR)
        return {
            "depends_on_past": False,
            "downstream_task_ids": "[]",
            "executor_config": {},
            "ignore_first_depends_on_past": False,
            "inlets": "[]",
            "mapped": False,
            "multiple_outputs": False,
            "operator_class": name,
            "operator_class_path": path,
            "operator_provider_version": "1.21.0",
            "outlets": outlets,
            "owner": "airflow",
            "priority_weight": 1,
            "queue": "default",
            "retries": 2,
            "retry_exponential_backoff": 0,
            "task_id": task_id,
            "trigger_rule": "all_success",
            "upstream_task_ids": "[]",
            "wait_for_downstream": False,
            "wait_for_past_depends_before_skipping": False,
        }

    def _common_run_facets(self, run: int) -> dict[str, Any]:
        start, _ = self.times(run)
        logical = (start - timedelta(minutes=15)).isoformat()
        return {
            "nominalTime": {
                **_facet("facets/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet"),
                "nominalEndTime": start.isoformat(),
                "nominalStartTime": logical,
            },
            "processing_engine": {
                **_facet("facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet"),
                "name": "Airflow",
                "openlineageAdapterVersion": "2.20.3",
                "version": "3.3.2",
            },
            "tags": {
                **_facet("facets/1-0-0/TagsRunFacet.json#/$defs/TagsRunFacet"),
                "tags": [
                    {"key": "openlineage_client_version", "source": "OPENLINEAGE_CLIENT", "value": "1.54.0"}
                ],
            },
        }

    def _job(self, name: str, job_type: str, source: str | None = None) -> dict[str, Any]:
        facets: dict[str, Any] = {
            "jobType": {
                **_facet("facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"),
                "integration": "AIRFLOW",
                "jobType": job_type,
                "processingType": "BATCH",
            },
            "ownership": {
                **_facet("facets/1-0-1/OwnershipJobFacet.json#/$defs/OwnershipJobFacet"),
                "owners": [{"name": "airflow"}],
            },
        }
        if source:
            facets["sourceCode"] = {
                **_facet("facets/1-0-1/SourceCodeJobFacet.json#/$defs/SourceCodeJobFacet"),
                "language": "bash",
                "sourceCode": source,
            }
        return {"facets": facets, "name": name, "namespace": NAMESPACE}

    def task_event(self, run: int, task_id: str, index: int, event_type: str) -> dict[str, Any]:
        start, _ = self.times(run)
        moment = start + timedelta(seconds=5 + index * 10 + (8 if event_type != "START" else 0))
        dag_uuid = str(uuid.UUID(int=run + 1))
        task_uuid = str(uuid.UUID(int=(run << 8) + index + (1 << 100)))
        outputs: list[dict[str, Any]] = []
        outlets = "[]"
        if task_id == "create_vm":
            host, domain = self.declared(run) if event_type == "START" else self._last_declared
            self._last_declared = (host, domain)
            uri = f"libvirt://{host}/{domain}"
            outlets = f"[{{'uri': '{uri}', 'extra': {{'expected_state': 'running'}}, 'type': 'asset'}}]"
            outputs = [
                {
                    "facets": {
                        "libvirtDomain": {
                            **_facet("qubinode/libvirtDomain"),
                            "domain": domain,
                            "expectedState": "running",
                            "host": host,
                        }
                    },
                    "name": domain,
                    "namespace": f"libvirt://{host}",
                }
            ]
        info = self._task_info(task_id, outlets)
        facets = {
            "airflow": {
                **_facet("2-0-2/OpenLineage.json#/$defs/RunFacet"),
                "dag": self._dag_info(run),
                "dagRun": self._dag_run_info(run),
                "task": info,
                "taskInstance": {"log_url": f"http://airflow:8080/dags/{self.dag_of(run)}", "try_number": 1},
                "taskUuid": task_uuid,
            },
            **self._common_run_facets(run),
            "parent": {
                **_facet("facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet"),
                "job": {"facets": {}, "name": self.dag_of(run), "namespace": NAMESPACE},
                "root": {
                    "job": {"facets": {}, "name": self.dag_of(run), "namespace": NAMESPACE},
                    "run": {"facets": {}, "runId": dag_uuid},
                },
                "run": {"facets": {}, "runId": dag_uuid},
            },
            "unknownSourceAttribute": {
                **_facet("2-0-2/OpenLineage.json#/$defs/RunFacet"),
                "unknownItems": [{"name": info["operator_class"], "properties": info, "type": "operator"}],
            },
        }
        if event_type == "FAIL":
            facets["errorMessage"] = {
                **_facet("facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"),
                "message": "Bash command failed. The command returned a non-zero exit code 1.",
                "programmingLanguage": "python",
            }
        return {
            "eventTime": moment.isoformat(),
            "eventType": event_type,
            "inputs": [],
            "job": self._job(f"{self.dag_of(run)}.{task_id}", "TASK", self.command(run, task_id)),
            "outputs": outputs,
            "producer": PRODUCER,
            "run": {"facets": facets, "runId": task_uuid},
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        }

    def dag_event(self, run: int, event_type: str, states: dict[str, str], announced: list[str]) -> dict:
        start, end = self.times(run)
        facets: dict[str, Any] = {
            "airflowDagRun": {
                **_facet("2-0-2/OpenLineage.json#/$defs/RunFacet"),
                "dag": self._dag_info(run),
                "dagRun": self._dag_run_info(run),
            },
            **self._common_run_facets(run),
        }
        job = self._job(self.dag_of(run), "DAG")
        if event_type == "START":
            job["facets"]["airflow"] = {
                **_facet("2-0-2/OpenLineage.json#/$defs/JobFacet"),
                "taskGroups": {},
                "taskTree": {},
                "tasks": {
                    t: {
                        "operator": OPERATORS.get(t, DEFAULT_OPERATOR)[1],
                        "task_group": None,
                        "emits_ol_events": True,
                        "ui_color": "#f0ede4",
                        "ui_fgcolor": "#000",
                        "ui_label": t,
                        "is_setup": False,
                        "is_teardown": False,
                        "downstream_task_ids": [],
                        "downstream_task_edges": {},
                        "downstream_group_edges": {},
                    }
                    for t in announced
                },
            }
        else:
            facets["airflowState"] = {
                **_facet("2-0-2/OpenLineage.json#/$defs/RunFacet"),
                "dagRunState": "success",
                "tasksDuration": dict.fromkeys(states, 8.0),
                "tasksState": states,
            }
        return {
            "eventTime": (start if event_type == "START" else end).isoformat(),
            "eventType": event_type,
            "inputs": [],
            "job": job,
            "outputs": [],
            "producer": PRODUCER,
            "run": {"facets": facets, "runId": str(uuid.UUID(int=run + 1))},
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        }

    # --- one run ------------------------------------------------------------------------------------

    def task_states(self, run: int) -> dict[str, str]:
        states = dict.fromkeys(self.task_ids(), "success")
        if run in self.plan.failed_task:
            states[self.task_ids()[-1]] = "failed"
        return states

    def events_of(self, run: int) -> list[dict[str, Any]]:
        if run in self.plan.no_events:
            return []  # the run declared its VM too, but nothing reported it
        if run not in self.plan.ghost:
            self.visible.add(run % self.n_domains)
        states = self.task_states(run)
        announced = [*self.task_ids(), *(["cleanup_lab"] if run in self.plan.incomplete else [])]
        events = [self.dag_event(run, "START", states, announced)]
        tasks = self.task_ids()
        fail_task, silent_task = tasks[min(3, len(tasks) - 1)], tasks[min(2, len(tasks) - 1)]
        for index, task_id in enumerate(tasks):
            events.append(self.task_event(run, task_id, index, "START"))
            terminal = "COMPLETE"
            if states[task_id] == "failed" or (run in self.plan.fail_event and task_id == fail_task):
                terminal = "FAIL"
            if run in self.plan.missing_complete and task_id == silent_task:
                continue
            events.append(self.task_event(run, task_id, index, terminal))
        events.append(self.dag_event(run, "COMPLETE", states, announced))
        return events

    def expected(self) -> dict[str, int]:
        plan = self.plan
        return {
            "vm_not_created": len(plan.ghost),
            "vm_not_running": len(self.visible & self.shutoff),
            "lineage_missing": len(plan.missing_complete) + len(plan.no_events),
            "state_mismatch": len(plan.failed_task) + len(plan.fail_event),
            "lineage_incomplete": len(plan.incomplete),
        }

    def write(self, directory: Path) -> Estate:
        directory.mkdir(parents=True, exist_ok=True)
        lineage_file = directory / "events.jsonl"
        runs, tis = [], []
        with lineage_file.open("w", encoding="utf-8") as out:
            for run in range(self.n_runs):
                runs.append(self.dag_run(run))
                for index, (task_id, state) in enumerate(self.task_states(run).items()):
                    tis.append(self.task_instance(run, task_id, index, state))
                for event in self.events_of(run):
                    out.write(json.dumps(event, separators=(", ", ": ")) + "\n")
                    self.counts["events"] += 1
            self._write_history(out)
        dags = [{"dag_id": f"kcli_deploy_{i:02d}", "params": {}} for i in range(min(50, self.n_runs))]
        runs_file = directory / "runs.json"
        runs_file.write_text(
            json.dumps({"dag_runs": runs, "total_entries": len(runs), "task_instances": tis, "dags": dags})
        )
        hosts = self._write_hosts(directory)
        expected = self.expected()
        (directory / "expected.json").write_text(json.dumps(expected, indent=2))
        self.counts.update(
            runs=len(runs), task_instances=len(tis), domains=self.n_domains, hosts=self.n_hosts
        )
        self.counts["lineage_bytes"] = lineage_file.stat().st_size
        self.counts["runs_bytes"] = runs_file.stat().st_size
        return Estate(directory, runs_file, lineage_file, hosts, expected, dict(self.counts))

    def _write_history(self, out: Any) -> None:
        """Pad to the requested event count with events of older runs (not in the scan window)."""
        older = 0
        while self.counts["events"] < self.n_events:
            run = self.n_runs + older // 2
            kind = "START" if older % 2 == 0 else "COMPLETE"
            out.write(json.dumps(self.task_event(run, "preflight", 0, kind), separators=(", ", ": ")) + "\n")
            self.counts["events"] += 1
            self.counts["history_events"] += 1
            older += 1

    def _write_hosts(self, directory: Path) -> dict[str, Path]:
        paths = {}
        for host in self.hosts:
            parts = ["<node>"]
            for index, (domain_host, name) in enumerate(self.domains):
                if domain_host != host:
                    continue
                state = "<test:runstate>5</test:runstate>" if index in self.shutoff else ""
                parts.append(
                    "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
                    f"<name>{name}</name><memory>1048576</memory><os><type>hvm</type></os>{state}</domain>"
                )
            parts.append("</node>")
            path = directory / f"{host}.xml"
            path.write_text("\n".join(parts))
            paths[host] = path
        return paths


def generate(
    directory: Path,
    runs: int = 10_000,
    events: int = 100_000,
    domains: int = 2_000,
    hosts: int = 10,
    seed: int = 7,
) -> Estate:
    """Write an estate of the given size into ``directory``."""
    return EstateWriter(runs, events, domains, hosts, seed).write(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--domains", type=int, default=2_000)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    estate = generate(args.directory, args.runs, args.events, args.domains, args.hosts, args.seed)
    print(json.dumps({"counts": estate.counts, "expected": estate.expected}, indent=2))


if __name__ == "__main__":
    main()
