"""Checks (order totals), spend trend and return rate.

- A *check* is the sold amount of one purchase order: the sum of its sale lines
  (``quantity > 0``). Returns are kept out of checks: they are usually booked as orders of
  their own, and a check should say what a customer spends when shopping. Returns count in
  ``return_rate`` and in net spend (``monetary``, trend).
- ``check_mean``, ``check_median`` and ``check_pNN`` for each of
  ``FeatureConfig.check_quantiles`` (linear interpolation between checks), e.g. thresholds
  for "spend X, get Y" offers.
- Trend with ``w = trend_window_days``: ``spend_recent`` is net spend (sales minus returns)
  of the orders whose time (earliest line) is in ``[as_of - w, as_of)``, ``spend_prior``
  likewise in ``[as_of - 2w, as_of - w)``;
  ``spend_trend_diff = recent - prior``; ``spend_trend = (r - p) / (r + p)`` on the spends
  clipped at 0 (r, p), in [-1, 1]: 1 = all spend recent (defined when prior is 0), -1 = none
  recent, 0 when both are 0.
- ``return_rate`` = returned amount / sold amount; ``return_line_rate`` = return lines / sale
  lines (both before as_of; null without sales; above 1 when returns outweigh the purchases
  seen, e.g. returns of purchases made before the data starts).

Customers without a purchase get null checks, ``spend_recent``/``spend_prior`` 0 (when they
have no lines) and null rates.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl

from features.columns import Col
from features.config import FeatureConfig
from features.names import Feat
from features.orders import (
    IS_PURCHASE,
    NET,
    RETURNED,
    RETURNED_LINES,
    SALES,
    SOLD_LINES,
    customer_totals,
)
from features.reductions import stable_mean, stable_sum

NO_PURCHASE: dict[str, Any] = {
    Feat.SPEND_RECENT: 0.0,
    Feat.SPEND_PRIOR: 0.0,
    Feat.SPEND_TREND_DIFF: 0.0,
    Feat.SPEND_TREND: 0.0,
}


def check_names(config: FeatureConfig) -> list[str]:
    """The check columns, in output order."""
    return [
        Feat.CHECK_MEAN,
        Feat.CHECK_MEDIAN,
        *(Feat.check_quantile(q) for q in config.check_quantiles),
    ]


def checks(orders: pl.LazyFrame, *, as_of: datetime, config: FeatureConfig) -> pl.LazyFrame:
    """Check statistics, spend trend and return rates per customer with orders before as_of.

    ``orders`` is the frame of `features.orders.orders_before`.
    """
    check = pl.col(SALES)
    window = timedelta(days=config.trend_window_days)
    ts, net = pl.col(Col.TS), pl.col(NET)
    before = orders.filter(ts < as_of)
    per_order = (
        before.filter(pl.col(IS_PURCHASE))
        .group_by(Col.CUSTOMER)
        .agg(
            stable_mean(check).alias(Feat.CHECK_MEAN),
            check.median().alias(Feat.CHECK_MEDIAN),
            *(
                check.quantile(q, "linear").alias(Feat.check_quantile(q))
                for q in config.check_quantiles
            ),
        )
    )
    trend = (
        before.filter(ts >= as_of - 2 * window)
        .select(
            Col.CUSTOMER,
            pl.when(ts >= as_of - window).then(net).otherwise(0.0).alias(Feat.SPEND_RECENT),
            pl.when(ts < as_of - window).then(net).otherwise(0.0).alias(Feat.SPEND_PRIOR),
        )
        .group_by(Col.CUSTOMER)
        .agg(stable_sum(pl.col(c)) for c in (Feat.SPEND_RECENT, Feat.SPEND_PRIOR))
    )
    recent = pl.col(Feat.SPEND_RECENT).clip(lower_bound=0.0)
    prior = pl.col(Feat.SPEND_PRIOR).clip(lower_bound=0.0)
    sold = pl.col(SALES)
    lines = pl.col(SOLD_LINES)
    return (
        customer_totals(orders, as_of=as_of)
        .select(
            Col.CUSTOMER,
            pl.when(sold > 0).then(pl.col(RETURNED) / sold).alias(Feat.RETURN_RATE),
            pl.when(lines > 0)
            .then(pl.col(RETURNED_LINES) / lines)
            .cast(pl.Float64)
            .alias(Feat.RETURN_LINE_RATE),
        )
        .join(per_order, on=Col.CUSTOMER, how="left")
        .join(trend, on=Col.CUSTOMER, how="left")
        .with_columns(pl.col(Feat.SPEND_RECENT, Feat.SPEND_PRIOR).fill_null(0.0))
        .select(
            Col.CUSTOMER,
            *check_names(config),
            Feat.SPEND_RECENT,
            Feat.SPEND_PRIOR,
            (pl.col(Feat.SPEND_RECENT) - pl.col(Feat.SPEND_PRIOR)).alias(Feat.SPEND_TREND_DIFF),
            pl.when(recent + prior > 0)
            .then((recent - prior) / (recent + prior))
            .otherwise(0.0)
            .alias(Feat.SPEND_TREND),
            Feat.RETURN_RATE,
            Feat.RETURN_LINE_RATE,
        )
    )
