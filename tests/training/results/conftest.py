"""Hand-made datasets whose campaign and KPI figures are worked out in the tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from features.dataset import write_parquet_atomic

SENT = datetime(2024, 3, 1, 10, 0)


def _tx(rows: list[tuple[str, str, datetime, str, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["customer_id", "order_id", "ts", "item_id", "quantity", "amount"],
        orient="row",
    )


def _offer(
    oid: str,
    customer: str,
    offer_type: str,
    bonus: float,
    converted: bool,
    control: bool,
    *,
    campaign: str = "C1",
    uplift: float = 0.1,
) -> dict[str, object]:
    return {
        "offer_id": oid,
        "customer_id": customer,
        "sent_at": SENT,
        "offer_type": offer_type,
        "bonus": bonus,
        "channel": "email",
        "converted": converted,
        "converted_at": SENT if converted else None,
        "revenue": None,
        "campaign_id": campaign,
        "control": control,
        "expected_uplift": uplift,
    }


@pytest.fixture
def campaign_data(tmp_path: Path) -> Path:
    """Campaign C1 (sent 2024-03-01 10:00, 14-day window): 4 treated, 4 control, 1 mixed.

    treated: t1 cashback 10 redeemed, bought item A (100, margin 30);
             t2 cashback 10, bought exactly when the window closes (not counted);
             t3 cross_sell 20 redeemed, bought A + B (150, margin 55);
             t4 cross_sell 20, bought only before the campaign.
    control: c1 bought A (100, margin 30); c2 nothing; c3 returned A in the window
             (revenue -100, margin -30, not a purchase); c4 nothing.
    m1 has a treated and a control row: left out.
    """
    tx = _tx(
        [
            ("t1", "o1", datetime(2024, 3, 3), "A", 1.0, 100.0),
            ("t2", "o2", datetime(2024, 3, 15, 10, 0), "A", 1.0, 100.0),
            ("t3", "o3", datetime(2024, 3, 5), "A", 1.0, 100.0),
            ("t3", "o3", datetime(2024, 3, 5), "B", 1.0, 50.0),
            ("t4", "o4", datetime(2024, 2, 20), "B", 1.0, 50.0),
            ("c1", "o5", datetime(2024, 3, 2), "A", 1.0, 100.0),
            ("c3", "o0", datetime(2024, 2, 1), "A", 1.0, 100.0),
            ("c3", "o6", datetime(2024, 3, 4), "A", -1.0, -100.0),
            ("m1", "o7", datetime(2024, 3, 4), "A", 1.0, 100.0),
            ("x9", "o8", datetime(2024, 3, 4), "A", 1.0, 100.0),
        ]
    )
    items = pl.DataFrame(
        {"item_id": ["A", "B"], "category": ["a", "b"], "price": [100.0, 50.0],
         "margin": [0.3, 0.5]}
    )  # fmt: skip
    offers = pl.DataFrame(
        [
            _offer("1", "t1", "cashback", 10.0, True, False, uplift=0.9),
            _offer("2", "t2", "cashback", 10.0, False, False, uplift=0.8),
            _offer("3", "t3", "cross_sell", 20.0, True, False, uplift=0.7),
            _offer("4", "t4", "cross_sell", 20.0, False, False, uplift=0.6),
            _offer("5", "c1", "none", 0.0, False, True, uplift=0.5),
            _offer("6", "c2", "none", 0.0, False, True, uplift=0.4),
            _offer("7", "c3", "none", 0.0, False, True, uplift=0.3),
            _offer("8", "c4", "none", 0.0, False, True, uplift=0.2),
            _offer("9", "m1", "cashback", 10.0, False, False),
            _offer("10", "m1", "none", 0.0, False, True),
            _offer("11", "x9", "cashback", 10.0, True, False, campaign="C2"),
        ]
    )
    root = tmp_path / "campaign"
    write_parquet_atomic(tx, root / "transactions.parquet")
    write_parquet_atomic(items, root / "items.parquet")
    write_parquet_atomic(offers, root / "offers.parquet")
    return root
