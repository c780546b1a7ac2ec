from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.build import (
    FeatureError,
    customer_features,
    default_as_of,
    feature_notes,
    purchase_labels,
)
from features.config import FeatureConfig
from features.dataset import DatasetError, load_dataset, write_parquet_atomic
from tests.features._world import AS_OF, FUTURE_LINES, ITEMS, LINES, tx

CUSTOMERS = pl.DataFrame(
    {
        "customer_id": ["a", "b", "d", "e"],
        "registered_at": [
            datetime(2023, 6, 1),
            datetime(2023, 6, 1),
            datetime(2024, 3, 15),  # d: registered, never bought
            datetime(2024, 5, 1),  # e: registered after the cutoff
        ],
        "birth_date": [datetime(1990, 4, 3).date(), None, None, None],
        "bonus_balance": [5.0, None, 1.0, 2.0],
        "region": ["north", "south", "east", "west"],
    }
)
OFFERS = pl.DataFrame(
    {
        "offer_id": ["1"],
        "customer_id": ["a"],
        "sent_at": [datetime(2024, 3, 1)],
        "offer_type": ["cashback"],
        "bonus": [5.0],
        "channel": ["email"],
        "converted": [False],
        "converted_at": [None],
        "revenue": [None],
    },
    schema_overrides={"converted_at": pl.Datetime("us"), "revenue": pl.Float64},
)
CONFIG = FeatureConfig(share_categories=("A", "B"))


def _write(root: Path, lines=LINES, customers=CUSTOMERS, items=True, tables=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    frames = {"transactions": tx(lines).collect(), "customers": customers, "offers": OFFERS}
    if items:
        frames["items"] = ITEMS
    for name, df in frames.items():
        if tables is None or name in tables:
            write_parquet_atomic(df, root / f"{name}.parquet")
    return root


def _features(root: Path, config: FeatureConfig = CONFIG) -> pl.DataFrame:
    return customer_features(load_dataset(root), as_of=AS_OF, config=config).collect()


def test_population_fills_and_pass_through(tmp_path: Path) -> None:
    df = _features(_write(tmp_path))
    assert df["customer_id"].to_list() == ["a", "b", "c", "d", "g"]  # e registers later
    d = df.row(3, named=True)
    assert (d["frequency"], d["monetary"], d["active_days"], d["activity_coef"]) == (0, 0.0, 0, 0.0)
    assert (d["lifecycle_stage"], d["rfm_segment"]) == ("registered", "no_purchase")
    assert (d["r_score"], d["recency_days"], d["check_mean"]) == (None, None, None)
    assert (d["tenure_days"], d["region"], d["bonus_balance"]) == (17, "east", 1.0)
    a = df.row(0, named=True)
    assert (a["rfm_code"], a["lifecycle_stage"], a["days_to_birthday"]) == ("R3F3M2", "repeat", 2)
    assert a["cat_share__a"] == pytest.approx(7 / 9)
    assert df.row(2, named=True)["region"] is None  # c buys but is not in customers


def test_column_order_and_dtypes_are_stable(tmp_path: Path) -> None:
    df = _features(_write(tmp_path))
    assert df.columns[:13] == [
        "customer_id",
        "recency_days",
        "frequency",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        "rfm_code",
        "rfm_segment",
        "r_quintile",
        "f_quintile",
        "m_quintile",
        "lifecycle_stage",
    ]
    assert df.columns[-5:] == [
        "bonus_balance",
        "days_to_birthday",
        "age_years",
        "tenure_days",
        "region",
    ]
    assert df.schema["lifecycle_stage"] == pl.Enum(
        ["registered", "first_purchase", "repeat", "active", "at_risk", "sleeping", "lost"]
    )
    assert df.schema["frequency"] == pl.Int32 and df.schema["monetary"] == pl.Float64
    again = _features(_write(tmp_path / "again", lines=list(reversed(LINES))))
    assert again.schema == df.schema
    assert again.equals(df)


def test_rows_after_as_of_change_no_feature(tmp_path: Path) -> None:
    later_customers = pl.concat(
        [
            CUSTOMERS,
            pl.DataFrame(
                {
                    "customer_id": ["late"],
                    "registered_at": [datetime(2024, 4, 2)],
                    "birth_date": [None],
                    "bonus_balance": [0.0],
                    "region": ["north"],
                },
                schema=CUSTOMERS.schema,
            ),
        ]
    )
    before = _features(_write(tmp_path / "now"))
    after = _features(_write(tmp_path / "later", LINES + FUTURE_LINES, later_customers))
    assert after.equals(before)


def test_customers_and_offers_only_give_attributes_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _write(tmp_path, tables={"customers", "offers"})
    with caplog.at_level(logging.WARNING, logger="offers"):
        df = _features(root)
    assert df.columns == [
        "customer_id",
        "bonus_balance",
        "days_to_birthday",
        "age_years",
        "tenure_days",
        "region",
    ]
    assert df["customer_id"].to_list() == ["a", "b", "d"]
    assert "no transactions table" in caplog.text
    assert any("no transactions" in n for n in feature_notes(load_dataset(root)))


def test_no_items_leaves_preferences_out(tmp_path: Path) -> None:
    df = _features(_write(tmp_path, items=False))
    assert "price_tier" not in df.columns and "top_category" not in df.columns
    assert "check_mean" in df.columns


def test_top_categories_are_chosen_when_not_configured(tmp_path: Path) -> None:
    df = _features(_write(tmp_path), FeatureConfig(top_categories=1))
    assert [c for c in df.columns if c.startswith("cat_share__")] == ["cat_share__a"]


def test_empty_transactions_give_an_empty_frame_with_the_full_schema(tmp_path: Path) -> None:
    full = _features(_write(tmp_path / "full"))
    empty = _features(_write(tmp_path / "empty", lines=[], customers=CUSTOMERS.head(0)))
    assert empty.height == 0
    assert empty.schema == full.schema


def test_purchase_labels_use_the_horizon_window_only() -> None:
    lines = LINES + FUTURE_LINES
    labels = purchase_labels(tx(lines), as_of=AS_OF, horizon_days=3).collect()
    # a buys Apr 2 (150), b at exactly as_of (10); h on Apr 5 is outside 3 days
    assert labels.rows() == [("a", True, 150.0), ("b", True, 10.0)]
    population = pl.LazyFrame({"customer_id": ["a", "c"]})
    filled = purchase_labels(tx(lines), as_of=AS_OF, horizon_days=3, population=population)
    assert filled.collect().rows() == [("a", True, 150.0), ("c", False, 0.0)]


def test_default_as_of_is_midnight_after_the_last_transaction(tmp_path: Path) -> None:
    assert default_as_of(load_dataset(_write(tmp_path))) == datetime(2024, 4, 1)
    with pytest.raises(DatasetError, match="transactions"):
        default_as_of(load_dataset(_write(tmp_path / "no_tx", tables={"customers"})))


def test_bad_as_of_is_refused(tmp_path: Path) -> None:
    from datetime import UTC

    ds = load_dataset(_write(tmp_path))
    with pytest.raises(FeatureError, match="naive"):
        customer_features(ds, as_of=datetime(2024, 4, 1, tzinfo=UTC), config=CONFIG)


def _random_lines(seed: int) -> list[tuple[str, str, datetime, str, float, float]]:
    """150 customers' orders over a quarter, amounts with cents, some lines returned."""
    rng = np.random.default_rng(seed)
    lines = []
    for c in range(150):
        for o in range(int(rng.integers(1, 12))):
            ts = datetime(2024, 1, 1) + timedelta(minutes=int(rng.integers(0, 130_000)))
            for item in rng.choice(["x", "y", "z", "w"], int(rng.integers(1, 4)), replace=False):
                qty = float(rng.integers(1, 4))
                amount = round(qty * float(rng.uniform(5, 60)), 2)
                lines.append((f"c{c}", f"o{c}-{o}", ts, str(item), qty, amount))
                if rng.random() < 0.1:
                    back, unit = ts + timedelta(days=1), amount / qty
                    lines.append((f"c{c}", f"r{c}-{o}-{item}", back, str(item), -1.0, -unit))
    return lines


def test_features_are_bit_identical_whatever_the_order_of_the_lines(tmp_path: Path) -> None:
    # regression: two trainings on byte-identical data gave different campaign plans; float
    # sums (entropy, price tier, money with cents) depended on the order polars met the rows
    lines = _random_lines(seed=4)
    first = _features(_write(tmp_path / "0", lines=lines))
    for seed in (1, 2):
        shuffled = pl.Series(range(len(lines))).shuffle(seed=seed).to_list()
        root = _write(tmp_path / str(seed), lines=[lines[i] for i in shuffled])
        assert_frame_equal(_features(root), first, check_exact=True)
