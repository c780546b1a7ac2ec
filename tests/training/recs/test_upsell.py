"""Up-sell: a pricier variant in the same category, fitted to the customer's price tier."""

from __future__ import annotations

import numpy as np

from tests.training.recs.conftest import make_items, make_tx
from training.recs.base import build_interactions
from training.recs.upsell import UpSell, UpSellConfig

ITEMS = {
    "wine_5": ("wine", 5.0),
    "wine_7": ("wine", 7.0),
    "wine_12": ("wine", 12.0),
    "wine_30": ("wine", 30.0),
    "wine_9_old": ("wine", 9.0),
    "beer_8": ("beer", 8.0),
    "cheese_4": ("cheese", 4.0),
}


def _data():
    lines = [("thrifty", "o1", 0.0, "wine_5", 1), ("thrifty", "o2", 5.0, "cheese_4", 1)]
    lines += [("premium", "p1", 0.0, "wine_30", 1), ("premium", "p2", 1.0, "wine_12", 1)]
    lines += [("premium", "p3", 2.0, "wine_5", 1)]
    lines += [(f"x{n}", f"x{n}", 3.0, "wine_7", 1) for n in range(5)]
    lines += [(f"y{n}", f"y{n}", 3.0, "beer_8", 1) for n in range(9)]
    return build_interactions(
        make_tx(lines), make_items(ITEMS, inactive=["wine_9_old"]), until=None
    )


def test_up_sell_is_pricier_same_category_active_and_within_the_step():
    data = _data()
    model = UpSell(UpSellConfig(min_ratio=1.1, max_ratio=2.5))
    model.fit(data)
    anchor = int(data.items.index(["wine_5"])[0])
    recs = data.items.to_external(model.recommend_for_item(anchor, 5))
    real = [r for r in recs if r is not None]
    # wine_7 and wine_12 (<= 12.5); not the inactive wine_9_old, not wine_30, not beer
    assert set(real) == {"wine_7", "wine_12"}


def test_premium_customer_gets_the_premium_variant_first():
    data = _data()
    model = UpSell(UpSellConfig(max_ratio=3.0, pop_weight=0.2))
    model.fit(data)
    anchor = int(data.items.index(["wine_5"])[0])
    premium, thrifty = (int(i) for i in data.customers.index(["premium", "thrifty"]))
    top_premium = data.items.to_external(model.recommend_for_item(anchor, 1, customer_idx=premium))
    top_thrifty = data.items.to_external(model.recommend_for_item(anchor, 1, customer_idx=thrifty))
    assert top_premium == ["wine_12"]
    assert top_thrifty == ["wine_7"]


def test_customer_up_sell_anchors_on_the_latest_purchase_with_one():
    data = _data()
    model = UpSell()
    model.fit(data)
    thrifty = data.customers.index(["thrifty"])
    # latest purchase is cheese_4 (no pricier cheese), so the anchor is wine_5
    recs = data.items.to_external(model.recommend(thrifty, 2)[0])
    assert set(recs) <= {"wine_7", "wine_12"} and recs[0] is not None
    assert (model.recommend(np.array([-1]), 2) == -1).all()
