"""Order values on hand numbers: shrunk mean check, margin rate, per-offer revenue ratios."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from features.columns import Col, OfferType
from features.dataset import load_dataset, write_parquet_atomic
from training.bonus.config import BonusConfig
from training.bonus.value import (
    RevenueRatios,
    Value,
    ValueModelError,
    ValuePriors,
    customer_value,
    fit_revenue_ratios,
)

AS_OF = datetime(2025, 3, 1)


def _dataset(tmp_path: Path, *, margins: bool = True) -> Path:
    tx = pl.DataFrame(
        {
            Col.CUSTOMER: ["a", "a", "a", "b", "b"],
            Col.ORDER: ["1", "2", "2", "3", "9"],
            Col.TS: [datetime(2025, 1, 5)] * 4 + [datetime(2025, 4, 1)],  # order 9: after
            Col.ITEM: ["x", "x", "y", "y", "y"],
            Col.QUANTITY: [1.0, 1.0, 2.0, 1.0, 1.0],
            Col.AMOUNT: [100.0, 100.0, 200.0, 100.0, 999.0],
        }
    )
    items = pl.DataFrame(
        {
            Col.ITEM: ["x", "y"],
            Col.CATEGORY: ["c", "c"],
            Col.PRICE: [100.0, 100.0],
            **({Col.MARGIN: [0.5, 0.25]} if margins else {}),
        }
    )
    write_parquet_atomic(tx, tmp_path / "transactions.parquet")
    write_parquet_atomic(items, tmp_path / "items.parquet")
    return tmp_path


def test_shrunk_check_and_margin_by_hand(tmp_path: Path) -> None:
    ds = load_dataset(_dataset(tmp_path))
    config = BonusConfig(value_prior_orders=1.0)
    value, priors = customer_value(
        ds, as_of=AS_OF, config=config, customers=pl.Series(["a", "b", "new"])
    )
    # orders before the cutoff: a: 100 and 300, b: 100 -> prior check 500 / 3
    assert priors.check == pytest.approx(500 / 3)
    # margins: order 1: 50; order 2: 50 + 50 = 100; order 3: 25 -> prior rate 175 / 500
    assert priors.margin_rate == pytest.approx(0.35)
    rows = {r[Col.CUSTOMER]: r for r in value.iter_rows(named=True)}
    assert rows["a"][Value.EXPECTED_CHECK] == pytest.approx((400 + 500 / 3) / 3)
    assert rows["a"][Value.MARGIN_RATE] == pytest.approx((150 + 500 / 3 * 0.35) / (400 + 500 / 3))
    assert rows["new"][Value.EXPECTED_CHECK] == pytest.approx(500 / 3)
    assert rows["new"][Value.MARGIN_RATE] == pytest.approx(0.35)
    assert value.get_column(Col.CUSTOMER).to_list() == ["a", "b", "new"]
    m = rows["b"]
    assert m[Value.EXPECTED_MARGIN] == pytest.approx(m[Value.EXPECTED_CHECK] * m[Value.MARGIN_RATE])


def test_missing_margins_are_an_error_unless_a_default_is_set(tmp_path: Path) -> None:
    ds = load_dataset(_dataset(tmp_path, margins=False))
    with pytest.raises(ValueModelError, match="default_margin_rate"):
        customer_value(ds, as_of=AS_OF, config=BonusConfig())
    value, _ = customer_value(ds, as_of=AS_OF, config=BonusConfig(default_margin_rate=0.2))
    assert value.get_column(Value.MARGIN_RATE).to_list() == pytest.approx([0.2, 0.2])


def test_revenue_ratios_shrink_toward_the_control_ratio() -> None:
    frame = pl.DataFrame(
        {
            Col.OFFER_TYPE: ["none", "none", "spend_threshold", "cashback"],
            Col.CONVERTED: [True, True, True, False],
            Col.REVENUE: [200.0, 200.0, 400.0, None],
            Value.EXPECTED_CHECK: [100.0, 100.0, 100.0, 100.0],
        }
    )
    ratios = fit_revenue_ratios(frame, BonusConfig(value_prior_conversions=1.0))
    # control: (400 + 100) / (200 + 100) = 5/3; spend: (400 + 100 * 5/3) / (100 + 100)
    assert ratios.of(OfferType.NONE) == pytest.approx(5 / 3)
    assert ratios.of(OfferType.SPEND_THRESHOLD) == pytest.approx((400 + 500 / 3) / 200)
    assert ratios.of(OfferType.CASHBACK) == pytest.approx(5 / 3)  # never converted


def test_saved_priors_replace_the_population_of_the_dataset(tmp_path: Path) -> None:
    ds = load_dataset(_dataset(tmp_path))
    config = BonusConfig(value_prior_orders=1.0)
    saved = ValuePriors(check=1000.0, margin_rate=0.1, orders=7, lines_without_margin=0)
    value, priors = customer_value(
        ds, as_of=AS_OF, config=config, customers=pl.Series(["b", "new"]), priors=saved
    )
    rows = {r[Col.CUSTOMER]: r for r in value.iter_rows(named=True)}
    # b: one order of 100 with margin 25, shrunk toward the saved 1000 at 10%
    assert rows["b"][Value.EXPECTED_CHECK] == pytest.approx((100 + 1000) / 2)
    assert rows["b"][Value.MARGIN_RATE] == pytest.approx((25 + 100) / (100 + 1000))
    assert rows["new"][Value.EXPECTED_CHECK] == pytest.approx(1000)
    assert (priors.check, priors.margin_rate) == (1000.0, 0.1)


def test_priors_and_ratios_round_trip_through_json() -> None:
    priors = ValuePriors(check=123.5, margin_rate=0.31, orders=40, lines_without_margin=2)
    assert ValuePriors.from_state(json.loads(json.dumps(priors.state()))) == priors
    ratios = RevenueRatios(
        ratio={OfferType.NONE: 1.1, OfferType.CASHBACK: 1.3}, conversions={"none": 5, "x": 2}
    )
    again = RevenueRatios.from_state(json.loads(json.dumps(ratios.state())))
    assert again == ratios
    with pytest.raises(ValueModelError, match="'none'"):
        RevenueRatios.from_state({"ratio": {"cashback": 1.0}, "conversions": {}})
