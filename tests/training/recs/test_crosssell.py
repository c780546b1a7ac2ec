"""Cross-sell: complements from baskets, never substitutes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training.recs.conftest import make_items, make_tx
from training.recs.base import Interactions, RecsError, build_interactions
from training.recs.crosssell import CrossSell, CrossSellConfig

ITEMS = {
    "laptop": ("computers", 900.0),
    "laptop_pro": ("computers", 1500.0),
    "bag": ("accessories", 40.0),
    "mouse": ("peripherals", 20.0),
    "socks": ("clothing", 5.0),
    "kettle": ("kitchen", 30.0),
}


def _shop() -> Interactions:
    """Laptops are bought with a bag and a mouse; laptop buyers also compare two laptops;
    socks and kettles are popular and bought together, never with laptops."""
    lines = []
    for n in range(12):
        c = f"c{n}"
        lines += [(c, f"L{n}", float(n), "laptop", 1), (c, f"L{n}", float(n), "bag", 1)]
        lines += [(c, f"L{n}", float(n), "mouse", 1)]
        if n % 2:
            lines += [(c, f"L{n}", float(n), "laptop_pro", 1)]
    lines += [("solo", "X", 50.0, "laptop", 1)]
    for n in range(30):
        c = f"s{n}"
        lines += [(c, f"S{n}", float(n), "socks", 1), (c, f"S{n}", float(n), "kettle", 1)]
    return build_interactions(make_tx(lines), make_items(ITEMS), until=None)


@pytest.fixture(scope="module")
def shop() -> Interactions:
    return _shop()


@pytest.mark.parametrize("measure", ["confidence", "npmi", "lift"])
def test_a_laptop_cart_gets_bag_and_mouse_not_another_laptop(shop: Interactions, measure: str):
    model = CrossSell(CrossSellConfig(min_support=3, measure=measure))
    model.fit(shop)
    cart = shop.items.index(["laptop"])
    recs = shop.items.to_external(model.recommend_for_cart(cart, 2))
    assert set(recs) == {"bag", "mouse"}
    more = shop.items.to_external(model.recommend_for_cart(cart, 5))
    assert "laptop_pro" not in more and "laptop" not in more


def test_customer_without_a_cart_is_anchored_on_recent_purchases(shop: Interactions):
    model = CrossSell(CrossSellConfig(min_support=3))
    model.fit(shop)
    solo = shop.customers.index(["solo"])
    assert set(shop.items.to_external(model.recommend(solo, 2)[0])) == {"bag", "mouse"}
    # c0 last bought laptop, bag and mouse: nothing of theirs comes back, and no laptop
    c0 = shop.customers.index(["c0"])
    recs = shop.items.to_external(model.recommend(c0, 3)[0])
    assert not {"laptop", "bag", "mouse", "laptop_pro"} & set(recs)
    # an empty cart means the same as no cart
    empty = shop.items.to_external(
        model.recommend_for_cart(np.array([]), 3, customer_idx=int(c0[0]))
    )
    assert empty == recs


def test_pairs_below_min_support_are_not_complements(shop: Interactions):
    model = CrossSell(CrossSellConfig(min_support=50))
    model.fit(shop)
    assert model.assoc.nnz == 0
    # the fallback still answers, outside the cart's category
    cart = shop.items.index(["laptop"])
    recs = shop.items.to_external(model.recommend_for_cart(cart, 3))
    assert "laptop_pro" not in recs and None not in recs


def test_items_bought_within_the_window_after_count_as_complements():
    lines = []
    for n in range(6):
        lines += [(f"c{n}", f"a{n}", 0.0, "laptop", 1), (f"c{n}", f"b{n}", 3.0, "bag", 1)]
    data = build_interactions(make_tx(lines), make_items(ITEMS), until=None)
    cart = data.items.index(["laptop"])
    same_basket = CrossSell(CrossSellConfig(min_support=3))
    same_basket.fit(data)
    assert same_basket.assoc.nnz == 0
    within = CrossSell(CrossSellConfig(min_support=3, window_days=7))
    within.fit(data)
    assert data.items.to_external(within.recommend_for_cart(cart, 1)) == ["bag"]


def test_unknown_cart_item_is_a_clear_error(shop: Interactions):
    model = CrossSell()
    model.fit(shop)
    with pytest.raises(RecsError, match="cart"):
        model.recommend_for_cart(np.array([999]), 3)
