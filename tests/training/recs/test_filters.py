"""Business filters: inactive, already bought (unless replenishable and due), caps."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from tests.training.recs.conftest import START, make_items, make_tx
from training.recs.base import Interactions, build_interactions
from training.recs.filters import FilterConfig, FilteredRecommender, cap_per_category
from training.recs.popularity import Popularity

ITEMS = {
    "coffee_a": ("coffee", 8.0),
    "coffee_b": ("coffee", 9.0),
    "tv": ("tv", 500.0),
    "radio": ("tv", 50.0),
    "old_tv": ("tv", 300.0),
    "mug": ("kitchen", 4.0),
}


def _lines():
    # coffee buyers rebuy every 10 days; tv is bought once
    lines = [("me", f"m{d}", float(d), "coffee_a", 1) for d in (0, 10, 20)]
    lines += [("me", "mt", 5.0, "tv", 1)]
    for n in range(8):
        lines += [(f"c{n}", f"c{n}-{d}", float(d + n), "coffee_b", 1) for d in (0, 10)]
        lines += [(f"c{n}", f"t{n}", 3.0, "tv", 1), (f"c{n}", f"o{n}", 4.0, "old_tv", 1)]
        lines += [(f"c{n}", f"r{n}", 4.0, "radio", 1)]
    lines += [("c0", "mugs", 6.0, "mug", 1)]
    return lines


def _model(until_day: float, config: FilterConfig) -> tuple[FilteredRecommender, Interactions]:
    tx = make_tx(_lines())
    items = make_items(ITEMS, inactive=["old_tv"])
    data = build_interactions(tx, items, until=START + timedelta(days=until_day))
    model = FilteredRecommender(Popularity(), config)
    model.fit(data)
    return model, data


def test_replenishable_item_comes_back_only_when_the_customer_is_due():
    config = FilterConfig(replenish_min_repeat_rate=0.5, replenish_min_buyers=3)
    not_due, data = _model(22, config)  # 2 days after the last coffee, cycle 10 days
    me = data.customers.index(["me"])
    recs = set(data.items.to_external(not_due.recommend(me, 6)[0]))
    assert "coffee_a" not in recs and "tv" not in recs
    due, data = _model(29, config)  # 9 days after: due (>= 0.8 x 10)
    recs = set(data.items.to_external(due.recommend(me, 6)[0]))
    assert "coffee_a" in recs and "tv" not in recs
    cats = data.categories[due.replenishable_categories].tolist()
    assert cats == ["coffee"]


def test_inactive_items_and_price_caps_are_never_recommended():
    model, data = _model(29, FilterConfig(max_price=100.0, exclude_bought=False))
    recs = set(data.items.to_external(model.recommend(np.array([-1, 0]), 6).ravel()))
    assert "old_tv" not in recs and "tv" not in recs
    assert "radio" in recs


def test_at_most_max_per_category():
    model, data = _model(29, FilterConfig(max_per_category=1, exclude_bought=False))
    recs = model.recommend(np.array([-1]), 4)[0]
    cats = data.item_category[recs[recs >= 0]]
    assert len(cats) == len(set(cats.tolist())) >= 3


def test_cap_per_category_keeps_order():
    recs = np.array([[0, 1, 2, 3, -1]])
    out = cap_per_category(recs, np.array([0, 0, 1, 0]), 1, 3)
    np.testing.assert_array_equal(out, [[0, 2, -1]])
