"""Service configuration: defaults, then an optional TOML/JSON file, then the environment.

Loaded once at the edge (`load_config`) and passed down as a frozen `ServiceConfig`. A file
key or an ``OFFERS_SERVICE_<FIELD>`` variable is a `ServiceConfig` field name; anything else is
an error naming it, as is any value outside its allowed range.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

ENV_PREFIX = "OFFERS_SERVICE_"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names it."""


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the transport layer needs; see the field comments for units."""

    host: str = "127.0.0.1"  # set 0.0.0.0 / [::] to listen on every interface
    port: int = 50051  # 0: any free port (tests)
    processes: int = 1  # server processes on one port (SO_REUSEPORT); > 1 needs a fixed port
    max_workers: int = 8  # threads per process for campaign plans and fsync waits (see servicer)
    max_concurrent_rpcs: int = 64  # beyond this: RESOURCE_EXHAUSTED; 0 = unlimited
    max_receive_message_bytes: int = 4 * 1024 * 1024
    max_send_message_bytes: int = 16 * 1024 * 1024
    outcome_log_path: Path = Path("build/service/offer_events.jsonl")
    # issued offers reach the disk (fsync) at most this long after they are logged; 0: before
    # the answer (outcomes are always on disk before RecordOutcome is acknowledged)
    issued_sync_s: float = 0.05
    default_items: int = 10  # a list count of 0 in a request means this many
    limit_items: int = 100  # largest max_cross_sell / max_up_sell / max_recommended
    default_bonus_offers: int = 3
    limit_bonus_offers: int = 20
    limit_cart_items: int = 500
    limit_outcome_events: int = 10_000  # events per RecordOutcome batch
    limit_campaign_customers: int = 1_000_000
    campaign_log_chunk: int = 500  # campaign offers logged (one fsync) per chunk before sending
    reload_poll_s: float = 30.0  # how often the model reload check runs
    log_summary_s: float = 60.0  # how often request counts and latencies are logged
    drain_s: float = 1.0  # NOT_SERVING before the listener closes, so balancers move away
    grace_s: float = 10.0  # in-flight requests get this long to finish on shutdown

    def __post_init__(self) -> None:
        _validate(self)


def _validate(cfg: ServiceConfig) -> None:
    def need(ok: bool, name: str, rule: str) -> None:
        if not ok:
            raise ConfigError(f"{name}: must be {rule}, got {getattr(cfg, name)!r}")

    need(bool(cfg.host), "host", "non-empty")
    need(0 <= cfg.port <= 65535, "port", "in [0, 65535]")
    need(cfg.processes >= 1, "processes", ">= 1")
    need(cfg.processes == 1 or cfg.port != 0, "port", "fixed (not 0) when processes > 1")
    need(cfg.max_concurrent_rpcs >= 0, "max_concurrent_rpcs", ">= 0")
    for name in (
        "max_workers",
        "max_receive_message_bytes",
        "max_send_message_bytes",
        "limit_items",
        "limit_bonus_offers",
        "limit_cart_items",
        "limit_outcome_events",
        "limit_campaign_customers",
        "campaign_log_chunk",
    ):
        need(getattr(cfg, name) >= 1, name, ">= 1")
    need(1 <= cfg.default_items <= cfg.limit_items, "default_items", "in [1, limit_items]")
    need(
        1 <= cfg.default_bonus_offers <= cfg.limit_bonus_offers,
        "default_bonus_offers",
        "in [1, limit_bonus_offers]",
    )
    for name in ("reload_poll_s", "log_summary_s"):
        need(math.isfinite(getattr(cfg, name)) and getattr(cfg, name) > 0, name, "> 0")
    for name in ("drain_s", "grace_s", "issued_sync_s"):
        need(math.isfinite(getattr(cfg, name)) and getattr(cfg, name) >= 0, name, ">= 0")


_HINTS = get_type_hints(ServiceConfig)
_FIELDS = tuple(f.name for f in fields(ServiceConfig))


def _convert(name: str, raw: Any, source: str) -> Any:
    kind = _HINTS[name]
    try:
        if kind is bool:
            raise TypeError  # no boolean fields today; refuse rather than guess
        if kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if kind is Path:
            return Path(str(raw))
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name} (from {source}): expected {kind.__name__}, got {raw!r}"
        ) from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"config file {path}: {err.strerror}") from None
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config file {path}: expected a .toml or .json file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"config file {path}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a table of settings")
    return data


def load_config(
    path: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> ServiceConfig:
    """Defaults, overridden by the file at ``path`` (if any), then by ``OFFERS_SERVICE_*``."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if path is not None:
        for key, raw in _read_file(Path(path)).items():
            if key not in _FIELDS:
                raise ConfigError(f"{key} (from {path}): unknown setting")
            values[key] = _convert(key, raw, str(path))
    for var, raw in env.items():
        if not var.startswith(ENV_PREFIX):
            continue
        key = var.removeprefix(ENV_PREFIX).lower()
        if key not in _FIELDS:
            raise ConfigError(f"{var}: unknown setting")
        values[key] = _convert(key, raw, var)
    return replace(ServiceConfig(), **values)
