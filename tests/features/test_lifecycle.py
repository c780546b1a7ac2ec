from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from features.config import FeatureConfig
from features.lifecycle import lifecycle, stage_expr
from features.orders import orders_before
from tests.features._world import AS_OF, FUTURE_LINES, LINES, tx


def _stages(lines=LINES, config: FeatureConfig | None = None) -> dict[str, str]:
    orders = orders_before(tx(lines), as_of=AS_OF)
    df = lifecycle(orders, as_of=AS_OF, config=config or FeatureConfig()).collect()
    return dict(df.iter_rows())


def test_stages_of_the_small_world() -> None:
    # a: 3 orders, bought 0 days ago; b: 122 days; c: 59 days; g: returns only
    assert _stages() == {
        "a": "repeat",
        "b": "sleeping",
        "c": "at_risk",
        "g": "registered",
    }


@pytest.mark.parametrize(
    ("days", "orders", "stage"),
    [
        (181, 9, "lost"),
        (180, 9, "sleeping"),  # 90..180 days inclusive
        (90, 1, "sleeping"),
        (89, 9, "at_risk"),
        (45, 1, "at_risk"),
        (44, 1, "first_purchase"),
        (44, 3, "repeat"),
        (44, 4, "active"),
        (None, 0, "registered"),
    ],
)
def test_threshold_edges(days: int | None, orders: int, stage: str) -> None:
    df = pl.DataFrame({"d": [days], "n": [orders]}, schema={"d": pl.Int32, "n": pl.Int32})
    got = df.select(stage_expr(pl.col("d"), pl.col("n"), FeatureConfig())).item()
    assert got == stage


def test_thresholds_come_from_the_config() -> None:
    config = FeatureConfig(at_risk_after_days=10, sleeping_after_days=50, lost_after_days=100)
    stages = _stages(config=config)
    assert stages["c"] == "sleeping"  # 59 days >= 50
    assert stages["b"] == "lost"  # 122 days > 100


def test_a_regular_recent_buyer_is_active() -> None:
    lines = [("f", f"f{i}", AS_OF - timedelta(days=7 * i + 1), "x", 1.0, 10.0) for i in range(4)]
    assert _stages(lines) == {"f": "active"}


def test_rows_after_as_of_change_nothing() -> None:
    assert _stages(LINES + FUTURE_LINES) == _stages()


def test_only_rows_before_as_of_count() -> None:
    lines = [("f", "f1", datetime(2024, 3, 31), "x", 1.0, 1.0)]
    assert _stages(lines) == {"f": "first_purchase"}
    assert _stages([("f", "f1", AS_OF, "x", 1.0, 1.0)]) == {}
