"""GitHub escalation issues from an Airflow ``github`` connection (the official
``apache-airflow-providers-github`` connection: a token in the password, or a GitHub App in the extra;
the host, when set, is the API base URL of a GitHub Enterprise server).

:func:`github_issues` builds the escalation sink through ``GithubHook`` and rebuilds its PyGithub client
with the outbox's settings (a timeout, no retries inside the worker: the outbox waits out a rate limit).
:func:`deliver_pending` drains the ledger's escalation outbox into it when a repository is configured
(``[qubinode_recovery] github_repository``); the recovery DAG's ``escalate`` step and the shadow scan's
``deliver_escalations`` task call it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider import config

if TYPE_CHECKING:
    from qubinode_recovery_provider.escalation.delivery import DeliveryReport
    from qubinode_recovery_provider.escalation.github import GitHubIssues

log = logging.getLogger(__name__)


def github_issues(conn_id: str | None = None, repository: str | None = None) -> GitHubIssues:
    """The escalation issues of ``repository`` through the Airflow connection ``conn_id``.

    :param conn_id: a ``github`` connection; default ``[qubinode_recovery] github_conn_id``
    :param repository: ``owner/name``; default ``[qubinode_recovery] github_repository``
    :raises ValueError: when no repository is configured or the connection is unusable
    """
    from airflow.providers.github.hooks.github import GithubHook

    from qubinode_recovery_provider.escalation.github import GitHubIssues, without_retries

    repo = (repository or config.get("github_repository")).strip()
    if not repo:
        raise ValueError("no GitHub repository: set [qubinode_recovery] github_repository")
    hook = GithubHook(github_conn_id=conn_id or config.get("github_conn_id"))
    return GitHubIssues(without_retries(hook.get_conn()), repo)


def deliver_pending(ledger: Any, fingerprint: str | None = None) -> DeliveryReport | None:
    """Drain the escalation outbox (only ``fingerprint``'s entries when given) into GitHub; None when no
    repository is configured. Never raises: an unusable connection is a report with the error, and the
    entries stay in the outbox.

    :param ledger: the ledger
    :param fingerprint: deliver only this incident's entries
    """
    from qubinode_recovery_provider.escalation.delivery import DeliveryReport, deliver_escalations
    from qubinode_recovery_provider.escalation.github import one_line

    if not config.get("github_repository").strip():
        return None
    try:
        sink = github_issues()
    except Exception as exc:
        reason = one_line(exc)
        log.warning("GitHub escalation not delivered (connection unusable): %s", reason)
        return DeliveryReport(errors=[f"connection: {reason}"])
    return deliver_escalations(ledger, sink, fingerprint=fingerprint)


__all__ = ["deliver_pending", "github_issues"]
