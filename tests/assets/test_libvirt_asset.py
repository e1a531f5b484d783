"""The ``libvirt`` asset URI scheme: the asset DAG authors declare, Airflow's normalisation through the
provider's handler, and the OpenLineage provider's conversion through the provider's converter."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from qubinode_recovery_provider.assets import libvirt_domain
from qubinode_recovery_provider.assets.libvirt import convert_asset_to_openlineage, sanitize_uri
from qubinode_recovery_provider.get_provider_info import get_provider_info
from qubinode_recovery_provider.shadow import DomainURIError, declarations_from_params, parse_domain_uri


def test_libvirt_domain_names_the_vm_and_the_promised_state() -> None:
    asset = libvirt_domain("web1", host="KVM1")
    assert asset.uri == "libvirt://kvm1/web1"
    assert asset.extra == {"expected_state": "running"}
    assert libvirt_domain("db 1", expected_state="defined").uri == "libvirt://localhost/db%201"
    assert parse_domain_uri("libvirt://kvm1/db%201") == ("kvm1", "db 1")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "a/b"}, "invalid libvirt domain name"),
        ({"name": ""}, "invalid libvirt domain name"),
        ({"name": "web1", "host": "bad host"}, "invalid libvirt host name"),
        ({"name": "web1", "expected_state": "paused"}, "expected state must be one of"),
    ],
)
def test_bad_declarations_fail_at_parse_time(kwargs: dict, message: str) -> None:
    with pytest.raises(DomainURIError, match=message):
        libvirt_domain(**kwargs)


def test_the_provider_registers_the_scheme_and_airflow_uses_its_handler() -> None:
    from airflow.sdk.definitions.asset import Asset
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    runtime = ProvidersManagerTaskRuntime()
    assert runtime.asset_uri_handlers["libvirt"] is sanitize_uri
    assert runtime.asset_to_openlineage_converters["libvirt"] is convert_asset_to_openlineage
    assert Asset(uri="libvirt://KVM1/web1?x=1#frag").normalized_uri == "libvirt://kvm1/web1"
    with pytest.raises(DomainURIError):
        sanitize_uri(urllib.parse.urlsplit("libvirt://kvm1/a/b"))


def test_the_openlineage_provider_emits_it_as_an_output_dataset() -> None:
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset
    from openlineage.client.serde import Serde

    dataset = translate_airflow_asset(libvirt_domain("web1", host="kvm1", expected_state="defined"), None)
    assert dataset is not None
    assert (dataset.namespace, dataset.name) == ("libvirt://kvm1", "web1")
    facet = json.loads(Serde.to_json(dataset))["facets"]["libvirtDomain"]
    assert facet["expectedState"] == "defined"
    assert (facet["host"], facet["domain"]) == ("kvm1", "web1")
    assert facet["_schemaURL"].endswith("docs/shadow.md#the-libvirtdomain-facet")


def test_provider_info_declares_the_connection_form_declaratively() -> None:
    info = get_provider_info()
    (libvirt,) = [c for c in info["connection-types"] if c["connection-type"] == "libvirt"]
    assert libvirt["hook-class-name"] == "qubinode_recovery_provider.hooks.libvirt.LibvirtHook"
    assert libvirt["conn-fields"]["uri"]["schema"]["default"] == "test:///default"
    assert {"host_name", "timeout"} <= set(libvirt["conn-fields"])
    assert "qubinode_recovery_provider.sensors.libvirt" in info["sensors"][0]["python-modules"]
    (uris,) = [u for u in info["asset-uris"] if u["schemes"] == ["libvirt"]]
    assert uris["handler"].endswith("sanitize_uri")


def test_the_connection_type_is_known_to_airflow() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook = ProvidersManagerTaskRuntime().hooks["libvirt"]
    assert hook is not None
    assert hook.hook_class_name.endswith("LibvirtHook")
    assert "extra__libvirt__uri" in ProvidersManager().connection_form_widgets


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("web1", [("localhost", "web1", "running")]),
        ("kvm1/web1", [("kvm1", "web1", "running")]),
        ({"name": "db1", "host": "kvm2", "state": "defined"}, [("kvm2", "db1", "defined")]),
        (["kvm1/a", "libvirt://kvm1/b"], [("kvm1", "a", "running"), ("kvm1", "b", "running")]),
        ({"value": "kvm1/web1", "schema": {"type": "string"}}, [("kvm1", "web1", "running")]),
        ("", []),
    ],
)
def test_the_param_convention(value: object, expected: list[tuple[str, str, str]]) -> None:
    assert [(d.host, d.name, d.expected_state) for d in declarations_from_params(value)] == expected


@pytest.mark.parametrize(
    "value",
    [
        {"name": "web1", "state": 5},  # a conf's state that is no text
        {"name": "web1", "host": "lab", "state": ["running"]},
        {"value": {"name": "web1", "state": True}},
        "libvirt://[lab/web1",  # urlsplit: an unclosed IPv6 bracket
        "libvirt://lab\uff0fx/web1",  # urlsplit: a netloc NFKC normalisation changes
    ],
)
def test_a_hostile_param_is_a_bad_declaration_not_a_crash(value: object) -> None:
    """The REST runs' conf and the lineage events' conf come from outside: the detector and the event
    reader catch DomainURIError only."""
    with pytest.raises(DomainURIError):
        list(declarations_from_params(value))
