"""Retry claims need evidence (issue 14, part 3): a pattern says ``retryable: true`` only for a cause that
is transient by nature, and says why in ``transient_evidence``; generic timeouts, unreachable hosts,
connect timeouts and process limits say ``null`` (the task's own retries apply)."""

from __future__ import annotations

import pytest

from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary
from qubinode_recovery_provider.models import RootCause


@pytest.fixture(scope="module")
def shipped() -> PatternLibrary:
    return PatternLibrary.load()


def test_every_retryable_true_pattern_states_its_transient_evidence(shipped: PatternLibrary) -> None:
    missing = [
        cp.id for cp in shipped.patterns if cp.pattern.retryable is True and not cp.pattern.transient_evidence
    ]
    assert not missing, f"retryable: true without transient_evidence: {missing}"


def test_transient_evidence_only_on_retryable_true_patterns(shipped: PatternLibrary) -> None:
    stray = [
        cp.id for cp in shipped.patterns if cp.pattern.transient_evidence and cp.pattern.retryable is not True
    ]
    assert not stray


def test_no_timeout_pattern_claims_a_retry_helps(shipped: PatternLibrary) -> None:
    """A timeout says only that something took too long, not that it is transient; a wait for a lock
    that another job holds is the exception (the job finishes)."""
    claims = [
        cp.id
        for cp in shipped.patterns
        if cp.pattern.category is RootCause.TIMEOUT
        and cp.pattern.retryable is True
        and "lock" not in cp.pattern.transient_evidence
    ]
    assert not claims


@pytest.mark.parametrize(
    "text",
    [
        "error: timed out waiting for the condition",
        "Job for freeipa.service failed because a timeout was exceeded.",
        "[2026-11-02, 10:14:05 UTC] {taskinstance.py:3311} ERROR - airflow.exceptions.AirflowTaskTimeout: "
        "Timeout, PID: 4242",
        "bash: fork: retry: Resource temporarily unavailable",
        "ssh: connect to host 10.0.0.5 port 22: Connection timed out",
        'fatal: [hv1]: UNREACHABLE! => {"changed": false, "msg": "Failed to connect to the host via ssh: '
        'ssh: connect to host 10.0.0.5 port 22: No route to host", "unreachable": true}',
        'Get "http://169.254.169.254/latest/meta-data/": '
        "dial tcp 169.254.169.254:80: connect: no route to host",
        "dial tcp 10.0.0.5:6443: i/o timeout",
        "dial tcp 10.0.0.5:8200: connect: connection refused",
        "Timeout waiting for Airflow",
        # EAI_AGAIN: the resolver did not answer; as often a missing or broken resolver configuration
        # (a container, WSL, a build chroot) as a passing outage
        "curl: (6) Could not resolve host: quay.io: Temporary failure in name resolution",
        "E: Failed to fetch http://archive.ubuntu.com/ubuntu/dists/focal/InRelease  "
        "Temporary failure resolving 'archive.ubuntu.com'",
        # sshd dropped the connection before key exchange: hosts.deny, fail2ban or MaxStartups
        "ssh_exchange_identification: read: Connection reset by peer",
        "kex_exchange_identification: Connection closed by remote host",
        # a namespace stuck terminating on a finalizer never finishes on its own
        'Error from server (Forbidden): serviceaccounts "tt" is forbidden: unable to create new content in '
        "namespace velero because it is being terminated",
        # a gateway timeout is a timeout behind a proxy
        "Error: code: 504, message: <html><head><title>504 Gateway Time-out</title></head></html>",
        "Error response from daemon: received unexpected HTTP status: 504 Gateway Time-out",
        # the server ended the connection: a connection limit, a filter or its shutdown as often as a hiccup
        "consumer: Cannot connect to redis://redis:6379//: Connection closed by server.",
        # PostgreSQL going down: nothing says it comes back
        "psycopg2.OperationalError: FATAL:  the database system is shutting down",
        # a name that does not resolve: a resolver failing for a moment answers like a misspelt name
        "Resolving mirror.example.org (mirror.example.org)... failed: Name or service not known.",
        'Get "https://quay.io/v2/": dial tcp: lookup quay.io on 10.0.0.2:53: no such host',
        # a 403 may be a permission, a quota, or a mirror refusing a rate-limited client
        "curl: (22) The requested URL returned error: 403 Forbidden",
        # SIGKILL does not say who sent it
        "[2026-11-02, 10:14:05 UTC] {local_task_job_runner.py:240} INFO - Task exited with return code "
        "Negsignal.SIGKILL",
        # a 500 is a server error, not an outage: only 429/502/503 are transient signals
        "Error response from daemon: received unexpected HTTP status: 500 Internal Server Error",
        # an EOF from a server that is not a registry or a mirror: how a crashed server looks
        'filebeat | {"log.level":"error","message":"failed to perform any bulk index operations: '
        'Post \\"https://es01:9200/_bulk\\": EOF"}',
        # the client's own back-off met the same reset on every attempt
        "\n".join(
            f'2021-08-13T06:15:3{n}Z [ERROR] auth.handler: error authenticating: error="read tcp '
            f'10.0.0.4:3862{n}->10.0.0.9:8200: read: connection reset by peer" backoff={n}s'
            for n in range(3)
        ),
    ],
)
def test_generic_timeouts_and_unreachable_hosts_are_not_claimed_transient(
    analyzer: FailureAnalyzer, text: str
) -> None:
    d = analyzer.analyze(text)
    assert d.root_cause is not RootCause.UNKNOWN, "the text should still be diagnosed"
    assert d.retryable is None, f"{d.primary_pattern} claims retryable {d.retryable}"


@pytest.mark.parametrize(
    "text",
    [
        "read tcp 192.168.155.178:46000->104.18.123.25:443: read: connection reset by peer",
        "Error response from daemon: toomanyrequests: Rate exceeded",
        "received unexpected HTTP status: 503 Service Unavailable",
        "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 2345 (apt-get)",
        ";; ->>HEADER<<- opcode: QUERY, status: SERVFAIL, id: 4242",
        "FATAL:  the database system is starting up",
        'message":"object is being deleted: pods \\"ray-head\\" already exists","reason":"AlreadyExists"',
        # a request cut off without an answer, also in a JSON-escaped log line
        'level=fatal msg="Error reading blob: Get \\"https://quay.io/v2/acme/app/blobs/sha256:0a1b\\": EOF"',
    ],
)
def test_transient_causes_are_claimed(analyzer: FailureAnalyzer, text: str) -> None:
    d = analyzer.analyze(text)
    assert d.retryable is True, f"{d.primary_pattern}: {d.retryable}"


@pytest.mark.parametrize(
    "text",
    [
        "Error: the --foo value is required",
        "ERROR: template 'base.j2' does not exist",
        "error: internal error: qemu unexpectedly closed the monitor: 2024-01-02T10:00:00.000000Z",
    ],
)
def test_a_symptom_pattern_does_not_claim_either_way(
    analyzer: FailureAnalyzer, shipped: PatternLibrary, text: str
) -> None:
    """A generic consequence decides only when no pattern naming a cause matched: its category is a
    guess, and its ``retryable`` is not evidence about the unnamed cause."""
    roles = {cp.id: cp.pattern.role for cp in shipped.patterns}
    d = analyzer.analyze(text)
    assert d.decisive_pattern is not None
    assert roles[d.decisive_pattern] == "symptom", d.primary_pattern
    assert d.retryable is None


@pytest.mark.parametrize(
    "text",
    [
        "write /var/lib/containers/storage/overlay/l/abc: no space left on device",
        'fatal: [hv1]: UNREACHABLE! => {"msg": "Failed to connect to the host via ssh: '
        'Permission denied (publickey).", "unreachable": true}',
        "Error: initializing source docker://quay.io/acme/app:v9: reading manifest v9 in quay.io/acme/app: "
        "manifest unknown",
        "ERROR! Syntax Error while loading YAML.",
        "Failed to authenticate to the chef server (http 401).",
    ],
)
def test_clear_non_transient_causes_still_claim_false(analyzer: FailureAnalyzer, text: str) -> None:
    d = analyzer.analyze(text)
    assert d.retryable is False, f"{d.primary_pattern}: {d.retryable}"


def test_a_missing_apt_lock_file_is_not_a_held_lock(analyzer: FailureAnalyzer) -> None:
    """The lists directory does not exist: no other apt process holds the lock, waiting cannot help."""
    d = analyzer.analyze(
        "Failed to lock apt for exclusive operation: Failed to lock directory /var/lib/apt/lists/: "
        "E:Could not open lock file /var/lib/apt/lists/lock - open (2: No such file or directory)"
    )
    assert d.retryable is not True, d.primary_pattern
