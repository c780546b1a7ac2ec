"""Campaign measurement on the hand-made campaign of conftest.py (figures worked out there)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from features.dataset import load_dataset, write_parquet_atomic
from training.results.campaign import CampaignError, campaign_report, campaign_results
from training.results.stats import NOT_ENOUGH, PAID_OFF


def test_arms_by_hand(campaign_data: Path) -> None:
    r = campaign_results(load_dataset(campaign_data), "C1")
    t, c = r["arms"]["treated"], r["arms"]["control"]
    assert (r["treated_customers"], r["control_customers"]) == (4, 4)
    assert t["conversion_rate"] == pytest.approx(0.5)  # t1, t3 (t2 bought at the window's end)
    assert c["conversion_rate"] == pytest.approx(0.25)  # c1 (c3's return is not a purchase)
    assert t["revenue_per_customer"] == pytest.approx((100 + 150) / 4)
    assert c["revenue_per_customer"] == pytest.approx((100 - 100) / 4)
    assert t["margin_per_customer"] == pytest.approx((30 + 55) / 4)
    assert c["margin_per_customer"] == pytest.approx(0.0)
    assert t["bonus_paid_per_customer"] == pytest.approx((10 + 20) / 4)
    assert r["bonus_paid_total"] == pytest.approx(30.0)


def test_effects_and_verdict_by_hand(campaign_data: Path) -> None:
    r = campaign_results(load_dataset(campaign_data), "C1")
    e = r["effects"]
    assert e["conversion_uplift"]["value"] == pytest.approx(0.25)
    assert e["incremental_conversions"]["value"] == pytest.approx(1.0)
    assert e["net_margin_per_customer"]["value"] == pytest.approx(13.75)  # (20+35)/4 - 0
    assert e["incremental_net_margin"]["value"] == pytest.approx(55.0)
    assert e["roi"]["value"] == pytest.approx(13.75 / 7.5)
    # net margin: treated [20, 0, 35, 0] var 289.58, control [30, 0, -30, 0] var 600
    se = ((868.75 / 3) / 4 + 600 / 4) ** 0.5
    assert e["net_margin_per_customer"]["se"] == pytest.approx(se)
    assert r["verdict"] == NOT_ENOUGH
    assert "at least 30 in each group" in r["verdict_reason"]


def test_left_out_customers_are_counted(campaign_data: Path) -> None:
    r = campaign_results(load_dataset(campaign_data), "C1")
    assert r["counts"]["customers_in_both_arms"] == 1
    assert any("both arms" in n for n in r["notes"])


def test_breakdowns_compare_each_arm_with_the_whole_control_group(campaign_data: Path) -> None:
    r = campaign_results(load_dataset(campaign_data), "C1")
    by_type = r["breakdowns"]["offer_type"]
    assert set(by_type) == {"cashback", "cross_sell"}
    assert by_type["cashback"]["control"] == 4
    assert by_type["cashback"]["uplift"] == pytest.approx(0.5 - 0.25)
    assert set(r["breakdowns"]["bonus"]) == {"10", "20"}
    assert r["breakdowns"]["bonus"]["20"]["net_margin_per_customer"] == pytest.approx(17.5)
    stages = r["breakdowns"]["lifecycle_stage"]
    # t4 and c3 bought before the campaign: first_purchase; the rest have no history
    assert stages["first_purchase"]["treated"] == 1 and stages["first_purchase"]["control"] == 1


def test_calibration_by_decile_of_predicted_uplift(campaign_data: Path) -> None:
    r = campaign_results(load_dataset(campaign_data), "C1")
    deciles = r["calibration"]["expected_uplift"]
    assert sum(d["customers"] for d in deciles.values()) == 8
    top = deciles[max(deciles, key=int)]
    assert top["predicted"] == pytest.approx(0.9) and top["treated"] == 1


def test_without_margin_there_is_no_verdict(campaign_data: Path) -> None:
    items = pl.read_parquet(campaign_data / "items.parquet").drop("margin")
    write_parquet_atomic(items, campaign_data / "items.parquet")
    r = campaign_results(load_dataset(campaign_data), "C1")
    assert "net_margin_per_customer" not in r["effects"]
    assert r["verdict"] == NOT_ENOUGH and "no margin" in r["verdict_reason"]
    assumed = campaign_results(load_dataset(campaign_data), "C1", margin_rate=0.5)
    assert assumed["effects"]["margin_per_customer"]["value"] == pytest.approx(62.5 * 0.5)


def test_a_campaign_without_control_group_says_so(campaign_data: Path) -> None:
    r = campaign_results(load_dataset(campaign_data), "C2")
    assert r["control_customers"] == 0
    assert r["verdict"] == NOT_ENOUGH
    assert any("no control group" in n for n in r["notes"])


def test_a_clear_win_paid_off(tmp_path: Path) -> None:
    n = 200
    ids = [f"c{i}" for i in range(2 * n)]
    sent = pl.datetime(2024, 3, 1)
    offers = pl.DataFrame(
        {
            "offer_id": ids,
            "customer_id": ids,
            "offer_type": ["cashback"] * n + ["none"] * n,
            "bonus": [5.0] * n + [0.0] * n,
            "channel": "email",
            "converted": [i % 2 == 0 for i in range(n)] + [False] * n,
            "converted_at": None,
            "revenue": None,
            "campaign_id": "W",
            "control": [False] * n + [True] * n,
        }
    ).with_columns(sent.alias("sent_at"), pl.col("converted_at").cast(pl.Datetime("us")))
    buyers = ids[:n:2] + ids[n : n + n // 10]  # half the treated, a tenth of the control
    tx = pl.DataFrame(
        {"customer_id": buyers, "order_id": buyers, "item_id": "A", "quantity": 1.0,
         "amount": 100.0}
    ).with_columns(pl.datetime(2024, 3, 2).alias("ts"))  # fmt: skip
    items = pl.DataFrame({"item_id": ["A"], "category": ["a"], "price": [100.0], "margin": [0.4]})
    for name, df in (("offers", offers), ("transactions", tx), ("items", items)):
        write_parquet_atomic(df, tmp_path / f"{name}.parquet")
    r = campaign_results(load_dataset(tmp_path), "W")
    # net margin per treated: 0.5 * (40 - 5) - 0.1 * 40 = 13.5
    assert r["effects"]["net_margin_per_customer"]["value"] == pytest.approx(13.5)
    assert r["verdict"] == PAID_OFF


def test_unknown_campaign_is_named(campaign_data: Path) -> None:
    with pytest.raises(CampaignError, match=r"'nope'.*\['C1', 'C2'\]"):
        campaign_results(load_dataset(campaign_data), "nope")


def test_report_files(campaign_data: Path, tmp_path: Path) -> None:
    result = campaign_report(load_dataset(campaign_data), "C1", out=tmp_path / "out")
    html, metrics = result.files
    page = html.read_text()
    assert "NOT ENOUGH DATA TO TELL" in page and "data:image/png;base64," in page
    assert "Control-share planner" in page and "Predicted vs realised" in page
    doc = json.loads(metrics.read_text())
    assert doc["verdict"] == NOT_ENOUGH
    assert "conversion rate" in result.headline()
    assert not list((tmp_path / "out").glob(".*tmp"))
