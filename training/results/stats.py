"""Interval estimates of campaign effects: Welch differences of means, a delta-method ratio.

Every interval here is analytic (no bootstrap):

- `diff_means`: the difference of two sample means with the Welch standard error
  ``sqrt(s_t^2 / n_t + s_c^2 / n_c)`` (sample variances, ddof 1) and a Student t quantile with
  the Welch-Satterthwaite degrees of freedom. On 0/1 outcomes it is the unpooled normal
  interval for a difference of proportions (with ddof 1 variances and a t quantile, which is
  slightly wider for tiny groups and the same for large ones).
- `ratio_of_effect`: the return on a cost, ``(mean(y_t) - mean(y_c)) / mean(cost_t)``, with a
  delta-method (first-order) standard error that counts the covariance of ``y_t`` and
  ``cost_t`` within the treated group, and a normal quantile.

An estimate that cannot be made (a group with fewer than two members, a zero cost) has NaN
bounds; `verdict` then says "not enough data to tell".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

PAID_OFF: Final = "paid off"
LOST_MONEY: Final = "lost money"
NOT_ENOUGH: Final = "not enough data to tell"

WELCH: Final = "welch"
DELTA: Final = "delta"

FloatArray = npt.NDArray[np.float64]


class StatsError(ValueError):
    """Inputs an estimate cannot use (the message names the argument)."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and a two-sided confidence interval."""

    value: float
    se: float
    low: float
    high: float
    confidence: float = 0.95
    method: str = WELCH

    @property
    def known(self) -> bool:
        """Whether the interval could be computed (finite bounds)."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of zero."""
        return self.known and (self.low > 0.0 or self.high < 0.0)

    def scaled(self, factor: float) -> Estimate:
        """The estimate of ``factor`` times the quantity (e.g. per customer -> campaign total)."""
        lo, hi = self.low * factor, self.high * factor
        return Estimate(
            value=self.value * factor,
            se=self.se * abs(factor),
            low=min(lo, hi),
            high=max(lo, hi),
            confidence=self.confidence,
            method=self.method,
        )

    def as_dict(self) -> dict[str, float | str]:
        """Plain values for JSON (non-finite numbers become null when written)."""
        return {
            "value": self.value,
            "se": self.se,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "method": self.method,
        }


def unknown(value: float = math.nan, *, confidence: float = 0.95, method: str = WELCH) -> Estimate:
    """An estimate without an interval (not enough data)."""
    return Estimate(value, math.nan, math.nan, math.nan, confidence, method)


def z_quantile(confidence: float) -> float:
    """The two-sided normal quantile, e.g. 1.96 for 0.95."""
    _check_confidence(confidence)
    return float(sps.norm.ppf(0.5 + confidence / 2.0))


def diff_means(
    treated: npt.ArrayLike, control: npt.ArrayLike, *, confidence: float = 0.95
) -> Estimate:
    """mean(treated) - mean(control) with a Welch interval (see the module docstring).

    >>> e = diff_means([1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0])
    >>> round(e.value, 3), round(e.se, 3)
    (0.5, 0.354)
    """
    _check_confidence(confidence)
    t, c = _values("treated", treated), _values("control", control)
    value = float(t.mean() - c.mean()) if t.size and c.size else math.nan
    if t.size < 2 or c.size < 2:
        return unknown(value, confidence=confidence)
    vt, vc = float(t.var(ddof=1)) / t.size, float(c.var(ddof=1)) / c.size
    se = math.sqrt(vt + vc)
    if se == 0.0:
        return Estimate(value, 0.0, value, value, confidence, WELCH)
    df = (vt + vc) ** 2 / (vt**2 / (t.size - 1) + vc**2 / (c.size - 1))
    q = float(sps.t.ppf(0.5 + confidence / 2.0, df))
    return Estimate(value, se, value - q * se, value + q * se, confidence, WELCH)


def ratio_of_effect(
    effect_treated: npt.ArrayLike,
    cost_treated: npt.ArrayLike,
    effect_control: npt.ArrayLike,
    *,
    confidence: float = 0.95,
) -> Estimate:
    """``(mean(y_t) - mean(y_c)) / mean(cost_t)`` with a delta-method normal interval.

    ``effect_treated`` and ``cost_treated`` are paired per treated customer. With
    ``D = mean(y_t) - mean(y_c)`` and ``B = mean(cost_t)``:
    ``Var(D/B) ~ Var(D)/B^2 - 2 D Cov(D, B)/B^3 + D^2 Var(B)/B^4`` where
    ``Var(D) = s_yt^2/n_t + s_yc^2/n_c``, ``Var(B) = s_b^2/n_t``, ``Cov(D, B) = s_yb/n_t``.
    Unknown (NaN) when ``B`` is 0 or a group has fewer than two members.
    """
    _check_confidence(confidence)
    y, b, c = (
        _values("effect_treated", effect_treated),
        _values("cost_treated", cost_treated),
        _values("effect_control", effect_control),
    )
    if y.size != b.size:
        raise StatsError(
            f"effect_treated and cost_treated: must pair up, got {y.size} and {b.size} values"
        )
    if y.size == 0 or c.size == 0:
        return unknown(confidence=confidence, method=DELTA)
    d = float(y.mean() - c.mean())
    cost = float(b.mean())
    if cost == 0.0:
        return unknown(confidence=confidence, method=DELTA)
    value = d / cost
    if y.size < 2 or c.size < 2:
        return unknown(value, confidence=confidence, method=DELTA)
    var_d = float(y.var(ddof=1)) / y.size + float(c.var(ddof=1)) / c.size
    var_b = float(b.var(ddof=1)) / y.size
    cov_db = float(np.cov(y, b, ddof=1)[0, 1]) / y.size
    var = var_d / cost**2 - 2.0 * d * cov_db / cost**3 + d**2 * var_b / cost**4
    se = math.sqrt(max(var, 0.0))
    q = z_quantile(confidence)
    return Estimate(value, se, value - q * se, value + q * se, confidence, DELTA)


def verdict(net_effect: Estimate) -> str:
    """The plain verdict: paid off / lost money when the interval excludes zero, else not enough."""
    if not net_effect.excludes_zero():
        return NOT_ENOUGH
    return PAID_OFF if net_effect.low > 0.0 else LOST_MONEY


def _values(name: str, values: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise StatsError(f"{name}: expected a one-dimensional array, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise StatsError(f"{name}: row {int(bad[0])} is {float(arr[bad[0]])}, not a finite number")
    return arr


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise StatsError(f"confidence: must be strictly between 0 and 1, got {confidence!r}")
