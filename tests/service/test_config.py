"""Configuration: defaults, then file, then environment, then validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigError, ServiceConfig, load_config


def test_file_then_environment_override_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "service.toml"
    path.write_text('port = 6000\nmax_workers = 2\noutcome_log_path = "/var/log/o.jsonl"\n')
    cfg = load_config(path, {"OFFERS_SERVICE_PORT": "7000", "HOME": "/root"})
    assert (cfg.port, cfg.max_workers) == (7000, 2)
    assert cfg.outcome_log_path == Path("/var/log/o.jsonl")
    assert cfg.grace_s == ServiceConfig().grace_s


def test_json_files_work_too(tmp_path: Path) -> None:
    path = tmp_path / "service.json"
    path.write_text('{"drain_s": 0.5}')
    assert load_config(path, {}).drain_s == 0.5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OFFERS_SERVICE_PORTT": "1"}, "OFFERS_SERVICE_PORTT: unknown setting"),
        ({"OFFERS_SERVICE_PORT": "x"}, "port (from OFFERS_SERVICE_PORT): expected int"),
        ({"OFFERS_SERVICE_PORT": "70000"}, "port: must be in [0, 65535]"),
        ({"OFFERS_SERVICE_DEFAULT_ITEMS": "500"}, "default_items: must be in [1, limit_items]"),
        ({"OFFERS_SERVICE_GRACE_S": "-1"}, "grace_s: must be >= 0"),
        ({"OFFERS_SERVICE_ISSUED_SYNC_S": "-0.1"}, "issued_sync_s: must be >= 0"),
        ({"OFFERS_SERVICE_PROCESSES": "0"}, "processes: must be >= 1"),
        ({"OFFERS_SERVICE_PROCESSES": "2", "OFFERS_SERVICE_PORT": "0"}, "port: must be fixed"),
    ],
)
def test_bad_settings_are_errors_naming_them(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, env)
    assert str(err.value).startswith(message)


def test_unknown_file_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "service.toml"
    path.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match=r"prot .*unknown setting"):
        load_config(path, {})
