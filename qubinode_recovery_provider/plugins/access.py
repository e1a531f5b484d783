"""Who may use the recovery UI: Airflow's auth manager decides, for every request.

The plugin's app is mounted inside the API server, which gives a mounted app no authentication of its
own. Each route therefore depends on Airflow's own :func:`~airflow.api_fastapi.core_api.security.get_user`
(the JWT of the ``Authorization: Bearer`` header or of the UI's session cookie; 401 without one) and
asks the configured auth manager:

- reading (every page and ``GET``): read access to the task instances of *all* DAGs (an incident can
  span DAGs, and its evidence comes from task logs);
- changing a finding (``POST``): edit access to the task instances of all DAGs.

Refused: 403. Writes accept only a JSON body (``application/json``), which a cross-site form cannot send
without a CORS preflight the API server does not grant; no ``GET`` changes anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep  # noqa: TC002 - FastAPI reads it at run time
from fastapi import Depends, HTTPException, Request, status

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod


def allowed(user: BaseUser, method: ResourceMethod) -> bool:
    """Whether the auth manager lets ``user`` do ``method`` on the task instances of every DAG.

    :param user: the authenticated user
    :param method: ``GET`` to read, ``PUT`` to change
    """
    return get_auth_manager().is_authorized_dag(
        method=method, access_entity=DagAccessEntity.TASK_INSTANCE, details=DagDetails(id=None), user=user
    )


def can_read(user: GetUserDep) -> BaseUser:
    """The user, when allowed to read; 403 otherwise."""
    if not allowed(user, "GET"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")
    return user


def can_edit(request: Request, user: GetUserDep) -> BaseUser:
    """The user, when allowed to change findings and the request carries JSON; 403 / 415 otherwise."""
    if not allowed(user, "PUT"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "Send the request body as application/json"
        )
    return user


Reader = Annotated[BaseUser, Depends(can_read)]
Editor = Annotated[BaseUser, Depends(can_edit)]
