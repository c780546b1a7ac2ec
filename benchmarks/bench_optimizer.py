"""Budgeted bonus optimizer on 1M customers x 6 offer types x 8 bonus levels.

Profits and costs follow a saturating response per (customer, offer type): conversion
``P(b) = p0 + u * (1 - exp(-b / s))``; expected cost ``P(b) * b``; incremental profit
``margin * (P(b) - p0) - P(b) * b`` (concave in the bonus, with an interior best level).
About 10% of (customer, offer type) pairs are masked as not applicable. The budget is 30%
of the unconstrained spend. The budgeted solve is timed on float32 inputs, then again on
float64 copies. Figures are printed as ``name: value unit`` lines.
"""

from __future__ import annotations

import os
import resource
import time

import numpy as np

from training.bonus.optimizer import optimize_budget

N_CUSTOMERS = int(os.environ.get("BENCH_OPTIMIZER_CUSTOMERS", "1000000"))
N_TYPES = 6
BONUS_LEVELS = np.array([1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 30.0])
BUDGET_SHARE = 0.30


def make_instance(
    n: int, seed: int = 0, dtype: type[np.floating] = np.float32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random response-shaped (profit, cost, mask), each of shape (n, 6 * 8).

    Generated in blocks so that the generator's temporaries do not set the peak memory.
    """
    rng = np.random.default_rng(seed)
    m = N_TYPES * len(BONUS_LEVELS)
    profit = np.empty((n, m), dtype=dtype)
    cost = np.empty((n, m), dtype=dtype)
    mask = np.empty((n, m), dtype=np.bool_)
    for lo in range(0, n, 100_000):
        hi = min(n, lo + 100_000)
        shape = (hi - lo, N_TYPES, 1)
        p0 = rng.beta(2, 18, shape)  # baseline conversion ~10%
        uplift = rng.beta(2, 12, shape) * (1 - p0)
        scale = rng.lognormal(np.log(6.0), 0.6, shape)
        margin = rng.lognormal(np.log(40.0), 0.7, shape)
        conv = p0 + uplift * (1 - np.exp(-BONUS_LEVELS / scale))
        c = conv * BONUS_LEVELS
        cost[lo:hi] = c.reshape(hi - lo, m)
        profit[lo:hi] = (margin * (conv - p0) - c).reshape(hi - lo, m)
        allowed = rng.random(shape) >= 0.1
        mask[lo:hi] = np.repeat(allowed, len(BONUS_LEVELS), axis=2).reshape(hi - lo, m)
    return profit, cost, mask


def main() -> None:
    """Generate the instance, then time the unconstrained and the budgeted solve."""
    profit, cost, mask = make_instance(N_CUSTOMERS)
    print(f"campaign_optimize_customers: {N_CUSTOMERS} customers")
    print(f"campaign_optimize_options: {profit.shape[1]} options ({profit.dtype})")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    started = time.perf_counter()
    free = optimize_budget(profit, cost, None, mask=mask)
    print(f"campaign_optimize_unconstrained_seconds: {time.perf_counter() - started:.2f} s")
    budget = BUDGET_SHARE * free.total_cost

    started, cpu_started = time.perf_counter(), time.process_time()
    alloc = optimize_budget(profit, cost, budget, mask=mask)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    print(f"campaign_optimize_1m_seconds: {elapsed:.2f} s")
    print(f"campaign_optimize_1m_cpu_seconds: {cpu:.2f} s")  # wall on a busy machine is noisy
    print(f"campaign_unconstrained_spend: {free.total_cost:.2f} currency")
    print(f"campaign_unconstrained_profit: {free.total_profit:.2f} currency")
    print(f"campaign_budget: {budget:.2f} currency")
    print(f"campaign_chosen_spend: {alloc.total_cost:.2f} currency")
    print(f"campaign_spend_over_budget: {alloc.total_cost / budget:.9f} ratio")
    print(f"campaign_chosen_profit: {alloc.total_profit:.2f} currency")
    print(f"campaign_upper_bound: {alloc.upper_bound:.2f} currency")
    print(f"campaign_reported_gap: {alloc.gap:.4f} currency")
    print(f"campaign_relative_gap: {alloc.gap / max(alloc.upper_bound, 1e-12):.2e} ratio")
    print(f"campaign_lagrange_multiplier: {alloc.lagrange_multiplier:.4f} profit/cost")
    print(f"campaign_treated: {alloc.n_treated} customers")
    print(f"campaign_masked_options: {alloc.exclusions.masked} options")
    print(f"campaign_input_rss: {rss_before / 1024**2:.2f} GiB")
    print(f"campaign_optimize_peak_rss: {peak / 1024**2:.2f} GiB")

    profit64, cost64 = profit.astype(np.float64), cost.astype(np.float64)
    del profit, cost
    started = time.perf_counter()
    alloc64 = optimize_budget(profit64, cost64, budget, mask=mask)
    print(f"campaign_optimize_1m_float64_seconds: {time.perf_counter() - started:.2f} s")
    print(f"campaign_float64_reported_gap: {alloc64.gap:.4f} currency")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"campaign_optimize_float64_peak_rss: {peak / 1024**2:.2f} GiB")


if __name__ == "__main__":
    main()
