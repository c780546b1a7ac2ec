from __future__ import annotations

import numpy as np
import pytest

from training.bonus.optimizer import (
    Allocation,
    OptimizerInputError,
    optimize_budget,
    solve_exact_milp,
)

TOL = 1e-7


def random_instance(seed: int, n: int = 30, m: int = 6) -> tuple[np.ndarray, ...]:
    """Profits around 2 (some negative), exponential costs, some free options, 20% masked."""
    rng = np.random.default_rng(seed)
    profit = rng.normal(2.0, 3.0, (n, m))
    cost = rng.exponential(3.0, (n, m))
    cost[rng.random((n, m)) < 0.1] = 0.0
    if seed % 2:  # integer data: lots of exact ties and collinear points
        profit, cost = np.round(profit), np.round(cost)
    mask = rng.random((n, m)) < 0.8
    return profit, cost, mask


def chosen(alloc: Allocation, values: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(alloc.choice >= 0)
    return values[rows, alloc.choice[rows]]


def assert_consistent(alloc: Allocation, profit: np.ndarray, cost: np.ndarray) -> None:
    assert alloc.total_profit == pytest.approx(chosen(alloc, profit).sum(), abs=TOL)
    assert alloc.total_cost == pytest.approx(chosen(alloc, cost).sum(), abs=TOL)
    if alloc.budget is not None:
        assert chosen(alloc, cost).sum() <= alloc.budget + 1e-9
    assert alloc.upper_bound >= alloc.total_profit - TOL
    assert alloc.gap == pytest.approx(alloc.upper_bound - alloc.total_profit, abs=TOL)


def lagrangian(profit: np.ndarray, cost: np.ndarray, mask: np.ndarray, budget: float, lam: float):
    value = np.where(mask, profit - lam * cost, 0.0)
    return lam * budget + np.maximum(value.max(axis=1), 0.0).sum()


# --------------------------------------------------------------------------- tiny known answers


def test_unconstrained_takes_each_customers_best_positive_option() -> None:
    profit = np.array([[1.0, 3.0, 2.0], [-1.0, -2.0, -0.5], [0.0, 4.0, 4.0]])
    cost = np.array([[1.0, 5.0, 2.0], [1.0, 1.0, 1.0], [0.0, 3.0, 1.0]])
    alloc = optimize_budget(profit, cost, None)
    # Row 1 is all negative: nothing. Row 2 ties on profit: the cheaper option wins.
    assert alloc.choice.tolist() == [1, -1, 2]
    assert alloc.total_profit == 7.0
    assert alloc.total_cost == 6.0
    assert alloc.exact and not alloc.budget_binding and alloc.gap == 0.0
    assert alloc.n_treated == 2


def test_budget_larger_than_needed_returns_the_unconstrained_optimum() -> None:
    profit, cost, mask = random_instance(3)
    free = optimize_budget(profit, cost, None, mask=mask)
    alloc = optimize_budget(profit, cost, free.total_cost * 1.5 + 1.0, mask=mask)
    np.testing.assert_array_equal(alloc.choice, free.choice)
    assert alloc.exact and not alloc.budget_binding
    assert alloc.lagrange_multiplier == 0.0


def test_budget_zero_keeps_only_free_options() -> None:
    profit = np.array([[5.0, 1.0], [2.0, 3.0], [4.0, 0.5]])
    cost = np.array([[1.0, 0.0], [1.0, 2.0], [0.0, 0.0]])
    alloc = optimize_budget(profit, cost, 0.0)
    assert alloc.choice.tolist() == [1, -1, 0]
    assert alloc.total_cost == 0.0
    assert alloc.total_profit == 5.0


def test_a_free_option_is_the_base_and_paid_upgrades_are_increments() -> None:
    # Reminder (free, profit 1) vs bonus (cost 2, profit 4): upgrade worth 3 for 2 -> ratio 1.5.
    profit = np.array([[1.0, 4.0], [0.0, 3.5]])
    cost = np.array([[0.0, 2.0], [0.0, 2.0]])
    mask = np.array([[True, True], [False, True]])
    alloc = optimize_budget(profit, cost, 2.0, mask=mask)
    # Customer 1's bonus is worth 3.5 for 2 (ratio 1.75) > customer 0's upgrade (1.5).
    assert alloc.choice.tolist() == [0, 1]
    assert alloc.total_profit == 4.5
    assert alloc.lagrange_multiplier == pytest.approx(1.5)
    assert alloc.upper_bound == pytest.approx(4.5)


def test_budget_is_spent_by_efficiency_with_a_reported_gap() -> None:
    # Efficiencies 3, 2, 1; budget 4 takes the first two whole and the third not at all.
    profit = np.array([[3.0], [4.0], [5.0]])
    cost = np.array([[1.0], [2.0], [5.0]])
    alloc = optimize_budget(profit, cost, 4.0)
    assert alloc.choice.tolist() == [0, 0, -1]
    assert alloc.total_profit == 7.0
    assert alloc.lagrange_multiplier == pytest.approx(1.0)
    assert alloc.upper_bound == pytest.approx(7.0 + 1.0 / 5.0 * 5.0)  # LP: a fifth of row 2
    assert alloc.gap == pytest.approx(1.0)
    assert not alloc.exact and alloc.budget_binding


def test_slack_is_filled_with_a_cheaper_option_of_the_threshold_customer() -> None:
    # Customer 1's hull jumps to the 10-cost option; a dominated 3-cost option fits the slack.
    profit = np.array([[10.0, 0.0, 0.0], [2.0, 4.0, 20.0]])
    cost = np.array([[2.0, 0.0, 0.0], [1.0, 3.0, 10.0]])
    mask = np.array([[True, False, False], [True, True, True]])
    alloc = optimize_budget(profit, cost, 5.0, mask=mask)
    exact = solve_exact_milp(profit, cost, 5.0, mask=mask)
    assert alloc.choice.tolist() == exact.choice.tolist() == [0, 1]
    assert alloc.total_profit == 14.0


def test_collinear_options_stay_separately_choosable() -> None:
    # (1, 2), (2, 4), (3, 6) lie on one line: with budget 2 the middle one is exact.
    profit = np.array([[2.0, 4.0, 6.0]])
    cost = np.array([[1.0, 2.0, 3.0]])
    alloc = optimize_budget(profit, cost, 2.0)
    assert alloc.choice.tolist() == [1]
    assert alloc.exact


def test_ties_across_customers_prefer_the_lower_row() -> None:
    profit = np.array([[2.0], [2.0], [2.0]])
    cost = np.array([[1.0], [1.0], [1.0]])
    alloc = optimize_budget(profit, cost, 2.0)
    assert alloc.choice.tolist() == [0, 0, -1]
    assert alloc.exact


def test_greedy_can_be_poor_but_the_gap_says_so() -> None:
    # Classic knapsack trap: equal efficiency, the small item blocks the big one.
    profit = np.array([[1.0], [100.0]])
    cost = np.array([[1.0], [100.0]])
    alloc = optimize_budget(profit, cost, 100.0)
    exact = solve_exact_milp(profit, cost, 100.0)
    assert exact.total_profit == 100.0
    assert alloc.total_profit + alloc.gap >= exact.total_profit - TOL
    assert alloc.gap <= profit.max()


# --------------------------------------------------------------------------- filters


def test_masked_options_are_never_chosen_and_are_counted() -> None:
    profit = np.array([[9.0, 1.0], [np.nan, 2.0]])  # a masked NaN is not inspected
    cost = np.array([[1.0, 1.0], [np.inf, 1.0]])
    mask = np.array([[False, True], [False, True]])
    alloc = optimize_budget(profit, cost, 10.0, mask=mask)
    assert alloc.choice.tolist() == [1, 1]
    assert alloc.exclusions.masked == 2


def test_min_roi_filters_options_but_not_free_ones() -> None:
    profit = np.array([[3.0, 5.0, 1.0]])
    cost = np.array([[2.0, 10.0, 0.0]])  # ROI 1.5, 0.5, free
    alloc = optimize_budget(profit, cost, None, min_roi=1.0)
    assert alloc.choice.tolist() == [0]
    assert alloc.exclusions.below_min_roi == 1
    free_only = optimize_budget(profit, cost, None, min_roi=2.0)
    assert free_only.choice.tolist() == [2]


def test_per_customer_cost_cap() -> None:
    profit = np.array([[3.0, 5.0], [3.0, 5.0]])
    cost = np.array([[2.0, 10.0], [2.0, 10.0]])
    alloc = optimize_budget(profit, cost, None, max_cost_per_customer=np.array([5.0, 20.0]))
    assert alloc.choice.tolist() == [0, 1]
    assert alloc.exclusions.over_cost_cap == 1
    capped = optimize_budget(profit, cost, 100.0, max_cost_per_customer=1.0)
    assert capped.choice.tolist() == [-1, -1]
    assert capped.exclusions.customers_without_option == 2


def test_all_negative_customers_get_nothing_and_are_counted() -> None:
    profit = -np.ones((4, 3))
    alloc = optimize_budget(profit, np.ones((4, 3)), 10.0)
    assert alloc.choice.tolist() == [-1] * 4
    assert alloc.total_profit == 0.0
    assert alloc.exclusions.nonpositive_profit == 12
    assert alloc.exclusions.customers_without_option == 4


@pytest.mark.parametrize("shape", [(0, 5), (4, 0), (0, 0)])
def test_empty_inputs(shape: tuple[int, int]) -> None:
    for budget in (None, 0.0, 10.0):
        alloc = optimize_budget(np.zeros(shape), np.zeros(shape), budget)
        assert alloc.choice.shape == (shape[0],)
        assert (alloc.choice == -1).all()
        assert alloc.total_profit == 0.0 and alloc.exact


def test_float32_inputs_are_accepted_and_consistent() -> None:
    profit, cost, mask = random_instance(4, n=200)
    budget = 0.3 * optimize_budget(profit, cost, None, mask=mask).total_cost
    p32, c32 = profit.astype(np.float32), cost.astype(np.float32)
    a32 = optimize_budget(p32, c32, budget, mask=mask)
    assert_consistent(a32, p32.astype(np.float64), c32.astype(np.float64))


def test_the_choice_is_read_only() -> None:
    alloc = optimize_budget(np.ones((2, 2)), np.ones((2, 2)), 1.0)
    with pytest.raises(ValueError):
        alloc.choice[0] = 1


# --------------------------------------------------------------------------- bad input


def test_nan_names_the_argument_and_first_bad_row() -> None:
    profit = np.ones((5, 3))
    profit[3, 1] = np.nan
    profit[4, 0] = np.inf
    with pytest.raises(OptimizerInputError, match=r"profit.*row 3"):
        optimize_budget(profit, np.ones((5, 3)), 1.0)
    cost = np.ones((5, 3))
    cost[2, 2] = np.inf
    with pytest.raises(OptimizerInputError, match=r"cost.*row 2"):
        optimize_budget(np.ones((5, 3)), cost, 1.0)
    assert issubclass(OptimizerInputError, ValueError)


def test_negative_cost_names_the_row() -> None:
    cost = np.ones((3, 2))
    cost[1, 0] = -0.5
    with pytest.raises(OptimizerInputError, match=r"cost.*row 1"):
        optimize_budget(np.ones((3, 2)), cost, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"budget": -1.0}, "budget"),
        ({"budget": float("nan")}, "budget"),
        ({"budget": float("inf")}, "budget"),
        ({"cost": np.ones((3, 3))}, "cost"),
        ({"profit": np.ones(3)}, "profit"),
        ({"mask": np.ones((3, 2))}, "mask"),
        ({"mask": np.ones((2, 2), dtype=bool)}, "mask"),
        ({"max_cost_per_customer": np.array([1.0, np.nan, 1.0])}, "max_cost_per_customer"),
        ({"max_cost_per_customer": -1.0}, "max_cost_per_customer"),
        ({"min_roi": float("nan")}, "min_roi"),
    ],
)
def test_invalid_arguments_are_named(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"profit": np.ones((3, 2)), "cost": np.ones((3, 2)), "budget": 1.0}
    args.update(kwargs)
    with pytest.raises(OptimizerInputError, match=field):
        optimize_budget(**args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- against the MILP


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("budget_share", [0.0, 0.1, 0.35, 0.8, 1.2])
def test_within_the_reported_gap_of_the_milp_optimum(seed: int, budget_share: float) -> None:
    profit, cost, mask = random_instance(seed)
    free = optimize_budget(profit, cost, None, mask=mask)
    budget = budget_share * free.total_cost
    alloc = optimize_budget(profit, cost, budget, mask=mask)
    exact = solve_exact_milp(profit, cost, budget, mask=mask)
    assert_consistent(alloc, profit, cost)
    assert chosen(alloc, cost).sum() <= budget + 1e-9
    assert mask[np.flatnonzero(alloc.choice >= 0), alloc.choice[alloc.choice >= 0]].all()
    assert alloc.total_profit <= exact.total_profit + TOL
    assert exact.total_profit <= alloc.upper_bound + TOL
    assert alloc.gap <= np.max(np.where(mask, profit, 0.0)) + TOL
    if not alloc.budget_binding:
        assert alloc.total_profit == pytest.approx(exact.total_profit, abs=TOL)


@pytest.mark.parametrize("seed", range(6))
def test_upper_bound_is_the_lagrangian_dual_at_the_reported_multiplier(seed: int) -> None:
    profit, cost, mask = random_instance(seed, n=60)
    budget = 0.3 * optimize_budget(profit, cost, None, mask=mask).total_cost
    alloc = optimize_budget(profit, cost, budget, mask=mask)
    lam = alloc.lagrange_multiplier
    dual = lagrangian(profit, cost, mask, budget, lam)
    assert alloc.upper_bound == pytest.approx(dual, abs=1e-6)
    for other in (0.5 * lam, 0.9 * lam, 1.1 * lam, 2 * lam):  # lam minimises the dual
        assert lagrangian(profit, cost, mask, budget, other) >= dual - 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_roi_and_cap_constraints_hold_and_match_the_milp(seed: int) -> None:
    profit, cost, mask = random_instance(seed)
    cap = np.random.default_rng(seed).uniform(1.0, 6.0, profit.shape[0])
    kwargs = {"mask": mask, "max_cost_per_customer": cap, "min_roi": 0.8}
    budget = 0.4 * optimize_budget(profit, cost, None, **kwargs).total_cost  # type: ignore[arg-type]
    alloc = optimize_budget(profit, cost, budget, **kwargs)  # type: ignore[arg-type]
    exact = solve_exact_milp(profit, cost, budget, **kwargs)  # type: ignore[arg-type]
    rows = np.flatnonzero(alloc.choice >= 0)
    c, p = chosen(alloc, cost), chosen(alloc, profit)
    assert np.all(c <= cap[rows])
    assert np.all((c == 0) | (p >= 0.8 * c))
    assert alloc.total_profit <= exact.total_profit + TOL <= alloc.upper_bound + 2 * TOL
    assert alloc.exclusions == exact.exclusions


def test_adversarial_many_identical_customers() -> None:
    # 40 identical customers, budget for 12.5 of the big option: LP has one fractional customer.
    profit = np.tile([[1.0, 3.0, 4.0]], (40, 1))
    cost = np.tile([[1.0, 2.0, 4.0]], (40, 1))
    alloc = optimize_budget(profit, cost, 25.0)
    exact = solve_exact_milp(profit, cost, 25.0)
    assert alloc.total_profit == pytest.approx(exact.total_profit)
    assert alloc.total_cost <= 25.0
    assert alloc.gap <= 4.0


def test_many_customers_gap_is_tiny_relative_to_the_total() -> None:
    profit, cost, mask = random_instance(11, n=20_000, m=12)
    budget = 0.3 * optimize_budget(profit, cost, None, mask=mask).total_cost
    alloc = optimize_budget(profit, cost, budget, mask=mask)
    assert_consistent(alloc, profit, cost)
    assert alloc.gap <= 1e-3 * alloc.upper_bound
