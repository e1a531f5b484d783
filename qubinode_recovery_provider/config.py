"""Every ``[qubinode_recovery]`` option in one place.

The table :data:`OPTIONS` is the single source of truth: Airflow's provider info is built from it (so
``airflow config list`` shows each option with its description and default), and :func:`get` reads an
option without importing Airflow, so the CLI and the core work in a plain Python process. Lookup order
is Airflow's own: the environment variable ``AIRFLOW__QUBINODE_RECOVERY__<OPTION>``, then the
``[qubinode_recovery]`` section of ``airflow.cfg``, then the default below.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from qubinode_recovery_provider.jsontext import loads as json_loads

SECTION = "qubinode_recovery"


class ConfigError(ValueError):
    """An option holds a value of the wrong type."""


@dataclass(frozen=True)
class Option:
    description: str
    type: str  # string | boolean | integer | float
    default: str
    example: str | None = None


OPTIONS: dict[str, Option] = {
    "pattern_dirs": Option(
        "Comma-separated directories with extra YAML pattern packs, loaded after the shipped ones.",
        "string",
        "",
        "/opt/airflow/qubinode_patterns",
    ),
    "state_dir": Option(
        "Directory for the ledger SQLite file, the spool of unwritten events and reports. Empty: "
        "$AIRFLOW_HOME/qubinode_recovery.",
        "string",
        "",
        "/opt/airflow/qubinode_recovery",
    ),
    "ledger_conn_id": Option(
        "Airflow connection id of the ledger database (PostgreSQL in production). Empty: a SQLite "
        "file in state_dir.",
        "string",
        "",
        "qubinode_ledger",
    ),
    "ledger_url": Option(
        "SQLAlchemy URL of the ledger, for processes without Airflow connections (the CLI). Overrides "
        "ledger_conn_id when set.",
        "string",
        "",
        "postgresql+psycopg://ledger@db/qubinode",
    ),
    "retention_days": Option(
        "Ledger rows older than this many days are purged by the retention job.", "integer", "90"
    ),
    "auto_recovery_enabled": Option(
        "Master switch for automatic recovery actions. Off: plans are made and recorded, never run.",
        "boolean",
        "True",
    ),
    "dry_run": Option("Record what automatic recovery would do without doing it.", "boolean", "False"),
    "approval_risk_threshold": Option(
        "Options whose risk is above this level (none, low, medium, high) wait for a human approval "
        "in the Airflow UI.",
        "string",
        "low",
    ),
    "approval_timeout_minutes": Option(
        "How long the recovery DAG's approval waits for a person; then its default, Reject, applies: "
        "nothing runs and the incident is escalated.",
        "float",
        "1440",
    ),
    "min_auto_confidence": Option(
        "Below this confidence an option is never carried out automatically.", "float", "0.7"
    ),
    "max_actions_shown": Option(
        "At most this many recommended actions (and fix steps of a manual fix) are shown per diagnosis "
        "in the CLI, reports, GitHub issues and the UI; the ledger keeps them all and --verbose shows "
        "them. 0 shows none.",
        "integer",
        "3",
    ),
    "max_commands_shown": Option(
        "At most this many diagnostic commands (and check steps of a manual fix) are shown per "
        "diagnosis, like max_actions_shown.",
        "integer",
        "4",
    ),
    "breaker_max_attempts": Option(
        "Circuit breaker: automatic attempts allowed per failure fingerprint per window.", "integer", "3"
    ),
    "breaker_max_host_attempts": Option(
        "Circuit breaker: automatic attempts allowed per libvirt host per window.", "integer", "10"
    ),
    "breaker_window_minutes": Option("Circuit breaker window length in minutes.", "integer", "60"),
    "probe_timeout_seconds": Option(
        "Timeout of each context probe (systemctl, podman, TCP connect).", "float", "2.0"
    ),
    "systemd_units": Option(
        "Comma-separated systemd units whose health is collected with a failure.",
        "string",
        "libvirtd.service,virtqemud.service,podman.socket,vault.service",
    ),
    "podman_containers": Option(
        "Comma-separated podman containers whose health is collected with a failure.",
        "string",
        "",
        "airflow-scheduler,vault",
    ),
    "reachability_targets": Option(
        "Comma-separated host:port targets probed for TCP reachability with a failure.",
        "string",
        "",
        "quay.io:443,vault.example.com:8200",
    ),
    "dependency_map": Option(
        "JSON object: service -> list of services or tools that depend on it.",
        "string",
        '{"libvirtd": ["kcli", "virsh", "virt-install"], "podman.socket": ["podman"], '
        '"vault": ["ansible", "airflow"]}',
    ),
    "log_tail_lines": Option(
        "How many lines of the failed attempt's log the analyzer reads.", "integer", "500"
    ),
    "notifier_budget_seconds": Option(
        "Time budget of the failure notifier inside the worker: it returns within this (+0.5 s) whatever "
        "the input, and the failure is recorded exactly once. At most three quarters of [core] "
        "task_success_overtime is used: Airflow stops the task process that long after the failure.",
        "float",
        "5.0",
    ),
    "policy_budget_seconds": Option(
        "Time budget of the retry policy's decision inside the worker; when the diagnosis takes longer, the "
        "task's own retries apply. The first failure in a task process also loads the pattern library "
        "(about 0.3 s on an idle 2-core worker, over 1 s on a busy one).",
        "float",
        "5.0",
    ),
    "recovery_conn_id": Option(
        "Airflow connection (type airflow_api, or http) of the Airflow REST API, used to start recovery "
        "runs, clear failed tasks, set notes and read runs for the shadow scan.",
        "string",
        "airflow_api",
    ),
    "libvirt_conn_ids": Option(
        "Comma-separated libvirt connection ids the shadow scan inventories.", "string", "libvirt_default"
    ),
    "lineage_file": Option(
        "OpenLineage file-transport JSON-lines file the shadow scan reads.",
        "string",
        "",
        "/opt/airflow/openlineage/events.jsonl",
    ),
    "marquez_url": Option(
        "Marquez API base URL; when set, the shadow scan reads lineage from Marquez.",
        "string",
        "",
        "http://marquez:5000",
    ),
    "kcli_check": Option(
        "The shadow scan DAG compares kcli's view of each listed host that is a kcli client (kcli -C "
        "CLIENT list vm) with libvirt's listing, when kcli's config file exists and kcli_command is "
        "found; kcli failing or disagreeing is a kcli_check_failed finding.",
        "boolean",
        "True",
    ),
    "kcli_config": Option(
        "kcli's client config file. Empty: ~/.kcli/config.yml of the user the scan runs as.",
        "string",
        "",
        "/home/airflow/.kcli/config.yml",
    ),
    "kcli_command": Option(
        "The kcli program the shadow scan DAG runs (a name on PATH or a path).", "string", "kcli"
    ),
    "shadow_scan_schedule": Option(
        "Cron schedule of the qubinode_shadow_scan DAG.", "string", "*/15 * * * *"
    ),
    "github_conn_id": Option(
        "GitHub connection id used for escalation issues (apache-airflow-providers-github).",
        "string",
        "github_default",
    ),
    "github_repository": Option(
        "owner/name of the repository escalation issues go to. Empty: Markdown reports only.",
        "string",
        "",
        "my-org/infra-incidents",
    ),
    "github_comment_interval_minutes": Option(
        "At most one comment per escalation issue in this many minutes (0 to a year; longer is clipped); "
        "occurrences in between are counted into the next comment.",
        "integer",
        "60",
    ),
    "airflow_base_url": Option(
        "Airflow UI base URL for the links in escalation issues. Empty: no links.",
        "string",
        "",
        "http://airflow:8080",
    ),
    "learned_model": Option(
        "Ask the learned text model (shipped with the provider, plain Python) when the patterns are not "
        "confident or name no cause (docs/diagnosis.md). False: the patterns alone decide.",
        "boolean",
        "True",
    ),
    "llm_model": Option(
        "LLM second opinion on low-confidence diagnoses (docs/llm.md): a PydanticAI model string, or with "
        "llm_base_url the model's name on that OpenAI-compatible server. Empty: off.",
        "string",
        "",
        "openai:gpt-4o",
    ),
    "llm_base_url": Option(
        "Base URL of an OpenAI-compatible server for the second opinion (Ollama, vLLM); no cloud account "
        "needed.",
        "string",
        "",
        "http://localhost:11434/v1",
    ),
    "llm_api_key_env": Option(
        "Environment variable holding the API key of an openai: model or llm_base_url server. Empty: "
        "OPENAI_API_KEY, none for llm_base_url; other providers read their own variable.",
        "string",
        "",
        "OPENROUTER_API_KEY",
    ),
    "llm_conn_id": Option(
        "Airflow connection of type pydanticai (common-ai provider: host = base URL, password = API key, "
        "extra model); overrides the three options above.",
        "string",
        "",
        "pydanticai_default",
    ),
    "llm_confidence_threshold": Option(
        "The second opinion is asked when the pattern confidence is below this, or the cause is unknown.",
        "float",
        "0.7",
    ),
    "llm_timeout_seconds": Option(
        "Hard time limit of one second-opinion call. When the failure callback's remaining budget cannot "
        "hold it, the recovery DAG asks instead.",
        "float",
        "15.0",
    ),
}


def _env_name(option: str) -> str:
    return f"AIRFLOW__{SECTION.upper()}__{option.upper()}"


@lru_cache(maxsize=1)
def _cfg_file_values() -> dict[str, str]:
    path = os.environ.get("AIRFLOW_CONFIG") or str(
        Path(os.environ.get("AIRFLOW_HOME", str(Path.home() / "airflow"))) / "airflow.cfg"
    )
    if not os.path.isfile(path):
        return {}  # what reading a missing file gives, without importing configparser
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error):
        return {}
    return dict(parser[SECTION]) if parser.has_section(SECTION) else {}


def get(option: str) -> str:
    """Return the raw string value of ``option``."""
    if option not in OPTIONS:
        raise KeyError(f"unknown option [{SECTION}] {option}")
    env = os.environ.get(_env_name(option))
    if env is not None:
        return env
    return _cfg_file_values().get(option, OPTIONS[option].default)


def get_bool(option: str) -> bool:
    value = get(option).strip().lower()
    if value in {"true", "t", "1", "yes", "on"}:
        return True
    if value in {"false", "f", "0", "no", "off", ""}:
        return False
    raise ConfigError(f"[{SECTION}] {option} must be true or false, got {value!r}")


def get_int(option: str) -> int:
    try:
        return int(get(option))
    except ValueError:
        raise ConfigError(f"[{SECTION}] {option} must be an integer, got {get(option)!r}") from None


def get_float(option: str) -> float:
    try:
        return float(get(option))
    except ValueError:
        raise ConfigError(f"[{SECTION}] {option} must be a number, got {get(option)!r}") from None


def get_list(option: str) -> list[str]:
    return [item.strip() for item in get(option).split(",") if item.strip()]


def get_json(option: str) -> Any:
    try:
        return json_loads(get(option) or "null")
    except json.JSONDecodeError as exc:
        raise ConfigError(f"[{SECTION}] {option} is not valid JSON: {exc.msg}") from None


def state_dir() -> Path:
    """The provider's state directory (created on first use by whoever writes there)."""
    configured = get("state_dir")
    if configured:
        return Path(configured)
    return Path(os.environ.get("AIRFLOW_HOME", str(Path.home() / "airflow"))) / "qubinode_recovery"


def clear_cache() -> None:
    """Forget the cached airflow.cfg values (tests change AIRFLOW_HOME)."""
    _cfg_file_values.cache_clear()


def provider_config_section() -> dict[str, Any]:
    """The ``config`` entry of the provider info, built from :data:`OPTIONS`."""
    return {
        SECTION: {
            "description": "Settings of the qubinode recovery provider: diagnosis, recovery policy, "
            "ledger, shadow scan and escalation.",
            "options": {
                name: {
                    "description": opt.description,
                    "version_added": "0.1.0",
                    "type": opt.type,
                    "example": opt.example,
                    "default": opt.default,
                }
                for name, opt in OPTIONS.items()
            },
        }
    }
