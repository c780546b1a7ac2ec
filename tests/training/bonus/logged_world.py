"""A tiny randomised offer history whose true effects are known by construction.

Customers have one observed feature ``f`` (0 or 1) and a hidden archetype given by it:
``f = 1`` customers are persuadable (cashback lifts conversion, more at the larger bonus),
``f = 0`` customers are put off by any contact (conversion falls). Every row is one offer
of a campaign that assigns the hold-out with probability ``P_NONE`` and each arm uniformly
otherwise.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from features.columns import Col, OfferType
from training.bonus.profit import Option
from training.bonus.value import Value

ARMS = (Option(OfferType.CASHBACK, 50.0), Option(OfferType.CASHBACK, 200.0))
P_NONE = 0.25
P0 = 0.3
MARGIN = 400.0  # order value 1,000 at margin rate 0.4


def true_p(f: np.ndarray, arm: np.ndarray) -> np.ndarray:
    """P(convert) of customers with feature ``f`` under arm index ``arm`` (-1 = none)."""
    lift = np.where(arm == 0, 0.20, 0.30)
    return np.where(arm < 0, P0, np.where(f == 1, P0 + lift, P0 - 0.15))


def true_profit(f: np.ndarray, arm: np.ndarray) -> np.ndarray:
    """Expected incremental profit of giving ``arm`` (bonus paid on conversion)."""
    bonus = np.array([a.bonus for a in ARMS])[np.maximum(arm, 0)]
    p = true_p(f, arm)
    return np.where(arm < 0, 0.0, p * (MARGIN - bonus) - P0 * MARGIN)


def history(n: int = 6000, seed: int = 3, *, with_prob: bool = False) -> pl.DataFrame:
    """``n`` offer rows of ``n // 2`` customers in two campaigns, features included."""
    rng = np.random.default_rng(seed)
    customers = n // 2
    cust = np.repeat(np.arange(customers), 2)
    campaign = np.tile([1, 2], customers)
    f = (cust % 2).astype(np.int64)
    u = rng.random(n)
    arm = np.where(u < P_NONE, -1, np.where(u < P_NONE + (1 - P_NONE) / 2, 0, 1))
    converted = rng.random(n) < true_p(f, arm)
    start = datetime(2025, 3, 1)
    frame = pl.DataFrame(
        {
            Col.OFFER: [f"o{i}" for i in range(n)],
            Col.CUSTOMER: [f"c{c:05d}" for c in cust],
            Col.CAMPAIGN: campaign.astype(str),
            Col.SENT_AT: [start + timedelta(days=30 * int(c)) for c in campaign],
            Col.OFFER_TYPE: [OfferType.NONE if a < 0 else ARMS[a].offer_type for a in arm],
            Col.BONUS: [0.0 if a < 0 else ARMS[a].bonus for a in arm],
            Col.CONVERTED: converted,
            Col.REVENUE: np.where(converted, 1000.0, np.nan),
            Value.EXPECTED_CHECK: np.full(n, 1000.0),
            Value.MARGIN_RATE: np.full(n, 0.4),
            "f": f.astype(np.float64),
            "noise": rng.normal(size=n),
        }
    )
    if with_prob:
        prob = np.where(arm < 0, P_NONE, (1 - P_NONE) / 2)
        frame = frame.with_columns(pl.Series("assignment_prob", prob))
    return frame
