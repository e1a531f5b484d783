"""Tests of the service dependency map (qubinode_recovery_provider.diagnosis.probes.dependencies)."""

from __future__ import annotations

from qubinode_recovery_provider.diagnosis.probes.dependencies import dependents_of, normalize_dependency_map


def test_dependents_are_transitive_and_cycle_safe() -> None:
    mapping = {
        "libvirtd": ["kcli", "virsh"],
        "kcli": ["deploy_vm_dag", "libvirtd.service"],
        "deploy_vm_dag": ["kcli"],
        "vault.service": ["ansible"],
    }
    assert dependents_of("libvirtd.service", mapping) == ["kcli", "virsh", "deploy_vm_dag"]
    assert dependents_of("vault", mapping) == ["ansible"]
    assert dependents_of("kcli", mapping) == ["deploy_vm_dag", "libvirtd.service", "virsh"]
    assert dependents_of("nothing", mapping) == []


def test_normalize_dependency_map() -> None:
    mapping, errors = normalize_dependency_map({"a": ["b"], "c": "d", "e": 5})
    assert mapping == {"a": ["b"], "c": ["d"]}
    assert len(errors) == 1
    assert "'e'" in errors[0]
    assert normalize_dependency_map([1, 2]) == ({}, ["dependency_map must be a JSON object, got list"])
    assert normalize_dependency_map(None) == ({}, [])
