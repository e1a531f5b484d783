"""The recovery UI app behind Airflow's real auth (SimpleAuthManager, its ``/auth/token``, the core
``get_user`` dependency, on a copy of a migrated Airflow metadata database: token checks read its
``revoked_token`` table), on a real SQLite ledger: pages, JSON API, filters, pagination, the task view,
finding changes, refusals and redaction."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from support.airflow_harness import migrated_db
from support.canaries import all_canaries, assert_no_canary, combined_text
from ui_seed import seed_finding, seed_incident

from qubinode_recovery_provider import config, runtime
from qubinode_recovery_provider.models import RootCause
from qubinode_recovery_provider.plugins.app import URL_PREFIX, create_app
from qubinode_recovery_provider.store import Ledger
from qubinode_recovery_provider.store import schema as t

SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
USERS = {"viewer": ("viewer", "viewer-pass-1"), "editor": ("user", "editor-pass-1")}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool", auto_flush_interval=0) as led:
        led.migrate()
        yield led


def awaiting_approval(airflow_db: Path, fingerprint: str, run_id: str) -> None:
    """A recovery run for ``fingerprint`` whose ``approve`` task waits for a person (Airflow's tables)."""
    with sqlite3.connect(airflow_db) as conn:
        conn.execute(
            "insert into dag_run (dag_id, run_id, run_type, run_after, state, conf)"
            " values (?, ?, ?, ?, ?, ?)",
            (
                "qubinode_failure_recovery",
                run_id,
                "manual",
                "2026-12-03 12:00:00",
                "running",
                json.dumps({"fingerprint": fingerprint}),
            ),
        )
        conn.execute(
            "insert into task_instance (id, task_id, dag_id, run_id, map_index, try_number, pool, pool_slots,"
            " state) values (?, 'approve', 'qubinode_failure_recovery', ?, -1, 1, 'default_pool', 1, ?)",
            (uuid.uuid4().hex, run_id, "awaiting_input"),
        )


@pytest.fixture
def airflow_db(tmp_path: Path) -> Iterator[Path]:
    """This process's Airflow ORM on a copy of the session's migrated metadata database."""
    from airflow import settings

    shutil.copy(migrated_db(), tmp_path / "airflow.db")
    name = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
    previous = os.environ.get(name)
    os.environ[name] = f"sqlite:///{tmp_path / 'airflow.db'}"
    settings.dispose_orm(do_log=False)
    settings.configure_vars()
    settings.configure_orm()
    yield tmp_path / "airflow.db"
    settings.dispose_orm(do_log=False)
    if previous is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = previous
    settings.configure_vars()
    settings.configure_orm()


@pytest.fixture
def client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ledger: Ledger, airflow_db: None
) -> Iterator[TestClient]:
    from airflow.api_fastapi.app import init_auth_manager

    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({name: password for name, (_, password) in USERS.items()}))
    env = {
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{n}:{role}" for n, (role, _) in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": "ui-tests-jwt-secret-0123456789abcdef",
        "AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL": str(ledger.url),
        "AIRFLOW__QUBINODE_RECOVERY__STATE_DIR": str(tmp_path / "state"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config.clear_cache()
    runtime.reset()
    root = FastAPI()
    root.mount(URL_PREFIX, create_app())
    init_auth_manager(root)  # the real auth manager, its /auth app and the core get_user dependency
    with TestClient(root) as test_client:
        yield test_client
    runtime.reset()
    config.clear_cache()


def token(client: TestClient, user: str) -> dict[str, str]:
    _, password = USERS[user]
    response = client.post("/auth/token", json={"username": user, "password": password})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


READS = [
    "/incidents",
    "/api/incidents",
    "/findings",
    "/api/findings",
    "/patterns",
    "/api/patterns",
    "/task?dag_id=d&task_id=t",
    "/incidents/1",
    "/api/incidents/1",
]


@pytest.mark.parametrize("path", READS)
def test_anonymous_and_forged_requests_are_refused(client: TestClient, ledger: Ledger, path: str) -> None:
    seed_incident(ledger)
    assert client.get(URL_PREFIX + path).status_code == 401
    forged = {"Authorization": "Bearer not.a.token"}
    assert client.get(URL_PREFIX + path, headers=forged).status_code == 403
    client.cookies.set("_token", "not.a.token")  # the UI's session cookie
    assert client.get(URL_PREFIX + path).status_code == 403


def test_every_route_of_the_app_asks_the_auth_manager() -> None:
    from fastapi.routing import APIRoute

    from qubinode_recovery_provider.plugins import access

    app = create_app()
    assert app.openapi_url is None  # no schema or docs route outside the checks
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert len(routes) == 11
    for route in routes:
        calls = {d.call for d in route.dependant.dependencies}
        assert calls & {access.can_read, access.can_edit}, route.path


def test_a_viewer_reads_but_cannot_change_a_finding(client: TestClient, ledger: Ledger) -> None:
    finding_id = seed_finding(ledger)
    viewer = token(client, "viewer")
    assert client.get(f"{URL_PREFIX}/findings", headers=viewer).status_code == 200
    change = client.post(
        f"{URL_PREFIX}/api/findings/{finding_id}/state", json={"state": "resolved"}, headers=viewer
    )
    assert change.status_code == 403
    anonymous = client.post(f"{URL_PREFIX}/api/findings/{finding_id}/state", json={"state": "resolved"})
    assert anonymous.status_code == 401
    assert ledger.shadow_error(finding_id)["state"] == "open"


def test_an_editor_acknowledges_and_resolves_with_json_only(client: TestClient, ledger: Ledger) -> None:
    finding_id = seed_finding(ledger)
    editor = token(client, "editor")
    url = f"{URL_PREFIX}/api/findings/{finding_id}/state"
    as_form = client.post(url, data={"state": "resolved"}, headers=editor)
    assert as_form.status_code == 415  # a cross-site form cannot change anything
    assert client.get(url, headers=editor).status_code == 405  # no GET side effect
    acked = client.post(url, json={"state": "acknowledged", "note": "known, ticket OPS-1"}, headers=editor)
    assert acked.status_code == 200, acked.text
    assert (acked.json()["state"], acked.json()["state_note"]) == ("acknowledged", "known, ticket OPS-1")
    resolved = client.post(url, json={"state": "resolved"}, headers=editor)
    assert resolved.json()["state"] == "resolved"
    assert "by editor in the Airflow UI" in resolved.json()["state_note"]
    assert client.post(url, json={"state": "deleted"}, headers=editor).status_code == 422
    missing = client.post(f"{URL_PREFIX}/api/findings/999/state", json={"state": "open"}, headers=editor)
    assert missing.status_code == 404
    assert ledger.shadow_error(finding_id)["state"] == "resolved"


def test_incident_list_filters_and_pages(client: TestClient, ledger: Ledger) -> None:
    for n in range(5):
        seed_incident(
            ledger,
            dag_id=f"dag_{n % 2}",
            run_id=f"run_{n}",
            fingerprint=f"fp-{n}",
            root_cause=RootCause.NETWORK if n % 2 else RootCause.STORAGE,
        )
    viewer = token(client, "viewer")
    api = f"{URL_PREFIX}/api/incidents"
    page = client.get(api, params={"per_page": 2, "page": 2}, headers=viewer).json()
    assert (page["total"], page["pages"], len(page["items"])) == (5, 3, 2)
    only = client.get(api, params={"dag_id": "dag_1", "category": "network"}, headers=viewer).json()
    assert {i["fingerprint"] for i in only["items"]} == {"fp-1", "fp-3"}
    assert client.get(api, params={"state": "resolved"}, headers=viewer).json()["total"] == 0
    future = client.get(api, params={"since": "2999-01-01"}, headers=viewer).json()
    assert future["total"] == 0
    assert client.get(api, params={"until": "2999-01-01T00:00:00+00:00"}, headers=viewer).json()["total"] == 5
    bad = client.get(api, params={"since": "yesterday"}, headers=viewer)
    assert bad.status_code == 400
    assert "since: not an ISO date or time" in bad.text
    assert client.get(api, params={"per_page": 100_000}, headers=viewer).status_code == 422
    html = client.get(f"{URL_PREFIX}/incidents", params={"per_page": 2}, headers=viewer)
    assert html.status_code == 200
    assert "page 1 of 3" in html.text
    assert 'rel="next"' in html.text


def test_incident_detail_shows_diagnosis_plan_attempts_issue_and_opinion(
    client: TestClient, ledger: Ledger
) -> None:
    incident_id = seed_incident(ledger)
    with ledger.engine.begin() as conn:
        conn.execute(
            sa.insert(t.escalation_issues).values(
                fingerprint="fp-net-0001",
                number=7,
                url="https://github.com/acme/infra/issues/7",
                state="open",
                updated_at=sa.func.now(),
            )
        )
    viewer = token(client, "viewer")
    data = client.get(f"{URL_PREFIX}/api/incidents/{incident_id}", headers=viewer).json()
    assert data["evidence"][0]["pattern_id"] == "NET001"
    assert data["github_issue"] == "https://github.com/acme/infra/issues/7"
    assert data["approval"] is None  # no recovery run waits for a person
    by_fingerprint = client.get(f"{URL_PREFIX}/api/incidents/fp-net-0001", headers=viewer).json()
    assert by_fingerprint["incident"]["id"] == incident_id
    page = client.get(f"{URL_PREFIX}/incidents/{incident_id}", headers=viewer).text
    for expected in (
        "NET001",
        "Retry the task",
        "★ recommended",
        "retry_task",
        "succeeded",
        "https://github.com/acme/infra/issues/7",
        "LLM second opinion (model stub-model)",
        "The SSH connection was reset",
    ):
        assert expected in page, expected
    assert client.get(f"{URL_PREFIX}/incidents/999", headers=viewer).status_code == 404


def test_incident_detail_shows_the_first_actions_and_commands_unless_verbose(
    client: TestClient, ledger: Ledger
) -> None:
    from ui_seed import failure

    event, diagnosis = failure("build_vm", "create_vm", "manual__9", "fp-noisy", RootCause.NETWORK)
    noisy = diagnosis.model_copy(
        update={
            "recommended_actions": [f"do thing {n}" for n in range(5)],
            "diagnostic_commands": [f"check-{n} --now" for n in range(6)],
        }
    )
    incident = ledger.record_failure(event, noisy)
    viewer = token(client, "viewer")
    data = client.get(f"{URL_PREFIX}/api/incidents/{incident.id}", headers=viewer).json()
    assert data["latest"]["diagnosis"]["recommended_actions"] == ["do thing 0", "do thing 1", "do thing 2"]
    assert data["latest"]["diagnosis"]["not_shown"] == {"recommended_actions": 2, "diagnostic_commands": 2}
    full = client.get(f"{URL_PREFIX}/api/incidents/{incident.id}?verbose=true", headers=viewer).json()
    assert len(full["latest"]["diagnosis"]["diagnostic_commands"]) == 6
    page = client.get(f"{URL_PREFIX}/incidents/{incident.id}", headers=viewer).text
    assert "do thing 2" in page
    assert "do thing 3" not in page
    assert "check-3 --now" in page
    assert "check-4 --now" not in page
    assert '<a href="?verbose=true">show all</a>' in page
    page = client.get(f"{URL_PREFIX}/incidents/{incident.id}?verbose=true", headers=viewer).text
    assert "do thing 4" in page
    assert "check-5 --now" in page


def test_the_approval_a_recovery_run_waits_for_is_linked(
    client: TestClient, ledger: Ledger, airflow_db: Path
) -> None:
    incident_id = seed_incident(ledger)
    awaiting_approval(airflow_db, "another-fingerprint", "manual__other")
    awaiting_approval(airflow_db, "fp-net-0001", "manual__2026-12-03T12:00:00+00:00")
    viewer = token(client, "viewer")
    approval = client.get(f"{URL_PREFIX}/api/incidents/{incident_id}", headers=viewer).json()["approval"]
    assert approval == {
        "dag_id": "qubinode_failure_recovery",
        "run_id": "manual__2026-12-03T12:00:00+00:00",
        "url": "/dags/qubinode_failure_recovery/runs/manual__2026-12-03T12%3A00%3A00%2B00%3A00"
        "/tasks/approve/required_actions",
    }
    page = client.get(f"{URL_PREFIX}/incidents/{incident_id}", headers=viewer).text
    assert 'id="approval"' in page
    assert 'href="/dags/qubinode_failure_recovery/runs/manual__2026-12-03T12%3A00%3A00%2B00%3A00' in page


def test_task_view_opens_that_task_s_diagnosis(client: TestClient, ledger: Ledger) -> None:
    seed_incident(ledger, run_id="manual__a", fingerprint="fp-a")
    seed_incident(ledger, run_id="manual__b", fingerprint="fp-b", root_cause=RootCause.STORAGE)
    viewer = token(client, "viewer")
    view = f"{URL_PREFIX}/task"
    page = client.get(
        view, params={"dag_id": "build_vm", "task_id": "ansible_play", "run_id": "manual__a"}, headers=viewer
    )
    assert "fp-a" in page.text
    assert "fp-b" not in page.text
    other_run = client.get(
        view, params={"dag_id": "build_vm", "task_id": "ansible_play", "run_id": "manual__z"}, headers=viewer
    )
    assert "fp-b" in other_run.text  # no diagnosis in that run: the task's newest one
    none = client.get(view, params={"dag_id": "other", "task_id": "t", "run_id": "r"}, headers=viewer)
    assert none.status_code == 200
    assert 'id="no-diagnosis"' in none.text


def test_findings_filter_by_type_host_and_dag(client: TestClient, ledger: Ledger) -> None:
    seed_finding(ledger, dag_id="build_vm", resource="web1")
    seed_finding(ledger, dag_id="build_db", resource="db1")
    viewer = token(client, "viewer")
    api = f"{URL_PREFIX}/api/findings"
    assert (
        client.get(api, params={"resource": "db1"}, headers=viewer).json()["items"][0]["dag_id"] == "build_db"
    )
    assert client.get(api, params={"dag_id": "build_vm"}, headers=viewer).json()["total"] == 1
    assert client.get(api, params={"type": "vm_not_created"}, headers=viewer).json()["total"] == 0
    page = client.get(f"{URL_PREFIX}/findings", params={"type": "vm_not_running"}, headers=viewer).text
    assert "libvirt: domain web1 is shut off" in page
    assert 'data-state="acknowledged"' in page


def test_pattern_health_lists_top_fingerprints_and_drafts_for_unknown_templates(
    client: TestClient, ledger: Ledger
) -> None:
    seed_incident(ledger, fingerprint="fp-top")
    seed_incident(ledger, run_id="manual__2", fingerprint="fp-top")
    for n in range(3):
        event_line = f"frobnicator {n} refused the widget batch {n * 7}"
        seed_incident(ledger, run_id=f"u{n}", fingerprint=f"fp-unknown-{n}", root_cause=RootCause.UNKNOWN)
        with ledger.engine.begin() as conn:  # an unexplained failure text, as the notifier stores one
            conn.execute(
                sa.update(t.diagnoses)
                .where(t.diagnoses.c.fingerprint == f"fp-unknown-{n}")
                .values(event={"log_tail": [event_line], "exception_text": ""})
            )
    viewer = token(client, "viewer")
    data = client.get(f"{URL_PREFIX}/api/patterns", headers=viewer).json()
    assert (data["top"][0]["fingerprint"], data["top"][0]["occurrences"]) == ("fp-top", 2)
    assert data["unexplained"] == 3
    assert any("frobnicator" in s["template"] for s in data["suggestions"]), data["suggestions"]
    assert "frobnicator" in client.get(f"{URL_PREFIX}/patterns", headers=viewer).text


def test_nothing_rendered_leaks_a_canary(client: TestClient, ledger: Ledger) -> None:
    incident_id = seed_incident(ledger)
    finding_id = seed_finding(ledger)
    secret = combined_text()
    with ledger.engine.begin() as conn:  # raw secrets in the rows, past the ledger's own redaction
        conn.execute(sa.update(t.incidents).values(summary=secret))
        conn.execute(
            sa.update(t.diagnoses).values(
                event={"exception_text": secret, "log_tail": secret.splitlines()},
                diagnosis=sa.func.json_set(t.diagnoses.c.diagnosis, "$.summary", secret),
            )
        )
        conn.execute(
            sa.update(t.shadow_errors).values(
                finding={"evidence": secret.splitlines()}, resource=secret[:200]
            )
        )
    viewer = token(client, "viewer")
    assert incident_id == 1  # READS name incident 1
    for path in [*READS, "/task?dag_id=build_vm&task_id=ansible_play"]:
        response = client.get(URL_PREFIX + path, headers=viewer)
        assert response.status_code == 200, (path, response.text[:300])
        assert_no_canary(response.text, all_canaries())
    editor = token(client, "editor")
    changed = client.post(
        f"{URL_PREFIX}/api/findings/{finding_id}/state",
        json={"state": "acknowledged", "note": secret[:900]},
        headers=editor,
    )
    assert_no_canary(changed.text, all_canaries())
