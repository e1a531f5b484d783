"""``make standalone``: ``airflow standalone`` with the provider, every DAG of ``dags/`` and the connections
they need, for a look around the UI.

    make standalone           # or: .venv/bin/python scripts/standalone.py [--port 8080]

AIRFLOW_HOME defaults to ``.airflow-standalone`` in the repository (kept between starts: the SQLite DB,
the logs, the ledger and the reports). The admin password is made once and printed. The ``airflow_api``
connection (used by the RecoveryNotifier, the recovery DAG and the shadow scan) points at this API
server with the admin's credentials; ``libvirt_lab`` is the libvirt test driver with
``dags/examples/lab_node.xml``; OpenLineage events go to a file the shadow scan reads. The connection
form's Test button is enabled (``[core] test_connection``). Your own ``AIRFLOW__*`` variables win over
these.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from local_airflow import USERNAME, airflow_env, venv_bin  # noqa: E402


def password(home: Path) -> str:
    """The admin's password, made on the first start and kept in ``passwords.json``."""
    path = home / "passwords.json"
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))[USERNAME])
    except (OSError, ValueError, KeyError):
        home.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(12)
        path.write_text(json.dumps({USERNAME: value}), encoding="utf-8")
        return value


def main() -> int:
    parser = argparse.ArgumentParser(description="airflow standalone with the qubinode recovery provider")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args()
    home = Path(os.environ.get("AIRFLOW_HOME") or ROOT / ".airflow-standalone").resolve()
    secret = password(home)
    lab = ROOT / "dags" / "examples" / "lab_node.xml"
    lineage = home / "openlineage" / "events.jsonl"
    lineage.parent.mkdir(parents=True, exist_ok=True)
    extra = {
        "AIRFLOW_CONN_LIBVIRT_LAB": json.dumps(
            {"conn_type": "libvirt", "extra": {"uri": f"test://{lab}", "host_name": "lab"}}
        ),
        "AIRFLOW__QUBINODE_RECOVERY__LIBVIRT_CONN_IDS": "libvirt_lab",
        "AIRFLOW__QUBINODE_RECOVERY__LINEAGE_FILE": str(lineage),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(lineage), "append": True}
        ),
        "QUBINODE_EXAMPLES_STATE_DIR": str(home / "examples-state"),
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the Test button of the connection form
        **{k: v for k, v in os.environ.items() if k.startswith("AIRFLOW__")},
    }
    env = airflow_env(home, ROOT / "dags", args.port, secret, extra)
    print(
        f"Airflow UI: http://127.0.0.1:{args.port}  user {USERNAME}  password {secret}\n"
        f"AIRFLOW_HOME={home}\n"
        "Try: trigger example_kcli_vm_deploy (recovered by qubinode_failure_recovery), "
        "example_credential_failure (escalated), example_flaky_network (retried after 60s); "
        "or trigger qubinode_failure_recovery from its form with enable_auto_recovery off to see "
        "the approval under Required actions. Ctrl-C stops everything.\n",
        flush=True,
    )
    airflow = str(venv_bin() / "airflow")
    os.execve(airflow, [airflow, "standalone"], env)  # noqa: S606 - a fixed argv, no shell
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
