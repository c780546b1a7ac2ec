"""A campaign plan played out into a copy of the world stays a valid dataset."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from features.validate import validate_dataset
from synth.playout import played_out_dataset


def test_played_out_world_validates_and_holds_the_campaign(
    tiny_world: Path, tmp_path: Path
) -> None:
    customers = pl.read_parquet(tiny_world / "customers.parquet")["customer_id"].head(60)
    plan = pl.DataFrame(
        {
            "customer_id": customers,
            "offer_type": ["cashback"] * 40 + ["none"] * 20,
            "bonus": [100.0] * 40 + [0.0] * 20,
            "control": [False] * 40 + [True] * 10 + [False] * 10,  # last 10: not contacted
            "expected_uplift": [0.05] * 60,
        }
    )
    out = tmp_path / "after"
    offers, _ = played_out_dataset(
        tiny_world, plan, out, start=datetime(2025, 5, 1), seed=3, campaign_id="spring"
    )
    assert offers == 50  # the 10 uncontacted customers are not part of the campaign
    report = validate_dataset(out)
    assert report.ok, report.format()
    added = pl.read_parquet(out / "offers.parquet").filter(pl.col("campaign_id") == "spring")
    assert added.height == 50 and added["control"].sum() == 10
    before = validate_dataset(tiny_world).row_counts["offers"]
    assert report.row_counts["offers"] == before + 50
