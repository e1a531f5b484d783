"""Hook for the ``airflow_api`` connection type: the Airflow REST API v2 of a deployment.

Every part of the provider that calls the REST API gets its client here: the notifier starting recovery
runs, the report operator's notes, the ``retry-from-failure`` action clearing task instances, and the
shadow scan reading runs. The connection is ``[qubinode_recovery] recovery_conn_id`` (default
``airflow_api``); connections of type ``http`` made before this type existed work unchanged. Its fields
and extras (``host``, ``port``, ``schema``, ``login``/``password`` or extra ``token``, ``base_path``,
``verify``, ``timeout``) are described in :mod:`qubinode_recovery_provider.airflow_api`, which turns them
into a URL and credentials.

For example ``AIRFLOW_CONN_AIRFLOW_API='{"conn_type": "airflow_api", "host": "api-server", "port": 8080,
"login": "recovery", "password": "..."}'``.
"""

from __future__ import annotations

import re
from typing import Any

from airflow.sdk import BaseHook

from qubinode_recovery_provider import config
from qubinode_recovery_provider.airflow_api import (
    AirflowAPIClient,
    AirflowAPIConfigError,
    AirflowAPIError,
    APISettings,
)
from qubinode_recovery_provider.get_provider_info import AIRFLOW_API_UI_FIELD_BEHAVIOUR
from qubinode_recovery_provider.hooks._connection import connection_extra

#: Longest message :meth:`AirflowApiHook.test_connection` returns.
MAX_MESSAGE_CHARS = 300


class AirflowApiHook(BaseHook):
    """Reach the Airflow REST API v2 described by an Airflow connection.

    :param airflow_api_conn_id: the connection; default ``[qubinode_recovery] recovery_conn_id``
    :param timeout: seconds per request, instead of the connection's ``timeout`` extra
    """

    conn_name_attr = "airflow_api_conn_id"
    default_conn_name = "airflow_api"
    conn_type = "airflow_api"
    hook_name = "Airflow REST API"

    def __init__(
        self, airflow_api_conn_id: str | None = None, *, timeout: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.airflow_api_conn_id = airflow_api_conn_id or config.get("recovery_conn_id")
        self.timeout = timeout
        self._settings: APISettings | None = None

    def __repr__(self) -> str:
        return f"AirflowApiHook(airflow_api_conn_id={self.airflow_api_conn_id!r})"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form: hidden fields, labels and placeholders (also declared in the provider
        info, which Airflow 3.2+ reads instead of this method)."""
        return {
            "hidden_fields": list(AIRFLOW_API_UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(AIRFLOW_API_UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(AIRFLOW_API_UI_FIELD_BEHAVIOUR["placeholders"]),
        }

    def get_settings(self) -> APISettings:
        """The API server's URL and credentials from the connection (read once per hook).

        :raises AirflowAPIConfigError: when the connection cannot be read or names no API server.
        """
        if self._settings is None:
            try:
                conn = self.get_connection(self.airflow_api_conn_id)
            except Exception as exc:  # AirflowNotFoundException, or no way to reach a secrets backend
                from qubinode_recovery_provider.redaction import redact

                why = redact(str(exc))  # Airflow puts a malformed connection URI, password and all, in it
                raise AirflowAPIConfigError(
                    f"cannot read Airflow connection {self.airflow_api_conn_id!r}: {why}"
                ) from None
            self._settings = APISettings.from_connection_fields(
                host=conn.host,
                port=conn.port,
                schema=conn.schema,
                login=conn.login,
                password=conn.password,
                extra=connection_extra(conn, self.conn_type),
                conn_type=conn.conn_type,
            )
        return self._settings.with_timeout(self.timeout)

    def get_client(self, *, timeout: float | None = None) -> AirflowAPIClient:
        """A client for the connection's API server; close it when done (``with hook.get_client() as
        client: ...``).

        :param timeout: seconds per request, instead of the hook's or the connection's
        :raises AirflowAPIConfigError: when the connection cannot be read or names no API server.
        """
        return AirflowAPIClient(self.get_settings().with_timeout(timeout))

    def get_conn(self) -> AirflowAPIClient:
        """The client (:meth:`get_client`), under the name Airflow hooks use."""
        return self.get_client()

    def test_connection(self) -> tuple[bool, str]:
        """Log in and read the server's version and one page of DAGs (the UI's Test button).

        Bounded by the connection's timeout per request, with no retries; the message is one line.
        """
        try:
            settings = self.get_settings()
        except AirflowAPIError as exc:
            return False, _one_line(str(exc))
        try:
            with AirflowAPIClient(settings) as client:
                version = client.get_version().get("version") or "(unknown version)"
                dags = client.request("GET", "/dags", params={"limit": 1})
        except AirflowAPIError as exc:
            return False, _one_line(f"{settings.base_url}: {exc}")
        except Exception as exc:  # the Test button shows a message instead of a traceback
            return False, _one_line(f"{settings.base_url}: {type(exc).__name__}: {exc}")
        readable = dags.get("total_entries") if isinstance(dags, dict) else None
        return True, f"Connected to Airflow {version} at {settings.base_url}; DAGs readable: {readable}"


def _one_line(text: str) -> str:
    line = re.sub(r"\s+", " ", text).strip()
    return line if len(line) <= MAX_MESSAGE_CHARS else line[: MAX_MESSAGE_CHARS - 1] + "…"


__all__ = ["AirflowApiHook"]
