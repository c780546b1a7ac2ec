"""Expected incremental profit and expected cost of each (customer, offer option).

For customer ``i`` and option ``j`` = (offer type ``t``, bonus ``b`` points), with ``v`` the
money value of one point (``BonusConfig.point_value``)::

    p_b      = P(convert | t, b)          response model
    p_0      = P(convert | no offer)      response model, offer type "none"
    m_t      = expected margin of the conversion order under offer type t   (value model)
    m_0      = expected margin of the order without an offer                (value model)

    profit(i, j) = p_b * (m_t - v * b) - p_0 * m_0
    cost(i, j)   = p_b * v * b

The bonus is granted only on conversion, so it is paid with probability ``p_b``. Every
granted point is counted at its full face value ``v``: a redeemed point costs the shop exactly
that, and counting all of them as redeemed is the conservative (budget-safe) choice; points
that expire unused would make the true cost lower. ``profit`` is *incremental*: the
conversions that would have happened anyway (``p_0``) earn their margin without the offer, so
an offer to a sure thing is worth ``-(v * b) * p_b`` plus whatever it adds.

An expiring-points reminder and a non-monetary privilege carry ``b = 0``: they cost nothing
extra (the reminded points are already owed to the customer and were booked as a cost when
they were granted), so their cost is 0 and their profit is the margin of the conversions they
add (which is negative for a customer whom contact annoys).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class ProfitInputError(ValueError):
    """Profit inputs have inconsistent shapes or invalid values (the message names them)."""


@dataclass(frozen=True)
class Option:
    """One column of the profit matrix: an offer type with a bonus (points)."""

    offer_type: str
    bonus: float

    @property
    def label(self) -> str:
        """``cashback@100`` style name."""
        return f"{self.offer_type}@{self.bonus:g}"


def expected_profit(
    p_offer: npt.ArrayLike,
    p_none: npt.ArrayLike,
    margin_offer: npt.ArrayLike,
    margin_none: npt.ArrayLike,
    bonus: npt.ArrayLike,
    point_value: float = 1.0,
) -> FloatArray:
    """``p_offer * (margin_offer - point_value * bonus) - p_none * margin_none`` (broadcast)."""
    paid = point_value * np.asarray(bonus, dtype=np.float64)
    p_b = np.asarray(p_offer, dtype=np.float64)
    return np.asarray(
        p_b * (np.asarray(margin_offer, dtype=np.float64) - paid)
        - np.asarray(p_none, dtype=np.float64) * np.asarray(margin_none, dtype=np.float64),
        dtype=np.float64,
    )


def expected_cost(
    p_offer: npt.ArrayLike, bonus: npt.ArrayLike, point_value: float = 1.0
) -> FloatArray:
    """``p_offer * point_value * bonus``: the bonus money paid out in expectation."""
    return np.asarray(
        np.asarray(p_offer, dtype=np.float64) * point_value * np.asarray(bonus, dtype=np.float64),
        dtype=np.float64,
    )


def profit_matrices(
    p_offer: npt.ArrayLike,
    p_none: npt.ArrayLike,
    margin_offer: npt.ArrayLike,
    margin_none: npt.ArrayLike,
    bonus: npt.ArrayLike,
    point_value: float = 1.0,
) -> tuple[FloatArray, FloatArray]:
    """The ``(n, m)`` profit and cost matrices for `training.bonus.optimizer.optimize_budget`.

    ``p_offer`` and ``margin_offer`` are ``(n, m)``; ``p_none`` and ``margin_none`` are
    ``(n,)``; ``bonus`` is ``(m,)`` (the points of each option column).
    """
    p = np.asarray(p_offer, dtype=np.float64)
    if p.ndim != 2:
        raise ProfitInputError(f"p_offer: expected (customers, options), got shape {p.shape}")
    n, m = p.shape
    mo = np.asarray(margin_offer, dtype=np.float64)
    p0 = np.asarray(p_none, dtype=np.float64)
    m0 = np.asarray(margin_none, dtype=np.float64)
    b = np.asarray(bonus, dtype=np.float64)
    for name, arr, shape in (
        ("margin_offer", mo, (n, m)),
        ("p_none", p0, (n,)),
        ("margin_none", m0, (n,)),
        ("bonus", b, (m,)),
    ):
        if arr.shape != shape:
            raise ProfitInputError(f"{name}: expected shape {shape}, got {arr.shape}")
    for name, arr in (("p_offer", p), ("p_none", p0)):
        bad = ~np.isfinite(arr) | (arr < 0) | (arr > 1)
        if bad.any():
            row = int(np.argmax(bad.reshape(bad.shape[0], -1).any(axis=1)))
            raise ProfitInputError(f"{name}: probabilities must be in [0, 1]; first bad row {row}")
    if (b < 0).any() or not np.isfinite(b).all():
        raise ProfitInputError("bonus: must be finite and >= 0")
    if point_value <= 0:
        raise ProfitInputError(f"point_value: must be > 0, got {point_value}")
    profit = expected_profit(p, p0[:, None], mo, m0[:, None], b[None, :], point_value)
    cost = expected_cost(p, b[None, :], point_value)
    return profit, cost
