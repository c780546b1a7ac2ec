"""Known answers of each model on histories built to have them."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training.recs.conftest import make_items, make_tx
from training.recs.als import ALS, ALSConfig
from training.recs.base import Interactions, build_interactions
from training.recs.ease import EASE
from training.recs.hybrid import Hybrid, HybridConfig
from training.recs.itemknn import ItemKNN, ItemKNNConfig
from training.recs.popularity import CategoryPopularity, OwnHistory, Popularity

SMALL_ALS = ALSConfig(factors=8, iterations=10, weighting="bm25", binary=True)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: ALS(SMALL_ALS),
        lambda: ItemKNN(ItemKNNConfig("bm25")),
        lambda: ItemKNN(ItemKNNConfig("cosine")),
        EASE,
    ],
    ids=["als", "knn_bm25", "knn_cosine", "ease"],
)
def test_checkerboard_withheld_item_comes_back_first(factory, checkerboard: Interactions):
    model = factory()
    model.fit(checkerboard)
    c00 = checkerboard.customers.index(["c00"])
    recs = model.recommend(c00, 3, exclude=checkerboard.rows(c00))
    assert checkerboard.items.to_external(recs[0][:1]) == ["a2"]


def test_popularity_alone_cannot_find_the_withheld_item(checkerboard: Interactions):
    model = Popularity()
    model.fit(checkerboard)
    c00 = checkerboard.customers.index(["c00"])
    recs = model.recommend(c00, 1, exclude=checkerboard.rows(c00))
    assert checkerboard.items.to_external(recs[0]) != ["a2"]


def _habit_history() -> Interactions:
    """c0 buys 'tea' every 7 days; everyone else buys 'cake' and 'jam' (more popular)."""
    lines = [("c0", f"t{d}", float(d), "tea", 1.0) for d in range(0, 120, 7)]
    for c in range(1, 12):
        for d in range(c, 120, 15):
            lines += [(f"c{c}", f"o{c}-{d}", float(d), "cake", 1.0)]
            lines += [(f"c{c}", f"o{c}-{d}", float(d), "jam", 1.0)]
        lines += [(f"c{c}", f"x{c}", 100.0 + c, "tea" if c % 3 == 0 else "bun", 1.0)]
    items = {"tea": ("drink", 2.0), "cake": ("bakery", 5.0), "jam": ("food", 3.0)}
    items["bun"] = ("bakery", 1.0)
    return build_interactions(make_tx(lines), make_items(items), until=None)


def test_own_history_and_hybrid_put_the_habitual_item_first():
    data = _habit_history()
    c0 = data.customers.index(["c0"])
    own = OwnHistory()
    own.fit(data)
    hybrid = Hybrid(HybridConfig(als=SMALL_ALS, num_trees=20, min_data_in_leaf=2))
    hybrid.fit(data)
    for model in (own, hybrid):
        assert data.items.to_external(model.recommend(c0, 1)[0]) == ["tea"], model.name
    assert hybrid.train_stats["train_customers"] > 0


def test_category_popularity_prefers_the_customers_category():
    data = _habit_history()
    model = CategoryPopularity()
    model.fit(data)
    c0 = data.customers.index(["c0"])
    assert data.items.to_external(model.recommend(c0, 1)[0]) == ["tea"]
    # without any history, the globally popular item
    assert data.items.to_external(model.recommend(np.array([-1]), 1)[0]) == ["cake"]


def test_als_fast_path_matches_the_batch_answer(world_als):
    model, data = world_als
    for c in (0, 5, 17):
        seen = data.rows(np.array([c]))
        batch = model.recommend(np.array([c]), 5, exclude=seen)[0]
        fast = model.recommend_one(c, 5, exclude_items=seen.indices, pool_size=None)
        np.testing.assert_array_equal(fast, batch)
    pooled = model.recommend_one(0, 5, pool_size=6)
    top6 = set(np.argsort(-model.popularity, kind="stable")[:6].tolist())
    assert set(pooled.tolist()) <= top6
    cold = model.recommend_one(-1, 3)
    np.testing.assert_array_equal(cold, model.recommend(np.array([-1]), 3)[0])


@pytest.fixture
def world_als(world: Interactions):
    model = ALS(SMALL_ALS)
    model.fit(world)
    return model, world
