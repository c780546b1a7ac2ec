"""Float reductions over a group whose result does not depend on the order of its rows.

Floating-point addition is not associative, and polars adds a group's values in the order its
rows reach the aggregation: an upstream join, ``unique`` or ``group_by`` leaves that order
unspecified, and the streaming engine splits and recombines a group differently with the number
of threads and from run to run (``maintain_order`` upstream did not make the sums repeatable).
Two runs on the same data then computed features that differed in their last bits
(``category_entropy``, ``price_tier``, ``interval_std_days``, and on data with cents every money
sum): enough to move a tree split, and so a campaign plan. Here the group's values are gathered
into a list and sorted, and the list is reduced in that one order, whatever the plan and the
threads. A plain ``sort().sum()`` would not do: the optimizer drops a sort that only a sum
follows (a sum being order-free in exact arithmetic).

Minimum, maximum, median and quantiles need nothing: they do not depend on the order.

>>> import polars as pl
>>> frame = pl.DataFrame({"x": [0.1, 0.2, 0.3]})
>>> frame.select(pl.col("x").sum()).item(), frame.reverse().select(pl.col("x").sum()).item()
(0.6000000000000001, 0.6)
>>> [f.select(stable_sum(pl.col("x"))).item() for f in (frame, frame.reverse())]
[0.6000000000000001, 0.6000000000000001]
"""

from __future__ import annotations

import polars as pl


def _sorted(expr: pl.Expr) -> pl.Expr:
    """The group's values as one list, ascending (nulls first)."""
    return expr.implode().list.sort()


def stable_sum(expr: pl.Expr) -> pl.Expr:
    """``expr.sum()`` with the values added in ascending order (nulls skipped; empty: -0.0)."""
    return _sorted(expr).list.sum()


def stable_mean(expr: pl.Expr) -> pl.Expr:
    """``expr.mean()`` over the values in ascending order (null without a value)."""
    return _sorted(expr).list.mean()


def stable_std(expr: pl.Expr, ddof: int = 1) -> pl.Expr:
    """``expr.std(ddof)`` over the values in ascending order."""
    return _sorted(expr).list.std(ddof)
