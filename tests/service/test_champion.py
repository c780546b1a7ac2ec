"""The service follows the MLflow champion alias: load it at start, swap when it moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.champion import ChampionLoader
from service.engine import EngineUnavailableError
from training.config import TrackingConfig
from training.registry import log_training_run, register_bundle, set_alias


def _register(tracking: TrackingConfig, bundle: Path) -> int:
    run = log_training_run(
        tracking, params={}, metrics={"m": 1.0}, fingerprint={"rows": 1}, bundle_dir=bundle
    )
    return register_bundle(tracking, run.run_id)


def test_loader_follows_the_champion_alias(tiny_bundle: Path, tmp_path: Path) -> None:
    tracking = TrackingConfig.embedded(tmp_path)
    loader = ChampionLoader(tracking, cache_dir=tmp_path / "cache")
    v1 = _register(tracking, tiny_bundle)
    with pytest.raises(EngineUnavailableError, match="champion"):
        loader.load()

    set_alias(tracking, v1)
    assert loader.load().versions() == {"offer-engine": str(v1)}
    assert loader.check() is None  # nothing moved

    v2 = _register(tracking, tiny_bundle)
    set_alias(tracking, v2)
    swapped = loader.check()
    assert swapped is not None and swapped.versions() == {"offer-engine": str(v2)}
    assert loader.check() is None
