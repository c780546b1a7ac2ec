from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from features.config import FeatureConfig
from features.loyalty import birthdays, bonus_state

DAY0 = datetime(2024, 1, 1)


def _day(n: int) -> datetime:
    return DAY0 + timedelta(days=n)


LEDGER = pl.LazyFrame(
    {
        "customer_id": ["a", "a", "a", "a"],
        "ts": [_day(0), _day(1), _day(2), _day(30)],
        "points": [100.0, 50.0, -30.0, 500.0],
        "expires_at": [_day(10), _day(40), None, _day(400)],
    }
)


def _state(as_of: datetime, ledger: pl.LazyFrame = LEDGER) -> dict[str, object]:
    return bonus_state(ledger, as_of=as_of, config=FeatureConfig()).collect().to_dicts()[0]


def test_redemptions_consume_the_first_expiring_points() -> None:
    # as of day 5: 100 (expires day 10) + 50 (day 40) - 30 redeemed from the 100
    state = _state(_day(5))
    assert state["bonus_balance"] == 120.0
    assert state["points_expiring_7d"] == 70.0  # the rest of the 100 expires on day 10
    assert state["points_expiring_30d"] == 70.0


def test_expired_points_leave_the_balance() -> None:
    # as of day 20: the 70 left of the first accrual expired on day 10
    state = _state(_day(20))
    assert state["bonus_balance"] == 50.0
    assert state["points_expiring_7d"] == 0.0
    assert state["points_expiring_30d"] == 50.0  # day 40 is within (20, 50]


def test_booked_expiry_movements_are_not_counted_twice() -> None:
    booked = pl.concat(
        [
            LEDGER,
            pl.LazyFrame(
                {"customer_id": ["a"], "ts": [_day(10)], "points": [-70.0], "expires_at": [None]},
                schema=LEDGER.collect_schema(),
            ),
        ]
    )
    assert _state(_day(20), booked)["bonus_balance"] == 50.0


def test_ledger_without_expiry_gives_the_balance_only() -> None:
    state = _state(_day(5), LEDGER.drop("expires_at"))
    assert state == {"customer_id": "a", "bonus_balance": 120.0}


def test_days_to_birthday_handles_the_year_end_and_29_february() -> None:
    customers = pl.LazyFrame(
        {
            "customer_id": ["new_year", "leapling", "today", "none"],
            "birth_date": [date(1990, 1, 1), date(2000, 2, 29), date(1980, 12, 30), None],
        }
    )
    got = {
        r[0]: r[1:] for r in birthdays(customers, as_of=datetime(2023, 12, 30, 15)).collect().rows()
    }
    assert got["new_year"] == (2, 33)
    assert got["leapling"] == (61, 23)  # 2024 is a leap year: Feb 29 is 61 days away
    assert got["today"] == (0, 43)
    assert "none" not in got
    leap = birthdays(customers, as_of=datetime(2024, 2, 28)).collect()
    assert dict(zip(leap["customer_id"], leap["days_to_birthday"], strict=True))["leapling"] == 1


@pytest.mark.parametrize("as_of", [_day(5), _day(20)])
def test_ledger_rows_after_as_of_change_nothing(as_of: datetime) -> None:
    later = pl.concat(
        [
            LEDGER,
            pl.LazyFrame(
                {"customer_id": ["a"], "ts": [_day(25)], "points": [-999.0], "expires_at": [None]},
                schema=LEDGER.collect_schema(),
            ),
        ]
    )
    assert _state(as_of, later) == _state(as_of)
