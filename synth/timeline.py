"""Calendar of the world: weekly and seasonal demand, day sampling, times of day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

US_PER_DAY = 86_400 * 1_000_000
US_PER_SECOND = 1_000_000
_EPOCH = datetime(1970, 1, 1)
# Monday..Sunday
_WEEKDAY = np.array([0.90, 0.88, 0.92, 0.97, 1.12, 1.25, 1.05])
# shopping hours: share of orders per hour of the day
_HOURS = np.array(
    [
        1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3.5, 4.5, 5.5, 6.5,
        7.5, 7, 6, 5.5, 6, 7, 8, 8.5, 7.5, 5.5, 3.5, 2,
    ],
    dtype=float,
)  # fmt: skip
_HOUR_CUM = np.cumsum(_HOURS / _HOURS.sum())
# non-leap day-of-year (1..365) of the first of each month
_MONTH_START = np.array([1, 32, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335])


def day_of_year(start: date, day: np.ndarray) -> np.ndarray:
    """Non-leap day of the year (1..365; 29 February counts as 28 February) of ``start + day``."""
    dates = np.datetime64(start, "D") + np.asarray(day, dtype=np.int64)
    months = dates.astype("datetime64[M]")
    month = months.astype(np.int64) % 12
    dom = (dates - months.astype("datetime64[D]")).astype(np.int64) + 1
    dom = np.where(month == 1, np.minimum(dom, 28), dom)
    return np.asarray(_MONTH_START[month] + dom - 1)


@dataclass(frozen=True)
class Timeline:
    """Demand weight of every day of the history and helpers to draw days and timestamps."""

    start: date
    days: int
    weight: np.ndarray  # relative demand per day, mean 1
    cum: np.ndarray  # cum[d] = sum of weight[:d], length days + 1

    @classmethod
    def build(cls, start: date, days: int) -> Timeline:
        """Weekday rhythm, a December peak, a summer dip and a late-November sale spike."""
        doy = day_of_year(start, np.arange(days))
        weekday = (np.arange(days) + start.weekday()) % 7
        season = 1.0 + 0.18 * np.cos(2 * np.pi * (doy[:days] - 355) / 365.0)
        season -= 0.08 * np.exp(-(((doy[:days] - 200) / 25.0) ** 2))  # summer dip
        season += 0.6 * np.exp(-(((doy[:days] - 330) / 2.5) ** 2))  # black-friday spike
        weight = _WEEKDAY[weekday] * season
        weight = weight / weight.mean()
        cum = np.concatenate([[0.0], np.cumsum(weight)])
        return cls(start=start, days=days, weight=weight, cum=cum)

    @property
    def start_us(self) -> int:
        """Microseconds since the epoch at the first midnight of the history."""
        return (datetime.combine(self.start, datetime.min.time()) - _EPOCH) // timedelta(
            microseconds=1
        )

    @property
    def end_us(self) -> int:
        """Microseconds since the epoch at the midnight after the last day."""
        return self.start_us + self.days * US_PER_DAY

    def mass(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Total demand weight of days ``lo..hi-1`` (clipped to the history)."""
        lo_c = np.clip(lo, 0, self.days)
        hi_c = np.clip(hi, 0, self.days)
        return np.asarray(np.maximum(self.cum[hi_c] - self.cum[lo_c], 0.0))

    def sample_days(self, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A day in ``lo..hi-1`` for each uniform ``u``, drawn in proportion to demand."""
        lo_c = np.clip(lo, 0, self.days - 1)
        hi_c = np.clip(hi, lo_c + 1, self.days)
        target = self.cum[lo_c] + u * (self.cum[hi_c] - self.cum[lo_c])
        day = np.searchsorted(self.cum, target, side="right") - 1
        return np.asarray(np.clip(day, lo_c, hi_c - 1))

    def seconds_of_day(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Seconds after midnight following the shopping-hours profile."""
        hour = np.searchsorted(_HOUR_CUM, rng.random(n), side="right")
        hour = np.minimum(hour, 23)
        return hour * 3600 + rng.integers(0, 3600, n)

    def to_day(self, ts_us: np.ndarray) -> np.ndarray:
        """Day index of microsecond timestamps."""
        return (ts_us - self.start_us) // US_PER_DAY
