"""Secrets are removed before text leaves the process; the words a diagnosis needs stay."""

from __future__ import annotations

import pytest

from qubinode_recovery_provider.redaction import MASK, RULES, redact, redact_lines

GITHUB_PAT = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
FINE_GRAINED = "github_pat_" + "11ABCDEFG0" * 8
VAULT = "hvs.CAESIJlWb3RlIGZvciB0aGUgdGVzdHMgb25seQ"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("cloning https://deploy:s3cr3t-Pa55@git.example.com/infra.git", "s3cr3t-Pa55"),
        ("postgresql+psycopg://airflow:hunter2@db:5432/airflow", "hunter2"),
        ("curl -H 'Authorization: Bearer abcdefghijklmnop123' https://api", "abcdefghijklmnop123"),
        ('{"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}', "dXNlcjpwYXNzd29yZA=="),
        ("X-Vault-Token: s.abcdefghijklmnopqrstuvwx", "s.abcdefghijklmnopqrstuvwx"),
        (f"export GITHUB_TOKEN={GITHUB_PAT}", GITHUB_PAT),
        (f"token is {GITHUB_PAT} ok", GITHUB_PAT),
        (f"using {FINE_GRAINED}", FINE_GRAINED),
        (f"vault token {VAULT} expired", VAULT),
        (f"aws_access_key_id = {AWS_KEY}", AWS_KEY),
        (f"key {AWS_KEY} is inactive", AWS_KEY),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG"),
        (f"cookie session {JWT}", JWT),
        ("ansible-playbook site.yml -e ansible_become_password=Sup3rS3cret", "Sup3rS3cret"),
        ("vault login -method=userpass username=ops password='p@ss w0rd'", "p@ss w0rd"),
        ('{"username": "svc", "password": "correct horse"}', "correct horse"),
        ("podman login --password=Xy12345678 quay.io", "Xy12345678"),
        ("podman login --password Xy12345678 quay.io", "Xy12345678"),
        ("sshpass -p 'root123' ssh root@host", "root123"),
        ("client_secret: 3f9a8b7c6d5e", "3f9a8b7c6d5e"),
        ("slack webhook xoxb-123456789012-abcdefABCDEF", "xoxb-123456789012-abcdefABCDEF"),
    ],
)
def test_each_secret_shape_is_masked(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert MASK in out


def test_private_key_block_is_removed_whole() -> None:
    key = "\n".join(
        [
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
            "QyNTUxOQAAACDa7Kq0rq3m0XwG4v2+examplekeymaterialonlyfortests0000000000",
            "-----END OPENSSH PRIVATE KEY-----",
        ],
    )
    lines = redact_lines(["loading key:", *key.splitlines(), "Permission denied (publickey)."])
    text = "\n".join(lines)
    assert "b3BlbnNzaC1rZXktdjEAAAA" not in text
    assert "QyNTUxOQAAACDa7Kq0rq3m0Xw" not in text
    assert "-----BEGIN OPENSSH PRIVATE KEY-----***-----END OPENSSH PRIVATE KEY-----" in text
    assert lines[-1] == "Permission denied (publickey)."


def test_a_truncated_key_block_is_masked_to_the_end() -> None:
    out = redact("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\nMIIEpQ")
    assert "MIIEowIBAAKCAQEA7bq" not in out


@pytest.mark.parametrize(
    "text",
    [
        "root@10.0.0.5: Permission denied (publickey).",
        "Permission denied (publickey,password).",
        'FATAL:  password authentication failed for user "airflow"',
        "Error: token expired, run vault login again",
        "401 Unauthorized: invalid credentials",
        "ansible_ssh_private_key_file=/home/admin/.ssh/id_rsa",
        "KeyError: 'vm_name'",
        "dial tcp: lookup quay.io: Temporary failure in name resolution",
        "https://quay.io/v2/ returned 503 Service Unavailable",
        "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Connection refused",
    ],
)
def test_diagnostic_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_redaction_is_idempotent() -> None:
    text = "url https://u:p4ss@h/x Authorization: Bearer abcdefghijk password=abc"
    once = redact(text)
    assert redact(once) == once


def test_rule_names_are_unique() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))


def test_empty_inputs() -> None:
    assert redact("") == ""
    assert redact_lines([]) == []
