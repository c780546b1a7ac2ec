"""The randomised offer history as logged bandit data: arms, assignment probabilities, rewards.

Every offer row is one logged decision: a customer reached by a campaign got one arm (an offer
type at a bonus, or the no-offer hold-out ``none`` at 0) with a known probability. That
probability comes from the randomisation design:

- an ``assignment_prob`` column in the offers table, when the shop logged it (the probability
  that this row's arm was assigned, given that the campaign reached the customer); else
- inferred per campaign (``campaign_id``, else the send day) as the share of the campaign's
  rows that got the arm. A shop that assigns arms uniformly at random (or with fixed shares)
  within a campaign has exactly these probabilities, up to sampling noise of the shares.

The reward of a row is its incremental-profit contribution: ``converted x (order margin -
bonus x point value)`` for an offer, ``converted x order margin`` for a hold-out, the order
margin being the realised order's revenue x the customer's margin rate as of sending (the
expected check x margin rate x the offer type's revenue ratio when a converted row has no
revenue). Realised, not expected, margins: order values are heavy-tailed (a 20k-customer world:
mean 14.8k, standard deviation 25.8k), which widens every interval, but an expected margin
from our own value model made the estimates inherit that model's error (on the curve world the
estimated profit of the shipped plan came out 50% above its true value, outside its interval,
at two of three budgets). Cost is ``converted x bonus x point value``: the bonus is paid only
on redemption.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from features.columns import Col, OfferType
from training.bonus.profit import Option
from training.bonus.value import RevenueRatios, Value

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

ASSIGNMENT_PROB = "assignment_prob"
SEND_DAY = "_send_day"
_GROUP = "_design_group"


class LoggedDataError(ValueError):
    """The offer history cannot serve as logged randomised data (the message says why)."""


@dataclass(frozen=True)
class Logged:
    """Offer rows as bandit data; row i of every array is row i of ``frame``.

    ``arms`` are the treated arms seen in the history (sorted); ``arm`` is each row's arm index
    (-1 for the hold-out); ``support[i, j]`` is True when arm j could have been assigned to row
    i (its campaign randomised it) and ``prob[i, j]`` its assignment probability; ``prob_none``
    the hold-out's.
    """

    frame: pl.DataFrame
    arms: tuple[Option, ...]
    arm: npt.NDArray[np.intp]
    prob: FloatArray  # (n, k)
    prob_none: FloatArray  # (n,)
    support: BoolArray  # (n, k)
    converted: FloatArray
    reward: FloatArray
    cost: FloatArray
    inferred: bool  # probabilities inferred from the design (no assignment_prob column)

    @property
    def n(self) -> int:
        """Rows."""
        return int(self.frame.height)

    def subset(self, rows: npt.NDArray[np.intp] | BoolArray) -> Logged:
        """The rows ``rows`` (indices or a mask), arms kept."""
        idx = np.flatnonzero(rows) if np.asarray(rows).dtype == np.bool_ else np.asarray(rows)
        return Logged(
            frame=self.frame[idx],
            arms=self.arms,
            arm=self.arm[idx],
            prob=self.prob[idx],
            prob_none=self.prob_none[idx],
            support=self.support[idx],
            converted=self.converted[idx],
            reward=self.reward[idx],
            cost=self.cost[idx],
            inferred=self.inferred,
        )


def logged_data(
    frame: pl.DataFrame, *, point_value: float, ratios: RevenueRatios | None = None
) -> Logged:
    """The offer training frame (offers joined with features at sending) as `Logged` data.

    ``ratios`` scale the expected check per offer type where a converted row has no revenue
    (1 without them).
    """
    need = [Col.OFFER_TYPE, Col.BONUS, Col.CONVERTED, Value.EXPECTED_CHECK, Value.MARGIN_RATE]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise LoggedDataError(f"offer rows lack columns {missing}")
    types = frame.get_column(Col.OFFER_TYPE).to_numpy().astype(str)
    bonus = frame.get_column(Col.BONUS).cast(pl.Float64).to_numpy()
    treated = types != OfferType.NONE
    if not treated.any() or treated.all():
        raise LoggedDataError("the offer history needs both offers and no-offer hold-outs")
    arms = tuple(
        sorted(
            {Option(str(t), float(b)) for t, b in zip(types[treated], bonus[treated], strict=True)},
            key=lambda o: (o.offer_type, o.bonus),
        )
    )
    index = {(o.offer_type, o.bonus): j for j, o in enumerate(arms)}
    arm = np.array(
        [index[(t, b)] if t != OfferType.NONE else -1 for t, b in zip(types, bonus, strict=True)],
        dtype=np.intp,
    )
    prob, prob_none, support, inferred = _design(frame, arm, len(arms))
    converted = frame.get_column(Col.CONVERTED).cast(pl.Float64).fill_null(0.0).to_numpy()
    check = frame.get_column(Value.EXPECTED_CHECK).cast(pl.Float64).to_numpy()
    rate = frame.get_column(Value.MARGIN_RATE).cast(pl.Float64).to_numpy()
    ratio = (
        np.array([ratios.of(str(t)) for t in types]) if ratios is not None else np.ones(len(types))
    )
    revenue = (
        frame.get_column(Col.REVENUE).cast(pl.Float64).to_numpy()
        if Col.REVENUE in frame.columns
        else np.full(frame.height, np.nan)
    )
    order_value = np.where(np.isfinite(revenue) & (revenue > 0), revenue, check * ratio)
    margin = np.nan_to_num(order_value * rate, nan=0.0)
    paid = np.where(treated, bonus * point_value, 0.0)
    return Logged(
        frame=frame,
        arms=arms,
        arm=arm,
        prob=prob,
        prob_none=prob_none,
        support=support,
        converted=converted,
        reward=converted * (margin - paid),
        cost=converted * paid,
        inferred=inferred,
    )


def _design(
    frame: pl.DataFrame, arm: npt.NDArray[np.intp], k: int
) -> tuple[FloatArray, FloatArray, BoolArray, bool]:
    """Assignment probabilities of every arm for every row, from the column or the design."""
    if Col.CAMPAIGN in frame.columns and frame.get_column(Col.CAMPAIGN).null_count() == 0:
        group = frame.get_column(Col.CAMPAIGN).cast(pl.String)
    elif SEND_DAY in frame.columns:
        group = frame.get_column(SEND_DAY).cast(pl.String)
    else:
        group = frame.get_column(Col.SENT_AT).dt.date().cast(pl.String)
    codes = group.rank("dense").cast(pl.Int64).to_numpy() - 1
    g = int(codes.max()) + 1
    counts = np.zeros((g, k + 1))
    np.add.at(counts, (codes, np.where(arm >= 0, arm + 1, 0)), 1.0)
    shares = counts / counts.sum(axis=1, keepdims=True)
    support = shares[codes, 1:] > 0
    if ASSIGNMENT_PROB in frame.columns:
        given = frame.get_column(ASSIGNMENT_PROB).cast(pl.Float64).to_numpy()
        bad = ~np.isfinite(given) | (given <= 0) | (given > 1)
        if bad.any():
            row = int(np.argmax(bad))
            raise LoggedDataError(
                f"offers.{ASSIGNMENT_PROB}: must be in (0, 1]; row {row} has {given[row]}"
            )
        # the logged probability of each arm per design group: the mean over its rows
        sums = np.zeros((g, k + 1))
        np.add.at(sums, (codes, np.where(arm >= 0, arm + 1, 0)), given)
        logged = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        return logged[codes, 1:], logged[codes, 0], support, False
    return shares[codes, 1:], shares[codes, 0], support, True
