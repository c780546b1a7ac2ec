"""Activity: how many days a customer buys on, and how regular the gaps between purchases are.

- ``active_days``: distinct calendar days with a purchase order inside the period.
- ``activity_period_days``: days in the period, which runs from the customer's start day (the
  earlier of ``registered_at`` and the first purchase) to ``as_of``; with
  ``FeatureConfig.activity_window_days`` set, it starts no earlier than that many days before
  ``as_of``. Counted as ``ceil((as_of - start day at 00:00) / 1 day)``, so a cutoff at
  midnight counts whole days and the cutoff's own day counts when ``as_of`` is later in it.
- ``activity_coef`` = active_days / activity_period_days, in (0, 1].
- ``interval_mean_days`` / ``interval_std_days``: mean and sample standard deviation (ddof 1)
  of the gaps in days between consecutive distinct purchase days (all history before as_of);
  the mean needs 2 purchase days, the standard deviation 3 (else null).
- ``overdue_ratio`` = recency_days / interval_mean_days: above 1 the customer is later than
  usual.

Customers without a purchase get ``active_days`` 0 and ``activity_coef`` 0.0, the rest null.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl

from features.columns import Col
from features.config import FeatureConfig
from features.names import Feat
from features.orders import DAY, customer_totals, purchase_days
from features.reductions import stable_mean, stable_std

_START = "_start_day"
_GAP = "_gap_days"

NO_PURCHASE: dict[str, Any] = {Feat.ACTIVE_DAYS: 0, Feat.ACTIVITY_COEF: 0.0}


def activity(
    orders: pl.LazyFrame,
    *,
    as_of: datetime,
    config: FeatureConfig,
    customers: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Active days, activity coefficient, purchase intervals and overdue ratio per buyer.

    ``orders`` is the frame of `features.orders.orders_before`; ``customers`` (optional)
    supplies ``registered_at`` for the start of the period.
    """
    days = purchase_days(orders, as_of=as_of)
    # gaps on one sorted pass (a per-group sort().diff() is many times slower)
    day, customer = pl.col(DAY), pl.col(Col.CUSTOMER)
    gap = (
        pl.when(customer == customer.shift(1))
        .then((day - day.shift(1)).dt.total_days())
        .cast(pl.Float64)
        .alias(_GAP)
    )
    per_customer = (
        days.sort(Col.CUSTOMER, DAY)
        .with_columns(gap)
        .group_by(Col.CUSTOMER)
        .agg(
            day.min().alias(_START),
            stable_mean(pl.col(_GAP)).alias(Feat.INTERVAL_MEAN_DAYS),
            stable_std(pl.col(_GAP)).alias(Feat.INTERVAL_STD_DAYS),
        )
    )
    if customers is not None and Col.REGISTERED_AT in customers.collect_schema():
        registered = customers.select(
            Col.CUSTOMER, pl.col(Col.REGISTERED_AT).dt.date().alias("_registered_day")
        )
        per_customer = per_customer.join(
            registered, on=Col.CUSTOMER, how="left", validate="m:1"
        ).with_columns(pl.min_horizontal(_START, "_registered_day").alias(_START))
    if config.activity_window_days is not None:
        window_start = (as_of - timedelta(days=config.activity_window_days)).date()
        per_customer = per_customer.with_columns(
            pl.max_horizontal(_START, pl.lit(window_start)).alias(_START)
        )
    seconds = (pl.lit(as_of) - pl.col(_START).cast(pl.Datetime("us"))).dt.total_seconds()
    period = per_customer.with_columns(
        (seconds / 86_400).ceil().cast(pl.Int32).alias(Feat.ACTIVITY_PERIOD_DAYS)
    )
    counted = (
        days.join(period.select(Col.CUSTOMER, _START), on=Col.CUSTOMER)
        .filter(pl.col(DAY) >= pl.col(_START))
        .group_by(Col.CUSTOMER)
        .agg(pl.len().cast(pl.Int32).alias(Feat.ACTIVE_DAYS))
    )
    recency = customer_totals(orders, as_of=as_of).select(Col.CUSTOMER, Feat.RECENCY_DAYS)
    return (
        period.join(counted, on=Col.CUSTOMER, how="left")
        .join(recency, on=Col.CUSTOMER, how="left")
        .with_columns(pl.col(Feat.ACTIVE_DAYS).fill_null(0))
        .select(
            Col.CUSTOMER,
            Feat.ACTIVE_DAYS,
            Feat.ACTIVITY_PERIOD_DAYS,
            (pl.col(Feat.ACTIVE_DAYS) / pl.col(Feat.ACTIVITY_PERIOD_DAYS)).alias(
                Feat.ACTIVITY_COEF
            ),
            Feat.INTERVAL_MEAN_DAYS,
            Feat.INTERVAL_STD_DAYS,
            (pl.col(Feat.RECENCY_DAYS) / pl.col(Feat.INTERVAL_MEAN_DAYS)).alias(Feat.OVERDUE_RATIO),
        )
    )
