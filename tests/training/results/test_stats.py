"""Interval estimates on examples small enough to compute by hand."""

from __future__ import annotations

import math

import pytest

from training.results.stats import (
    LOST_MONEY,
    NOT_ENOUGH,
    PAID_OFF,
    Estimate,
    StatsError,
    diff_means,
    ratio_of_effect,
    verdict,
    z_quantile,
)


def test_welch_difference_of_proportions_by_hand() -> None:
    # treated 3/4, control 1/4; each sample variance (ddof 1) is 0.25, so se = sqrt(2 * 0.25/4)
    # and the Welch-Satterthwaite df = (0.125)^2 / (2 * 0.0625^2 / 3) = 6, t(0.975, 6) = 2.4469
    e = diff_means([1, 0, 1, 1], [0, 1, 0, 0])
    assert e.value == pytest.approx(0.5)
    assert e.se == pytest.approx(math.sqrt(0.125))
    assert e.low == pytest.approx(0.5 - 2.446912 * math.sqrt(0.125), abs=1e-6)
    assert e.high == pytest.approx(0.5 + 2.446912 * math.sqrt(0.125), abs=1e-6)
    assert not e.excludes_zero()


def test_large_groups_use_nearly_the_normal_quantile() -> None:
    treated = [1.0] * 600 + [0.0] * 400
    control = [1.0] * 500 + [0.0] * 500
    e = diff_means(treated, control)
    se = math.sqrt(0.6 * 0.4 / 999 + 0.5 * 0.5 / 999)
    assert e.se == pytest.approx(se)
    assert (e.high - e.value) / se == pytest.approx(1.96, abs=0.002)
    assert verdict(e) == PAID_OFF


def test_a_group_of_one_has_no_interval_and_no_verdict() -> None:
    e = diff_means([5.0, 7.0, 9.0], [1.0])
    assert e.value == pytest.approx(6.0)
    assert not e.known
    assert verdict(e) == NOT_ENOUGH


def test_no_variance_gives_a_point_interval() -> None:
    assert verdict(diff_means([3.0, 3.0], [3.0, 3.0])) == NOT_ENOUGH
    assert verdict(diff_means([-2.0, -2.0], [1.0, 1.0])) == LOST_MONEY


def test_roi_delta_method_by_hand() -> None:
    # D = mean(10, 20) - mean(0, 10) = 10, B = 5 -> ROI 2; Var(D) = 50/2 + 50/2 = 50,
    # Var(B) = 0, so Var(ROI) = 50 / 25 = 2
    e = ratio_of_effect([10.0, 20.0], [5.0, 5.0], [0.0, 10.0])
    assert e.value == pytest.approx(2.0)
    assert e.se == pytest.approx(math.sqrt(2.0))
    assert e.low == pytest.approx(2.0 - z_quantile(0.95) * math.sqrt(2.0))
    assert e.method == "delta"


def test_roi_counts_the_covariance_of_effect_and_cost() -> None:
    # y and cost move together: D = 15 - 0 = 15, B = 3, Var(D) = 50/2, Var(B) = 2/2,
    # Cov = 10/2 -> Var = 25/9 - 2*15*5/27 + 225*1/81 = 2.7778 - 5.5556 + 2.7778 = 0
    e = ratio_of_effect([10.0, 20.0], [2.0, 4.0], [0.0, 0.0])
    assert e.value == pytest.approx(5.0)
    assert e.se == pytest.approx(0.0, abs=1e-9)


def test_roi_without_cost_is_unknown() -> None:
    assert not ratio_of_effect([1.0, 2.0], [0.0, 0.0], [0.0, 1.0]).known


def test_scaled_turns_per_customer_into_totals() -> None:
    e = Estimate(value=0.1, se=0.02, low=0.06, high=0.14).scaled(1000)
    assert (e.value, e.se, e.low, e.high) == pytest.approx((100.0, 20.0, 60.0, 140.0))
    flipped = Estimate(value=0.1, se=0.02, low=0.06, high=0.14).scaled(-1)
    assert (flipped.low, flipped.high) == pytest.approx((-0.14, -0.06))


def test_bad_values_are_named_by_row() -> None:
    with pytest.raises(StatsError, match=r"control: row 1 is nan"):
        diff_means([1.0, 2.0], [1.0, float("nan")])
    with pytest.raises(StatsError, match="confidence"):
        diff_means([1.0, 2.0], [1.0, 2.0], confidence=1.5)
