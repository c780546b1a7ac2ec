from __future__ import annotations

from datetime import datetime

import polars as pl

from features.adapters import groceries as gr
from features.columns import Col
from features.validate import validate_dataset


def _sources(baskets: list[tuple[int, int]]) -> dict:
    items = [
        (1, "whole milk", "dairy produce", "fresh products"),
        (2, "soda", "non-alc. drinks", "drinks"),
    ]
    return {
        gr.BASKETS: pl.LazyFrame(baskets, schema=gr.INPUTS[gr.BASKETS], orient="row"),
        gr.ITEMS: pl.LazyFrame(items, schema=gr.INPUTS[gr.ITEMS], orient="row"),
    }


def test_each_basket_is_one_order_of_its_own_customer_one_unit_per_item():
    result = gr.convert(_sources([(1, 1), (1, 2), (2, 1)]))
    tx = result.tables["transactions"]
    assert tx[Col.ORDER].to_list() == ["1", "1", "2"]
    assert tx[Col.CUSTOMER].to_list() == ["basket-1", "basket-1", "basket-2"]
    assert tx[Col.QUANTITY].to_list() == [1.0, 1.0, 1.0]
    assert tx[Col.AMOUNT].to_list() == [1.0, 1.0, 1.0]


def test_baskets_are_spread_over_the_synthetic_month_in_index_order():
    result = gr.convert(_sources([(1, 1), (2, 1), (3, 1)]))
    ts = result.tables["transactions"][Col.TS].to_list()
    assert ts == [datetime(2000, 1, 1), datetime(2000, 1, 11), datetime(2000, 1, 21)]


def test_an_item_missing_from_the_catalogue_is_excluded_and_counted():
    result = gr.convert(_sources([(1, 1), (1, 7)]))
    assert result.flows[0].excluded[gr.UNKNOWN_ITEM] == 1
    assert result.flows[0].balanced


def test_items_take_their_category_from_level2():
    items = gr.convert(_sources([(1, 1)])).tables["items"]
    assert items.row(0, named=True) == {
        Col.ITEM: "1",
        Col.CATEGORY: "dairy produce",
        Col.PRICE: 1.0,
        Col.NAME: "whole milk",
        gr.DEPARTMENT: "fresh products",
    }


def test_real_import_validates_and_reconciles(imported):
    report, out = imported(gr.NAME)
    validation = validate_dataset(out)
    assert validation.ok, validation.format()
    assert report.balanced
    assert report.rows_written == {"transactions": 43_367, "items": 169}
    tx = pl.read_parquet(out / "transactions.parquet")
    assert tx[Col.ORDER].n_unique() == 9_835
