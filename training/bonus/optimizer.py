"""Budgeted choice of one bonus offer per customer (multiple-choice knapsack).

Customer ``i`` may receive at most one option ``j`` (offer type x bonus level) with expected
incremental profit ``profit[i, j]`` and expected cost ``cost[i, j] >= 0``; receiving nothing
is worth 0 and costs 0. :func:`optimize_budget` maximises total profit with total cost at most
the budget.

Method (the classic greedy for the multiple-choice knapsack, MCKP):

1. Per customer, keep the eligible options (not masked, within the per-customer cost cap, ROI
   at least ``min_roi``, profit > 0: an option with profit <= 0 never beats "nothing") and build
   the upper concave hull of the points ``(cost, profit)`` starting at the best zero-cost point
   (which is "nothing" or a free option). Hull segments have decreasing efficiency
   ``d_profit / d_cost``; every option below the hull is LP-dominated.
2. Sort all hull segments of all customers by efficiency (one global sort) and take them in
   that order while the budget allows. The first segment that does not fit is the *critical*
   segment; taking the fitting fraction of it gives the optimum of the LP relaxation, with at
   most one fractional customer.
3. Drop the fraction (every customer then sits on a real option) and spend the slack
   greedily: first the customers at the threshold (those owning the next segments in
   efficiency order) may move to *any* better option whose extra cost fits, best extra profit
   per extra cost first; then the remaining segments are walked in efficiency order, taking
   each customer's next segment whenever it fits. Totals are recomputed from the chosen
   options and a step is undone if floating-point rounding would exceed the budget.

Bound: this is the Lagrangian relaxation solved exactly. For any multiplier ``lam >= 0``,
``L(lam) = lam * budget + sum_i max(0, max_j profit[i, j] - lam * cost[i, j])`` is an upper
bound on the integer optimum; it is smallest at ``lam*`` = efficiency of the critical segment
(reported as ``lagrange_multiplier``), where it equals the LP optimum (reported as
``upper_bound``). The reported ``gap = upper_bound - total_profit`` is therefore a proven bound
on the distance to the true optimum, and is at most the profit step of the critical segment,
so at most the largest single-option profit. When the budget is not binding (or ``budget`` is
``None``) every customer gets their best option and the solution is exact.

:func:`solve_exact_milp` solves the same problem exactly with ``scipy.optimize.milp`` for small
instances (tests, audits).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

_CHUNK_ROWS = 2_048
_MAX_FILL_ROUNDS = 64
_THRESHOLD_WINDOW = 16_384


class OptimizerInputError(ValueError):
    """Invalid optimizer input; the message names the argument and the first bad row."""


@dataclass(frozen=True)
class Exclusions:
    """Counts of options (cells of the profit/cost matrices) that could never be chosen."""

    masked: int = 0
    over_cost_cap: int = 0
    below_min_roi: int = 0
    nonpositive_profit: int = 0
    customers_without_option: int = 0


@dataclass(frozen=True)
class Allocation:
    """The chosen option per customer (-1 = nothing) and the quality certificate.

    ``upper_bound`` is the Lagrangian / LP-relaxation bound on the best achievable profit and
    ``gap = upper_bound - total_profit``; ``exact`` is True when the gap is zero (up to
    rounding), i.e. the choice is proven optimal, and False when only the bound is known.
    ``lagrange_multiplier`` is the shadow price of budget (profit per unit of cost at the
    margin); 0 when the budget is not binding, NaN when not computed (MILP).
    """

    choice: IntArray
    total_profit: float
    total_cost: float
    budget: float | None
    lagrange_multiplier: float
    upper_bound: float
    gap: float
    exact: bool
    budget_binding: bool
    exclusions: Exclusions

    @property
    def n_treated(self) -> int:
        """Number of customers who receive an option."""
        return int(np.count_nonzero(self.choice >= 0))


@dataclass(frozen=True)
class _Inputs:
    profit: np.ndarray
    cost: np.ndarray
    mask: np.ndarray | None
    cap: FloatArray | None
    min_roi: float | None
    budget: float | None

    @property
    def n(self) -> int:
        return int(self.profit.shape[0])

    @property
    def m(self) -> int:
        return int(self.profit.shape[1])


def optimize_budget(
    profit: npt.ArrayLike,
    cost: npt.ArrayLike,
    budget: float | None,
    *,
    mask: npt.ArrayLike | None = None,
    max_cost_per_customer: float | npt.ArrayLike | None = None,
    min_roi: float | None = None,
) -> Allocation:
    """Choose at most one option per customer maximising profit with total cost <= budget.

    ``profit`` and ``cost`` are ``(n, m)`` arrays (float32 or float64); ``mask`` is an
    ``(n, m)`` bool array, True where the option is allowed (values of disallowed options are
    not inspected, so they may be NaN). ``budget=None`` means no budget (each customer takes
    their most profitable eligible option if its profit is positive).
    ``max_cost_per_customer`` (scalar or ``(n,)``) excludes options costing more; ``min_roi``
    excludes options with ``cost > 0`` and ``profit / cost < min_roi``.
    Raises :class:`OptimizerInputError` (a ``ValueError``) naming the argument and first bad row.
    """
    inp = _validate(profit, cost, budget, mask, max_cost_per_customer, min_roi)
    n = inp.n
    if inp.budget is None:
        choice, exclusions = _best_options(inp)
        return _unconstrained(inp, choice, exclusions)
    hull = _build_hulls(inp)
    if float(hull.dcost.sum()) <= inp.budget:
        choice = _choice_at(hull, np.bincount(hull.cust, minlength=n))
        if _totals(inp, choice)[1] <= inp.budget:  # else rounding: treat as binding
            return _unconstrained(inp, choice, hull.exclusions)
    budget = float(inp.budget)

    # LP relaxation: whole segments in efficiency order, then a fraction of the critical one.
    seg_order = np.argsort(-hull.eff, kind="stable")
    cum_cost = np.cumsum(hull.dcost[seg_order])
    n_lp = int(np.searchsorted(cum_cost, budget, side="right"))
    critical = int(seg_order[n_lp]) if n_lp < seg_order.size else -1
    lam = float(hull.eff[critical]) if critical >= 0 else 0.0
    upper = float(hull.base_profit.sum()) + float(hull.dprofit[seg_order[:n_lp]].sum())
    if critical >= 0:
        spent = float(cum_cost[n_lp - 1]) if n_lp > 0 else 0.0
        fraction = min(1.0, max(0.0, (budget - spent) / float(hull.dcost[critical])))
        upper += fraction * float(hull.dprofit[critical])

    # Integer solution: drop the fraction (step back further if rounding overshoots).
    n_take = n_lp
    steps = np.bincount(hull.cust[seg_order[:n_take]], minlength=n)
    choice = _choice_at(hull, steps)
    total_profit, total_cost = _totals(inp, choice)
    while total_cost > budget and n_take > 0:
        n_take -= 1
        steps[hull.cust[seg_order[n_take]]] -= 1
        choice = _choice_at(hull, steps)
        total_profit, total_cost = _totals(inp, choice)

    # Spend the slack: customers at the threshold first (any option), then further segments.
    window = _threshold_customers(hull.cust[seg_order[n_take:]], _THRESHOLD_WINDOW)
    before = choice
    choice, total_profit, total_cost = _fill_options(
        inp, choice, window, total_profit, total_cost, budget
    )
    moved = choice != before  # possibly off their hull now: leave them out of the next step
    choice, total_profit, total_cost = _fill_segments(
        inp, hull, seg_order[n_take:], steps, moved, choice, total_profit, total_cost, budget
    )
    upper = max(upper, total_profit)
    gap = upper - total_profit
    return Allocation(
        choice=_frozen(choice),
        total_profit=total_profit,
        total_cost=total_cost,
        budget=budget,
        lagrange_multiplier=lam,
        upper_bound=upper,
        gap=gap,
        exact=gap <= 1e-9 * max(1.0, abs(upper)),
        budget_binding=True,
        exclusions=hull.exclusions,
    )


def solve_exact_milp(
    profit: npt.ArrayLike,
    cost: npt.ArrayLike,
    budget: float | None,
    *,
    mask: npt.ArrayLike | None = None,
    max_cost_per_customer: float | npt.ArrayLike | None = None,
    min_roi: float | None = None,
) -> Allocation:
    """Solve the same problem exactly with ``scipy.optimize.milp`` (small instances only)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_array

    inp = _validate(profit, cost, budget, mask, max_cost_per_customer, min_roi)
    n = inp.n
    p, c, exclusions = _eligible_block(inp, np.arange(n))
    rows, cols = np.nonzero(np.isfinite(p))
    choice = np.full(n, -1, dtype=np.intp)
    if rows.size == 0:
        return _exact_allocation(inp, choice, exclusions)
    k = rows.size
    pv, cv = p[rows, cols], c[rows, cols]
    one_per_customer = LinearConstraint(
        csr_array((np.ones(k), (rows, np.arange(k))), shape=(n, k)), -np.inf, 1.0
    )
    constraints = [one_per_customer]
    if inp.budget is not None:
        constraints.append(LinearConstraint(cv[None, :], -np.inf, inp.budget))
    res = milp(
        -pv,
        constraints=constraints,
        integrality=np.ones(k),
        bounds=Bounds(0.0, 1.0),
        options={"mip_rel_gap": 0.0},
    )
    if res.x is None:  # pragma: no cover - "nothing" is always feasible
        raise RuntimeError(f"milp failed: {res.message}")
    picked = res.x > 0.5
    choice[rows[picked]] = cols[picked]
    return _exact_allocation(inp, choice, exclusions)


# --------------------------------------------------------------------------- validation


def _validate(
    profit: npt.ArrayLike,
    cost: npt.ArrayLike,
    budget: float | None,
    mask: npt.ArrayLike | None,
    cap: float | npt.ArrayLike | None,
    min_roi: float | None,
) -> _Inputs:
    p = _as_matrix("profit", profit)
    c = _as_matrix("cost", cost)
    if c.shape != p.shape:
        raise OptimizerInputError(f"cost: shape {c.shape} differs from profit shape {p.shape}")
    n = p.shape[0]
    mk: np.ndarray | None = None
    if mask is not None:
        mk = np.asarray(mask)
        if mk.dtype != np.bool_:
            raise OptimizerInputError(f"mask: dtype must be bool, got {mk.dtype}")
        if mk.shape != p.shape:
            raise OptimizerInputError(f"mask: shape {mk.shape} differs from profit shape {p.shape}")
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, int | float | np.number):
            raise OptimizerInputError(f"budget: must be a number or None, got {budget!r}")
        if not math.isfinite(float(budget)) or float(budget) < 0:
            raise OptimizerInputError(f"budget: must be finite and >= 0, got {budget!r}")
        budget = float(budget)
    cap_arr: FloatArray | None = None
    if cap is not None:
        cap_arr = np.broadcast_to(np.asarray(cap, dtype=np.float64), (n,))
        if cap_arr.ndim != 1:
            raise OptimizerInputError("max_cost_per_customer: must be a scalar or shape (n,)")
        bad = np.isnan(cap_arr) | (cap_arr < 0)
        if bad.any():
            row = int(np.argmax(bad))
            raise OptimizerInputError(
                f"max_cost_per_customer: must be >= 0 and not NaN; row {row} is {cap_arr[row]}"
            )
    if min_roi is not None and not math.isfinite(float(min_roi)):
        raise OptimizerInputError(f"min_roi: must be finite, got {min_roi!r}")
    inp = _Inputs(p, c, mk, cap_arr, None if min_roi is None else float(min_roi), budget)
    for lo, hi in _chunks(n):
        allowed = None if mk is None else mk[lo:hi]
        _check_finite("profit", p[lo:hi], allowed, lo)
        cc = c[lo:hi]
        _check_finite("cost", cc, allowed, lo)
        neg = cc < 0
        if allowed is not None:
            neg &= allowed
        if neg.any():
            row = lo + int(np.argmax(neg.any(axis=1)))
            raise OptimizerInputError(f"cost: must be >= 0; first bad row {row}")
    return inp


def _as_matrix(name: str, x: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise OptimizerInputError(f"{name}: must be a 2-d (customers, options) array")
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise OptimizerInputError(f"{name}: must be numeric, got dtype {arr.dtype}")
    return arr


def _check_finite(name: str, block: np.ndarray, allowed: np.ndarray | None, lo: int) -> None:
    if block.dtype.kind != "f":
        return
    bad = ~np.isfinite(block)
    if allowed is not None:
        bad &= allowed
    if bad.any():
        row = lo + int(np.argmax(bad.any(axis=1)))
        raise OptimizerInputError(f"{name}: NaN or infinite value; first bad row {row}")


def _chunks(n: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, _CHUNK_ROWS):
        yield lo, min(n, lo + _CHUNK_ROWS)


# --------------------------------------------------------------------------- eligibility


def _eligible_block(
    inp: _Inputs, rows: IntArray | slice
) -> tuple[FloatArray, FloatArray, Exclusions]:
    """Float64 profit (-inf where ineligible) and cost for the given rows, plus counts."""
    p = np.asarray(inp.profit[rows], dtype=np.float64)
    c = np.asarray(inp.cost[rows], dtype=np.float64)
    ok = np.ones(p.shape, dtype=np.bool_) if inp.mask is None else inp.mask[rows].copy()
    masked = int(ok.size - np.count_nonzero(ok))
    over_cap = below_roi = 0
    if inp.cap is not None:
        over = ok & (c > inp.cap[rows][:, None])
        over_cap = int(np.count_nonzero(over))
        ok &= ~over
    if inp.min_roi is not None:
        low = ok & (c > 0) & (p < inp.min_roi * c)
        below_roi = int(np.count_nonzero(low))
        ok &= ~low
    nonpos = ok & (p <= 0)
    nonpositive = int(np.count_nonzero(nonpos))
    ok &= ~nonpos
    without = int(np.count_nonzero(~ok.any(axis=1))) if ok.shape[1] else ok.shape[0]
    p = np.where(ok, p, -np.inf)
    c = np.where(ok, c, np.inf)
    return p, c, Exclusions(masked, over_cap, below_roi, nonpositive, without)


def _add(a: Exclusions, b: Exclusions) -> Exclusions:
    return Exclusions(
        a.masked + b.masked,
        a.over_cost_cap + b.over_cost_cap,
        a.below_min_roi + b.below_min_roi,
        a.nonpositive_profit + b.nonpositive_profit,
        a.customers_without_option + b.customers_without_option,
    )


# --------------------------------------------------------------------------- hulls


@dataclass(frozen=True)
class _Hulls:
    base_profit: FloatArray  # (n,) profit of the best zero-cost point (0 = nothing)
    vertex: npt.NDArray[np.int16]  # (n, m + 1) option index of hull vertex k (-1 = nothing)
    cust: IntArray  # (s,) customer of each segment, customer-major then hull order
    dcost: FloatArray  # (s,) cost step of each segment (> 0)
    dprofit: FloatArray  # (s,) profit step of each segment (> 0)
    eff: FloatArray  # (s,) efficiency, non-increasing along each customer's hull
    exclusions: Exclusions


def _build_hulls(inp: _Inputs) -> _Hulls:
    n, m = inp.n, inp.m
    base_profit = np.zeros(n)
    vertex = np.full((n, m + 1), -1, dtype=np.int16)
    parts: list[tuple[IntArray, FloatArray, FloatArray, FloatArray]] = []
    exclusions = Exclusions()
    for lo, hi in _chunks(n):
        p, c, ex = _eligible_block(inp, slice(lo, hi))
        exclusions = _add(exclusions, ex)
        parts.append(_hull_chunk(p, c, lo, base_profit[lo:hi], vertex[lo:hi]))
    if parts:
        cust, dcost, dprofit, eff = (np.concatenate(x) for x in zip(*parts, strict=True))
    else:
        cust, dcost, dprofit, eff = np.zeros(0, np.intp), np.zeros(0), np.zeros(0), np.zeros(0)
    return _Hulls(base_profit, vertex, cust, dcost, dprofit, eff, exclusions)


def _hull_chunk(
    p: FloatArray,
    c: FloatArray,
    lo: int,
    base_profit: FloatArray,
    vertex: npt.NDArray[np.int16],
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray]:
    """Upper concave hull of each row's eligible (cost, profit) points, from the base point.

    Writes the base (best zero-cost) profit and the hull vertices into the given views and
    returns the segments (customer, d_cost, d_profit, efficiency) in customer-major order.
    Steps: sort each row by cost (stable: ties keep the lower option index), keep the Pareto
    points (profit above every cheaper point and above 0), pack them to the left, then
    gift-wrap: from the current vertex take the point of steepest slope (the cheapest on ties,
    which keeps collinear vertices as separate, individually choosable steps).
    """
    rows_n, m = p.shape
    empty = np.zeros(0)
    if rows_n == 0 or m == 0:
        return np.zeros(0, np.intp), empty, empty, empty
    order = np.argsort(c, axis=1, kind="stable")
    cs = np.take_along_axis(c, order, axis=1)
    ps = np.take_along_axis(p, order, axis=1)
    best_before = np.maximum.accumulate(np.maximum(ps, 0.0), axis=1)
    keep = np.empty_like(ps, dtype=np.bool_)
    keep[:, 0] = ps[:, 0] > 0
    keep[:, 1:] = ps[:, 1:] > best_before[:, :-1]
    counts = keep.sum(axis=1)
    width = int(counts.max())
    if width == 0:
        base_profit[:] = 0.0
        vertex[:, 0] = -1
        return np.zeros(0, np.intp), empty, empty, empty
    r, k = np.nonzero(keep)
    pos = (np.cumsum(keep, axis=1) - 1)[r, k]
    pp = np.full((rows_n, width), -np.inf)
    pc = np.full((rows_n, width), np.inf)
    po = np.full((rows_n, width), -1, dtype=np.int16)
    pp[r, pos] = ps[r, k]
    pc[r, pos] = cs[r, k]
    po[r, pos] = order[r, k]
    # Base: the last (most profitable) zero-cost Pareto point, or "nothing".
    n_free = (pc == 0).sum(axis=1)
    has_free = n_free > 0
    base_pos = n_free - 1
    rr = np.arange(rows_n)
    cur_p = np.where(has_free, pp[rr, np.maximum(base_pos, 0)], 0.0)
    cur_c = np.zeros(rows_n)
    base_profit[:] = cur_p
    vertex[:, 0] = np.where(has_free, po[rr, np.maximum(base_pos, 0)], -1)
    cur_pos = base_pos  # -1 = "nothing"; points after cur_pos are the candidates
    prev_eff = np.full(rows_n, np.inf)
    active = np.flatnonzero(counts > n_free)
    cols = np.arange(width)
    seg_rows: list[IntArray] = []
    seg_dc: list[FloatArray] = []
    seg_dp: list[FloatArray] = []
    seg_eff: list[FloatArray] = []
    step = 0
    while active.size:
        step += 1
        a_pos = cur_pos[active]
        dp = pp[active] - cur_p[active, None]
        dc = pc[active] - cur_c[active, None]
        valid = (cols > a_pos[:, None]) & (dc > 0) & (dp > 0)
        slope = np.full(dp.shape, -np.inf)
        np.divide(dp, dc, out=slope, where=valid)
        j = np.argmax(slope, axis=1)  # first maximum = cheapest point on slope ties
        ra = np.arange(active.size)
        ok = valid[ra, j]
        active, j, ra = active[ok], j[ok], ra[ok]
        if not active.size:
            break
        eff = np.minimum(slope[ra, j], prev_eff[active])
        prev_eff[active] = eff
        seg_rows.append(active)
        seg_dc.append(dc[ra, j])
        seg_dp.append(dp[ra, j])
        seg_eff.append(eff)
        cur_p[active] = pp[active, j]
        cur_c[active] = pc[active, j]
        cur_pos[active] = j
        vertex[active, step] = po[active, j]
        active = active[j < counts[active] - 1]
    if not seg_rows:
        return np.zeros(0, np.intp), empty, empty, empty
    seg = np.concatenate(seg_rows)
    by_customer = np.argsort(seg, kind="stable")  # step-major -> customer-major
    return (
        seg[by_customer] + lo,
        np.concatenate(seg_dc)[by_customer],
        np.concatenate(seg_dp)[by_customer],
        np.concatenate(seg_eff)[by_customer],
    )


def _choice_at(hull: _Hulls, steps: IntArray) -> IntArray:
    """Option per customer after taking ``steps[i]`` hull segments of customer ``i``."""
    return hull.vertex[np.arange(steps.size), steps].astype(np.intp)


def _totals(inp: _Inputs, choice: IntArray) -> tuple[float, float]:
    rows = np.flatnonzero(choice >= 0)
    if rows.size == 0:
        return 0.0, 0.0
    cols = choice[rows]
    p = np.asarray(inp.profit[rows, cols], dtype=np.float64)
    c = np.asarray(inp.cost[rows, cols], dtype=np.float64)
    return float(p.sum()), float(c.sum())


# --------------------------------------------------------------------------- slack


def _threshold_customers(remaining_cust: IntArray, limit: int) -> IntArray:
    """The first ``limit`` distinct customers of the not-taken segments, in efficiency order."""
    head = remaining_cust[: 4 * limit]
    uniq, first = np.unique(head, return_index=True)
    return uniq[np.argsort(first, kind="stable")][:limit]


def _fill_options(
    inp: _Inputs,
    choice: IntArray,
    rows: IntArray,
    total_profit: float,
    total_cost: float,
    budget: float,
) -> tuple[IntArray, float, float]:
    """Upgrade the given customers to any better option that fits the slack.

    Rounds: each customer proposes its best extra-profit-per-extra-cost upgrade that fits; the
    proposals are taken in that order while they fit; repeat with the smaller slack.
    """
    slack = budget - total_cost
    if slack <= 0 or rows.size == 0 or inp.m == 0:
        return choice, total_profit, total_cost
    p, c, _ = _eligible_block(inp, rows)
    for _ in range(_MAX_FILL_ROUNDS):
        cur_p, cur_c = _current(p, c, choice[rows])
        gain = p - cur_p[:, None]
        extra = c - cur_c[:, None]
        ok = (gain > 0) & (extra <= slack)
        live = ok.any(axis=1)
        if not live.any():
            break
        rows, p, c = rows[live], p[live], c[live]
        gain, extra, ok = gain[live], extra[live], ok[live]
        ratio = np.full(gain.shape, -np.inf)
        np.divide(gain, np.maximum(extra, 0.0), out=ratio, where=ok & (extra > 0))
        ratio[ok & (extra <= 0)] = np.inf  # a free upgrade
        j = np.argmax(ratio, axis=1)
        r = np.arange(rows.size)
        move_gain, move_cost, move_ratio = gain[r, j], extra[r, j], ratio[r, j]
        order = np.lexsort((-move_gain, -move_ratio))
        cum = np.cumsum(np.maximum(move_cost[order], 0.0))
        take = order[: max(1, int(np.searchsorted(cum, slack, side="right")))]
        new_choice = choice.copy()
        new_choice[rows[take]] = j[take]
        new_profit, new_cost = _totals(inp, new_choice)
        if new_cost > budget or new_profit <= total_profit:  # rounding guard
            break
        choice, total_profit, total_cost = new_choice, new_profit, new_cost
        slack = budget - total_cost
    return choice, total_profit, total_cost


def _fill_segments(
    inp: _Inputs,
    hull: _Hulls,
    remaining: IntArray,
    steps: IntArray,
    frozen: BoolArray,
    choice: IntArray,
    total_profit: float,
    total_cost: float,
    budget: float,
) -> tuple[IntArray, float, float]:
    """Continue down the efficiency-ordered segments, taking each next segment that fits.

    Vectorised greedy: per round, take the longest run of customers' next segments that fits;
    the first that does not fit exceeds the new slack and drops out of the next round.
    """
    slack = budget - total_cost
    if slack <= 0 or remaining.size == 0:
        return choice, total_profit, total_cost
    start = np.zeros(steps.size + 1, dtype=np.intp)
    np.cumsum(np.bincount(hull.cust, minlength=steps.size), out=start[1:])
    steps = steps.copy()
    segs = remaining
    changed = False
    for _ in range(10 * _MAX_FILL_ROUNDS):
        cust = hull.cust[segs]
        keep = (hull.dcost[segs] <= slack) & ~frozen[cust] & (segs - start[cust] >= steps[cust])
        segs = segs[keep]
        if segs.size == 0:
            break
        cust = hull.cust[segs]
        nxt = segs[segs - start[cust] == steps[cust]]
        if nxt.size == 0:
            break
        cum = np.cumsum(hull.dcost[nxt])
        k = max(1, int(np.searchsorted(cum, slack, side="right")))
        steps[hull.cust[nxt[:k]]] += 1
        slack -= float(cum[k - 1])
        changed = True
    if not changed:
        return choice, total_profit, total_cost
    new_choice = np.where(frozen, choice, _choice_at(hull, steps))
    new_profit, new_cost = _totals(inp, new_choice)
    if new_cost > budget or new_profit < total_profit:  # rounding guard
        return choice, total_profit, total_cost
    return new_choice, new_profit, new_cost


def _current(p: FloatArray, c: FloatArray, choice: IntArray) -> tuple[FloatArray, FloatArray]:
    has = choice >= 0
    j = np.where(has, choice, 0)
    r = np.arange(choice.size)
    cur_p = np.where(has, p[r, j] if p.shape[1] else 0.0, 0.0)
    cur_c = np.where(has, c[r, j] if c.shape[1] else 0.0, 0.0)
    return cur_p, cur_c


# --------------------------------------------------------------------------- helpers


def _best_options(inp: _Inputs) -> tuple[IntArray, Exclusions]:
    """Most profitable eligible option per customer (cheapest, then lowest index, on ties)."""
    choice = np.full(inp.n, -1, dtype=np.intp)
    exclusions = Exclusions()
    for lo, hi in _chunks(inp.n if inp.m else 0):
        p, c, ex = _eligible_block(inp, slice(lo, hi))
        exclusions = _add(exclusions, ex)
        best = p.max(axis=1)
        j = np.argmin(np.where(p == best[:, None], c, np.inf), axis=1)
        choice[lo:hi] = np.where(np.isfinite(best), j, -1)
    if inp.m == 0:
        exclusions = Exclusions(customers_without_option=inp.n)
    return choice, exclusions


def _unconstrained(inp: _Inputs, choice: IntArray, exclusions: Exclusions) -> Allocation:
    total_profit, total_cost = _totals(inp, choice)
    return Allocation(
        choice=_frozen(choice),
        total_profit=total_profit,
        total_cost=total_cost,
        budget=inp.budget,
        lagrange_multiplier=0.0,
        upper_bound=total_profit,
        gap=0.0,
        exact=True,
        budget_binding=False,
        exclusions=exclusions,
    )


def _frozen(choice: IntArray) -> IntArray:
    choice.flags.writeable = False
    return choice


def _exact_allocation(inp: _Inputs, choice: IntArray, exclusions: Exclusions) -> Allocation:
    total_profit, total_cost = _totals(inp, choice)
    return Allocation(
        choice=_frozen(choice),
        total_profit=total_profit,
        total_cost=total_cost,
        budget=inp.budget,
        lagrange_multiplier=math.nan,
        upper_bound=total_profit,
        gap=0.0,
        exact=True,
        budget_binding=False,
        exclusions=exclusions,
    )
