"""How much advice people are shown: at most a few actions and commands per diagnosis.

A :class:`~qubinode_recovery_provider.models.Diagnosis` keeps every recommended action and diagnostic
command of its cause, best first, and a plan's manual fix keeps every check and fix step; the ledger
stores them all. Every presenter (``diagnose`` text and JSON, ``incidents show``, ``plan``, the
reports and GitHub issue bodies, the recovery UI) shows the first few through this module, and all of
them when asked (``--verbose``). The limits are ``[qubinode_recovery] max_actions_shown`` and
``max_commands_shown`` (3 and 4).

A manual-fix step is a check (a command to run, :data:`CHECK_STEP`) or a fix (an action,
:data:`FIX_STEP`); the planner writes them with these prefixes and :func:`shown_steps` counts them so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import Diagnosis, RecoveryPlan

log = logging.getLogger(__name__)

DEFAULT_ACTIONS = 3
DEFAULT_COMMANDS = 4
#: The prefix of a manual-fix step that is a command to run (counted against the commands limit).
CHECK_STEP = "Check: "
#: The prefix of a manual-fix step that is an action (counted against the actions limit).
FIX_STEP = "Fix: "
#: The JSON key that says how many items a trimmed list does not show.
NOT_SHOWN_KEY = "not_shown"


@dataclass(frozen=True)
class OutputLimits:
    """At most ``actions`` actions and ``commands`` commands are shown; None shows all.

    :param actions: recommended actions (and fix steps) shown per diagnosis or plan option.
    :param commands: diagnostic commands (and check steps) shown per diagnosis or plan option.
    """

    actions: int | None = DEFAULT_ACTIONS
    commands: int | None = DEFAULT_COMMANDS

    @classmethod
    def everything(cls) -> OutputLimits:
        """No limit (``--verbose``)."""
        return cls(None, None)

    @classmethod
    def configured(cls, *, verbose: bool = False) -> OutputLimits:
        """The configured limits, or none with ``verbose``. A bad value is a logged warning and the
        default applies: showing a diagnosis never fails because of this setting."""
        if verbose:
            return cls.everything()
        return cls(
            _configured("max_actions_shown", DEFAULT_ACTIONS),
            _configured("max_commands_shown", DEFAULT_COMMANDS),
        )


def _configured(option: str, default: int) -> int:
    from qubinode_recovery_provider import config

    try:
        value = config.get_int(option)
    except config.ConfigError as exc:
        log.warning("%s; showing %d", exc, default)
        return default
    if value < 0:
        log.warning("[%s] %s must be 0 or more, got %d; showing %d", config.SECTION, option, value, default)
        return default
    return value


def shown(items: Sequence[str], limit: int | None) -> list[str]:
    """The first ``limit`` items (all of them when ``limit`` is None)."""
    return list(items) if limit is None else list(items[:limit])


def shown_steps(steps: Sequence[str], limits: OutputLimits) -> list[str]:
    """A manual fix's steps as shown: at most ``limits.commands`` checks and ``limits.actions`` fixes,
    in their order; any other step is kept."""
    kept: list[str] = []
    checks = fixes = 0
    for step in steps:
        if not isinstance(step, str):
            kept.append(step)
        elif step.startswith(CHECK_STEP):
            checks += 1
            if limits.commands is not None and checks > limits.commands:
                continue
        elif step.startswith(FIX_STEP):
            fixes += 1
            if limits.actions is not None and fixes > limits.actions:
                continue
        kept.append(step)
    return kept


def brief_diagnosis(diagnosis: Diagnosis, limits: OutputLimits) -> Diagnosis:
    """A copy of ``diagnosis`` with at most the shown actions and commands."""
    return diagnosis.model_copy(
        update={
            "recommended_actions": shown(diagnosis.recommended_actions, limits.actions),
            "diagnostic_commands": shown(diagnosis.diagnostic_commands, limits.commands),
        }
    )


def not_shown(diagnosis: Diagnosis, limits: OutputLimits) -> dict[str, int]:
    """How many actions and commands of ``diagnosis`` the limits hide (only the non-zero counts)."""
    hidden = {
        "recommended_actions": len(diagnosis.recommended_actions)
        - len(shown(diagnosis.recommended_actions, limits.actions)),
        "diagnostic_commands": len(diagnosis.diagnostic_commands)
        - len(shown(diagnosis.diagnostic_commands, limits.commands)),
    }
    return {key: count for key, count in hidden.items() if count}


def diagnosis_json(diagnosis: Diagnosis, limits: OutputLimits) -> dict[str, Any]:
    """The diagnosis as JSON as shown: trimmed lists, and ``not_shown`` with the hidden counts when
    anything is hidden."""
    data = brief_diagnosis(diagnosis, limits).to_json_dict()
    hidden = not_shown(diagnosis, limits)
    if hidden:
        data[NOT_SHOWN_KEY] = hidden
    return data


def diagnosis_data(data: dict[str, Any], limits: OutputLimits) -> dict[str, Any]:
    """A stored diagnosis (a JSON dict, as the ledger returns it) as shown, like :func:`diagnosis_json`."""
    out = dict(data)
    hidden = {}
    for key, limit in (("recommended_actions", limits.actions), ("diagnostic_commands", limits.commands)):
        items = out.get(key)
        if isinstance(items, list):
            out[key] = shown(items, limit)
            if len(items) > len(out[key]):
                hidden[key] = len(items) - len(out[key])
    if hidden:
        out[NOT_SHOWN_KEY] = hidden
    return out


def brief_plan(plan: RecoveryPlan, limits: OutputLimits) -> RecoveryPlan:
    """A copy of ``plan`` whose options show at most the limited check and fix steps."""
    options = [o.model_copy(update={"steps": shown_steps(o.steps, limits)}) for o in plan.options]
    return plan.model_copy(update={"options": options})


def plan_data(data: dict[str, Any], limits: OutputLimits) -> dict[str, Any]:
    """A stored plan (a JSON dict) as shown: each option's steps limited like :func:`shown_steps`."""
    out = dict(data)
    options = out.get("options")
    if isinstance(options, list):
        out["options"] = [
            {**o, "steps": shown_steps(o["steps"], limits)}
            if isinstance(o, dict) and isinstance(o.get("steps"), list)
            else o
            for o in options
        ]
    return out


def incident_data(detail: Mapping[str, object] | None, limits: OutputLimits) -> dict[str, Any] | None:
    """An incident's detail (``Ledger.incident_detail``) as shown: each diagnosis's actions and
    commands and each plan's manual steps limited."""
    if not detail:
        return None
    data: dict[str, Any] = dict(detail)
    diagnoses = [
        {**item, "diagnosis": diagnosis_data(item["diagnosis"], limits)}
        if isinstance(item, dict) and isinstance(item.get("diagnosis"), dict)
        else item
        for item in data.get("diagnoses") or []
    ]
    plans = [plan_data(p, limits) if isinstance(p, dict) else p for p in data.get("plans") or []]
    return {**data, "diagnoses": diagnoses, "plans": plans}


#: How to see everything, from the command line.
VERBOSE_HINT = "--verbose shows all"


def ledger_hint(fingerprint: str) -> str:
    """How to see everything of an incident kept in the ledger (for reports and issue bodies)."""
    return f"`qubinode-recovery incidents show {fingerprint} --verbose` shows all"


def more_note(hidden: int, noun: str, hint: str = VERBOSE_HINT) -> str:
    """The line that says what a trimmed list leaves out (empty when nothing is).

    :param hidden: how many items are not shown.
    :param noun: what an item is (``command``).
    :param hint: how to see them all.
    """
    if hidden <= 0:
        return ""
    return f"{hidden} more {noun}{'' if hidden == 1 else 's'} not shown ({hint})"
