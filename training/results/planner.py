"""Control-share planner: how small an effect a campaign can detect, and the hold-out it needs.

For a conversion rate ``p`` (the base rate, i.e. the control group's), an audience of ``N``
customers of which a share ``s`` is held out (``n_c = s N``, ``n_t = (1 - s) N``), a two-sided
test at level ``alpha`` and the wanted ``power``, the minimum detectable effect (absolute
difference of conversion rates) is the usual normal approximation::

    MDE = (z_{1 - alpha/2} + z_{power}) * sqrt(p (1 - p) (1/n_t + 1/n_c))
        = (z_{1 - alpha/2} + z_{power}) * sqrt(p (1 - p) / (N s (1 - s)))

Inverting it for ``s`` gives ``s (1 - s) = p (1 - p) (z_a + z_b)^2 / (N MDE^2)``, whose
smaller root is the control share needed; there is none when even an even split
(``s = 0.5``) cannot reach the MDE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from scipy import stats as sps

DEFAULT_SHARES = (0.05, 0.1, 0.2, 0.3, 0.5)


class PlanError(ValueError):
    """A planner argument is out of range (the message names it)."""


def minimum_detectable_effect(
    audience: int,
    base_rate: float,
    control_share: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """The smallest absolute conversion uplift detectable (see the module formula).

    >>> round(minimum_detectable_effect(10_000, 0.1, 0.2), 4)
    0.021
    """
    _check(audience, base_rate, alpha, power)
    if not 0.0 < control_share < 1.0:
        raise PlanError(f"control_share: must be strictly between 0 and 1, got {control_share!r}")
    n_c = audience * control_share
    n_t = audience - n_c
    return _z_sum(alpha, power) * math.sqrt(base_rate * (1 - base_rate) * (1 / n_t + 1 / n_c))


def control_share_for_mde(
    audience: int,
    base_rate: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float | None:
    """The smallest control share whose MDE is at most ``mde``; None when no share can."""
    _check(audience, base_rate, alpha, power)
    if not mde > 0.0:
        raise PlanError(f"mde: must be positive, got {mde!r}")
    product = base_rate * (1 - base_rate) * _z_sum(alpha, power) ** 2 / (audience * mde**2)
    if product > 0.25:
        return None
    return (1.0 - math.sqrt(1.0 - 4.0 * product)) / 2.0


def plan_table(
    audience: int,
    base_rate: float,
    shares: Sequence[float] = DEFAULT_SHARES,
    *,
    targets: Sequence[float] = (),
    alpha: float = 0.05,
    power: float = 0.8,
) -> dict[str, Any]:
    """The MDE at each control share, and the share needed for each target MDE (JSON-able)."""
    return {
        "audience": audience,
        "base_rate": base_rate,
        "alpha": alpha,
        "power": power,
        "mde_by_control_share": {
            f"{s:g}": minimum_detectable_effect(audience, base_rate, s, alpha, power)
            for s in shares
        },
        "control_share_for_mde": {
            f"{m:g}": control_share_for_mde(audience, base_rate, m, alpha, power) for m in targets
        },
    }


def _z_sum(alpha: float, power: float) -> float:
    return float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))


def _check(audience: int, base_rate: float, alpha: float, power: float) -> None:
    if isinstance(audience, bool) or not isinstance(audience, int) or audience < 2:
        raise PlanError(f"audience: must be a whole number of at least 2, got {audience!r}")
    if not 0.0 < base_rate < 1.0:
        raise PlanError(f"base_rate: must be strictly between 0 and 1, got {base_rate!r}")
    if not 0.0 < alpha < 1.0:
        raise PlanError(f"alpha: must be strictly between 0 and 1, got {alpha!r}")
    if not 0.0 < power < 1.0:
        raise PlanError(f"power: must be strictly between 0 and 1, got {power!r}")
