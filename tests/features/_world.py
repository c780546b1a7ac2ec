"""A tiny hand-checked retail world shared by the feature tests (expected values in tests)."""

from __future__ import annotations

from datetime import datetime

import polars as pl

AS_OF = datetime(2024, 4, 1)

# (customer, order, ts, item, quantity, amount)
LINES = [
    # a: three purchases and one return order; check 30, 10, 50; recency 0 days
    ("a", "o1", datetime(2024, 1, 1, 10), "x", 1.0, 10.0),
    ("a", "o1", datetime(2024, 1, 1, 10), "y", 2.0, 20.0),
    ("a", "o2", datetime(2024, 3, 1, 10), "x", 1.0, 10.0),
    ("a", "r1", datetime(2024, 3, 5, 9), "y", -1.0, -10.0),
    ("a", "o3", datetime(2024, 3, 31, 12), "z", 1.0, 50.0),
    # b: one big old purchase (122 days), plus a line of an item missing from items
    ("b", "o4", datetime(2023, 12, 1), "x", 1.0, 100.0),
    ("b", "o4", datetime(2023, 12, 1), "q", 1.0, 0.0),
    # c: two orders on one day (59.4 days ago), item w bought below its list price
    ("c", "o5", datetime(2024, 2, 1, 9), "w", 1.0, 20.0),
    ("c", "o6", datetime(2024, 2, 1, 15), "w", 2.0, 40.0),
    # g: only a return
    ("g", "r2", datetime(2024, 3, 10), "x", -2.0, -20.0),
]

FUTURE_LINES = [
    ("a", "o9", datetime(2024, 4, 2), "z", 3.0, 150.0),
    ("b", "o9b", AS_OF, "x", 1.0, 10.0),
    ("h", "o10", datetime(2024, 4, 5), "x", 1.0, 10.0),
]


def tx(lines: list[tuple[str, str, datetime, str, float, float]] = LINES) -> pl.LazyFrame:
    """Transactions in contract dtypes."""
    return pl.LazyFrame(
        lines,
        schema={
            "customer_id": pl.String,
            "order_id": pl.String,
            "ts": pl.Datetime("us"),
            "item_id": pl.String,
            "quantity": pl.Float64,
            "amount": pl.Float64,
        },
        orient="row",
    )


ITEMS = pl.DataFrame(
    {
        "item_id": ["x", "y", "z", "w"],
        "category": ["A", "B", "A", "A"],
        "price": [10.0, 10.0, 50.0, 30.0],
    }
)
