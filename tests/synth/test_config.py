"""WorldConfig rejects bad knobs with an error naming the field."""

from __future__ import annotations

import pytest

from synth.config import WorldConfig


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"customers": 0}, "customers"),
        ({"items": 5}, "items"),
        ({"days": 10}, "days"),
        ({"seed": -1}, "seed"),
        ({"offer_window_days": 40, "days": 60}, "offer_window_days"),
        ({"campaign_share": (0.5, 0.1)}, "campaign_share"),
        ({"control_share": 1.0}, "control_share"),
        ({"bonus_grid": (100.0, 50.0)}, "bonus_grid"),
        ({"bonus_grid": (-1.0, 50.0)}, "bonus_grid"),
        ({"chunk_customers": 0}, "chunk_customers"),
    ],
)
def test_bad_values_name_the_field(overrides: dict[str, object], field: str) -> None:
    kwargs: dict[str, object] = {"customers": 10, "items": 20, "days": 60, "seed": 1}
    kwargs.update(overrides)
    with pytest.raises(ValueError, match=f"^{field}:"):
        WorldConfig(**kwargs)  # type: ignore[arg-type]


def test_defaults_give_one_campaign_a_month() -> None:
    assert WorldConfig(customers=10, items=20, days=365, seed=1).n_campaigns == 12
    assert WorldConfig(customers=10, items=20, days=40, seed=1).n_campaigns == 3
