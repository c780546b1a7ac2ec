"""One contract suite run against every recommender (like implicit's RecommenderBase mixin)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from training.recs.als import ALS, ALSConfig
from training.recs.base import Interactions, Recommender, RecsError
from training.recs.crosssell import CrossSell, CrossSellConfig
from training.recs.ease import EASE
from training.recs.filters import FilterConfig, FilteredRecommender
from training.recs.hybrid import Hybrid, HybridConfig
from training.recs.itemknn import ItemKNN, ItemKNNConfig
from training.recs.popularity import CategoryPopularity, OwnHistory, Popularity
from training.recs.upsell import UpSell, UpSellConfig
from training.recs.zoo import load_model, save_model

SMALL_ALS = ALSConfig(factors=8, iterations=4, weighting="bm25", binary=True)

FACTORIES: dict[str, Callable[[], Recommender]] = {
    "popularity": Popularity,
    "category_popularity": CategoryPopularity,
    "own_history": OwnHistory,
    "als": lambda: ALS(SMALL_ALS),
    "item_knn_bm25": lambda: ItemKNN(ItemKNNConfig("bm25", neighbours=10)),
    "item_knn_cosine": lambda: ItemKNN(ItemKNNConfig("cosine", neighbours=10)),
    "ease": EASE,
    "hybrid": lambda: Hybrid(
        HybridConfig(als=SMALL_ALS, num_trees=8, min_data_in_leaf=2, validation_days=40)
    ),
    "cross_sell": lambda: CrossSell(CrossSellConfig(min_support=1, cf=SMALL_ALS)),
    "up_sell": lambda: UpSell(UpSellConfig(cf=SMALL_ALS)),
    "filtered_als": lambda: FilteredRecommender(
        ALS(SMALL_ALS), FilterConfig(max_per_category=2, max_price=20.0)
    ),
}


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def fitted(request: pytest.FixtureRequest, world: Interactions) -> Recommender:
    model = FACTORIES[request.param]()
    model.fit(world)
    return model


def _customers(world: Interactions) -> np.ndarray:
    return np.array([0, 3, -1, 7, world.n_customers - 1, -1], dtype=np.int32)


def test_answers_k_distinct_known_items_per_customer(fitted: Recommender, world: Interactions):
    recs = fitted.recommend(_customers(world), 5)
    assert recs.dtype == np.int32
    assert recs.shape == (6, 5)
    assert ((recs >= -1) & (recs < world.n_items)).all()
    for row in recs:
        real = row[row >= 0]
        assert len(set(real.tolist())) == real.size
        assert (row[real.size :] == -1).all(), "padding only at the end"


def test_unknown_customer_gets_the_cold_start_answer_without_raising(
    fitted: Recommender, world: Interactions
):
    recs = fitted.recommend(np.array([-1, -1]), 4)
    assert (recs[0] == recs[1]).all()
    if fitted.name != "up_sell":  # an up-sell needs an anchor item, not a customer
        assert (recs[0] >= 0).sum() > 0


def test_excluded_items_never_come_back(fitted: Recommender, world: Interactions):
    idx = _customers(world)
    exclude = sp.csr_matrix(
        (np.ones(idx.size), (np.arange(idx.size), (np.arange(idx.size) * 5) % world.n_items)),
        shape=(idx.size, world.n_items),
    )
    seen = world.rows(idx)
    exclude = sp.csr_matrix(((exclude + seen) > 0).astype(np.float32))
    recs = fitted.recommend(idx, 6, exclude=exclude)
    for r, row in enumerate(recs):
        banned = set(exclude[r].indices.tolist())
        assert not banned & set(row[row >= 0].tolist())


def test_exclude_with_the_wrong_shape_is_a_clear_error(fitted: Recommender, world: Interactions):
    bad = sp.csr_matrix((2, world.n_items + 1))
    with pytest.raises(RecsError, match="exclude"):
        fitted.recommend(np.array([0, 1]), 3, exclude=bad)


def test_saved_and_loaded_model_recommends_the_same(
    fitted: Recommender, world: Interactions, tmp_path: Path
):
    params, arrays = fitted.state()
    json.dumps(params)  # JSON-able
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    save_model(fitted, tmp_path)
    loaded = load_model(tmp_path)
    idx = _customers(world)
    seen = world.rows(idx)
    np.testing.assert_array_equal(loaded.recommend(idx, 8), fitted.recommend(idx, 8))
    np.testing.assert_array_equal(
        loaded.recommend(idx, 8, exclude=seen), fitted.recommend(idx, 8, exclude=seen)
    )


def test_unfitted_model_refuses_to_recommend():
    for factory in FACTORIES.values():
        with pytest.raises(RecsError, match="not fitted"):
            factory().recommend(np.array([0]), 3)
