"""JSON from outside the process never ends in a traceback, however deeply it nests.

``json.loads`` raises ``RecursionError`` on ``[[[[...``; every reader of outside JSON goes through
:func:`qubinode_recovery_provider.jsontext.loads`, which makes that an ordinary decode error, and each
reader turns it into its own clear error or warning.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qubinode_recovery_provider import config
from qubinode_recovery_provider.cli import UsageError
from qubinode_recovery_provider.cli.scan import connection_from_env
from qubinode_recovery_provider.diagnosis.context import ContextCollector
from qubinode_recovery_provider.diagnosis.probes.journal import _entry
from qubinode_recovery_provider.diagnosis.probes.podman import _decode_inspect
from qubinode_recovery_provider.jsontext import loads
from qubinode_recovery_provider.notifications.pending_runs import TriggerOutbox

DEEP = "[" * 200_000 + "]" * 200_000
DEEP_OBJECT = '{"a": ' + DEEP + "}"


def test_loads_reads_json_as_json_loads_does() -> None:
    assert loads('{"a": [1, 2.5, null, true]}') == {"a": [1, 2.5, None, True]}
    assert loads(b'"bytes"') == "bytes"


@pytest.mark.parametrize("text", [DEEP, DEEP_OBJECT, DEEP.encode()])
def test_a_document_nested_too_deeply_is_a_decode_error(text: str | bytes) -> None:
    with pytest.raises(json.JSONDecodeError, match="nested too deeply"):
        loads(text)


def test_not_json_is_still_the_usual_decode_error() -> None:
    with pytest.raises(json.JSONDecodeError, match="Expecting value"):
        loads("not json")


def test_a_json_option_nested_too_deeply_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__DEPENDENCY_MAP", DEEP_OBJECT)
    with pytest.raises(config.ConfigError, match="dependency_map is not valid JSON: nested too deeply"):
        config.get_json("dependency_map")


def test_a_dependency_map_nested_too_deeply_is_a_recorded_config_error() -> None:
    collector = ContextCollector(dependency_map=DEEP_OBJECT)
    assert collector.dependency_map == {}
    assert [e for e in collector.config_errors if "nested too deeply" in e]


def test_probe_output_nested_too_deeply_is_no_record() -> None:
    assert _decode_inspect(DEEP) is None
    assert _entry(DEEP_OBJECT) is None


def test_an_unreadable_trigger_record_is_no_record(tmp_path: Path) -> None:
    outbox = TriggerOutbox(tmp_path)
    outbox.path_for("deep").write_text(DEEP_OBJECT)
    outbox.path_for("list").write_text("[1, 2]")
    assert outbox.get("deep") is None
    assert outbox.get("list") is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (DEEP_OBJECT, "is not valid JSON"),
        (json.dumps({"conn_type": "libvirt", "extra": DEEP}), "its extra is not valid JSON"),
    ],
)
def test_a_connection_nested_too_deeply_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_KVM_DEEP", value)
    with pytest.raises(UsageError, match=message):
        connection_from_env("kvm_deep")


def test_an_api_error_answer_nested_too_deeply_is_its_text() -> None:
    """The REST API's error body is outside JSON too (``response.json()`` raised RecursionError)."""
    import httpx

    from qubinode_recovery_provider.airflow_api import _error

    error = _error(httpx.Response(500, content=('{"detail": ' + DEEP + "}").encode()), "list runs")
    assert str(error).startswith("list runs: HTTP 500: ")


def test_a_runs_file_nested_too_deeply_in_a_skipped_field_is_no_typed_page() -> None:
    """msgspec counts the levels of the fields it skips: the typed decode gives up, the reader goes on."""
    from qubinode_recovery_provider.shadow.runs import decode_pages

    assert decode_pages('{"dag_runs": [{"conf": ' + DEEP + "}]}") is None
