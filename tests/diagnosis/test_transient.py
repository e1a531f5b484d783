"""The known-transient signals (``diagnosis/transient.py``): a ``retryable: true`` claim stands only
when the decisive line carries one and the log does not show it again and again."""

from __future__ import annotations

import pytest

from qubinode_recovery_provider.diagnosis import PatternLibrary
from qubinode_recovery_provider.diagnosis.transient import (
    MAX_LABELLED,
    RECURRING_LINES,
    transient_claim,
    transient_signal,
)


@pytest.mark.parametrize(
    ("line", "signal"),
    [
        ("read tcp 10.0.0.4:46000->104.18.123.25:443: read: connection reset by peer", "connection reset"),
        (
            "error: RPC failed; curl 56 GnuTLS recv error (-9): A TLS packet with unexpected length",
            "connection dropped mid-transfer",
        ),
        ('Error response from daemon: Get "https://quay.io/v2/": EOF', "registry or mirror cut off"),
        ("Error response from daemon: toomanyrequests: Rate exceeded", "rate limited (HTTP 429)"),
        (
            "received unexpected HTTP status: 503 Service Unavailable",
            "gateway or service unavailable (HTTP 502/503)",
        ),
        (
            "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 2345 (apt-get)",
            "lock held",
        ),
        ("sqlite3.OperationalError: database is locked", "lock held"),
        (";; ->>HEADER<<- opcode: QUERY, status: SERVFAIL, id: 4242", "resolver failure (SERVFAIL)"),
        ("FATAL:  the database system is starting up", "service starting up"),
        ('"message":"object is being deleted: pods \\"ray-head\\" already exists"', "object being deleted"),
    ],
)
def test_a_known_transient_signal_is_named(line: str, signal: str) -> None:
    assert transient_signal(line) == signal
    assert transient_claim(line)


@pytest.mark.parametrize(
    "line",
    [
        # a server error, not an outage: not among 429/502/503
        "Error response from daemon: received unexpected HTTP status: 500 Internal Server Error",
        # an EOF from a server that is not a registry or a mirror: how a crashed server looks
        '"message":"failed to perform any bulk index operations: Post \\"https://es01:9200/_bulk\\": EOF"',
        # generic timeouts, unreachable hosts and refusals carry no signal
        "error: timed out waiting for the condition",
        "ssh: connect to host 10.0.0.5 port 22: No route to host",
        "dial tcp 10.0.0.5:8200: connect: connection refused",
        "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory",
    ],
)
def test_a_line_without_a_known_transient_signal_makes_no_claim(line: str) -> None:
    assert transient_signal(line) is None
    assert not transient_claim(line)


def test_a_signal_the_log_shows_again_and_again_makes_no_claim() -> None:
    """A client that backs off and meets the same reset on every attempt: not passing on its own."""
    line = (
        'auth.handler: error authenticating: error="read tcp 10.0.0.4:38624->10.0.0.9:8200: '
        'read: connection reset by peer"'
    )
    assert transient_claim(line, RECURRING_LINES - 1)
    assert not transient_claim(line, RECURRING_LINES)


def test_every_retryable_true_pattern_can_make_its_claim() -> None:
    """The signal list and the packs agree: each shipped ``retryable: true`` pattern has an example whose
    matched line carries a known-transient signal (a pattern no line could claim for would be dead data)."""
    library = PatternLibrary.load()
    dead = []
    for cp in library.patterns:
        if cp.pattern.retryable is not True:
            continue
        lines = [line for ex in cp.pattern.examples for line in ex.text.splitlines()]
        if not any(cp.linear.search(line.encode()) and transient_claim(line) for line in lines):
            dead.append(cp.id)
    assert not dead


@pytest.mark.parametrize(
    "line",
    [
        "connecting to 10.0.5.503 failed: permission denied",  # an address's last part
        "dial tcp 10.0.0.1:503: connect: connection refused",  # a port
        "requires libfoo >= 1.502",  # a version
        "see issue #429 for the config error",
        "bad value: accurate limit must be a number",  # "rate limit" inside a word
        "separate limit exceeded: disk quota",
        "error: unable to open /run/lock/lvm/P_global: No such file or directory",  # a /lock/ directory
        "rm: cannot remove '/var/lock/subsys/libvirtd': Permission denied",
        "pam_faillock: account locked due to 5 failed logins",  # waits for an administrator
        "sshd: User root account is locked out",
        "nc: connect to db01 port 429 (tcp) failed: Connection refused",  # a port, as words
        "useradd: UID=503 is not unique",  # a user id
        "ERROR! Syntax Error while loading YAML, line 502, column 3",  # a line number
        "systemd[1]: Main process exited, pid: 503, exit status 1",  # a process id
    ],
)
def test_a_number_word_or_path_that_only_looks_like_a_signal_makes_no_claim(line: str) -> None:
    assert transient_signal(line) is None
    assert not transient_claim(line)


@pytest.mark.parametrize(
    ("line", "signal"),
    [
        ("HTTP/1.1 503", "gateway or service unavailable (HTTP 502/503)"),
        ("upstream answered status=502.", "gateway or service unavailable (HTTP 502/503)"),
        ("curl: (22) The requested URL returned error: 503", "gateway or service unavailable (HTTP 502/503)"),
        ("Error: 429 Too Many Requests", "rate limited (HTTP 429)"),
        ("API rate-limited: retry later", "rate limited (HTTP 429)"),
        ("(/var/lib/dpkg/lock-frontend), is another process using it?", "lock held"),
        ("status 503 from https://quay.io/v2/", "gateway or service unavailable (HTTP 502/503)"),
        ("error 429 on port 8443: slow down", "rate limited (HTTP 429)"),  # the port vetoes itself only
        ("line 12: upstream said 503", "gateway or service unavailable (HTTP 502/503)"),
    ],
)
def test_signals_next_to_punctuation_are_still_named(line: str, signal: str) -> None:
    assert transient_signal(line) == signal


@pytest.mark.parametrize(
    ("line", "signal"),
    [
        ("port 503 " * 40 + "Service Unavailable", "gateway or service unavailable (HTTP 502/503)"),
        ("uid=429 " * 40 + "Too Many Requests", "rate limited (HTTP 429)"),
        ("line 502, " * 40 + "upstream answered 502", "gateway or service unavailable (HTTP 502/503)"),
        ("pid: 429 " * 9_000 + "HTTP 429", "rate limited (HTTP 429)"),
        ("pid: 429 " * 100_000 + "Too Many Requests", "rate limited (HTTP 429)"),  # about 1 MB
        ("report 503 from the proxy", "gateway or service unavailable (HTTP 502/503)"),  # not "port 503"
        ("support 503 tickets", "gateway or service unavailable (HTTP 502/503)"),
    ],
)
def test_labelled_numbers_however_many_veto_only_themselves(line: str, signal: str) -> None:
    """A labelled number vetoed the matches it overlaps, but only the first 32 matches of a signal's
    expression were tried: a line with more labelled numbers lost its status and even its words."""
    assert transient_signal(line) == signal


def test_a_line_of_more_labelled_numbers_than_looked_at_claims_no_status() -> None:
    """Past MAX_LABELLED labelled numbers the line's statuses are not looked at (no retry claim), so
    a hostile line costs milliseconds; its words still count."""
    assert transient_signal("pid: 429 " * (MAX_LABELLED + 1) + "HTTP 429") is None
