"""RFM: recency, frequency, monetary; tertile scores (27 codes), quintile scores, segments.

- ``recency_days``: whole days since the last purchase order (see `features.orders`).
- ``frequency``: distinct purchase orders; ``monetary``: net spend (sales minus returns).
- Scores are computed over the *active population*: customers with at least one purchase
  order before ``as_of``. A customer's score is ``1 + floor(k * b / n)`` where ``n`` is the
  active population, ``k`` the number of levels (3 or 5) and ``b`` the number of active
  customers strictly worse on that measure (larger recency; smaller frequency or monetary).
  Equal values therefore always get equal scores, the worst value always gets 1, and a large
  tie (say 60% of customers with one order) shares one score instead of being split at random.
- ``rfm_code`` is ``R{r}F{f}M{m}`` from the 1-3 scores; ``rfm_segment`` names it:

  ======  =========  ===============================================
  R       F          segment
  ======  =========  ===============================================
  3       3          champions if M = 3, else loyal
  3       2          potential_loyalist
  3       1          new
  2       3          loyal
  2       2          need_attention
  2       1          about_to_sleep
  1       3          cant_lose if M = 3, else at_risk
  1       2          at_risk if M = 3, else hibernating
  1       1          lost
  ======  =========  ===============================================

  Customers without a purchase before ``as_of`` get ``no_purchase`` and null scores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from features.columns import Col
from features.names import Feat, Segment
from features.orders import customer_totals

SEGMENTS = pl.Enum(
    [
        Segment.CHAMPIONS,
        Segment.LOYAL,
        Segment.POTENTIAL_LOYALIST,
        Segment.NEW,
        Segment.NEED_ATTENTION,
        Segment.ABOUT_TO_SLEEP,
        Segment.AT_RISK,
        Segment.CANT_LOSE,
        Segment.HIBERNATING,
        Segment.LOST,
        Segment.NO_PURCHASE,
    ]
)


def segment_of(r: int, f: int, m: int) -> str:
    """The named segment of one R/F/M score triple (each 1-3), as in the module table."""
    if r == 3:
        if f == 3:
            return Segment.CHAMPIONS if m == 3 else Segment.LOYAL
        return Segment.POTENTIAL_LOYALIST if f == 2 else Segment.NEW
    if r == 2:
        if f == 3:
            return Segment.LOYAL
        return Segment.NEED_ATTENTION if f == 2 else Segment.ABOUT_TO_SLEEP
    if f == 3:
        return Segment.CANT_LOSE if m == 3 else Segment.AT_RISK
    if f == 2:
        return Segment.AT_RISK if m == 3 else Segment.HIBERNATING
    return Segment.LOST


SEGMENT_OF_CODE: dict[str, str] = {
    f"R{r}F{f}M{m}": segment_of(r, f, m) for r in (1, 2, 3) for f in (1, 2, 3) for m in (1, 2, 3)
}

# values for customers in the population without any transaction line before as_of
NO_PURCHASE: dict[str, Any] = {
    Feat.FREQUENCY: 0,
    Feat.MONETARY: 0.0,
    Feat.RFM_SEGMENT: Segment.NO_PURCHASE,
}


def score(value: pl.Expr, levels: int, *, higher_is_better: bool = True) -> pl.Expr:
    """Tie-safe quantile score 1..levels over the rows of the frame (nulls stay null).

    >>> df = pl.DataFrame({"v": [1, 1, 1, 2, 5, 9]})
    >>> df.select(score(pl.col("v"), 3)).to_series().to_list()
    [1, 1, 1, 2, 3, 3]
    """
    ordered = value if higher_is_better else -value
    worse = (ordered.rank("min") - 1).cast(pl.Int64)
    n = ordered.count().cast(pl.Int64)
    return (worse * levels // n + 1).cast(pl.Int8)


def rfm(orders: pl.LazyFrame, *, as_of: datetime) -> pl.LazyFrame:
    """RFM values, 1-3 and 1-5 scores, code and segment per customer with orders before as_of.

    ``orders`` is the frame of `features.orders.orders_before`. Customers whose orders before
    ``as_of`` are all returns have frequency 0, null recency and scores, and segment
    ``no_purchase``.
    """
    active = pl.col(Feat.FREQUENCY) > 0
    r = pl.when(active).then(pl.col(Feat.RECENCY_DAYS))
    f = pl.when(active).then(pl.col(Feat.FREQUENCY))
    m = pl.when(active).then(pl.col(Feat.MONETARY))
    code = pl.format("R{}F{}M{}", pl.col(Feat.R_SCORE), pl.col(Feat.F_SCORE), pl.col(Feat.M_SCORE))
    return (
        customer_totals(orders, as_of=as_of)
        .select(
            Col.CUSTOMER,
            Feat.RECENCY_DAYS,
            Feat.FREQUENCY,
            Feat.MONETARY,
            score(r, 3, higher_is_better=False).alias(Feat.R_SCORE),
            score(f, 3).alias(Feat.F_SCORE),
            score(m, 3).alias(Feat.M_SCORE),
            score(r, 5, higher_is_better=False).alias(Feat.R_QUINTILE),
            score(f, 5).alias(Feat.F_QUINTILE),
            score(m, 5).alias(Feat.M_QUINTILE),
        )
        .with_columns(code.alias(Feat.RFM_CODE))
        .with_columns(
            pl.col(Feat.RFM_CODE)
            .replace_strict(SEGMENT_OF_CODE, default=Segment.NO_PURCHASE, return_dtype=SEGMENTS)
            .alias(Feat.RFM_SEGMENT)
        )
        .select(
            Col.CUSTOMER,
            Feat.RECENCY_DAYS,
            Feat.FREQUENCY,
            Feat.MONETARY,
            Feat.R_SCORE,
            Feat.F_SCORE,
            Feat.M_SCORE,
            Feat.RFM_CODE,
            Feat.RFM_SEGMENT,
            Feat.R_QUINTILE,
            Feat.F_QUINTILE,
            Feat.M_QUINTILE,
        )
    )
