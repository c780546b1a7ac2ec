from __future__ import annotations

import pytest

from features.config import FeatureConfig, FeatureConfigError


def test_defaults_are_valid() -> None:
    config = FeatureConfig()
    assert (config.at_risk_after_days, config.sleeping_after_days, config.lost_after_days) == (
        45,
        90,
        180,
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sleeping_after_days": 200}, "lifecycle thresholds"),
        ({"lost_after_days": 0}, "lost_after_days"),
        ({"regular_min_orders": 1}, "regular_min_orders"),
        ({"check_quantiles": (0.5,)}, "check_median"),
        ({"check_quantiles": (1.0,)}, "check_quantiles"),
        ({"activity_window_days": -3}, "activity_window_days"),
        ({"expiry_windows_days": (7, 7)}, "expiry_windows_days"),
        ({"share_categories": ("A", "A")}, "share_categories"),
        ({"top_categories": -1}, "top_categories"),
    ],
)
def test_bad_values_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(FeatureConfigError, match=field):
        FeatureConfig(**kwargs)  # type: ignore[arg-type]
