from __future__ import annotations

import pytest

from features.checks import checks
from features.config import FeatureConfig
from features.orders import orders_before
from tests.features._world import AS_OF, FUTURE_LINES, LINES, tx


def _checks(lines=LINES, **config) -> dict[str, dict[str, object]]:
    orders = orders_before(tx(lines), as_of=AS_OF)
    df = checks(orders, as_of=AS_OF, config=FeatureConfig(**config)).collect()
    return {row["customer_id"]: row for row in df.to_dicts()}


def test_checks_are_sold_amounts_of_purchase_orders() -> None:
    a = _checks()["a"]
    # checks 30, 10, 50 (the return order is not a check); linear quantiles on [10, 30, 50]
    assert (a["check_mean"], a["check_median"]) == (30.0, 30.0)
    assert a["check_p75"] == pytest.approx(40.0)
    assert a["check_p90"] == pytest.approx(46.0)


def test_spend_trend_compares_the_last_90_days_with_the_90_before() -> None:
    got = _checks()
    a, b = got["a"], got["b"]
    # recent window starts Jan 2: a's Jan 1 order (30) is prior; 10 - 10 + 50 recent
    assert (a["spend_recent"], a["spend_prior"], a["spend_trend_diff"]) == (50.0, 30.0, 20.0)
    assert a["spend_trend"] == pytest.approx(0.25)
    # b spent only in the prior window: trend -1
    assert (b["spend_recent"], b["spend_prior"], b["spend_trend"]) == (0.0, 100.0, -1.0)


def test_trend_is_defined_when_the_prior_window_is_empty() -> None:
    got = _checks(trend_window_days=30)
    # window 30: recent Mar 2..Apr 1, prior Jan 31..Mar 2; c bought Feb 1 only
    assert got["c"]["spend_trend"] == -1.0
    a = got["a"]
    assert (a["spend_recent"], a["spend_prior"]) == (40.0, 10.0)
    only_recent = _checks([("n", "1", AS_OF.replace(day=1, month=3), "x", 1.0, 5.0)])["n"]
    assert only_recent["spend_trend"] == 1.0


def test_returns_give_the_return_rates() -> None:
    got = _checks()
    a = got["a"]
    assert a["return_rate"] == pytest.approx(10 / 90)  # 10 returned of 90 sold
    assert a["return_line_rate"] == pytest.approx(1 / 4)  # 1 return line, 4 sale lines
    assert got["b"]["return_rate"] == 0.0
    g = got["g"]  # returns only: no checks, no rate, net spend -20 in the recent window
    assert g["check_mean"] is None and g["return_rate"] is None
    assert (g["spend_recent"], g["spend_trend"]) == (-20.0, 0.0)


def test_quantile_columns_follow_the_config() -> None:
    a = _checks(check_quantiles=(0.25,))["a"]
    assert a["check_p25"] == pytest.approx(20.0)
    assert "check_p75" not in a


def test_rows_after_as_of_change_nothing() -> None:
    assert _checks(LINES + FUTURE_LINES) == _checks()


def test_empty_input_keeps_the_schema() -> None:
    config = FeatureConfig()
    full = checks(orders_before(tx(), as_of=AS_OF), as_of=AS_OF, config=config).collect()
    empty = checks(orders_before(tx([]), as_of=AS_OF), as_of=AS_OF, config=config).collect()
    assert empty.height == 0 and empty.schema == full.schema
