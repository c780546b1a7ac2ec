"""dunnhumby coupon response: time split by campaign, point-in-time coupon history, and a
report that says plainly it is not causal."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from evaluation.dunnhumby import (
    COUPON_LINES,
    DunnhumbyError,
    coupon_lines,
    dunnhumby_response_report,
    time_split,
)
from features.adapters.dunnhumby import COUPON_DISC
from features.columns import Col


def offers(campaign_rows: dict[str, tuple[datetime, int]]) -> pl.DataFrame:
    rows = [
        {Col.CAMPAIGN: c, Col.SENT_AT: sent, Col.CUSTOMER: str(i)}
        for c, (sent, n) in campaign_rows.items()
        for i in range(n)
    ]
    return pl.DataFrame(rows)


def test_time_split_holds_out_the_latest_campaigns() -> None:
    frame = offers(
        {
            "a": (datetime(2017, 1, 1), 50),
            "b": (datetime(2017, 3, 1), 30),
            "c": (datetime(2017, 5, 1), 10),
            "d": (datetime(2017, 6, 1), 10),
        }
    )
    train, test = time_split(frame, 0.3)
    # latest first: d (10), c (20 so far), b (50 >= 30): b, c, d held out
    assert sorted(test[Col.CAMPAIGN].unique().to_list()) == ["b", "c", "d"]
    assert train[Col.CAMPAIGN].unique().to_list() == ["a"]
    train, test = time_split(frame, 0.1)
    assert test[Col.CAMPAIGN].unique().to_list() == ["d"]


def test_time_split_needs_two_campaigns() -> None:
    with pytest.raises(DunnhumbyError, match="two campaigns"):
        time_split(offers({"a": (datetime(2017, 1, 1), 5)}), 0.3)


def test_coupon_lines_count_only_discounted_lines_before_the_cutoff() -> None:
    tx = pl.DataFrame(
        {
            Col.CUSTOMER: ["1", "1", "1", "2"],
            Col.TS: [
                datetime(2017, 1, 1),
                datetime(2017, 1, 2),
                datetime(2017, 3, 1),  # after the cutoff
                datetime(2017, 1, 5),
            ],
            COUPON_DISC: [0.5, 0.0, 1.0, 0.3],
        }
    ).lazy()
    out = coupon_lines(tx, as_of=datetime(2017, 2, 1)).collect().sort(Col.CUSTOMER)
    assert out.rows() == [("1", 1), ("2", 1)]
    assert out.columns == [Col.CUSTOMER, COUPON_LINES]


@pytest.mark.slow
@pytest.mark.realdata
def test_response_report_on_complete_journey(shared_data: Path, tmp_path: Path) -> None:
    report = dunnhumby_response_report(shared_data, tmp_path)["dunnhumby_response"]
    json.dumps(report, default=str)
    assert report["randomised"] is False
    assert report["offers"] == report["offers_used"] + sum(
        v for v in report["excluded"].values() if isinstance(v, int)
    )
    held = report["held_out"]
    # the model ranks redeemers better than either simple baseline
    assert held["auc"] > max(
        held["baseline_auc_campaign_type_rate"], held["baseline_auc_earlier_redemptions"]
    )
    assert held["log_loss"] < held["base_rate_log_loss"]
    assert any("causal" in s for s in report["cannot_conclude"])
    types = {r["offer_type"] for r in report["redemption_rate_by_campaign_type"]}
    assert types == {"campaign_type_a", "campaign_type_b", "campaign_type_c"}
