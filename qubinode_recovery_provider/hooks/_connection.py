"""What the provider's hooks share about reading an Airflow connection."""

from __future__ import annotations

from typing import Any


def connection_extra(conn: Any, conn_type: str) -> dict[str, Any]:
    """The connection's extra as a dict, with form fields saved under their prefixed name
    (``extra__<conn_type>__<field>``, older UIs) also under the plain name.

    :param conn: an Airflow connection.
    :param conn_type: the hook's connection type.
    """
    extra = dict(conn.extra_dejson or {})
    prefix = f"extra__{conn_type}__"
    for key in list(extra):
        if key.startswith(prefix):
            extra.setdefault(key[len(prefix) :], extra[key])
    return extra
