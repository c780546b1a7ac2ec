"""The bonus ledger: accrual lots from purchases and offers, redemptions, expiries.

Every accrual is a lot with an expiry. A lot is either redeemed whole at a later purchase of
the same customer (before it expires), expires (a negative row at its expiry time), or is
still open at the end of the history. The customer's ``bonus_balance`` is the sum of the
ledger, which is the sum of open lots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.timeline import US_PER_DAY, US_PER_SECOND

MAX_REDEEM_SHARE = 0.5  # a purchase pays at most half its amount with points


@dataclass
class Lots:
    """Accrual lots: customer (chunk index), time, points and expiry (us since epoch)."""

    cust: np.ndarray
    ts: np.ndarray
    points: np.ndarray
    expires: np.ndarray


@dataclass
class Ledger:
    """Ledger rows of a chunk and the points spent per purchase order."""

    cust: np.ndarray
    ts: np.ndarray
    points: np.ndarray
    expires: np.ndarray  # -1 where the row is not an accrual
    spent_by_order: np.ndarray  # points redeemed at each purchase order (same order as given)
    balance: np.ndarray  # per customer of the chunk


def build_ledger(
    lots: Lots,
    order_cust: np.ndarray,
    order_ts: np.ndarray,
    order_amount: np.ndarray,
    redeem_prob: np.ndarray,
    n_customers: int,
    end_us: int,
    start_us: int,
    rng: np.random.Generator,
) -> Ledger:
    """Redeem and expire lots against the purchase orders (sorted by customer, ts)."""
    n_orders = order_cust.shape[0]
    span = (end_us - start_us) // US_PER_SECOND + 400 * 86_400
    order_key = order_cust * span + (order_ts - start_us) // US_PER_SECOND
    target = lots.ts + rng.integers(3, 61, lots.cust.shape[0]) * US_PER_DAY
    lot_key = lots.cust * span + (target - start_us) // US_PER_SECOND
    pos = np.searchsorted(order_key, lot_key, side="left")
    has = pos < n_orders
    pos_c = np.minimum(pos, max(n_orders - 1, 0))
    if n_orders:
        has &= order_cust[pos_c] == lots.cust
        has &= order_ts[pos_c] < lots.expires
        has &= order_ts[pos_c] < end_us
    else:
        has[:] = False
    redeem = has & (rng.random(lots.cust.shape[0]) < redeem_prob[lots.cust])
    spent = np.bincount(pos_c[redeem], weights=lots.points[redeem], minlength=n_orders)
    too_much = spent > MAX_REDEEM_SHARE * np.maximum(order_amount, 0.0)
    redeem &= ~too_much[pos_c]
    spent = np.bincount(pos_c[redeem], weights=lots.points[redeem], minlength=n_orders)

    expired = ~redeem & (lots.expires < end_us)
    used = np.flatnonzero(spent > 0)
    cust = np.concatenate([lots.cust, order_cust[used], lots.cust[expired]])
    ts = np.concatenate([lots.ts, order_ts[used], lots.expires[expired]])
    points = np.concatenate([lots.points, -spent[used], -lots.points[expired]])
    expires = np.concatenate(
        [lots.expires, np.full(used.shape[0], -1), np.full(int(expired.sum()), -1)]
    )
    balance = np.bincount(cust, weights=points, minlength=n_customers)
    return Ledger(
        cust=cust,
        ts=ts,
        points=points,
        expires=expires,
        spent_by_order=spent,
        balance=balance,
    )
