"""Temporal splits: nothing from the future in train."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from features.columns import Col
from tests.training.recs.conftest import make_tx
from training.evaluation.split import (
    SplitConfig,
    SplitError,
    default_cutoff,
    temporal_split,
    validation_split,
)


def _tx() -> pl.LazyFrame:
    lines = [(f"c{d % 5}", f"o{d}", float(d), f"i{d % 7}", 1.0) for d in range(0, 100)]
    lines.append(("late", "oz", 99.5, "i0", 1.0))
    return make_tx(lines)


def test_train_is_strictly_before_the_cutoff_and_test_within_the_window():
    tx = _tx()
    split = temporal_split(tx, config=SplitConfig(test_days=30))
    assert split.cutoff == datetime(2024, 3, 11)  # midnight after the last day, minus 30 days
    train_max = split.train.select(pl.col(Col.TS).max()).collect().item()
    test = split.test.select(lo=pl.col(Col.TS).min(), hi=pl.col(Col.TS).max()).collect().row(0)
    assert train_max < split.cutoff <= test[0]
    assert test[1] < split.end
    n_all = tx.select(pl.len()).collect().item()
    n_parts = sum(f.select(pl.len()).collect().item() for f in (split.train, split.test))
    assert n_parts == n_all


def test_warm_customers_bought_in_both_periods():
    split = temporal_split(_tx())
    assert split.warm_customers.to_list() == ["c0", "c1", "c2", "c3", "c4"]  # not "late"


def test_validation_split_lives_inside_train_only():
    split = temporal_split(_tx())
    val = validation_split(split)
    assert val.end == split.cutoff
    val_max = val.test.select(pl.col(Col.TS).max()).collect().item()
    assert val_max < split.cutoff


def test_bad_config_and_empty_data_are_clear_errors():
    with pytest.raises(SplitError, match="test_days"):
        SplitConfig(test_days=0)
    with pytest.raises(SplitError, match="no rows"):
        default_cutoff(_tx().filter(pl.lit(False)))
