"""The recovery DAG in real Airflow runs (``dag.test()``) escalates a credential failure to GitHub
through an Airflow ``github`` connection whose host is the local GitHub stand-in; the escalate step's
XCom and the report carry the issue URL."""

from __future__ import annotations

import json
from pathlib import Path

from support.airflow_harness import run_dag_tests
from support.github_stub import FULL_NAME, TOKEN, GitHubStub

ROOT = Path(__file__).resolve().parents[2]
VAULT_ERROR = (
    "Error making API request. URL: GET https://vault.example.com:8200/v1/secret/data/kcli "
    "Code: 403. Errors: * permission denied"
)
SCENARIOS = [
    {"name": "target_fail", "dag_id": "dagtest_target", "conf": {"fail": True}},
    {
        "name": "escalate",
        "dag_id": "qubinode_failure_recovery",
        "conf": {
            "failed_dag_id": "dagtest_target",
            "failed_task_id": "fetch",
            "failed_run_id": "$target_fail.run_id",
            "failure_message": VAULT_ERROR,
            "enable_auto_recovery": True,
            "dry_run": False,
        },
    },
]


def test_the_recovery_dag_files_the_github_issue(tmp_path_factory, github: GitHubStub) -> None:
    env = {
        "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps(
            {"conn_type": "github", "host": github.url, "password": TOKEN}
        ),
        "AIRFLOW__QUBINODE_RECOVERY__GITHUB_REPOSITORY": FULL_NAME,
        "AIRFLOW__QUBINODE_RECOVERY__AIRFLOW_BASE_URL": "https://airflow.example.com",
    }
    dag_files = [
        ROOT / "dags" / "qubinode_failure_recovery.py",
        ROOT / "tests/operators/dags/dagtest_target.py",
    ]
    runs = run_dag_tests(tmp_path_factory, SCENARIOS, dag_files, extra_env=env)

    result = runs["escalate"]
    url = f"https://github.example/{FULL_NAME}/issues/1"
    escalation = result["xcoms"]["escalate"]["return_value"]
    assert escalation["issue_url"] == url
    assert escalation["github"]["created"] == 1
    report = result["xcoms"]["report"]["return_value"]
    assert report["issue_url"] == url
    assert f"GitHub issue: {url}" in Path(report["report_path"]).read_text()

    assert len(github.issues) == 1
    issue = github.issues[1]
    assert "root-cause:credential" in issue["labels"]
    assert "## Diagnosis" in issue["body"]
    assert "https://airflow.example.com/dags/dagtest_target/runs/" in issue["body"]
    assert "https://airflow.example.com/dags/qubinode_failure_recovery/runs/" in issue["body"]
    fingerprint = result["xcoms"]["diagnose"]["return_value"]["diagnosis"]["fingerprint"]
    assert runs.ledger().incident_detail(fingerprint)["github_issue"] == url
