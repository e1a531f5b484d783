"""The ``qubinode_recovery`` Airflow plugin: the recovery UI app and its two external views.

- ``fastapi_apps``: :func:`.app.create_app` mounted by the API server under :data:`URL_PREFIX`;
- ``external_views``: "Recovery" in the nav bar (the incidents page) and "Recovery diagnosis" on the
  task-instance page (the diagnosis of that task in that run, :func:`.app.task_view`).

Loaded by ``airflow api-server`` (and listed by ``airflow plugins``) through the ``airflow.plugins``
entry point; the provider info lists it too (used when ``[core] lazy_discover_providers`` is off).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from qubinode_recovery_provider.plugins.app import URL_PREFIX, create_app

#: The task-instance view: Airflow fills the placeholders (URL-encoded) for the task shown.
TASK_VIEW_ROUTE = f"{URL_PREFIX}/task?dag_id={{DAG_ID}}&run_id={{RUN_ID}}&task_id={{TASK_ID}}"


class RecoveryUIPlugin(AirflowPlugin):
    """Incidents, diagnoses, plans, attempts, shadow findings and pattern health in the Airflow UI."""

    name = "qubinode_recovery"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Qubinode Recovery"}]
    external_views = [
        {
            "name": "Recovery",
            "href": f"{URL_PREFIX}/incidents",
            "url_route": "qubinode-recovery",
            "destination": "nav",
        },
        {
            "name": "Recovery diagnosis",
            "href": TASK_VIEW_ROUTE,
            "url_route": "qubinode-recovery-diagnosis",
            "destination": "task_instance",
        },
    ]
