"""Shared building blocks: orders before a cutoff and per-customer totals.

Conventions used by every feature module:

- Point in time: only lines with ``ts < as_of`` are used.
- A *sale line* has ``quantity > 0``; a *return line* has ``quantity < 0`` (its amount is
  negative). Lines with ``quantity == 0`` count in net spend only.
- A *purchase order* is an order (customer, order_id) with at least one sale line; its time is
  its earliest line. Return-only orders are not purchases (they reduce net spend and feed the
  return rate).
- ``recency_days`` is the number of whole days elapsed since the last purchase order
  (``floor((as_of - ts) / 1 day)``); purchase *days* are calendar dates.

The order-based feature functions (`features.rfm`, `features.lifecycle`, `features.activity`,
`features.checks`) take the frame of `orders_before`, so the one pass over the transaction
lines it costs is shared by all of them (`features.build` makes it once).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from features.columns import Col
from features.names import Feat
from features.reductions import stable_sum

# internal column names of the helper frames (never part of the output)
SALES = "_sales"
RETURNED = "_returned"
NET = "_net"
SOLD_LINES = "_sold_lines"
RETURNED_LINES = "_returned_lines"
IS_PURCHASE = "_is_purchase"
LAST_TS = "_last_purchase_ts"
DAY = "_day"


def lines_before(tx: pl.LazyFrame, *, as_of: datetime) -> pl.LazyFrame:
    """Transaction lines strictly before ``as_of``."""
    return tx.filter(pl.col(Col.TS) < as_of)


def orders_before(tx: pl.LazyFrame, *, as_of: datetime) -> pl.LazyFrame:
    """One row per (customer, order) before ``as_of``: time, sales, returns, net, line counts.

    >>> from datetime import datetime as dt
    >>> tx = pl.LazyFrame({"customer_id": ["a", "a", "a"], "order_id": ["1", "1", "2"],
    ...     "ts": [dt(2024, 1, 1), dt(2024, 1, 1), dt(2024, 1, 3)], "item_id": ["x", "y", "x"],
    ...     "quantity": [1.0, 2.0, -1.0], "amount": [10.0, 4.0, -10.0]})
    >>> orders_before(tx, as_of=dt(2024, 2, 1)).sort("order_id").select(
    ...     "order_id", "_sales", "_returned", "_net", "_is_purchase").collect().rows()
    [('1', 14.0, 0.0, 14.0, True), ('2', 0.0, 10.0, -10.0, False)]
    """
    amount, quantity = pl.col(Col.AMOUNT), pl.col(Col.QUANTITY)
    sale, ret = quantity > 0, quantity < 0
    return (
        lines_before(tx, as_of=as_of)
        .select(
            Col.CUSTOMER,
            Col.ORDER,
            Col.TS,
            pl.when(sale).then(amount).otherwise(0.0).alias(SALES),
            pl.when(ret).then(-amount).otherwise(0.0).alias(RETURNED),
            amount.alias(NET),
            sale.cast(pl.Int32).alias(SOLD_LINES),
            ret.cast(pl.Int32).alias(RETURNED_LINES),
        )
        .group_by(Col.CUSTOMER, Col.ORDER)
        .agg(
            pl.col(Col.TS).min(),
            *(stable_sum(pl.col(c)) for c in (SALES, RETURNED, NET)),
            pl.col(SOLD_LINES, RETURNED_LINES).sum(),
        )
        .with_columns((pl.col(SOLD_LINES) > 0).alias(IS_PURCHASE))
    )


def whole_days_since(ts: pl.Expr, as_of: datetime) -> pl.Expr:
    """Whole days elapsed from ``ts`` to ``as_of`` (floor), as Int32."""
    return ((pl.lit(as_of) - ts).dt.total_seconds() // 86_400).cast(pl.Int32)


def customer_totals(orders: pl.LazyFrame, *, as_of: datetime) -> pl.LazyFrame:
    """Per customer with an order before ``as_of``: frequency, recency, monetary and totals.

    ``orders`` is the frame of `orders_before`. Columns: customer_id, frequency (purchase
    orders), recency_days (null without a purchase), monetary (net spend: sales minus
    returns), and the internal sales/returned/line totals.
    """
    purchase = pl.col(IS_PURCHASE)
    return (
        orders.filter(pl.col(Col.TS) < as_of)
        .group_by(Col.CUSTOMER)
        .agg(
            purchase.sum().cast(pl.Int32).alias(Feat.FREQUENCY),
            pl.when(purchase).then(pl.col(Col.TS)).max().alias(LAST_TS),
            stable_sum(pl.col(NET)).alias(Feat.MONETARY),
            *(stable_sum(pl.col(c)) for c in (SALES, RETURNED)),
            pl.col(SOLD_LINES, RETURNED_LINES).sum(),
        )
        .with_columns(whole_days_since(pl.col(LAST_TS), as_of).alias(Feat.RECENCY_DAYS))
    )


def purchase_days(orders: pl.LazyFrame, *, as_of: datetime) -> pl.LazyFrame:
    """Distinct (customer, calendar day) pairs with a purchase order before ``as_of``."""
    return (
        orders.filter(pl.col(IS_PURCHASE) & (pl.col(Col.TS) < as_of))
        .select(Col.CUSTOMER, pl.col(Col.TS).dt.date().alias(DAY))
        .unique()
    )
