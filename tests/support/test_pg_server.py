"""The test session's PostgreSQL server (tests/conftest.py): its port is chosen free, then bound by the
server seconds later (after initdb); a port another process took meanwhile is replaced by another."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa


@pytest.mark.integration
def test_a_port_taken_before_the_server_binds_it_is_replaced(
    make_pg_server: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    helpers = make_pg_server.__globals__  # tests/conftest.py, where the server picks its port
    real_free_port = helpers["free_port"]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        choices = iter([port])  # the first choice is the taken port; then real free ones
        monkeypatch.setitem(helpers, "free_port", lambda: next(choices, None) or real_free_port())
        server = make_pg_server()
    assert server.port != port
    engine = sa.create_engine(server.url())
    try:
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT 1")) == 1
    finally:
        engine.dispose()
