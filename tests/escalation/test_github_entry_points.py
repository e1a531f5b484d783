"""The GitHub escalation from its three entry points, against the local GitHub stand-in: the Airflow
``github`` connection (``GithubHook``), the ``qubinode-recovery escalate`` / ``escalations deliver``
commands with ``GITHUB_TOKEN`` / ``GITHUB_REPOSITORY`` / ``GITHUB_API_URL``, and ``incidents show``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.github_stub import FULL_NAME, TOKEN, GitHubStub

from qubinode_recovery_provider.cli import main
from qubinode_recovery_provider.escalation.delivery import DeliveryReport
from qubinode_recovery_provider.models import Diagnosis, FailureEvent
from qubinode_recovery_provider.store import Ledger

ERROR = (
    "error: failed to connect to the hypervisor: Failed to connect socket to '/var/run/libvirt/libvirt-sock'"
)
ISSUE_URL = f"https://github.example/{FULL_NAME}/issues/1"


@pytest.fixture
def github_env(github: GitHubStub, monkeypatch: pytest.MonkeyPatch, isolated_config: None) -> GitHubStub:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", FULL_NAME)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    return github


@pytest.fixture
def analysis_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], isolated_config: None) -> Path:
    assert main(["diagnose", "--error", ERROR, "--json"]) == 0
    path = tmp_path / "analysis.json"
    path.write_text(capsys.readouterr().out)
    return path


def deliver_through(ledger: Ledger, monkeypatch: pytest.MonkeyPatch, conn: dict[str, Any]) -> DeliveryReport:
    """Queue one escalation and deliver it through the ``github_default`` connection ``conn``."""
    from qubinode_recovery_provider.hooks.github import deliver_pending

    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", json.dumps({"conn_type": "github", **conn}))
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__GITHUB_REPOSITORY", FULL_NAME)
    ledger.enqueue_escalation(
        "fp-hook", "libvirtd down", "**Escalated:** libvirtd down", ["qubinode-recovery"]
    )
    report = deliver_pending(ledger)
    assert report is not None
    return report


def test_the_airflow_github_connection_delivers_through_githubhook(
    ledger: Ledger, github: GitHubStub, monkeypatch: pytest.MonkeyPatch, isolated_config: None
) -> None:
    from qubinode_recovery_provider.hooks.github import deliver_pending

    assert deliver_pending(ledger) is None  # no repository configured: GitHub is off
    report = deliver_through(ledger, monkeypatch, {"host": github.url, "password": TOKEN})
    assert (report.created, report.errors) == (1, [])
    assert ledger.escalation_issue("fp-hook")["url"] == ISSUE_URL  # type: ignore[index]


def test_a_github_app_connection_delivers_with_an_installation_token(
    ledger: Ledger, github: GitHubStub, monkeypatch: pytest.MonkeyPatch, isolated_config: None
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    extra = {"app_id": "12345", "installation_id": 678, "private_key": pem}
    report = deliver_through(ledger, monkeypatch, {"host": github.url, "extra": extra})
    assert (report.created, report.errors) == (1, [])
    assert github.app_tokens >= 1
    assert all(pem not in body for body in github.bodies())


def test_an_unusable_connection_is_reported_and_the_entry_stays_queued(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, isolated_config: None
) -> None:
    from qubinode_recovery_provider.hooks.github import deliver_pending

    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__GITHUB_REPOSITORY", FULL_NAME)
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", json.dumps({"conn_type": "github"}))
    ledger.enqueue_escalation("fp-hook", "t", "b", ["q"])
    report = deliver_pending(ledger)
    assert report is not None
    assert report.errors == ["connection: No access token or authentication method provided."]
    assert [e["status"] for e in ledger.pending_escalations()] == ["pending"]


def test_cli_escalate_files_the_issue_once_and_prints_its_url(
    github_env: GitHubStub, analysis_file: Path, ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    diagnosis = Diagnosis.model_validate_json(analysis_file.read_text())
    with Ledger(ledger_url) as ledger:  # the failure as the notifier records it
        ledger.migrate()
        ledger.record_failure(FailureEvent(exception_text=ERROR), diagnosis)
    args = ["escalate", "--analysis-file", str(analysis_file), "--ledger", ledger_url]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == ISSUE_URL
    assert main([*args, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["issue_url"] == ISSUE_URL
    assert again["delivered"] is True
    assert len(github_env.issues) == 1
    body = github_env.issues[1]["body"]
    assert "## Diagnosis" in body
    assert "qubinode-recovery:fingerprint=" in body
    assert "root-cause:service_dependency" in github_env.issues[1]["labels"]

    assert main(["incidents", "show", diagnosis.fingerprint, "--ledger", ledger_url]) == 0
    assert f"GitHub issue: {ISSUE_URL}" in capsys.readouterr().out
    assert main(["incidents", "show", diagnosis.fingerprint, "--ledger", ledger_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["github_issue"] == ISSUE_URL


def test_cli_escalate_with_a_plan_file(
    github_env: GitHubStub,
    analysis_file: Path,
    ledger_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", "--analysis-file", str(analysis_file), "--json"]) == 0
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(capsys.readouterr().out)
    args = ["escalate", "--analysis-file", str(analysis_file), "--plan-file", str(plan_file)]
    assert main([*args, "--ledger", ledger_url]) == 0
    assert capsys.readouterr().out.strip() == ISSUE_URL


def test_cli_escalate_once_per_run_id(
    github_env: GitHubStub, analysis_file: Path, ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["escalate", "--analysis-file", str(analysis_file), "--ledger", ledger_url, "--json"]
    for run_id in ("1001", "1002", "1002"):
        assert main([*args, "--run-id", run_id]) == 0
        assert json.loads(capsys.readouterr().out)["issue_url"] == ISSUE_URL
    with Ledger(ledger_url) as ledger:
        fingerprint = Diagnosis.model_validate_json(analysis_file.read_text()).fingerprint
        record = ledger.escalation_issue(fingerprint)
    assert record is not None
    assert (record["occurrences"], record["unreported"]) == (2, 1)  # run 1002 counted once, not commented
    assert len(github_env.issues) == 1
    assert github_env.comments == {}


def test_cli_escalate_without_a_token_is_one_line_exit_2(
    analysis_file: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_REPOSITORY", FULL_NAME)
    assert main(["escalate", "--analysis-file", str(analysis_file), "--ledger", ledger_url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "GITHUB_TOKEN is not set" in err


def test_cli_escalate_rejects_a_bad_analysis_file(
    github_env: GitHubStub, tmp_path: Path, ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"root_cause": "not-a-category"}')
    assert main(["escalate", "--analysis-file", str(bad), "--ledger", ledger_url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "not a diagnosis" in err
    assert github_env.requests == []


def test_cli_escalate_while_github_is_down_queues_it_and_deliver_sends_it_later(
    github_env: GitHubStub, analysis_file: Path, ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    github_env.fail_next(503, "Service Unavailable")
    assert main(["escalate", "--analysis-file", str(analysis_file), "--ledger", ledger_url]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "stays queued" in captured.err
    with Ledger(ledger_url) as ledger:  # due now: the test moves the retry time instead of waiting
        (entry,) = ledger.pending_escalations()
        ledger.retry_escalation_later(entry["id"], "moved by the test", ledger_now())
    assert main(["escalations", "deliver", "--json", "--ledger", ledger_url]) == 0
    assert json.loads(capsys.readouterr().out)["created"] == 1
    assert len(github_env.issues) == 1


def ledger_now():  # type: ignore[no-untyped-def]
    from qubinode_recovery_provider.models import utcnow

    return utcnow()


def test_cli_escalate_refuses_a_fingerprint_that_is_not_ours_before_queueing(
    github_env: GitHubStub, analysis_file: Path, ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(analysis_file.read_text())
    data["fingerprint"] = 'abc" repo:evil/repo -->'
    analysis_file.write_text(json.dumps(data))
    assert main(["escalate", "--analysis-file", str(analysis_file), "--ledger", ledger_url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "fingerprint" in err
    assert github_env.requests == []
    with Ledger(ledger_url) as ledger:
        ledger.migrate()
        assert ledger.pending_escalations() == []


@pytest.mark.parametrize("repository", ["acme", "acme/infra incidents", "acme/.."])
def test_cli_escalate_with_a_repository_that_is_not_owner_name_is_one_line_exit_2(
    github_env: GitHubStub,
    analysis_file: Path,
    ledger_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    repository: str,
) -> None:
    monkeypatch.setenv("GITHUB_REPOSITORY", repository)
    assert main(["escalate", "--analysis-file", str(analysis_file), "--ledger", ledger_url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "owner/name" in err
    assert github_env.requests == []


def test_cli_escalate_to_an_unreachable_api_is_one_line_and_stays_queued(
    github_env: GitHubStub,
    analysis_file: Path,
    ledger_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{port}")
    assert main(["escalate", "--analysis-file", str(analysis_file), "--ledger", ledger_url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "stays queued" in err
    with Ledger(ledger_url) as ledger:
        assert len(ledger.pending_escalations()) == 1
