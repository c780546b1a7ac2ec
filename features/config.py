"""`FeatureConfig`: every knob of the customer features, with defaults and validation."""

from __future__ import annotations

from dataclasses import dataclass

from features.names import Feat


class FeatureConfigError(ValueError):
    """A `FeatureConfig` field has a value the features cannot work with."""


@dataclass(frozen=True)
class FeatureConfig:
    """Periods, lifecycle thresholds (days), trend window, quantiles and label horizon.

    Lifecycle thresholds (see `features.lifecycle`): a buyer whose last purchase is at least
    ``at_risk_after_days`` old is ``at_risk``, at least ``sleeping_after_days`` old is
    ``sleeping``, more than ``lost_after_days`` old is ``lost``; a recent buyer with at least
    ``regular_min_orders`` orders is ``active``.
    """

    at_risk_after_days: int = 45
    sleeping_after_days: int = 90
    lost_after_days: int = 180
    regular_min_orders: int = 4
    # activity coefficient period: from the customer's start (registration or first purchase,
    # whichever is earlier) to as_of; when set, at most this many days before as_of
    activity_window_days: int | None = None
    # spend trend: the last `trend_window_days` before as_of against the same span before it
    trend_window_days: int = 90
    # check quantiles besides the median (always computed as check_median)
    check_quantiles: tuple[float, ...] = (0.75, 0.9)
    # wide category shares: these categories, or (when None) the `top_categories` categories
    # with the most sales before as_of
    share_categories: tuple[str, ...] | None = None
    top_categories: int = 10
    # loyalty: points expiring within each of these windows after as_of
    expiry_windows_days: tuple[int, ...] = (7, 30)
    # labels: purchases in [as_of, as_of + horizon_days)
    horizon_days: int = 30

    def __post_init__(self) -> None:
        for name in (
            "at_risk_after_days",
            "sleeping_after_days",
            "lost_after_days",
            "regular_min_orders",
            "trend_window_days",
            "horizon_days",
        ):
            _positive(name, getattr(self, name))
        if not self.at_risk_after_days < self.sleeping_after_days <= self.lost_after_days:
            raise FeatureConfigError(
                "lifecycle thresholds must satisfy at_risk_after_days < sleeping_after_days "
                f"<= lost_after_days, got {self.at_risk_after_days}, "
                f"{self.sleeping_after_days}, {self.lost_after_days}"
            )
        if self.regular_min_orders < 2:
            raise FeatureConfigError(
                f"regular_min_orders must be at least 2, got {self.regular_min_orders}"
            )
        if self.activity_window_days is not None:
            _positive("activity_window_days", self.activity_window_days)
        for q in self.check_quantiles:
            if not 0.0 < q < 1.0:
                raise FeatureConfigError(f"check_quantiles: {q} is not strictly between 0 and 1")
            if q == 0.5:
                raise FeatureConfigError(
                    "check_quantiles: 0.5 is always computed (as check_median); leave it out"
                )
        names = [Feat.check_quantile(q) for q in self.check_quantiles]
        if len(set(names)) != len(names):
            raise FeatureConfigError(f"check_quantiles: duplicate quantiles in {names}")
        if self.top_categories < 0:
            raise FeatureConfigError(f"top_categories must be >= 0, got {self.top_categories}")
        if self.share_categories is not None and len(set(self.share_categories)) != len(
            self.share_categories
        ):
            raise FeatureConfigError("share_categories: categories must be distinct")
        for days in self.expiry_windows_days:
            _positive("expiry_windows_days", days)
        if len(set(self.expiry_windows_days)) != len(self.expiry_windows_days):
            raise FeatureConfigError("expiry_windows_days: windows must be distinct")


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise FeatureConfigError(f"{name} must be a positive whole number, got {value!r}")
