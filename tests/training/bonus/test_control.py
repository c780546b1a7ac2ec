from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest

from training.bonus.control import ControlGroupError, control_draw, control_mask, is_control

IDS = [f"C{i:06d}" for i in range(20_000)]


def test_same_inputs_give_the_same_mask() -> None:
    first = control_mask("spring-2025", IDS, 0.2)
    second = control_mask("spring-2025", list(IDS), 0.2)
    np.testing.assert_array_equal(first, second)


def test_the_rule_is_the_documented_blake2b_formula() -> None:
    digest = hashlib.blake2b(b"camp-7:C000042", digest_size=8).digest()
    expected = int.from_bytes(digest, "big") / 2**64
    assert control_draw("camp-7", ["C000042"])[0] == pytest.approx(expected, abs=1e-15)


def test_pinned_values_do_not_change_across_versions() -> None:
    # Regression pin: a change here silently reshuffles every running campaign's control group.
    draw = control_draw("camp-7", ["C000042", "42", "ä-ß"])
    pinned = [0.16481563061296967, 0.7452071755318752, 0.5981623824586292]
    np.testing.assert_allclose(draw, pinned, rtol=0, atol=1e-15)


def test_share_is_respected_within_sampling_error() -> None:
    share = 0.1
    mask = control_mask("spring-2025", IDS, share)
    sd = np.sqrt(share * (1 - share) / len(IDS))
    assert abs(mask.mean() - share) < 4 * sd


def test_different_campaigns_draw_independent_groups() -> None:
    a = control_mask("campaign-a", IDS, 0.5)
    b = control_mask("campaign-b", IDS, 0.5)
    both = np.mean(a & b)
    sd = np.sqrt(0.25 * 0.75 / len(IDS))
    assert abs(both - 0.25) < 4 * sd


def test_groups_are_nested_as_the_share_grows() -> None:
    small = control_mask("c", IDS, 0.05)
    large = control_mask("c", IDS, 0.2)
    assert np.all(large[small])


def test_share_zero_and_one() -> None:
    assert not control_mask("c", IDS, 0.0).any()
    assert control_mask("c", IDS, 1.0).all()
    assert control_mask("c", IDS, 1).all()


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan"), float("inf"), True, "0.1"])
def test_invalid_share_is_rejected(share: object) -> None:
    with pytest.raises(ControlGroupError, match="share"):
        control_mask("c", IDS[:3], share)  # type: ignore[arg-type]
    assert issubclass(ControlGroupError, ValueError)


def test_integer_ids_hash_as_their_decimal_text() -> None:
    as_text = control_draw("c", ["1", "22", "333"])
    np.testing.assert_array_equal(control_draw("c", [1, 22, 333]), as_text)
    np.testing.assert_array_equal(control_draw("c", np.array([1, 22, 333])), as_text)
    np.testing.assert_array_equal(control_draw("c", pl.Series([1, 22, 333])), as_text)


def test_polars_numpy_and_list_inputs_agree() -> None:
    ids = IDS[:500]
    expected = control_mask("c", ids, 0.3)
    np.testing.assert_array_equal(control_mask("c", pl.Series(ids), 0.3), expected)
    np.testing.assert_array_equal(control_mask("c", np.array(ids), 0.3), expected)
    np.testing.assert_array_equal(control_mask("c", np.array(ids, dtype=object), 0.3), expected)


def test_single_customer_helper_matches_the_mask() -> None:
    mask = control_mask("c", IDS[:200], 0.3)
    assert [is_control("c", s, 0.3) for s in IDS[:200]] == mask.tolist()


def test_empty_ids_give_an_empty_mask() -> None:
    assert control_mask("c", [], 0.5).shape == (0,)


def test_null_or_odd_ids_name_the_row() -> None:
    with pytest.raises(ControlGroupError, match="row 2"):
        control_mask("c", ["a", "b", None, "d"], 0.5)  # type: ignore[list-item]
    with pytest.raises(ControlGroupError, match="row 1"):
        control_mask("c", pl.Series(["a", None]), 0.5)
    with pytest.raises(ControlGroupError, match="row 0"):
        control_mask("c", [1.5], 0.5)  # type: ignore[list-item]
    with pytest.raises(ControlGroupError, match="single string"):
        control_mask("c", "abc", 0.5)


def test_campaign_id_must_be_a_non_empty_string() -> None:
    with pytest.raises(ControlGroupError, match="campaign_id"):
        control_mask("", IDS[:3], 0.5)
