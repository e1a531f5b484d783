"""The reference guide's RecoveryPlanner examples ("RecoveryPlanner Usage", "RecoveryPlanner Options"),
run as written with the imports adapted to this package; escalations reach the local GitHub stand-in."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from support.github_stub import TOKEN, GitHubStub, start_github_stub, stop_github_stub

from qubinode_recovery_provider import api
from qubinode_recovery_provider.diagnosis import FailureAnalyzer
from qubinode_recovery_provider.escalation.github import marker
from qubinode_recovery_provider.models import RecoveryActionType
from qubinode_recovery_provider.recovery import RecoveryPlanner

GUIDE_REPO = "Qubinode/qubinode_navigator"
ERROR = "Error response from daemon: unauthorized: authentication required for registry.redhat.io"


@pytest.fixture
def navigator(isolated_config: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubStub]:
    """The guide's repository on the stand-in; GITHUB_TOKEN and GITHUB_API_URL as GitHub Actions sets them."""
    stub = start_github_stub(GUIDE_REPO)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", stub.url)
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    api.reset()
    try:
        yield stub
    finally:
        api.reset()
        stop_github_stub(stub)


@pytest.fixture
def failure_analysis():  # type: ignore[no-untyped-def]
    return FailureAnalyzer().analyze(ERROR)


def test_recovery_planner_usage_as_written(
    navigator: GitHubStub, failure_analysis, capsys: pytest.CaptureFixture[str]
) -> None:
    # --- the guide's "RecoveryPlanner Usage" -------------------------------------------------------
    planner = RecoveryPlanner(
        github_token=os.getenv("GITHUB_TOKEN"),
        github_repo="Qubinode/qubinode_navigator",
    )

    plan = planner.plan_recovery(failure_analysis)
    print(f"Recommended: {plan.recommended_option.action_type.value}")

    # Execute if safe
    if plan.recommended_option.confidence > 0.85:
        success = planner.execute_recovery(plan, plan.recommended_option)
        # -----------------------------------------------------------------------------------------------
        assert isinstance(success, bool)
    printed = capsys.readouterr().out.strip()
    assert printed in {f"Recommended: {t.value}" for t in RecoveryActionType}
    assert plan.recommended_option is plan.recommended


def test_escalating_through_the_planner_files_one_github_issue(
    navigator: GitHubStub, failure_analysis
) -> None:
    planner = RecoveryPlanner(github_token=os.getenv("GITHUB_TOKEN"), github_repo=GUIDE_REPO)
    plan = planner.plan_recovery(failure_analysis)
    (escalate,) = [o for o in plan.options if o.action_type is RecoveryActionType.ESCALATE]

    assert planner.execute_recovery(plan, escalate) is True
    assert planner.execute_recovery(plan, escalate) is True  # queued once per run: no second issue
    assert len(navigator.issues) == 1
    issue = navigator.issues[1]
    assert issue["body"].startswith(marker(plan.fingerprint))
    assert f"root-cause:{plan.root_cause.value}" in issue["labels"]
    manual = next(i for i, o in enumerate(plan.options) if o.action_type is RecoveryActionType.MANUAL_FIX)
    assert planner.execute_recovery(plan, manual) is False  # a person's option did not succeed by itself


def test_recovery_planner_options_as_written(
    navigator: GitHubStub, failure_analysis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_REPOSITORY", GUIDE_REPO)
    # --- the guide's "RecoveryPlanner Options" -----------------------------------------------------
    # With GitHub integration (creates issues on escalation)
    planner = RecoveryPlanner(
        github_token=os.getenv("GITHUB_TOKEN"),
        github_repo=os.getenv("GITHUB_REPOSITORY"),
    )

    # Without GitHub (no escalation issues)
    without = RecoveryPlanner()
    # -----------------------------------------------------------------------------------------------
    plan = without.plan_recovery(failure_analysis)
    (escalate,) = [o for o in plan.options if o.action_type is RecoveryActionType.ESCALATE]
    assert without.execute_recovery(plan, escalate) is True  # queued in the ledger's outbox
    assert navigator.requests == []
    assert planner.execute_recovery(plan, escalate) is True  # the queued escalation is delivered
    assert len(navigator.issues) == 1
    assert "ghp_" not in repr(planner._github)


def test_an_option_from_another_plan_is_refused(navigator: GitHubStub, failure_analysis) -> None:
    planner = RecoveryPlanner()
    plan = planner.plan_recovery(failure_analysis)
    other = plan.options[0].model_copy(update={"title": "not in the plan"})
    with pytest.raises(ValueError, match="not one of the plan's options"):
        planner.execute_recovery(plan, other)
    with pytest.raises(ValueError, match="has no option 99"):
        planner.execute_recovery(plan, 99)
