"""The service follows the MLflow champion alias: load it at start, swap when it moves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.champion import ChampionLoader
from service.engine import EngineUnavailableError
from tests.service.conftest import TINY_CONFIG
from training.config import TrackingConfig
from training.pipeline import Production
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


def test_a_registered_version_reproduces_the_in_process_recommendations(
    tiny_production: Production, tiny_bundle: Path, tmp_path: Path
) -> None:
    tracking = TrackingConfig.embedded(tmp_path)
    set_alias(tracking, _register(tracking, tiny_bundle))
    engine = ChampionLoader(tracking, cache_dir=tmp_path / "cache").load()
    everyone = np.arange(tiny_production.data.n_customers)
    in_process = tiny_production.recommender.recommend(everyone, TINY_CONFIG.serve_top_k)
    np.testing.assert_array_equal(engine.recommended, in_process)
    assert list(engine.customers.ids) == list(tiny_production.data.customers.ids)
    # the cross-sell and up-sell models answer identically after the round trip
    cart = np.array([0, 1])
    np.testing.assert_array_equal(
        engine.cross_sell.recommend_for_cart(cart, 5, customer_idx=3),
        tiny_production.cross_sell.recommend_for_cart(cart, 5, customer_idx=3),
    )
    np.testing.assert_array_equal(
        engine.up_sell.recommend_for_item(0, 5, customer_idx=3),
        tiny_production.up_sell.recommend_for_item(0, 5, customer_idx=3),
    )
