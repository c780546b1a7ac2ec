from __future__ import annotations

import math

import polars as pl
import pytest

from features.names import Feat
from features.preferences import category_preferences, category_sales, price_tier, top_categories
from tests.features._world import AS_OF, FUTURE_LINES, ITEMS, LINES, tx

# items: x A 10.0, y B 10.0, z A 50.0, w A 30.0 -> category A prices [10, 30, 50], B [10]


def _sales(lines=LINES) -> pl.LazyFrame:
    return category_sales(tx(lines), as_of=AS_OF, items=ITEMS.lazy())


def _prefs(lines=LINES, categories=("A", "B")) -> dict[str, dict[str, object]]:
    df = category_preferences(_sales(lines), categories=categories).collect()
    return {row["customer_id"]: row for row in df.to_dicts()}


def test_category_features_by_hand() -> None:
    got = _prefs()
    a = got["a"]  # sold A: 10 + 10 + 50 = 70, B: 20
    assert (a["top_category"], a["n_categories"]) == ("A", 2)
    assert a["top_category_share"] == pytest.approx(7 / 9)
    entropy = -(7 / 9 * math.log(7 / 9) + 2 / 9 * math.log(2 / 9))
    assert a["category_entropy"] == pytest.approx(entropy)
    assert a["cat_share__a"] == pytest.approx(7 / 9)
    assert a["cat_share__b"] == pytest.approx(2 / 9)
    c = got["c"]
    assert (c["top_category"], c["top_category_share"], c["category_entropy"]) == ("A", 1.0, 0.0)
    assert c["cat_share__b"] == 0.0
    # b's line of item q (not in items) is left out: only category A
    assert got["b"]["n_categories"] == 1
    assert "g" not in got  # no sale line


def test_tied_top_category_goes_to_the_first_name() -> None:
    lines = [
        ("t", "1", AS_OF.replace(month=3), "y", 1.0, 10.0),
        ("t", "1", AS_OF.replace(month=3), "x", 1.0, 10.0),
    ]
    t = _prefs(lines)["t"]
    assert (t["top_category"], t["top_category_share"]) == ("A", 0.5)
    assert t["category_entropy"] == pytest.approx(math.log(2))


def test_price_tier_is_the_mean_mid_rank_percentile_of_paid_prices() -> None:
    got = dict(price_tier(_sales()).collect().iter_rows())
    # a: x@10 in A -> (1 - 0.5)/3, y@10 in B -> 0.5, x@10 -> 1/6, z@50 -> (3 - 0.5)/3
    assert got["a"] == pytest.approx((1 / 6 + 1 / 2 + 1 / 6 + 5 / 6) / 4)
    assert got["b"] == pytest.approx(1.0)  # paid 100 for x: above every A price
    assert got["c"] == pytest.approx(1 / 3)  # paid 20 for w: one A price (10) at or below


def test_top_categories_ranks_by_sold_amount() -> None:
    top = top_categories(tx(), as_of=AS_OF, items=ITEMS.lazy(), k=1).collect()
    assert top.rows() == [("A", 230.0)]  # A: a 70 + b 100 + c 60; B: 20


def test_share_column_names_are_slugs_kept_unique() -> None:
    assert Feat.category_shares(["Home & Garden", "home garden", ""]) == [
        "cat_share__home_garden",
        "cat_share__home_garden_2",
        "cat_share__blank",
    ]


def test_rows_after_as_of_change_nothing() -> None:
    assert _prefs(LINES + FUTURE_LINES) == _prefs()
    later = price_tier(_sales(LINES + FUTURE_LINES)).collect().sort("customer_id")
    assert later.equals(price_tier(_sales()).collect().sort("customer_id"))


def test_empty_input_keeps_the_schema() -> None:
    full = category_preferences(_sales(), categories=["A"]).collect()
    empty = category_preferences(_sales([]), categories=["A"]).collect()
    assert empty.height == 0 and empty.schema == full.schema
