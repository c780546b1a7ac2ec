"""The control-share planner against the textbook formula, computed by hand."""

from __future__ import annotations

import math

import pytest

from training.results.planner import (
    PlanError,
    control_share_for_mde,
    minimum_detectable_effect,
    plan_table,
)

Z = 1.959964 + 0.841621  # z(0.975) + z(0.8)


def test_mde_by_hand() -> None:
    # n_t = 8000, n_c = 2000: sqrt(0.09 * (1/8000 + 1/2000)) = 0.0075
    assert minimum_detectable_effect(10_000, 0.1, 0.2) == pytest.approx(Z * 0.0075, rel=1e-6)


def test_a_bigger_hold_out_detects_smaller_effects_up_to_an_even_split() -> None:
    mdes = [minimum_detectable_effect(10_000, 0.1, s) for s in (0.05, 0.1, 0.2, 0.5)]
    assert mdes == sorted(mdes, reverse=True)
    assert minimum_detectable_effect(10_000, 0.1, 0.7) > mdes[-1]


def test_share_for_mde_inverts_mde() -> None:
    mde = minimum_detectable_effect(10_000, 0.1, 0.2)
    assert control_share_for_mde(10_000, 0.1, mde) == pytest.approx(0.2, rel=1e-6)


def test_unreachable_mde_has_no_share() -> None:
    best = minimum_detectable_effect(1_000, 0.1, 0.5)
    assert control_share_for_mde(1_000, 0.1, best * 0.99) is None
    assert control_share_for_mde(1_000, 0.1, best * 1.01) == pytest.approx(0.5, abs=0.08)


def test_plan_table_is_json_ready() -> None:
    table = plan_table(5_000, 0.2, shares=(0.1, 0.5), targets=(0.05,))
    assert set(table["mde_by_control_share"]) == {"0.1", "0.5"}
    assert math.isfinite(table["control_share_for_mde"]["0.05"])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"audience": 1}, "audience"),
        ({"base_rate": 0.0}, "base_rate"),
        ({"control_share": 1.0}, "control_share"),
        ({"alpha": 0.0}, "alpha"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, float], name: str) -> None:
    args = {"audience": 1000, "base_rate": 0.1, "control_share": 0.2, **kwargs}
    with pytest.raises(PlanError, match=name):
        minimum_detectable_effect(**args)  # type: ignore[arg-type]
