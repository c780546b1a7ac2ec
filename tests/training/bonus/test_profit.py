"""The profit formula on hand numbers."""

from __future__ import annotations

import numpy as np
import pytest

from training.bonus.profit import ProfitInputError, expected_cost, expected_profit, profit_matrices


def test_profit_by_hand() -> None:
    # p_b = 0.3, margin 1000 under the offer, bonus 100; p_0 = 0.2, margin 900 without
    # 0.3 * (1000 - 100) - 0.2 * 900 = 270 - 180 = 90
    assert expected_profit(0.3, 0.2, 1000.0, 900.0, 100.0) == pytest.approx(90.0)
    assert expected_cost(0.3, 100.0) == pytest.approx(30.0)


def test_point_value_scales_the_bonus_money() -> None:
    # a point worth 0.5: the bonus of 100 points costs 50 per conversion
    assert expected_profit(0.3, 0.2, 1000.0, 900.0, 100.0, point_value=0.5) == pytest.approx(105.0)
    assert expected_cost(0.3, 100.0, point_value=0.5) == pytest.approx(15.0)


def test_a_free_reminder_costs_nothing_and_earns_the_added_margin() -> None:
    assert expected_cost(0.5, 0.0) == 0.0
    assert expected_profit(0.5, 0.4, 200.0, 200.0, 0.0) == pytest.approx(20.0)


def test_sure_thing_loses_the_bonus() -> None:
    # converts anyway (p = 1 either way): the offer just pays the bonus
    assert expected_profit(1.0, 1.0, 500.0, 500.0, 50.0) == pytest.approx(-50.0)


def test_matrices_match_the_scalar_formula() -> None:
    p = np.array([[0.3, 0.5], [0.1, 0.2]])
    p0 = np.array([0.2, 0.05])
    m = np.array([[1000.0, 1200.0], [400.0, 400.0]])
    m0 = np.array([900.0, 400.0])
    bonus = np.array([100.0, 300.0])
    profit, cost = profit_matrices(p, p0, m, m0, bonus)
    assert profit[0, 0] == pytest.approx(90.0)
    assert profit[1, 1] == pytest.approx(0.2 * (400 - 300) - 0.05 * 400)
    np.testing.assert_allclose(cost, [[30.0, 150.0], [10.0, 60.0]])


def test_bad_shapes_and_probabilities_are_named() -> None:
    with pytest.raises(ProfitInputError, match="p_none"):
        profit_matrices(np.zeros((2, 2)), np.zeros(3), np.zeros((2, 2)), np.zeros(2), np.zeros(2))
    with pytest.raises(ProfitInputError, match=r"p_offer.*row 1"):
        profit_matrices(
            np.array([[0.1], [1.5]]), np.zeros(2), np.zeros((2, 1)), np.zeros(2), np.zeros(1)
        )
