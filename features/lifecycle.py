"""Lifecycle stage of each customer as of a cutoff.

Rules, first match wins (``d`` = ``recency_days``, whole days since the last purchase order;
``n`` = purchase orders before ``as_of``; thresholds from `FeatureConfig`, defaults in brackets):

1. ``registered``: no purchase order before ``as_of`` (in ``customers`` with
   ``registered_at < as_of``, or with only return lines).
2. ``lost``: ``d > lost_after_days`` [180].
3. ``sleeping``: ``d >= sleeping_after_days`` [90] (so 90..180 days).
4. ``at_risk``: ``d >= at_risk_after_days`` [45].
5. ``first_purchase``: ``n == 1`` (and recent: ``d < at_risk_after_days``).
6. ``active``: ``n >= regular_min_orders`` [4] (a regular, recent buyer).
7. ``repeat``: otherwise (2 <= n < regular_min_orders, recent).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from features.columns import Col
from features.config import FeatureConfig
from features.names import Feat, Stage
from features.orders import customer_totals

STAGES = pl.Enum(list(Stage.ALL))

NO_PURCHASE: dict[str, Any] = {Feat.LIFECYCLE_STAGE: Stage.REGISTERED}


def stage_expr(recency_days: pl.Expr, orders: pl.Expr, config: FeatureConfig) -> pl.Expr:
    """The lifecycle stage from recency (days) and purchase order count, as in the module rules.

    >>> df = pl.DataFrame({"d": [None, 200, 100, 50, 3, 3, 3], "n": [0, 5, 5, 5, 1, 4, 2]})
    >>> df.select(stage_expr(pl.col("d"), pl.col("n"), FeatureConfig())).to_series().to_list()
    ['registered', 'lost', 'sleeping', 'at_risk', 'first_purchase', 'active', 'repeat']
    """
    return (
        pl.when(orders.fill_null(0) == 0)
        .then(pl.lit(Stage.REGISTERED))
        .when(recency_days > config.lost_after_days)
        .then(pl.lit(Stage.LOST))
        .when(recency_days >= config.sleeping_after_days)
        .then(pl.lit(Stage.SLEEPING))
        .when(recency_days >= config.at_risk_after_days)
        .then(pl.lit(Stage.AT_RISK))
        .when(orders == 1)
        .then(pl.lit(Stage.FIRST_PURCHASE))
        .when(orders >= config.regular_min_orders)
        .then(pl.lit(Stage.ACTIVE))
        .otherwise(pl.lit(Stage.REPEAT))
        .cast(STAGES)
    )


def lifecycle(orders: pl.LazyFrame, *, as_of: datetime, config: FeatureConfig) -> pl.LazyFrame:
    """Lifecycle stage per customer with orders before ``as_of`` (see the module rules).

    ``orders`` is the frame of `features.orders.orders_before`.
    """
    return customer_totals(orders, as_of=as_of).select(
        Col.CUSTOMER,
        stage_expr(pl.col(Feat.RECENCY_DAYS), pl.col(Feat.FREQUENCY), config).alias(
            Feat.LIFECYCLE_STAGE
        ),
    )
