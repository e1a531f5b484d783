"""Draft new patterns from failures no pattern explains.

The decisive line of every unknown failure is masked (:func:`.fingerprint.template`) and fed to a Drain3
template miner, which groups lines that differ only in their variable tokens. Each group large enough
becomes a draft pattern: the template's constant tokens, escaped, joined by lazy wildcards.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import yaml

from qubinode_recovery_provider.models import RootCause

if TYPE_CHECKING:
    from qubinode_recovery_provider.diagnosis.analyzer import FailureAnalyzer

_VARIABLE = re.compile(r"<\*>|<[a-z_0-9]+>")


def suggest_patterns(
    analyzer: FailureAnalyzer, texts: Sequence[str], *, min_size: int = 2
) -> list[dict[str, Any]]:
    """Group the unexplained failures among ``texts``; return a draft for each group of ``min_size``+."""
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)
    examples: dict[int, list[str]] = {}
    for text in texts:
        diagnosis = analyzer.analyze(text)
        if diagnosis.root_cause is not RootCause.UNKNOWN or not diagnosis.template:
            continue
        result = miner.add_log_message(diagnosis.template)
        examples.setdefault(result["cluster_id"], []).append(diagnosis.template)
    drafts = []
    for cluster in sorted(miner.drain.clusters, key=lambda c: -c.size):
        if cluster.size < min_size:
            continue
        drafts.append(_draft(cluster.get_template(), cluster.size, examples.get(cluster.cluster_id, [])))
    return drafts


def template_regex(template: str) -> str:
    """A regex for a mined template: constant parts escaped, variable parts as lazy wildcards."""
    parts = [re.escape(part.strip()) for part in _VARIABLE.split(template)]
    return r".*?".join(part for part in parts if part) or re.escape(template)


def _draft(template: str, size: int, lines: list[str]) -> dict[str, Any]:
    draft = {
        "id": "custom_001",
        "regex": template_regex(template),
        "category": "CHOOSE: see docs/categories.md",
        "severity": "medium",
        "retryable": None,
        "description": f"seen {size} times: {template}",
        "examples": [{"text": line, "source": "your task logs"} for line in lines[:3]],
        "near_misses": [],
    }
    return {
        "template": template,
        "size": size,
        "regex": draft["regex"],
        "yaml": yaml.safe_dump([draft], sort_keys=False, allow_unicode=True),
    }
