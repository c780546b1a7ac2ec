"""Monthly KPIs on a four-customer dataset; every figure below is worked out by hand.

Thresholds: at_risk after 15 days, sleeping after 30, lost after 60 (whole days since the
last purchase order). Purchases (one line each, at midnight):
  a: 2023-12-05 (10), 2024-01-05 (20), 2024-01-20 (30), 2024-03-10 (40)
  b: 2023-12-10 (50), 2024-02-25 (60)
  c: 2024-01-15 (70), then returns it on 2024-01-16 (-70, a return-only order)
  d: registered 2024-02-15, never buys
Stages at month starts: 01-01 a at_risk (27 d), b at_risk (22 d); 02-01 a repeat (12 d),
b sleeping (53 d), c at_risk (17 d); 03-01 a sleeping (40 d), b repeat (4 d), c sleeping (45 d);
04-01 b sleeping (35 d).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from features.config import FeatureConfig
from features.dataset import load_dataset, write_parquet_atomic
from training.results.kpi import KpiError, kpi_report, kpi_results, months

CONFIG = FeatureConfig(at_risk_after_days=15, sleeping_after_days=30, lost_after_days=60)
D = datetime


@pytest.fixture
def kpi_data(tmp_path: Path) -> Path:
    rows = [
        ("a", "1", D(2023, 12, 5), 1.0, 10.0),
        ("a", "2", D(2024, 1, 5), 1.0, 20.0),
        ("a", "3", D(2024, 1, 20), 1.0, 30.0),
        ("a", "4", D(2024, 3, 10), 1.0, 40.0),
        ("b", "5", D(2023, 12, 10), 1.0, 50.0),
        ("b", "6", D(2024, 2, 25), 1.0, 60.0),
        ("c", "7", D(2024, 1, 15), 1.0, 70.0),
        ("c", "8", D(2024, 1, 16), -1.0, -70.0),
    ]
    tx = pl.DataFrame(
        rows, schema=["customer_id", "order_id", "ts", "quantity", "amount"], orient="row"
    ).with_columns(pl.lit("x").alias("item_id"))
    customers = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "registered_at": [D(2023, 12, 1), D(2023, 12, 1), D(2024, 1, 10), D(2024, 2, 15)],
        }
    )
    offers = pl.DataFrame(
        {
            "offer_id": ["o1", "o2", "o3"],
            "customer_id": ["a", "b", "c"],
            "sent_at": [D(2024, 1, 3), D(2024, 1, 3), D(2024, 2, 10)],
            "offer_type": ["cashback", "none", "cashback"],
            "bonus": [5.0, 0.0, 5.0],
            "channel": "email",
            "converted": [True, False, False],
            "converted_at": [D(2024, 1, 5), None, None],
            "revenue": [20.0, None, None],
            "control": [False, True, False],
        }
    )
    ledger = pl.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "ts": [D(2024, 1, 5), D(2024, 1, 20), D(2024, 2, 25)],
            "points": [100.0, -30.0, 50.0],
            "expires_at": [D(2024, 3, 1), None, D(2024, 6, 1)],
        }
    )
    for name, df in (
        ("transactions", tx),
        ("customers", customers),
        ("offers", offers),
        ("bonus_ledger", ledger),
    ):
        write_parquet_atomic(df, tmp_path / f"{name}.parquet")
    return tmp_path


@pytest.fixture
def by_month(kpi_data: Path) -> dict[str, dict[str, object]]:
    r = kpi_results(load_dataset(kpi_data), date(2024, 1, 1), date(2024, 4, 1), config=CONFIG)
    return r["months"]  # type: ignore[no-any-return]


def test_purchase_kpis(by_month: dict[str, dict[str, object]]) -> None:
    jan, feb, mar = by_month["2024-01"], by_month["2024-02"], by_month["2024-03"]
    assert (jan["buyers"], jan["purchase_orders"]) == (2, 3)
    assert jan["revenue"] == pytest.approx(20 + 30 + 70 - 70)
    assert jan["average_check"] == pytest.approx((20 + 30 + 70) / 3)
    assert jan["purchase_frequency"] == pytest.approx(1.5)
    assert jan["repeat_purchase_rate"] == pytest.approx(0.5)  # a (3 orders), not c (1)
    assert (feb["buyers"], feb["average_check"], feb["repeat_purchase_rate"]) == (1, 60.0, 1.0)
    assert mar["revenue"] == pytest.approx(40.0)


def test_activity_coefficient_uses_the_known_customer_base(
    by_month: dict[str, dict[str, object]],
) -> None:
    assert by_month["2024-01"]["customer_base"] == 3  # d registers in February
    assert by_month["2024-01"]["activity_coefficient"] == pytest.approx(2 / 3)
    assert by_month["2024-02"]["activity_coefficient"] == pytest.approx(1 / 4)


def test_churn_and_reactivation(by_month: dict[str, dict[str, object]]) -> None:
    jan, feb, mar = by_month["2024-01"], by_month["2024-02"], by_month["2024-03"]
    assert (jan["alive_at_start"], jan["churned"], jan["churn_rate"]) == (2, 1, 0.5)  # b
    assert jan["reactivation_rate"] is None  # nobody dormant on 1 January
    assert (feb["churned"], feb["churn_rate"]) == (2, 1.0)  # a and c fall asleep
    assert (feb["dormant_at_start"], feb["reactivation_rate"]) == (1, 1.0)  # b is back
    assert (mar["churn_rate"], mar["reactivated"], mar["reactivation_rate"]) == (1.0, 1, 0.5)


def test_offer_engagement_and_revenue(by_month: dict[str, dict[str, object]]) -> None:
    jan, feb, mar = by_month["2024-01"], by_month["2024-02"], by_month["2024-03"]
    assert (jan["offers_sent"], jan["offers_redeemed"], jan["held_out"]) == (1, 1, 1)
    assert jan["offer_revenue"] == pytest.approx(20.0)
    assert jan["offer_revenue_share"] == pytest.approx(20 / 50)
    assert (feb["offers_sent"], feb["redemption_rate"]) == (1, 0.0)
    assert mar["redemption_rate"] is None


def test_points_liability(by_month: dict[str, dict[str, object]]) -> None:
    jan, feb, mar = by_month["2024-01"], by_month["2024-02"], by_month["2024-03"]
    # 1 Feb: a has 100 - 30 = 70, all expiring on 1 March (inside the next 30 days)
    assert (jan["points_outstanding"], jan["points_expiring_30d"]) == (70.0, 70.0)
    assert (jan["points_accrued"], jan["points_redeemed"]) == (100.0, 30.0)
    # 1 March: a's 70 expired; b holds 50 until June
    assert (feb["points_outstanding"], feb["points_expiring_30d"]) == (50.0, 0.0)
    assert mar["points_outstanding"] == 50.0


def test_report_files_and_period(kpi_data: Path, tmp_path: Path) -> None:
    result = kpi_report(load_dataset(kpi_data), None, None, tmp_path / "kpi", config=CONFIG)
    assert list(result.results["months"]) == ["2023-12", "2024-01", "2024-02", "2024-03"]
    assert any("partial months" in n for n in result.results["notes"])
    doc = json.loads((tmp_path / "kpi" / "metrics.json").read_text())
    assert doc["definitions"]["churn_rate"].startswith("of customers alive")
    assert "data:image/png;base64," in (tmp_path / "kpi" / "report.html").read_text()
    assert "churn_rate" in result.table()


def test_months_and_bad_period() -> None:
    assert len(months(D(2024, 1, 1), D(2025, 1, 1))) == 12
    with pytest.raises(KpiError, match="'from'"):
        months(D(2024, 2, 1), D(2024, 1, 1))
