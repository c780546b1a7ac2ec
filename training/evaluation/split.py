"""Temporal train / test splits: train strictly before the cutoff, test in the window after.

Nothing from the future reaches training: the train frame holds rows with ``ts < cutoff``
only, and the test frame rows with ``cutoff <= ts < cutoff + test_days``. Hyper-parameters are
chosen on `validation_split`, the last ``validation_days`` of the train period, never on test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from features.columns import Col


class SplitError(Exception):
    """The data cannot be split as asked (the message names the field)."""


@dataclass(frozen=True)
class SplitConfig:
    """How to split: a test window of ``test_days`` after the cutoff."""

    test_days: int = 30
    validation_days: int = 30

    def __post_init__(self) -> None:
        if self.test_days <= 0:
            raise SplitError(f"test_days must be positive, got {self.test_days}")
        if self.validation_days <= 0:
            raise SplitError(f"validation_days must be positive, got {self.validation_days}")


@dataclass(frozen=True)
class TemporalSplit:
    """Train rows before ``cutoff``; test rows in ``[cutoff, end)``; warm customers in both."""

    cutoff: datetime
    end: datetime
    train: pl.LazyFrame
    test: pl.LazyFrame
    warm_customers: pl.Series  # customer ids with a purchase in both train and test


def default_cutoff(tx: pl.LazyFrame, test_days: int = 30) -> datetime:
    """Midnight after the last transaction day, minus ``test_days``: the last days are test."""
    last = tx.select(pl.col(Col.TS).max()).collect().item()
    if last is None:
        raise SplitError(f"transactions.{Col.TS}: no rows, cannot choose a cutoff")
    end = datetime(last.year, last.month, last.day) + timedelta(days=1)
    return end - timedelta(days=test_days)


def _buyers(lf: pl.LazyFrame) -> pl.LazyFrame:
    return lf.filter(pl.col(Col.QUANTITY) > 0).select(Col.CUSTOMER).unique()


def temporal_split(
    tx: pl.LazyFrame, *, cutoff: datetime | None = None, config: SplitConfig | None = None
) -> TemporalSplit:
    """Split ``tx`` at ``cutoff`` (default: `default_cutoff`) into train and test frames."""
    config = config or SplitConfig()
    if cutoff is None:
        cutoff = default_cutoff(tx, config.test_days)
    end = cutoff + timedelta(days=config.test_days)
    train = tx.filter(pl.col(Col.TS) < cutoff)
    test = tx.filter((pl.col(Col.TS) >= cutoff) & (pl.col(Col.TS) < end))
    warm = (
        _buyers(train)
        .join(_buyers(test), on=Col.CUSTOMER, how="inner")
        .sort(Col.CUSTOMER)
        .collect()[Col.CUSTOMER]
    )
    return TemporalSplit(cutoff=cutoff, end=end, train=train, test=test, warm_customers=warm)


def validation_split(split: TemporalSplit, config: SplitConfig | None = None) -> TemporalSplit:
    """A split of the train period alone: its last ``validation_days`` become the test window.

    Use it to choose hyper-parameters; the real test window is never looked at.
    """
    config = config or SplitConfig()
    inner_cutoff = split.cutoff - timedelta(days=config.validation_days)
    return temporal_split(
        split.train,
        cutoff=inner_cutoff,
        config=SplitConfig(
            test_days=config.validation_days, validation_days=config.validation_days
        ),
    )
