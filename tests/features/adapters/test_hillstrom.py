from __future__ import annotations

import polars as pl
import pytest

from features.adapters import hillstrom as hs
from features.adapters.base import AdapterError
from features.columns import Col, OfferType
from features.validate import validate_dataset


def _raw(*segments: str) -> pl.LazyFrame:
    rows = [
        (i, 10, "2) $100 - $200", 142.44, 1, 0, "Urban", 0, "Web", seg, 1, 1, 20.0)
        for i, seg in enumerate(segments)
    ]
    return pl.LazyFrame(rows, schema=hs.INPUTS[hs.FILE], orient="row")


def test_each_arm_becomes_its_offer_type_and_no_email_is_the_control():
    result = hs.convert({hs.FILE: _raw("Mens E-Mail", "Womens E-Mail", "No E-Mail")})
    offers = result.tables["offers"]
    assert offers[Col.OFFER_TYPE].to_list() == ["email_mens", "email_womens", OfferType.NONE]
    assert offers[Col.CONTROL].to_list() == [False, False, True]
    first = offers.row(0, named=True)
    assert first[Col.CONVERTED] is True
    assert first[Col.REVENUE] == 20.0
    assert first[hs.VISIT] is True
    assert first[Col.BONUS] == 0.0
    assert first[Col.CHANNEL] == "email"


def test_customers_keep_the_pre_experiment_attributes():
    customers = hs.convert({hs.FILE: _raw("No E-Mail")}).tables["customers"]
    assert customers.columns == [Col.CUSTOMER, *hs.ATTRIBUTES]


def test_an_unknown_arm_is_an_error_naming_the_row():
    with pytest.raises(AdapterError, match=r"segment.*row_id 1: 'Sms'"):
        hs.convert({hs.FILE: _raw("No E-Mail", "Sms")})


def test_real_import_validates_and_arm_sizes_match_the_readme(imported):
    report, out = imported(hs.NAME)
    validation = validate_dataset(out)
    assert validation.ok, validation.format()
    assert report.balanced
    offers = pl.read_parquet(out / "offers.parquet")
    arms = dict(offers.group_by(Col.OFFER_TYPE).len().iter_rows())
    assert arms == {"email_mens": 21_307, "email_womens": 21_387, OfferType.NONE: 21_306}
    assert offers[Col.CONVERTED].mean() == pytest.approx(0.00903, abs=1e-5)
    assert offers[hs.VISIT].mean() == pytest.approx(0.14678, abs=1e-5)
