from __future__ import annotations

from pathlib import Path

import pytest

from qubinode_recovery_provider import config

pytestmark = pytest.mark.usefixtures("isolated_config")


def test_defaults_without_airflow_cfg() -> None:
    assert config.get_int("breaker_max_attempts") == 3
    assert config.get_bool("auto_recovery_enabled") is True
    assert config.state_dir() == Path(config.os.environ["AIRFLOW_HOME"]) / "qubinode_recovery"


def test_airflow_cfg_then_environment_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "airflow_home"
    home.mkdir()
    (home / "airflow.cfg").write_text("[qubinode_recovery]\nbreaker_max_attempts = 7\ndry_run = yes\n")
    config.clear_cache()
    assert config.get_int("breaker_max_attempts") == 7
    assert config.get_bool("dry_run") is True
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__BREAKER_MAX_ATTEMPTS", "9")
    assert config.get_int("breaker_max_attempts") == 9


@pytest.mark.parametrize(
    ("option", "value", "reader", "message"),
    [
        ("breaker_max_attempts", "three", config.get_int, "must be an integer, got 'three'"),
        ("dry_run", "perhaps", config.get_bool, "must be true or false, got 'perhaps'"),
        ("min_auto_confidence", "high", config.get_float, "must be a number, got 'high'"),
        ("dependency_map", "{broken", config.get_json, "is not valid JSON"),
    ],
)
def test_wrong_values_give_one_clear_line(monkeypatch, option, value, reader, message) -> None:
    monkeypatch.setenv(f"AIRFLOW__QUBINODE_RECOVERY__{option.upper()}", value)
    with pytest.raises(config.ConfigError, match=message) as err:
        reader(option)
    assert str(err.value).startswith(f"[qubinode_recovery] {option} ")


def test_unknown_option_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        config.get("no_such_option")


def test_lists_and_json() -> None:
    assert config.get_list("systemd_units")[0] == "libvirtd.service"
    assert config.get_json("dependency_map")["libvirtd"] == ["kcli", "virsh", "virt-install"]
