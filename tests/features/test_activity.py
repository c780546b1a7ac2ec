from __future__ import annotations

import math
from datetime import datetime

import polars as pl
import pytest

from features.activity import activity
from features.config import FeatureConfig
from features.orders import orders_before
from tests.features._world import AS_OF, FUTURE_LINES, LINES, tx


def _activity(lines=LINES, customers=None, **config) -> dict[str, dict[str, object]]:
    orders = orders_before(tx(lines), as_of=AS_OF)
    df = activity(
        orders, as_of=AS_OF, config=FeatureConfig(**config), customers=customers
    ).collect()
    return {row["customer_id"]: row for row in df.to_dicts()}


def test_active_days_period_and_intervals_by_hand() -> None:
    got = _activity()
    a = got["a"]
    # purchase days Jan 1, Mar 1, Mar 31 (the Mar 5 return is not a purchase);
    # period Jan 1 .. Apr 1 = 31 + 29 + 31 = 91 days; gaps 60 and 30
    assert (a["active_days"], a["activity_period_days"]) == (3, 91)
    assert a["activity_coef"] == pytest.approx(3 / 91)
    assert a["interval_mean_days"] == 45.0
    assert a["interval_std_days"] == pytest.approx(math.sqrt(450))
    assert a["overdue_ratio"] == 0.0  # bought 0 whole days ago
    c = got["c"]
    # two orders on one day: one active day, no interval
    assert (c["active_days"], c["activity_period_days"]) == (1, 60)
    assert c["interval_mean_days"] is None and c["overdue_ratio"] is None
    assert "g" not in got  # returns only: no purchase day


def test_overdue_ratio_is_recency_over_mean_interval() -> None:
    lines = [
        ("f", "1", datetime(2024, 1, 1), "x", 1.0, 1.0),
        ("f", "2", datetime(2024, 1, 11), "x", 1.0, 1.0),
        ("f", "3", datetime(2024, 1, 21), "x", 1.0, 1.0),
    ]
    f = _activity(lines)["f"]
    # mean gap 10 days, std 0; last purchase Jan 21 -> 71 days before Apr 1
    assert (f["interval_mean_days"], f["interval_std_days"]) == (10.0, 0.0)
    assert f["overdue_ratio"] == pytest.approx(7.1)


def test_period_starts_at_registration_when_earlier() -> None:
    customers = pl.LazyFrame(
        {"customer_id": ["c", "a"], "registered_at": [datetime(2024, 1, 2), datetime(2024, 3, 1)]}
    )
    got = _activity(customers=customers)
    assert got["c"]["activity_period_days"] == 90  # Jan 2 .. Apr 1
    assert got["a"]["activity_period_days"] == 91  # first purchase Jan 1 is earlier


def test_configured_window_bounds_the_period() -> None:
    a = _activity(activity_window_days=30)["a"]
    # window Mar 2 .. Apr 1: only the Mar 31 purchase day counts
    assert (a["active_days"], a["activity_period_days"]) == (1, 30)
    assert a["activity_coef"] == pytest.approx(1 / 30)


def test_rows_after_as_of_change_nothing() -> None:
    assert _activity(LINES + FUTURE_LINES) == _activity()


def test_empty_input_keeps_the_schema() -> None:
    full = activity(orders_before(tx(), as_of=AS_OF), as_of=AS_OF, config=FeatureConfig())
    empty = activity(orders_before(tx([]), as_of=AS_OF), as_of=AS_OF, config=FeatureConfig())
    assert empty.collect().height == 0
    assert empty.collect().schema == full.collect().schema
