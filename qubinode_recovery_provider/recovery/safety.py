"""Guards that keep text from a diagnosis or a log away from anything that runs.

The planner builds its steps from curated templates. The only values it takes from a diagnosis are
service names (kept only when they look like a systemd unit or container name) and the pattern packs'
hints and diagnostic commands (kept only when they contain no command substitution, expansion or control
characters). Identifiers passed to actions are checked against the same expressions Airflow and systemd
use for their names.
"""

from __future__ import annotations

import re

#: systemd unit / podman container name: no leading dash (it would read as an option), no shell syntax.
SERVICE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@_.:-]{0,127}$")
#: Airflow dag_id / task_id (``KEY_REGEX``).
AIRFLOW_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")
#: Airflow run_id (the default ``allowed_run_id_pattern`` characters).
AIRFLOW_RUN_ID_RE = re.compile(r"^[A-Za-z0-9_.~:+-]{1,250}$")
#: Name of a registered action or recovery handler.
REGISTERED_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:*@-]{0,199}$")

#: Command substitution and expansion: text with these would do more than it says if pasted into a shell.
_FORBIDDEN_IN_TEXT = ("`", "$(", "${", "<(", ">(")
MAX_TEXT_LENGTH = 400


def is_service_name(value: object) -> bool:
    """True when ``value`` is a plausible systemd unit or container name."""
    return isinstance(value, str) and bool(SERVICE_NAME_RE.match(value))


def unit_stem(name: str) -> str:
    """``libvirtd.service`` and ``libvirtd`` both become ``libvirtd``."""
    return name.removesuffix(".service")


def is_airflow_key(value: object) -> bool:
    """True when ``value`` is a valid Airflow dag_id or task_id."""
    return isinstance(value, str) and bool(AIRFLOW_KEY_RE.match(value))


def is_airflow_run_id(value: object) -> bool:
    """True when ``value`` is a run_id made of the characters Airflow allows by default."""
    return isinstance(value, str) and bool(AIRFLOW_RUN_ID_RE.match(value))


def is_safe_text(value: object) -> bool:
    """True when a hint or diagnostic command carried by a diagnosis may be shown as a step.

    The analyzer copies these from the pattern packs (data reviewed like code), never from the log; a
    diagnosis read from a file may carry anything, though. Steps are only ever shown to a person, and
    this check keeps out what would run more than the words say if pasted into a shell: command
    substitution, process substitution, parameter expansion, backticks, and control characters such as
    a newline that would start a second command.

    :param value: the candidate text
    """
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT_LENGTH:
        return False
    if any(token in value for token in _FORBIDDEN_IN_TEXT):
        return False
    return not any(ord(char) < 32 or ord(char) == 127 for char in value)
