from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from features.adapters import uci_online_retail as uci
from features.adapters.base import EXCLUDED
from features.columns import Col
from features.validate import validate_dataset

D1, D2, D3 = datetime(2011, 1, 3, 10), datetime(2011, 1, 5, 9), datetime(2011, 1, 7, 12)


def _raw(*rows: tuple) -> pl.LazyFrame:
    """Source lines: (invoice, code, description, qty, date, unit price, customer)."""
    schema = uci.INPUTS[uci.FILE]
    data = [(*r, "United Kingdom") for r in rows]
    return pl.LazyFrame(data, schema=schema, orient="row")


def _convert(*rows: tuple):
    return uci.convert({uci.FILE: _raw(*rows)})


def test_a_cancellation_becomes_a_return_matched_to_its_earlier_sale():
    result = _convert(
        ("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, D1, 2.55, 17850),
        ("C536379", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", -2, D2, 2.55, 17850),
    )
    tx = result.tables["transactions"]
    ret = tx.filter(pl.col(Col.QUANTITY) < 0).row(0, named=True)
    assert ret[Col.ORDER] == "C536379"
    assert ret[Col.AMOUNT] == pytest.approx(-5.10)
    assert ret[uci.RETURN_OF] == "536365"
    assert tx.filter(pl.col(Col.QUANTITY) > 0)[uci.RETURN_OF].to_list() == [None]


def test_a_return_is_matched_to_the_latest_sale_before_it_not_a_later_one():
    result = _convert(
        ("536001", "22423", "REGENCY CAKESTAND 3 TIER", 1, D1, 12.75, 1),
        ("C536002", "22423", "REGENCY CAKESTAND 3 TIER", -1, D2, 12.75, 1),
        ("536003", "22423", "REGENCY CAKESTAND 3 TIER", 1, D3, 12.75, 1),
    )
    tx = result.tables["transactions"]
    assert tx.filter(pl.col(Col.QUANTITY) < 0)[uci.RETURN_OF].to_list() == ["536001"]


def test_a_return_without_an_earlier_sale_to_that_customer_is_excluded_and_counted():
    result = _convert(
        ("C536002", "22423", "REGENCY CAKESTAND 3 TIER", -1, D1, 12.75, 1),  # nothing before
        ("536003", "22423", "REGENCY CAKESTAND 3 TIER", 1, D2, 12.75, 2),  # other customer
        ("536004", "22423", "REGENCY CAKESTAND 3 TIER", 1, D3, 12.75, 1),  # after the return
    )
    flow = result.flows[0]
    assert flow.excluded[uci.UNMATCHED_RETURN] == 1
    assert result.tables["transactions"][Col.ORDER].to_list() == ["536003", "536004"]
    assert flow.balanced


def test_a_postage_line_is_excluded_counted_and_kept_out_of_items():
    result = _convert(
        ("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, D1, 2.55, 17850),
        ("536365", "POST", "POSTAGE", 1, D1, 18.0, 17850),
    )
    assert result.flows[0].excluded[uci.NON_PRODUCT] == 1
    assert result.tables["transactions"][Col.ITEM].to_list() == ["85123A"]
    assert result.tables["items"][Col.ITEM].to_list() == ["85123A"]
    items_flow = result.flows[1]
    assert items_flow.excluded["non-product stock codes"] == 1
    assert items_flow.balanced


def test_duplicate_lines_of_one_invoice_and_item_are_merged_and_counted():
    result = _convert(
        ("536365", "22633", "HAND WARMER UNION JACK", 6, D1, 1.85, 17850),
        ("536365", "22633", "HAND WARMER UNION JACK", 4, D1, 2.10, 17850),
    )
    tx = result.tables["transactions"]
    assert tx.height == 1
    assert tx[Col.QUANTITY][0] == 10
    assert tx[Col.AMOUNT][0] == pytest.approx(6 * 1.85 + 4 * 2.10)
    assert result.flows[0].merged[uci.MERGED] == 1
    assert result.flows[0].balanced


def test_lines_without_customer_and_zero_price_lines_are_excluded_by_reason():
    result = _convert(
        ("536365", "22633", "HAND WARMER UNION JACK", 6, D1, 1.85, None),
        ("536366", "22633", "HAND WARMER UNION JACK", 6, D1, 0.0, 17850),
        ("536367", "22633", "HAND WARMER UNION JACK", 6, D1, 1.85, 17850),
    )
    excluded = result.flows[0].excluded
    assert excluded[uci.NO_CUSTOMER] == 1
    assert excluded[uci.NON_POSITIVE_PRICE] == 1
    assert result.tables["transactions"][Col.ORDER].to_list() == ["536367"]


def test_first_rule_broken_is_the_reason_given():
    lines = uci.tag_line_exclusions(
        uci.normalise_lines(_raw(("C1", "POST", "POSTAGE", -1, D1, 0.0, None)))
    ).collect()
    assert lines[EXCLUDED].to_list() == [uci.NO_CUSTOMER]


def test_items_take_the_median_sale_price_and_the_most_frequent_description():
    result = _convert(
        ("1", "21212", "PACK OF 72 RETROSPOT CAKE CASES", 1, D1, 0.55, 1),
        ("2", "21212", "PACK OF 72 RETROSPOT CAKE CASES", 1, D1, 0.42, 2),
        ("3", "21212", "72 CAKE CASES", 1, D2, 0.50, 3),
    )
    item = result.tables["items"].row(0, named=True)
    assert item[Col.PRICE] == pytest.approx(0.50)
    assert item[Col.NAME] == "PACK OF 72 RETROSPOT CAKE CASES"
    assert item[Col.CATEGORY] == "baking"


def test_every_line_of_an_invoice_gets_the_invoice_start_time():
    later = datetime(2011, 1, 3, 10, 1)
    result = _convert(
        ("536365", "22633", "HAND WARMER UNION JACK", 6, D1, 1.85, 1),
        ("536365", "22632", "HAND WARMER RED POLKA DOT", 6, later, 1.85, 1),
    )
    assert result.tables["transactions"][Col.TS].unique().to_list() == [D1]


def test_hand_made_import_validates(tmp_path):
    from features.dataset import write_parquet_atomic

    result = _convert(
        ("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, D1, 2.55, 17850),
        ("C536379", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", -2, D2, 2.55, 17850),
    )
    for table, df in result.tables.items():
        write_parquet_atomic(df, tmp_path / f"{table}.parquet")
    report = validate_dataset(tmp_path)
    assert report.ok, report.format()


# --- real data -------------------------------------------------------------------------------


def test_real_import_validates_and_reconciles(imported):
    report, out = imported(uci.NAME)
    validation = validate_dataset(out)
    assert validation.ok, validation.format()
    assert report.balanced, report.format()
    assert report.rows_read[uci.FILE] == 541_909
    assert report.flow("transactions").excluded[uci.NO_CUSTOMER] == 135_080


def test_real_returns_point_to_an_earlier_sale_of_that_item_to_that_customer(imported):
    _, out = imported(uci.NAME)
    tx = pl.read_parquet(out / "transactions.parquet")
    returns = tx.filter(pl.col(Col.QUANTITY) < 0)
    assert returns.height > 0
    assert returns[uci.RETURN_OF].null_count() == 0
    sales = tx.filter(pl.col(Col.QUANTITY) > 0).select(
        pl.col(Col.ORDER).alias(uci.RETURN_OF),
        pl.col(Col.CUSTOMER).alias("sale_customer"),
        pl.col(Col.ITEM).alias("sale_item"),
        pl.col(Col.TS).alias("sale_ts"),
    )
    checked = returns.join(
        sales, left_on=[uci.RETURN_OF, Col.ITEM], right_on=[uci.RETURN_OF, "sale_item"]
    )
    assert checked.height == returns.height
    assert (checked["sale_customer"] == checked[Col.CUSTOMER]).all()
    assert (checked["sale_ts"] <= checked[Col.TS]).all()


def test_real_non_product_codes_are_absent_from_items_and_transactions(imported):
    _, out = imported(uci.NAME)
    items = pl.read_parquet(out / "items.parquet")
    tx = pl.read_parquet(out / "transactions.parquet")
    for code in ["POST", "DOT", "M", "D", "C2", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS"]:
        assert code not in items[Col.ITEM].to_list()
    assert items[Col.ITEM].str.contains(uci.PRODUCT_CODE).all()
    assert tx[Col.ITEM].str.contains(uci.PRODUCT_CODE).all()
    assert not items[Col.ITEM].str.starts_with("gift_").any()
