from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from features.adapters import dunnhumby as dh
from features.columns import Col
from features.validate import validate_dataset

TS = datetime(2017, 5, 10, 12, 30)


def _frame(file: str, rows: list[tuple]) -> pl.LazyFrame:
    return pl.LazyFrame(rows, schema=dh.INPUTS[file], orient="row")


def _sources(tx_rows: list[tuple], redemptions: list[tuple] | None = None) -> dict:
    """Household 1 receives campaign 8 (coupon 900 valid for product 42), 2017-05-08..06-25."""
    return {
        dh.TRANSACTIONS: _frame(dh.TRANSACTIONS, tx_rows),
        dh.PRODUCTS: _frame(
            dh.PRODUCTS,
            [
                ("42", "7", "GROCERY", "National", "SOUP", "CONDENSED SOUP", "10 OZ"),
                ("43", "7", "PRODUCE", "Private", None, None, None),
            ],
        ),
        dh.CAMPAIGNS: _frame(dh.CAMPAIGNS, [("8", "1"), ("8", "2")]),
        dh.DESCRIPTIONS: _frame(
            dh.DESCRIPTIONS, [("8", "Type A", date(2017, 5, 8), date(2017, 6, 25))]
        ),
        dh.COUPONS: _frame(dh.COUPONS, [("900", "42", "8")]),
        dh.REDEMPTIONS: _frame(dh.REDEMPTIONS, redemptions or []),
        dh.DEMOGRAPHICS: _frame(
            dh.DEMOGRAPHICS,
            [("1", "45-54", "50-74K", "Homeowner", "Married", "2", "2 Adults No Kids", "0")],
        ),
    }


def _line(basket: str, product: str, qty: float, value: float, coupon: float = 0.0, hh="1"):
    return (hh, "300", basket, product, qty, value, 0.0, coupon, 0.0, TS)


def test_zero_quantity_lines_are_excluded_and_counted():
    result = dh.convert(_sources([_line("b1", "42", 1, 1.5), _line("b1", "43", 0, 0.0)]))
    flow = result.flows[0]
    assert flow.excluded[dh.ZERO_QUANTITY] == 1
    assert result.tables["transactions"][Col.ITEM].to_list() == ["42"]
    assert flow.balanced


def test_items_are_sold_products_with_median_paid_price_and_hierarchy():
    result = dh.convert(
        _sources([_line("b1", "42", 2, 3.0), _line("b2", "42", 1, 2.0), _line("b3", "43", 1, 0.5)])
    )
    items = {r[Col.ITEM]: r for r in result.tables["items"].iter_rows(named=True)}
    assert items["42"][Col.PRICE] == pytest.approx(1.75)
    assert items["42"][Col.CATEGORY] == "SOUP"
    assert items["42"][Col.SUBCATEGORY] == "CONDENSED SOUP"
    assert items["43"][Col.CATEGORY] == "PRODUCE"  # no product_category: the department


def test_a_product_missing_from_the_catalogue_is_added_as_unknown():
    result = dh.convert(_sources([_line("b1", "99", 1, 1.0)]))
    assert result.tables["items"].row(0, named=True)[Col.CATEGORY] == dh.UNKNOWN_CATEGORY
    flow = result.flows[1]
    assert sum(flow.added.values()) == 1
    assert flow.balanced


def test_a_redemption_in_the_campaign_period_converts_that_households_offer():
    result = dh.convert(
        _sources(
            [_line("b1", "42", 1, 1.5, coupon=0.75)],
            redemptions=[("1", "900", "8", date(2017, 5, 10))],
        )
    )
    offers = {r[Col.CUSTOMER]: r for r in result.tables["offers"].iter_rows(named=True)}
    assert offers["1"][Col.CONVERTED] is True
    assert offers["1"][Col.CONVERTED_AT] == datetime(2017, 5, 10)
    assert offers["1"][Col.SENT_AT] == datetime(2017, 5, 8)
    assert offers["1"][Col.OFFER_TYPE] == "campaign_type_a"
    assert offers["2"][Col.CONVERTED] is False
    assert offers["2"][Col.CONVERTED_AT] is None
    # the bonus is the campaign's observed coupon discount, the same for every recipient
    assert offers["1"][Col.BONUS] == offers["2"][Col.BONUS] == pytest.approx(0.75)
    assert offers["1"][dh.BONUS_SOURCE] == dh.BONUS_FROM_CAMPAIGN


def test_a_redemption_after_the_campaign_ended_does_not_convert():
    result = dh.convert(
        _sources([_line("b1", "42", 1, 1.5)], redemptions=[("1", "900", "8", date(2017, 7, 1))])
    )
    assert not result.tables["offers"][Col.CONVERTED].any()


def test_customers_include_households_without_demographics():
    result = dh.convert(_sources([_line("b1", "42", 1, 1.5, hh="3")]))
    customers = result.tables["customers"].sort(Col.CUSTOMER)
    assert customers[Col.CUSTOMER].to_list() == ["1", "2", "3"]
    assert customers["age"].to_list() == ["45-54", None, None]


# --- real data -------------------------------------------------------------------------------


def test_real_import_validates_and_reconciles(imported):
    report, out = imported(dh.NAME)
    validation = validate_dataset(out)
    assert validation.ok, validation.format()
    assert report.balanced, report.format()
    assert report.rows_read[dh.TRANSACTIONS] == 75_000
    assert report.rows_written["offers"] == 6_589  # one per campaign receipt


def test_real_offers_convert_only_within_the_campaign_and_say_not_randomised(imported):
    report, out = imported(dh.NAME)
    offers = pl.read_parquet(out / "offers.parquet")
    converted = offers.filter(pl.col(Col.CONVERTED))
    assert converted.height > 0
    assert (converted[Col.CONVERTED_AT] >= converted[Col.SENT_AT]).all()
    assert (converted[Col.CONVERTED_AT] <= converted[dh.CAMPAIGN_END]).all()
    assert not offers[Col.CONTROL].any()
    assert any("NOT RANDOMISED" in note for note in report.notes)
