"""The recovery UI in a real browser against a real ``airflow api-server`` with the plugin.

Headless Chromium from Debian's ``chromium`` package (``scripts/setup.sh`` installs it), driven by
Playwright (the ``test`` extra; Playwright's own browser downloads are never used). The test logs in
through the simple auth manager's login page, makes a task fail for real (``airflow dags test`` of a
DAG whose failure callback is the RecoveryNotifier, which records the incident in the ledger), opens
the incidents page in Airflow's nav bar and the incident, follows the task-instance external view, sees
a shadow finding recorded through the ledger and acknowledges it. Screenshots are kept in an artifacts
directory the test prints (``QUBINODE_UI_ARTIFACTS`` chooses it; default: the test's tmp directory).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from support.airflow_harness import API_PASSWORD, API_USER, AirflowHome, ApiServer, new_home, start_api_server
from ui_seed import seed_finding

from qubinode_recovery_provider.store import Ledger

pytestmark = pytest.mark.integration

DAG_ID = "qrp_ui_failing"
TASK_ID = "ansible_play"
FAILING_DAG = f'''
from __future__ import annotations

import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.notifications import RecoveryNotifier

with DAG("{DAG_ID}", schedule=None, start_date=datetime.datetime(2024, 1, 1),
         default_args={{"on_failure_callback": RecoveryNotifier(budget_seconds=10)}}):
    BashOperator(
        task_id="{TASK_ID}",
        bash_command=(
            'echo "fatal: [web1]: UNREACHABLE! Failed to connect to the host via ssh: '
            'ssh: connect to host 10.0.0.7 port 22: Connection reset by peer" >&2; exit 4'
        ),
    )
'''
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    base = os.environ.get("QUBINODE_UI_ARTIFACTS")
    path = Path(base) if base else tmp_path / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nUI screenshots: {path}")
    return path


@pytest.fixture
def airflow(tmp_path: Path) -> Iterator[tuple[AirflowHome, ApiServer, Ledger]]:
    """A home with the failing DAG, the ledger both Airflow and the test use, a running API server."""
    home = new_home(tmp_path / "airflow", {f"{DAG_ID}.py": FAILING_DAG})
    home.env["AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL"] = f"sqlite:///{tmp_path / 'ledger.db'}"
    home.env["AIRFLOW__QUBINODE_RECOVERY__DRY_RUN"] = "True"
    ledger = Ledger(
        home.env["AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL"], tmp_path / "spool", auto_flush_interval=0
    )
    ledger.migrate()
    reserialized = home.airflow("dags", "reserialize", timeout=240)
    assert reserialized.returncode == 0, reserialized.stdout[-3000:]
    server = start_api_server(home)
    try:
        yield home, server, ledger
    finally:
        server.stop()
        ledger.close()


def test_the_recovery_ui_in_chromium(airflow: tuple[AirflowHome, ApiServer, Ledger], artifacts: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    home, server, ledger = airflow
    failed = home.dags_test(DAG_ID, timeout=240)
    assert "qubinode RecoveryNotifier" in failed.stdout, failed.stdout[-4000:]
    ((run_id,),) = home.query("select run_id from dag_run where dag_id = ?", DAG_ID)
    (incident,) = ledger.list_incidents()
    assert incident.root_cause.value == "network"
    seed_finding(ledger, dag_id=DAG_ID, resource="web1")

    with tempfile.TemporaryDirectory(prefix="qrp-chromium-") as profile, sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            profile,  # a fresh --user-data-dir
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)

            # not logged in: the plugin refuses
            assert page.goto(f"{server.url}/qubinode-recovery/incidents").status == 401

            # log in through the simple auth manager's page
            page.goto(f"{server.url}/auth/login")
            page.get_by_label(re.compile("user", re.I)).first.fill(API_USER)
            page.get_by_label(re.compile("password", re.I)).first.fill(API_PASSWORD)
            page.get_by_role("button", name=re.compile("sign in|log in|login", re.I)).click()
            page.wait_for_url(re.compile(r"^(?!.*/auth/login).*$"))

            # the nav bar's view: the incidents page inside Airflow's UI
            page.goto(f"{server.url}/plugin/qubinode-recovery")
            frame = page.frame_locator("iframe").first
            expect(frame.locator("#incidents")).to_contain_text("network")
            expect(frame.locator("#incidents")).to_contain_text(DAG_ID)
            page.screenshot(path=artifacts / "incidents.png", full_page=True)

            # the incident
            frame.locator(f"#incidents a[href$='/incidents/{incident.id}']").first.click()
            expect(frame.locator("#incident-title")).to_contain_text("network")
            expect(frame.locator("#evidence")).to_contain_text("Connection reset by peer")
            expect(
                frame.get_by_role("heading", name="Recovery plan")
            ).to_be_visible()  # made by the recovery run
            page.screenshot(path=artifacts / "incident.png", full_page=True)

            # the task instance page's external view: that task's diagnosis
            ti = f"{server.url}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/{TASK_ID}"
            page.goto(ti)
            page.get_by_role("link", name="Recovery diagnosis").or_(
                page.get_by_role("tab", name="Recovery diagnosis")
            ).first.click()
            ti_frame = page.frame_locator("iframe").first
            expect(ti_frame.locator("#incident-title")).to_contain_text(f"Incident {incident.id}")
            expect(ti_frame.locator("#diagnosis")).to_contain_text(run_id)
            page.screenshot(path=artifacts / "task_instance.png", full_page=True)

            # the shadow finding, acknowledged from the page (a JSON POST with the session cookie)
            page.goto(f"{server.url}/qubinode-recovery/findings")
            expect(page.locator("#findings")).to_contain_text("vm_not_running")
            expect(page.locator("#findings")).to_contain_text("web1")
            page.locator("button[data-state='acknowledged']").first.click()
            expect(page.locator("#findings")).to_contain_text("acknowledged")
            page.screenshot(path=artifacts / "findings.png", full_page=True)
        finally:
            browser.close()
    (finding,) = ledger.shadow_errors()
    assert finding["state"] == "acknowledged"
    assert finding["state_note"] == f"by {API_USER} in the Airflow UI"
