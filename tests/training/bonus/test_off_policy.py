"""Logged bandit data and off-policy estimates on a history whose truth is known."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from features.columns import Col
from tests.training.bonus.logged_world import ARMS, MARGIN, P0, P_NONE, history, true_profit
from training.bonus.logged import LoggedDataError, logged_data
from training.bonus.off_policy import DirectModel, paired_difference, policy_value


def _direct(n: int, k: int, *, good: bool, f: np.ndarray | None = None) -> DirectModel:
    """A direct model: the truth (good) or a constant guess that ignores the customer."""
    if good and f is not None:
        bonus = np.array([a.bonus for a in ARMS])
        p = np.stack([P0 + np.where(f == 1, 0.10, -0.15), P0 + np.where(f == 1, 0.25, -0.15)], 1)
        return DirectModel(p * (MARGIN - bonus), np.full(n, P0 * MARGIN), p * bonus)
    return DirectModel(np.full((n, k), 50.0), np.full(n, 60.0), np.full((n, k), 10.0))


def test_assignment_probabilities_are_inferred_from_each_campaigns_arm_shares() -> None:
    frame = history(4000)
    logged = logged_data(frame, point_value=1.0)
    assert logged.inferred
    assert [a.label for a in logged.arms] == [a.label for a in ARMS]
    for campaign in ("1", "2"):
        rows = (frame.get_column(Col.CAMPAIGN) == campaign).to_numpy()
        shares = [float(np.mean(logged.arm[rows] == j)) for j in (-1, 0, 1)]
        assert logged.prob_none[rows][0] == pytest.approx(shares[0])
        assert logged.prob[rows][0].tolist() == pytest.approx(shares[1:])
    assert logged.prob_none + logged.prob.sum(axis=1) == pytest.approx(np.ones(logged.n))


def test_a_logged_assignment_probability_column_is_used_as_given() -> None:
    logged = logged_data(history(2000, with_prob=True), point_value=1.0)
    assert not logged.inferred
    assert logged.prob_none == pytest.approx(np.full(logged.n, P_NONE))
    assert logged.prob == pytest.approx(np.full((logged.n, 2), (1 - P_NONE) / 2))


def test_a_bad_assignment_probability_names_the_column_and_the_row() -> None:
    frame = history(200, with_prob=True)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 7)
        .then(0.0)
        .otherwise(pl.col("assignment_prob"))
        .alias("assignment_prob")
    )
    with pytest.raises(LoggedDataError, match=r"assignment_prob.*row 7"):
        logged_data(frame, point_value=1.0)


def test_rewards_pay_the_bonus_only_on_conversion() -> None:
    logged = logged_data(history(400), point_value=1.0)
    bonus = np.array([0.0, *[a.bonus for a in ARMS]])[logged.arm + 1]
    expected = logged.converted * (MARGIN - bonus)
    assert logged.reward == pytest.approx(expected)
    assert logged.cost == pytest.approx(logged.converted * bonus)


@pytest.mark.parametrize("good_direct", [True, False])
def test_dr_and_ips_intervals_cover_the_true_value_of_a_targeted_plan(good_direct: bool) -> None:
    covered = {"dr": 0, "ips": 0}
    seeds = range(40)
    for seed in seeds:
        frame = history(4000, seed=seed)
        logged = logged_data(frame, point_value=1.0)
        f = frame.get_column("f").to_numpy().astype(int)
        plan = np.where(f == 1, 0, -1).astype(np.intp)  # the small cashback to persuadables
        truth = float(true_profit(f, plan).sum())
        assert truth > 0
        value = policy_value(logged, plan, _direct(logged.n, 2, good=good_direct, f=f))
        covered["dr"] += value.dr.low <= truth <= value.dr.high
        covered["ips"] += value.ips.low <= truth <= value.ips.high
        assert value.dr.se <= value.ips.se * 1.05  # a direct model never makes DR much worse
        if good_direct:
            assert value.dr.se < 0.9 * value.ips.se
    # 95% intervals: at least 34 of 40 cover (a binomial(40, 0.95) falls below 34 with
    # probability < 1%)
    assert covered["dr"] >= 34 and covered["ips"] >= 34, covered


def test_contacting_the_put_off_customers_is_estimated_as_a_loss() -> None:
    frame = history(20000, seed=5)
    logged = logged_data(frame, point_value=1.0)
    f = frame.get_column("f").to_numpy().astype(int)
    everyone = np.zeros(logged.n, dtype=np.intp)  # the small cashback to all
    targeted = np.where(f == 1, 0, -1).astype(np.intp)
    direct = _direct(logged.n, 2, good=False)
    a, b = policy_value(logged, targeted, direct), policy_value(logged, everyone, direct)
    diff = paired_difference(a, b, logged)
    assert diff.low > 0  # targeting beats contacting everyone, beyond the noise
    assert b.dr.high < a.dr.low


def test_a_plan_choosing_an_arm_its_campaign_never_randomised_is_refused() -> None:
    frame = history(600).filter(~((pl.col(Col.CAMPAIGN) == "2") & (pl.col(Col.BONUS) == 200.0)))
    logged = logged_data(frame, point_value=1.0)
    plan = np.ones(logged.n, dtype=np.intp)
    with pytest.raises(ValueError, match="never randomised"):
        policy_value(logged, plan, _direct(logged.n, 2, good=False))
