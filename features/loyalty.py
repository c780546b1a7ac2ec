"""Loyalty state: bonus balance, points about to expire, days to the next birthday.

Bonus balance and expiring points come from the ``bonus_ledger`` (movements with
``ts < as_of``: positive = accrual, negative = redemption or a booked expiry). Redemptions
are taken to consume the accruals that expire first (FIFO by ``expires_at``; accruals
without ``expires_at`` never expire and are consumed last), whatever their dates. With ``A(t)``
the accrued points expiring at or before ``t`` and ``R`` all points taken out:

- expired unused points = ``max(0, A(as_of) - R)`` (a point is usable while
  ``expires_at > as_of``);
- ``bonus_balance`` = accrued - R - expired unused (negative if the ledger shows more taken
  out than put in, e.g. accruals before the ledger starts);
- ``points_expiring_Nd`` = ``max(0, A(as_of + N days) - R) - max(0, A(as_of) - R)``: points
  that expire in ``(as_of, as_of + N days]`` unless spent first.

A ledger that books expiries as negative movements gives the same figures: those movements
are part of ``R`` and cancel the expired accruals. Without a ledger, ``customers.bonus_balance``
is used as is (a snapshot: not point in time, so it may know the future of an old cutoff).

``days_to_birthday``: days from the cutoff's date to the next birthday (0 on the day).
Someone born on 29 February has their birthday on 28 February in non-leap years.
``age_years``: whole years completed at the cutoff's date (same 28 February rule).
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

import polars as pl

from features.columns import Col
from features.config import FeatureConfig
from features.names import Feat
from features.reductions import stable_sum

_ACCRUED = "_accrued"
_TAKEN = "_taken"


def _expiring_by(t: datetime) -> pl.Expr:
    """Points accrued that expire at or before ``t``."""
    points, expires = pl.col(Col.POINTS), pl.col(Col.EXPIRES_AT)
    return stable_sum(points.filter((points > 0) & (expires <= t)))


def bonus_state(ledger: pl.LazyFrame, *, as_of: datetime, config: FeatureConfig) -> pl.LazyFrame:
    """Balance and points expiring within each configured window, per customer in the ledger.

    The expiring columns are present only when the ledger has ``expires_at``.
    """
    points = pl.col(Col.POINTS)
    has_expiry = Col.EXPIRES_AT in ledger.collect_schema()
    windows = config.expiry_windows_days if has_expiry else ()
    cutoffs = [as_of, *(as_of + timedelta(days=d) for d in windows)]
    aggs = [
        stable_sum(points.filter(points > 0)).alias(_ACCRUED),
        (-stable_sum(points.filter(points < 0))).alias(_TAKEN),
    ]
    if has_expiry:
        aggs += [_expiring_by(t).alias(f"_a{i}") for i, t in enumerate(cutoffs)]
    taken = pl.col(_TAKEN)

    def unused(i: int) -> pl.Expr:
        if not has_expiry:
            return pl.lit(0.0)
        return (pl.col(f"_a{i}") - taken).clip(lower_bound=0.0)

    return (
        ledger.filter(pl.col(Col.TS) < as_of)
        .group_by(Col.CUSTOMER)
        .agg(aggs)
        .select(
            Col.CUSTOMER,
            (pl.col(_ACCRUED) - taken - unused(0)).alias(Feat.BONUS_BALANCE),
            *(
                (unused(i + 1) - unused(0)).alias(Feat.points_expiring(d))
                for i, d in enumerate(windows)
            ),
        )
    )


def snapshot_balance(customers: pl.LazyFrame) -> pl.LazyFrame:
    """``customers.bonus_balance`` as the balance (used when there is no ledger)."""
    return customers.select(Col.CUSTOMER, pl.col(Col.BONUS_BALANCE).alias(Feat.BONUS_BALANCE))


def _birthday_in(year: int, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    if not calendar.isleap(year):
        day = pl.when((month == 2) & (day == 29)).then(pl.lit(28)).otherwise(day)
    return pl.date(year, month, day)


def birthdays(customers: pl.LazyFrame, *, as_of: datetime) -> pl.LazyFrame:
    """Days to the next birthday and age in whole years, per customer with a birth_date.

    >>> from datetime import date
    >>> c = pl.LazyFrame({"customer_id": ["a", "b"],
    ...                   "birth_date": [date(2000, 2, 29), date(1990, 3, 1)]})
    >>> birthdays(c, as_of=datetime(2023, 2, 28)).collect().rows()
    [('a', 0, 23), ('b', 1, 32)]
    """
    today = as_of.date()
    born = pl.col(Col.BIRTH_DATE)
    month, day = born.dt.month(), born.dt.day()
    this_year = _birthday_in(today.year, month, day)
    next_year = _birthday_in(today.year + 1, month, day)
    upcoming = pl.when(this_year >= pl.lit(today)).then(this_year).otherwise(next_year)
    passed = (this_year <= pl.lit(today)).cast(pl.Int32)
    return customers.filter(born.is_not_null()).select(
        Col.CUSTOMER,
        (upcoming - pl.lit(today)).dt.total_days().cast(pl.Int32).alias(Feat.DAYS_TO_BIRTHDAY),
        (pl.lit(today.year) - born.dt.year().cast(pl.Int32) - 1 + passed)
        .cast(pl.Int32)
        .alias(Feat.AGE_YEARS),
    )
