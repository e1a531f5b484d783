"""What to do about each root cause: the planner's domain knowledge, kept as data.

A :class:`Playbook` per category (``docs/categories.md``) says in which order the option types are
preferred (once when a retry can help, once when it cannot), how a retry must be shaped for that cause,
and which diagnostic and fix commands a person should run. Tool-specific commands are added for the tool
a matched pattern belongs to (the pattern id's first segment: ``libvirt_001`` -> ``libvirt``).

Every string here is text for a person. ``<name>`` slots are for the person to fill in; nothing
from a log is ever substituted into them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from qubinode_recovery_provider.models import RecoveryActionType, RootCause

A = RecoveryActionType


class RetryMode(enum.StrEnum):
    """How a retry is shaped for a cause."""

    WITH_DELAY = "with_delay"
    LONGER_TIMEOUT = "longer_timeout"
    AFTER_FIX = "after_fix"


@dataclass(frozen=True)
class Playbook:
    """Recovery knowledge for one root cause.

    :param retryable_by_default: used when the diagnosis does not say whether a retry can help
    :param blind_retry: whether a retry may run unattended at all for this cause (never for
        credentials, configuration, resource exhaustion...)
    :param retry_mode: the shape of the retry when it is allowed
    :param order_retryable: option types from most to least preferred when a retry can help
    :param order_not_retryable: the same when it cannot
    :param wait_for_resource: resource a WAIT option waits for when no service is named
    """

    root_cause: RootCause
    retryable_by_default: bool | None
    blind_retry: bool
    retry_mode: RetryMode
    retry_delay_seconds: int
    retry_confidence: float
    order_retryable: tuple[RecoveryActionType, ...]
    order_not_retryable: tuple[RecoveryActionType, ...]
    why_retryable: str
    why_not_retryable: str
    diagnostics: tuple[str, ...]
    fixes: tuple[str, ...]
    wait_confidence: float = 0.85
    wait_for_resource: str | None = None
    manual_confidence: float = 0.6
    manual_minutes: int = 30
    skip_confidence: float = 0.2

    def order(self, retryable: bool | None) -> tuple[RecoveryActionType, ...]:
        """The preference order for a diagnosis whose retryability is ``retryable``."""
        return self.order_retryable if retryable else self.order_not_retryable


PLAYBOOKS: dict[RootCause, Playbook] = {
    RootCause.VIRTUALIZATION: Playbook(
        root_cause=RootCause.VIRTUALIZATION,
        retryable_by_default=False,
        blind_retry=False,
        retry_mode=RetryMode.AFTER_FIX,
        retry_delay_seconds=0,
        retry_confidence=0.6,
        order_retryable=(A.RETRY, A.MANUAL_FIX, A.ESCALATE, A.ROLLBACK, A.SKIP),
        order_not_retryable=(A.MANUAL_FIX, A.ESCALATE, A.ROLLBACK, A.RETRY, A.SKIP),
        why_retryable="the hypervisor error is reported as transient",
        why_not_retryable="the hypervisor cannot run this guest as configured; a retry fails the same "
        "way until the host or the VM definition is fixed",
        diagnostics=(
            "ls -l /dev/kvm",
            "lsmod | grep kvm",
            "virt-host-validate qemu",
            "grep -E -c 'vmx|svm' /proc/cpuinfo",
            "virsh domcapabilities",
        ),
        fixes=(
            "Enable VT-x/AMD-V in the firmware and load the KVM module (modprobe kvm_intel or kvm_amd).",
            "For a nested setup, enable nested virtualization on the parent hypervisor.",
            "Check the machine type, CPU model and devices of the VM profile against "
            "`virsh domcapabilities` and correct the profile.",
        ),
    ),
    RootCause.NETWORK: Playbook(
        root_cause=RootCause.NETWORK,
        retryable_by_default=True,
        blind_retry=True,
        retry_mode=RetryMode.WITH_DELAY,
        retry_delay_seconds=60,
        retry_confidence=0.85,
        order_retryable=(A.RETRY, A.WAIT, A.MANUAL_FIX, A.ESCALATE, A.ROLLBACK, A.SKIP),
        order_not_retryable=(A.MANUAL_FIX, A.ESCALATE, A.RETRY, A.ROLLBACK, A.SKIP),
        why_retryable="network failures are usually transient; a delayed retry resumes the run "
        "from the failed task",
        why_not_retryable="the name or address itself is wrong; a retry reaches the same nowhere",
        diagnostics=(
            "getent hosts <host>",
            "ip route get <address>",
            "resolvectl status",
            "curl -sSI https://<endpoint>",
            "nc -vz <host> <port>",
        ),
        fixes=(
            "Check DNS, routes and firewall rules between the worker and the endpoint.",
            "If the remote service answered 5xx or 429, wait for it or lower the request rate.",
            "Correct a misspelt host name in the connection, inventory or image reference.",
        ),
        wait_confidence=0.75,
    ),
    RootCause.STORAGE: Playbook(
        root_cause=RootCause.STORAGE,
        retryable_by_default=False,
        blind_retry=False,
        retry_mode=RetryMode.AFTER_FIX,
        retry_delay_seconds=0,
        retry_confidence=0.6,
        order_retryable=(A.RETRY, A.MANUAL_FIX, A.ROLLBACK, A.ESCALATE, A.SKIP),
        order_not_retryable=(A.MANUAL_FIX, A.ROLLBACK, A.ESCALATE, A.RETRY, A.SKIP),
        why_retryable="the storage error is reported as transient",
        why_not_retryable="space, quota, pools and disks do not fix themselves; a retry fails the same "
        "way until someone frees space or repairs the pool",
        diagnostics=(
            "df -h",
            "df -i",
            "virsh pool-list --all",
            "virsh vol-list <pool>",
            "dmesg -T | grep -i -E 'i/o error|read-only'",
        ),
        fixes=(
            "Free space: remove unused images and volumes (podman image prune, virsh vol-delete "
            "<volume> --pool <pool>) or grow the file system.",
            "Start an inactive pool: virsh pool-start <pool>, then virsh pool-autostart <pool>.",
            "A read-only file system or I/O errors point at failing hardware: stop and escalate.",
        ),
    ),
    RootCause.SERVICE_DEPENDENCY: Playbook(
        root_cause=RootCause.SERVICE_DEPENDENCY,
        retryable_by_default=True,
        blind_retry=True,
        retry_mode=RetryMode.WITH_DELAY,
        retry_delay_seconds=60,
        retry_confidence=0.6,
        order_retryable=(A.WAIT, A.RETRY, A.MANUAL_FIX, A.ESCALATE, A.ROLLBACK, A.SKIP),
        order_not_retryable=(A.MANUAL_FIX, A.WAIT, A.ESCALATE, A.RETRY, A.ROLLBACK, A.SKIP),
        why_retryable="a service the task needs is down or restarting; waiting until it is healthy "
        "and then retrying fixes the run without touching the service",
        why_not_retryable="the service is disabled, masked, missing or sealed; it will not come back "
        "by itself",
        diagnostics=(
            "systemctl status <unit>",
            "journalctl -u <unit> --since -1h",
            "systemctl is-enabled <unit>",
        ),
        fixes=(
            "Start the service: sudo systemctl start <unit> (unmask or enable it first if needed).",
            "If it keeps failing, read its journal for the reason before starting it again.",
        ),
    ),
    RootCause.CREDENTIAL: Playbook(
        root_cause=RootCause.CREDENTIAL,
        retryable_by_default=False,
        blind_retry=False,
        retry_mode=RetryMode.AFTER_FIX,
        retry_delay_seconds=0,
        retry_confidence=0.6,
        order_retryable=(A.MANUAL_FIX, A.ESCALATE, A.RETRY, A.ROLLBACK, A.SKIP),
        order_not_retryable=(A.MANUAL_FIX, A.ESCALATE, A.RETRY, A.ROLLBACK, A.SKIP),
        why_retryable="credentials are never retried blindly: each try can lock the account",
        why_not_retryable="a wrong or expired credential fails every retry and may lock the account",
        diagnostics=(
            "ssh -v <user>@<host> true",
            "vault token lookup",
            "podman login --get-login <registry>",
            "sudo -l",
            "ausearch -m avc -ts recent",
        ),
        fixes=(
            "Renew or correct the credential where it is stored (the Airflow connection or Vault), "
            "never in the DAG file.",
            "Install the SSH public key for the user the task connects as.",
            "For a local denial, fix the file ownership or the SELinux label.",
        ),
    ),
    RootCause.RESOURCE_EXHAUSTION: Playbook(
        root_cause=RootCause.RESOURCE_EXHAUSTION,
        retryable_by_default=False,
        blind_retry=False,
        retry_mode=RetryMode.AFTER_FIX,
        retry_delay_seconds=120,
        retry_confidence=0.55,
        order_retryable=(A.WAIT, A.MANUAL_FIX, A.ESCALATE, A.RETRY, A.ROLLBACK, A.SKIP),
        order_not_retryable=(A.MANUAL_FIX, A.ESCALATE, A.ROLLBACK, A.WAIT, A.RETRY, A.SKIP),
        why_retryable="the resource is briefly unavailable; waiting until it is free again is safer "
        "than retrying straight away",
        why_not_retryable="memory, processes or file handles ran out; an unchanged retry hits the "
        "same limit and can take other workloads down with it",
        diagnostics=(
            "free -h",
            "journalctl -k --since -1h | grep -i -E 'out of memory|oom'",
            "cat /proc/sys/fs/file-nr",
            "ulimit -n",
            "podman stats --no-stream",
            "virsh nodememstats",
        ),
        fixes=(
            "Free memory on the host (stop idle VMs: virsh list, kcli list vm) or lower the memory of "
            "the VM profile.",
            "Raise the limit that was hit (LimitNOFILE or TasksMax of the unit, pids_limit of the "
            "container).",
            "Run fewer things at once: an Airflow pool for the task, fewer Ansible forks.",
        ),
        wait_confidence=0.75,
        wait_for_resource="memory",
    ),
    RootCause.CONFIGURATION: Playbook(
        root_cause=RootCause.CONFIGURATION,
        retryable_by_default=False,
        blind_retry=False,
        retry_mode=RetryMode.AFTER_FIX,
        retry_delay_seconds=0,
        retry_confidence=0.6,
        order_retryable=(A.MANUAL_FIX, A.ROLLBACK, A.ESCALATE, A.RETRY, A.SKIP),
        order_not_retryable=(A.MANUAL_FIX, A.ROLLBACK, A.ESCALATE, A.RETRY, A.SKIP),
        why_retryable="a configuration error is fixed by changing the input, not by retrying",
        why_not_retryable="the input or setup is wrong; a retry reads the same input and fails again",
        diagnostics=(
            "airflow dags list-import-errors",
            "ansible-playbook --syntax-check <playbook>",
            "ansible-inventory --list",
            "kcli info plan <plan>",
        ),
        fixes=(
            "Correct the input the error names (variable, option, file path, image name) in the DAG, "
            "the inventory or the kcli profile.",
            "Install the missing module or package in the worker image.",
        ),
    ),
    RootCause.TIMEOUT: Playbook(
        root_cause=RootCause.TIMEOUT,
        retryable_by_default=True,
        blind_retry=True,
        retry_mode=RetryMode.LONGER_TIMEOUT,
        retry_delay_seconds=30,
        retry_confidence=0.75,
        order_retryable=(A.RETRY, A.MANUAL_FIX, A.ESCALATE, A.ROLLBACK, A.SKIP),
        order_not_retryable=(A.MANUAL_FIX, A.ESCALATE, A.RETRY, A.ROLLBACK, A.SKIP),
        why_retryable="the operation ran out of time with no deeper cause visible; a retry with a "
        "longer timeout resumes the run from the failed task",
        why_not_retryable="the operation is reported as unable to finish; more time will not help",
        diagnostics=(
            "uptime",
            "virsh domifaddr <vm>",
            "virsh console <vm>",
            "airflow tasks states-for-dag-run <dag_id> <run_id>",
        ),
        fixes=(
            "Find what was slow (VM boot, package mirror, a held lock) before raising the timeout again.",
            "Raise execution_timeout of the task if the work legitimately takes longer.",
        ),
    ),
    RootCause.STATE_MISMATCH: Playbook(
        root_cause=RootCause.STATE_MISMATCH,
        retryable_by_default=False,
        blind_retry=True,
        retry_mode=RetryMode.WITH_DELAY,
        retry_delay_seconds=120,
        retry_confidence=0.8,
        order_retryable=(A.RETRY, A.ROLLBACK, A.MANUAL_FIX, A.SKIP, A.ESCALATE),
        order_not_retryable=(A.ROLLBACK, A.MANUAL_FIX, A.SKIP, A.ESCALATE, A.RETRY),
        why_retryable="another process holds the resource and will release it; a delayed retry "
        "succeeds once it has",
        why_not_retryable="the world is not in the state the task expects; undo what the failed run "
        "left behind (or reconcile it) before running again",
        diagnostics=(
            "virsh list --all",
            "kcli list vm",
            "podman ps -a",
            "virsh net-list --all",
        ),
        fixes=(
            "Reconcile the resource with what the DAG expects: remove the leftover (kcli delete vm "
            "<name>, podman rm <name>) or start it (virsh start <name>).",
            "Make the task idempotent: create the resource only when it is missing.",
        ),
        skip_confidence=0.45,
    ),
    RootCause.UNKNOWN: Playbook(
        root_cause=RootCause.UNKNOWN,
        retryable_by_default=None,
        blind_retry=True,
        retry_mode=RetryMode.WITH_DELAY,
        retry_delay_seconds=60,
        retry_confidence=0.4,
        order_retryable=(A.ESCALATE, A.MANUAL_FIX, A.RETRY, A.ROLLBACK, A.SKIP),
        order_not_retryable=(A.ESCALATE, A.MANUAL_FIX, A.RETRY, A.ROLLBACK, A.SKIP),
        why_retryable="the log does not show the cause; a person should look before anything runs",
        why_not_retryable="the log does not show the cause; a person should look before anything runs",
        diagnostics=(
            "journalctl --since -1h -p err",
            "airflow tasks states-for-dag-run <dag_id> <run_id>",
        ),
        fixes=(
            "Read the complete task log in the Airflow UI: the cause is often far above the last line.",
            "Add a pattern for this failure (qubinode-recovery patterns suggest) once it is understood.",
        ),
        manual_confidence=0.5,
    ),
}

#: Extra diagnostic commands for the tool a matched pattern belongs to.
TOOL_DIAGNOSTICS: dict[str, tuple[str, ...]] = {
    "libvirt": ("virsh list --all", "journalctl -u libvirtd --since -1h"),
    "qemu": ("virt-host-validate qemu", "journalctl -u libvirtd --since -1h"),
    "kcli": ("kcli list vm", "kcli list pool", "kcli info vm <name>"),
    "ansible": ("ansible <host> -m ping -vvv", "ansible-playbook <playbook> --check -vvv"),
    "podman": ("podman ps -a", "podman system info"),
    "vault": ("vault status", "vault token lookup"),
    "ssh": ("ssh -v <user>@<host> true",),
    "airflow": ("airflow dags list-import-errors", "airflow tasks states-for-dag-run <dag_id> <run_id>"),
    "systemd": ("systemctl --failed", "journalctl -xeu <unit> --since -1h"),
    "registry": ("skopeo inspect docker://<image>", "podman login --get-login <registry>"),
    "resource": ("free -h", "journalctl -k --since -1h | grep -i oom"),
}

#: The service a WAIT option waits for when a pattern of this tool, or a service of this name, is blamed.
TOOL_SERVICES: dict[str, str] = {
    "libvirt": "libvirtd.service",
    "libvirtd": "libvirtd.service",
    "virtqemud": "virtqemud.service",
    "qemu": "libvirtd.service",
    "kcli": "libvirtd.service",
    "virsh": "libvirtd.service",
    "podman": "podman.socket",
    "vault": "vault.service",
}

#: Resources a WAIT option may wait for (the probe understands these names).
RESOURCES = frozenset({"memory", "cpu", "disk"})


def playbook_for(root_cause: RootCause) -> Playbook:
    """The playbook of ``root_cause``."""
    return PLAYBOOKS[root_cause]


def tool_of(pattern_id: str) -> str:
    """The tool a pattern id belongs to: its first segment (``libvirt_001`` -> ``libvirt``)."""
    return pattern_id.split("_", 1)[0].lower()
