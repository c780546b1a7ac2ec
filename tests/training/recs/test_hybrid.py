"""The hybrid's two rankers, its candidate pools and how it chooses its trees."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tests.training.recs.test_models import SMALL_ALS
from training.recs.base import Interactions, RecsError, truncate
from training.recs.hybrid import (
    FEATURES,
    CandidateSources,
    Hybrid,
    HybridConfig,
    RankingRows,
    label_matrix,
    mark_first_allowed,
    ranking_rows,
    train_ranker,
)

OWNED = FEATURES.index("owned")
TINY = HybridConfig(als=SMALL_ALS, num_trees=8, min_data_in_leaf=2, validation_days=40)


def test_popular_candidates_skip_the_banned_items():
    """Regression: popular candidates were taken before the bans, so a customer whose own
    popular items were excluded got fewer popular candidates than asked (and none at all when
    they owned every top item)."""
    order = np.array([3, 1, 0, 2, 4])
    banned = np.array(
        [
            [False, False, False, True, False],  # owns the most popular item
            [False, True, False, True, False],  # owns the two most popular
            [False, False, False, False, False],
        ]
    )
    mask = np.zeros((3, 5), dtype=bool)
    mark_first_allowed(mask, order, 2, banned)
    assert [sorted(np.flatnonzero(row).tolist()) for row in mask] == [[0, 1], [0, 2], [1, 3]]


def _window(world: Interactions) -> tuple[CandidateSources, sp.csr_matrix, np.ndarray]:
    since = world.as_of - TINY.validation_days
    inner = truncate(world, since)
    src = CandidateSources(TINY)
    src.fit(inner)
    labels = label_matrix(world, since, world.as_of)
    customers = np.flatnonzero(np.diff(inner.matrix.indptr) > 0).astype(np.int64)
    return src, labels, customers


def test_new_protocol_learns_from_new_items_only(world: Interactions):
    """Regression: the ranker used for excluded histories was trained on candidates drawn with
    the customer's items in place, so the collaborative ranks it learned meant something else
    than at serving time, where the customer's items are banned first."""
    src, labels, customers = _window(world)
    owned_before = src.matrices["strength"][customers] > 0
    window_labels = labels[customers]
    new_pairs = int((window_labels - window_labels.multiply(owned_before)).nnz)

    new = ranking_rows(src, labels, customers, "new")
    repeats = ranking_rows(src, labels, customers, "repeats")

    assert new.x.shape[0] > 0 and (new.x[:, OWNED] == 0).all()
    assert new.label_pairs == new_pairs
    assert (repeats.x[:, OWNED] > 0).any()
    assert repeats.label_pairs == int(window_labels.nnz)
    assert repeats.label_pairs_in_candidates > new.label_pairs_in_candidates
    for rows in (new, repeats):
        assert rows.groups.sum() == rows.x.shape[0] == rows.y.size


def test_unknown_protocol_is_a_clear_error(world: Interactions):
    src, labels, customers = _window(world)
    with pytest.raises(RecsError, match="protocol"):
        ranking_rows(src, labels, customers, "both")


class RecordingBooster:
    """A fake booster: scores every row 0 and counts the rows it was asked about."""

    def __init__(self) -> None:
        self.rows = 0

    def predict(self, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
        self.rows += x.shape[0]
        return np.zeros(x.shape[0])


def test_excluding_the_whole_history_switches_to_the_new_ranker(world: Interactions):
    model = Hybrid(TINY)
    model.fit(world)
    fakes = {"repeats": RecordingBooster(), "new": RecordingBooster()}
    model._boosters = dict(fakes)
    customers = np.arange(5)

    model.recommend(customers, 3)
    assert fakes["repeats"].rows > 0 and fakes["new"].rows == 0

    fakes["repeats"].rows = 0
    model.recommend(customers, 3, exclude=world.rows(customers))
    assert fakes["repeats"].rows == 0 and fakes["new"].rows > 0


def test_fit_learns_from_windows_before_the_end_of_history(world: Interactions):
    model = Hybrid(HybridConfig(als=SMALL_ALS, num_trees=4, min_data_in_leaf=2, windows=2))
    model.fit(world)
    windows = model.train_stats["windows"]
    assert [w["since"] for w in windows] == [world.as_of - 30.0, world.as_of - 60.0]
    assert set(model.train_stats) >= {"new", "repeats", "train_customers"}


def _rows(rng: np.random.Generator, groups: int, signal: bool) -> RankingRows:
    size = 20
    x = rng.normal(size=(groups * size, len(FEATURES))).astype(np.float32)
    if signal:
        y = np.zeros(groups * size, dtype=np.float32)
        best = x[:, 0].reshape(groups, size).argmax(axis=1) + np.arange(groups) * size
        y[best] = 1.0
    else:
        y = (rng.random(groups * size) < 0.05).astype(np.float32)
        y[::size] = 1.0  # every group has a positive
    return RankingRows(x, y, np.full(groups, size), int(y.sum()), int(y.sum()))


def test_trees_are_chosen_on_the_held_out_customers():
    cfg = HybridConfig(num_trees=200, early_stopping_rounds=10, min_data_in_leaf=20)
    rng = np.random.default_rng(0)
    _, learnable = train_ranker(_rows(rng, 150, True), _rows(rng, 50, True), cfg)
    _, noise = train_ranker(_rows(rng, 150, False), _rows(rng, 50, False), cfg)
    assert learnable["holdout_ndcg@10"] > 0.9
    assert noise["trees"] < cfg.num_trees
    assert noise["holdout_ndcg@10"] < learnable["holdout_ndcg@10"]


def test_a_saved_state_without_both_rankers_is_refused(world: Interactions):
    model = Hybrid(TINY)
    model.fit(world)
    params, arrays = model.state()
    params["boosters"] = {"repeats": params["boosters"]["repeats"]}
    with pytest.raises(RecsError, match="boosters"):
        Hybrid.from_state(params, arrays)
