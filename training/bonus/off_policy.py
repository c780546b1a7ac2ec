"""Off-policy value of a bonus plan on held-out randomised history: IPS and doubly robust.

A plan gives each logged row an arm or nothing (``choice[i]`` = arm index, -1 = no contact).
Its incremental profit over contacting nobody is estimated from the rows whose logged arm is
the one the plan chose, reweighted by their assignment probability (`training.bonus.logged`)::

    IPS_i = 1[A_i = pi_i] r_i / e_i(pi_i)  -  1[A_i = none] r_i / e_i(none)
    DR_i  = rhat_i(pi_i) - rhat_i(none)
            + 1[A_i = pi_i] (r_i - rhat_i(pi_i)) / e_i(pi_i)
            - 1[A_i = none] (r_i - rhat_i(none)) / e_i(none)

for rows the plan contacts (0 for the rest); ``rhat`` is a direct model's expected reward,
fitted on other customers. Both are unbiased when the probabilities are right; DR has the
smaller variance when ``rhat`` is good. The plan's value is the sum over rows, its spend the
same sums over the cost (``converted x bonus``). Standard errors are cluster-robust by customer
(one customer's rows in several campaigns are not independent); intervals are normal at 95%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from features.columns import Col
from training.bonus.logged import Logged

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

Z95 = 1.959963984540054


@dataclass(frozen=True)
class DirectModel:
    """Expected reward and cost of every held-out row under every arm and under no offer."""

    reward: FloatArray  # (n, k)
    reward_none: FloatArray  # (n,)
    cost: FloatArray  # (n, k)


@dataclass(frozen=True)
class Estimate:
    """One estimator's total over the rows, with its standard error and 95% interval."""

    value: float
    se: float

    @property
    def low(self) -> float:
        """Lower 95% bound."""
        return self.value - Z95 * self.se

    @property
    def high(self) -> float:
        """Upper 95% bound."""
        return self.value + Z95 * self.se

    def as_dict(self) -> dict[str, float]:
        """JSON-able form."""
        return {"value": self.value, "se": self.se, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class PolicyValue:
    """Off-policy estimates of a plan's incremental profit and spend."""

    dr: Estimate
    ips: Estimate
    spend_dr: Estimate
    spend_ips: Estimate
    treated: int
    matched: int  # rows whose logged arm is the plan's choice (the evidence)
    contributions: FloatArray  # per-row DR incremental profit (for paired comparisons)

    def as_dict(self) -> dict[str, float]:
        """Flat JSON-able figures."""
        return {
            "profit_dr": self.dr.value,
            "profit_dr_low": self.dr.low,
            "profit_dr_high": self.dr.high,
            "profit_ips": self.ips.value,
            "profit_ips_low": self.ips.low,
            "profit_ips_high": self.ips.high,
            "spend_dr": self.spend_dr.value,
            "spend_ips": self.spend_ips.value,
            "treated": float(self.treated),
            "matched": float(self.matched),
        }


def cluster_total(values: FloatArray, clusters: IntArray) -> Estimate:
    """Sum of ``values`` and its cluster-robust standard error (clusters = customers)."""
    total = math.fsum(values.tolist())
    g = int(clusters.max()) + 1 if clusters.size else 0
    if g < 2:
        return Estimate(total, math.nan)
    sums = np.bincount(clusters, weights=values, minlength=g)
    var = g / (g - 1) * float(np.sum((sums - sums.mean()) ** 2))
    return Estimate(total, math.sqrt(var))


def customer_clusters(logged: Logged) -> IntArray:
    """Cluster index 0..G-1 of every row: its customer."""
    ids = logged.frame.get_column(Col.CUSTOMER).cast(pl.String)
    return np.asarray(ids.rank("dense").cast(pl.Int64).to_numpy() - 1, dtype=np.intp)


def policy_value(logged: Logged, choice: IntArray, direct: DirectModel) -> PolicyValue:
    """IPS and DR estimates of the plan ``choice`` over the rows of ``logged``."""
    n = logged.n
    if choice.shape != (n,):
        raise ValueError(f"choice: expected shape ({n},), got {choice.shape}")
    contact = choice >= 0
    col = np.maximum(choice, 0)
    rows = np.arange(n)
    off_support = contact & ~logged.support[rows, col]
    if off_support.any():
        first = int(np.argmax(off_support))
        raise ValueError(
            f"choice: row {first} gets arm {logged.arms[col[first]].label}, which its campaign "
            "never randomised (no off-policy evidence)"
        )
    match = contact & (logged.arm == choice)
    none = contact & (logged.arm < 0)
    e = logged.prob[rows, col]
    e_none = logged.prob_none
    r, c = logged.reward, logged.cost
    w = np.where(match, 1.0 / np.where(match, e, 1.0), 0.0)
    w_none = np.where(none, 1.0 / e_none, 0.0)
    ips = w * r - w_none * r
    r_pi = np.where(contact, direct.reward[rows, col], 0.0)
    r_none = np.where(contact, direct.reward_none, 0.0)
    dr = r_pi - r_none + w * (r - r_pi) - w_none * (r - r_none)
    c_pi = np.where(contact, direct.cost[rows, col], 0.0)
    spend_ips = w * c
    spend_dr = c_pi + w * (c - c_pi)
    clusters = customer_clusters(logged)
    return PolicyValue(
        dr=cluster_total(dr, clusters),
        ips=cluster_total(ips, clusters),
        spend_dr=cluster_total(spend_dr, clusters),
        spend_ips=cluster_total(spend_ips, clusters),
        treated=int(contact.sum()),
        matched=int(match.sum()),
        contributions=dr,
    )


def paired_difference(a: PolicyValue, b: PolicyValue, logged: Logged) -> Estimate:
    """DR estimate of value(a) - value(b) on the same rows (paired: most noise cancels)."""
    return cluster_total(a.contributions - b.contributions, customer_clusters(logged))
