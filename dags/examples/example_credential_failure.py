"""Read a secret from Vault with a token that lost its permission: the failed-fast, escalated example.

``fetch_secret`` fails with Vault's ``403 permission denied``. ``retries=3``, but the
``DiagnosisRetryPolicy`` sees a credential failure that no retry can fix and fails the task after its
first try (no three more 403s, no locked account). The ``RecoveryNotifier`` records the incident and
starts the recovery DAG, which plans a manual fix (renew the token's policy), finds no safe automatic
action and escalates: an entry in the ledger's escalation outbox and a Markdown report with the checks
and fixes for a person.

To add this to your DAG: ``retry_policy=DiagnosisRetryPolicy()`` and
``on_failure_callback=RecoveryNotifier()`` in ``default_args``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.notifications import RecoveryNotifier
from qubinode_recovery_provider.policies import DiagnosisRetryPolicy

# A stand-in for `vault kv get`, answered with the error Vault gives a token without the policy.
FETCH = """
echo 'vault kv get -mount=secret kcli/ssh'
echo 'Error making API request.' >&2
echo 'URL: GET https://vault.example.com:8200/v1/secret/data/kcli/ssh' >&2
echo 'Code: 403. Errors:' >&2
echo '* permission denied' >&2
exit 2
"""

with DAG(
    dag_id="example_credential_failure",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["qubinode", "example", "vault", "recovery"],
    doc_md=__doc__,
    default_args={
        "owner": "infra",
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_policy": DiagnosisRetryPolicy(),
        "on_failure_callback": RecoveryNotifier(),
    },
):
    fetch_secret = BashOperator(task_id="fetch_secret", bash_command=FETCH)
    deploy_key = BashOperator(task_id="deploy_key", bash_command="echo 'install the SSH key (simulated)'")

    fetch_secret >> deploy_key
