"""Services, actions and commands come from the decisive cause, not from every pattern that matched
(issue 14, "Output noise")."""

from __future__ import annotations

from qubinode_recovery_provider.diagnosis import FailureAnalyzer
from qubinode_recovery_provider.diagnosis.analyzer import cause_advice
from qubinode_recovery_provider.models import DiagnosticContext, Health, RootCause, ServiceHealth
from qubinode_recovery_provider.output_limits import OutputLimits, shown_steps
from qubinode_recovery_provider.recovery import RecoveryPlanner
from qubinode_recovery_provider.recovery.options.manual import MAX_MANUAL_STEPS

#: An Ansible run whose registry login, Vault read and sudo failed (ignored) before SSH refused the key.
SSH_LOG = "\n".join(
    [
        "TASK [Log in to the registry] *****",
        'fatal: [localhost]: FAILED! => {"changed": false, "msg": "Error: logging into '
        '\\"registry.example.com\\": invalid username/password"}',
        "...ignoring",
        "TASK [Read the deploy secret] *****",
        'fatal: [localhost]: FAILED! => {"changed": false, "msg": "Error making API request. Code: 403. '
        'Errors: * permission denied"}',
        "...ignoring",
        "TASK [Become root] *****",
        'fatal: [localhost]: FAILED! => {"msg": "Missing sudo password"}',
        "...ignoring",
        "TASK [Gathering Facts] *****",
        'fatal: [vm1]: UNREACHABLE! => {"changed": false, "msg": "Failed to connect to the host via ssh: '
        'admin@192.168.122.10: Permission denied (publickey,gssapi-keyex,gssapi-with-mic).", '
        '"unreachable": true}',
        "vm1 : ok=0 changed=0 unreachable=1 failed=0 skipped=0 rescued=0 ignored=0",
    ]
)
LIBVIRT_REFUSED = (
    "error: failed to connect to the hypervisor\n"
    "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Connection refused"
)
VAULT_403 = (
    "Error reading secret/data/app: Error making API request. URL: GET "
    "http://127.0.0.1:8200/v1/secret/data/app Code: 403. Errors: * permission denied"
)
NOT_SSH = ("vault", "podman", "registry", "ansible", "sudo", "auth", "container")


def test_ssh_publickey_names_ssh_services_only(analyzer: FailureAnalyzer) -> None:
    d = analyzer.analyze(SSH_LOG)

    assert d.root_cause is RootCause.CREDENTIAL
    assert d.decisive_pattern == "ssh_001"
    assert len(d.matched_patterns) > 3  # the registry, Vault and sudo failures were seen...
    assert d.affected_services == ["ssh", "sshd"]  # ...and add nothing to the advice
    advice = " ".join(d.recommended_actions + d.diagnostic_commands).lower()
    assert not any(word in advice for word in ("vault", "podman", "sudo", "registry"))
    assert all(cmd.startswith(("ssh", "journalctl -u sshd")) for cmd in d.diagnostic_commands)


def test_ssh_publickey_alone_names_no_other_service(analyzer: FailureAnalyzer) -> None:
    d = analyzer.analyze(SSH_LOG.splitlines()[-2])
    assert d.affected_services == ["ssh", "sshd"]
    assert not any(word in " ".join(d.affected_services) for word in NOT_SSH)


def test_libvirt_connection_refused_gets_the_libvirt_summary(analyzer: FailureAnalyzer) -> None:
    d = analyzer.analyze(LIBVIRT_REFUSED)

    assert d.root_cause is RootCause.SERVICE_DEPENDENCY
    assert d.decisive_pattern == "libvirt_001"  # the tool's pattern, not the generic localhost one
    assert "libvirtd" in d.summary
    assert "127.0.0.1" not in d.summary
    assert "_0" not in d.summary
    assert d.affected_services == ["libvirtd"]
    assert "libvirtd" in d.recommended_actions[0]


def test_a_generic_pattern_alone_still_decides(analyzer: FailureAnalyzer) -> None:
    d = analyzer.analyze("dial tcp 127.0.0.1:5432: connect: connection refused")
    assert d.decisive_pattern == "svcdep_001"


def test_vault_403_manual_steps_start_with_vault(analyzer: FailureAnalyzer) -> None:
    d = analyzer.analyze(VAULT_403)
    plan = RecoveryPlanner(events=None).plan_recovery(d)
    manual = next(o for o in plan.options if o.type.value == "manual_fix")
    steps = shown_steps(manual.steps, OutputLimits())

    assert d.affected_services == ["vault"]
    assert steps[0].startswith("Check: `vault token")
    checks = [s for s in steps if s.startswith("Check: ")]
    assert len(checks) == 4
    assert all("vault" in s for s in checks)
    assert not any("ssh -v" in s or "podman login" in s for s in steps)
    fixes = [s for s in steps if s.startswith("Fix: ")]
    assert "token" in fixes[0]
    assert "polic" in fixes[0]
    assert len(fixes) <= 3
    assert len(manual.steps) <= MAX_MANUAL_STEPS  # the plan keeps the ranked rest


def test_a_down_service_the_log_ties_to_the_cause_joins_the_services(analyzer: FailureAnalyzer) -> None:
    """Correlated context: Vault's 403 is a credential failure in the same log, and the host says
    Vault is down; sudo is named too but healthy, libvirtd is down but unrelated."""
    context = DiagnosticContext(
        services=[
            ServiceHealth(name="vault.service", kind="systemd", state=Health.DOWN),
            ServiceHealth(name="libvirtd.service", kind="systemd", state=Health.DOWN),
            ServiceHealth(name="sudo", kind="systemd", state=Health.HEALTHY),
        ]
    )
    d = analyzer.analyze(SSH_LOG, context)
    assert d.affected_services == ["ssh", "sshd", "vault.service"]


def test_a_down_service_nothing_ties_to_the_cause_does_not(analyzer: FailureAnalyzer) -> None:
    context = DiagnosticContext(
        services=[ServiceHealth(name="libvirtd.service", kind="systemd", state=Health.DOWN)]
    )
    d = analyzer.analyze(SSH_LOG.splitlines()[-2], context)
    assert d.affected_services == ["ssh", "sshd"]


def test_no_decisive_pattern_gives_only_generic_advice() -> None:
    advice = cause_advice(None, RootCause.CREDENTIAL, False)
    assert advice.services == []
    assert advice.commands == []
    assert advice.actions == ["Do not retry blindly: a credential failure needs a change first."]
    assert cause_advice(None, RootCause.NETWORK, None).actions == []


def test_a_diagnosis_without_a_decisive_pattern_plans_generic_steps(analyzer: FailureAnalyzer) -> None:
    d = analyzer.analyze(VAULT_403)
    # another component (a learned model) names a category no matched pattern has
    d = d.model_copy(
        update={
            "root_cause": RootCause.NETWORK,
            "recommended_actions": [],
            "diagnostic_commands": [],
            "affected_services": [],
        }
    )
    assert d.decisive_pattern is None
    plan = RecoveryPlanner(events=None).plan_recovery(d)
    manual = next(o for o in plan.options if o.type.value == "manual_fix")
    assert manual.steps[0] == "Check: `getent hosts <host>`"  # the network playbook, not Vault's
    assert not any("vault" in s for s in manual.steps)
