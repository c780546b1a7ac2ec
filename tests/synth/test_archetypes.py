"""The archetypes response family: the behaviour its docstring promises, and the same interface.

Hand-made parameters pin the formula (known answers); tiny generated worlds pin the history
(randomised arms with known assignment probabilities) and the oracle's round trip.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.columns import Col, OfferType
from features.validate import validate_dataset
from synth.archetypes import ARMS, STEEP, ArchetypeParams
from synth.config import WorldConfig
from synth.playout import play_out, played_out_dataset, true_effects
from synth.response import (
    CONTACT_TYPES,
    GROUPS,
    KAPPA,
    OFFER_TYPES,
    STILL_ACTIVE,
    TYPE_CODE,
    ResponseTruth,
    simulate_campaign,
)
from synth.world import ASSIGNMENT_PROB, generate
from tests.synth.conftest import ARCH, ARCH_TINY

BONUSES = (0.0, 50.0, 100.0, 300.0, 1000.0, 10000.0)
CASHBACK = TYPE_CODE[OfferType.CASHBACK]
THRESHOLD = TYPE_CODE[OfferType.SPEND_THRESHOLD]


@pytest.fixture(scope="module")
def truth(arch_world: Path) -> ResponseTruth:
    return ResponseTruth.load(arch_world)


def _ids(truth: ResponseTruth, group: str) -> np.ndarray:
    ids = truth.customer_ids
    return ids[truth.group(ids) == group]


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def hand_params(
    shift: list[float], *, ceiling: float = 1.0, message: float = 0.1
) -> ArchetypeParams:
    """Persuadables identical but for their baseline shift: cashback weight 1, scale 0.01."""
    n = len(shift)
    ones = np.ones(n)
    weight = np.zeros((n, len(OFFER_TYPES)))
    weight[:, CASHBACK] = 1.0
    scale = np.ones((n, len(OFFER_TYPES)))
    scale[:, CASHBACK] = 0.01
    return ArchetypeParams(
        group=np.zeros(n, dtype=np.int64),
        rate=ones * 0.05,
        floor_rate=ones * 0.001,
        active_start=np.zeros(n, dtype=np.int64),
        active_end=np.full(n, STILL_ACTIVE, dtype=np.int64),
        reg_day=np.zeros(n, dtype=np.int64),
        birth_doy=np.full(n, -1, dtype=np.int64),
        basket_lambda=ones,
        line_margin=ones * 100.0,
        line_amount=ones * 300.0,
        check=ones * 600.0,
        shift=np.asarray(shift),
        message=ones * message,
        ceiling=ones * ceiling,
        weight=weight,
        scale=scale,
    )


def _p(params: ArchetypeParams, type_code: int, bonus: float) -> np.ndarray:
    n = params.shift.shape[0]
    return params.probability(
        np.arange(n), np.full(n, type_code), np.full(n, bonus), np.full(n, 10),
        window=14, start=ARCH.start,
    )  # fmt: skip


def test_effect_is_on_the_log_odds_not_p0_plus_rest_times_uplift() -> None:
    """Same offer, baselines 0.1 / 0.5 / 0.9: equal log-odds shift, the largest uplift at 0.5.

    Under ``p0 + (1 - p0) * a`` the uplift would fall as p0 rises (0.1 > 0.5 > 0.9).
    """
    probe = hand_params([0.0])
    base = float(probe.baseline_logit(np.array([0]), np.array([10]), 14)[0])
    targets = np.array([0.1, 0.5, 0.9])
    params = hand_params(list(_logit(targets) - base))
    p0 = _p(params, TYPE_CODE[OfferType.NONE], 0.0)
    np.testing.assert_allclose(p0, targets, rtol=1e-12)
    p1 = _p(params, CASHBACK, 12.0)  # x = 0.02 = 2 scales: delta = 0.1 + (1 - e^-2)
    delta = _logit(p1) - _logit(p0)
    np.testing.assert_allclose(delta, 0.1 + 1.0 - np.exp(-2.0), rtol=1e-9)
    uplift = p1 - p0
    assert uplift[1] > uplift[0] and uplift[1] > uplift[2]


def test_cashback_saturates_in_bonus_over_check() -> None:
    params = hand_params([0.0], message=0.0)
    deltas = [float(_logit(_p(params, CASHBACK, b))[0]) for b in (0.0, 6.0, 60.0, 600.0)]
    gains = np.diff(deltas)
    assert gains[0] > 0 and gains[1] > 0 and gains[2] >= 0
    assert deltas[-1] - deltas[0] == pytest.approx(1.0, abs=1e-6)  # the ceiling
    assert deltas[1] - deltas[0] > 0.35  # half a scale already gives ~40% of it


def test_do_not_disturb_loses_with_any_contact_whatever_the_bonus(truth: ResponseTruth) -> None:
    dnd = _ids(truth, "do_not_disturb")
    assert dnd.size > 100
    p0 = truth.p_convert(dnd, OfferType.NONE, 0.0)
    for offer_type in CONTACT_TYPES:
        for bonus in BONUSES:
            p = truth.p_convert(dnd, offer_type, bonus)
            assert (p < p0).all(), (offer_type, bonus)
    drop = 1.0 - truth.p_convert(dnd, OfferType.CASHBACK, 300.0) / p0
    low, mid, high = np.percentile(drop, [10, 50, 90])
    assert low > 0.1 and 0.17 < mid < 0.3 and high < 0.4  # about -15% to -35% of p
    assert drop.max() < 0.45  # less where the baseline is high: a fixed drop in log-odds


@pytest.mark.parametrize("group", ["lost_cause", "sure_thing"])
def test_lost_causes_and_sure_things_do_not_respond(truth: ResponseTruth, group: str) -> None:
    ids = _ids(truth, group)
    assert ids.size > 100
    for offer_type in CONTACT_TYPES:
        for bonus in BONUSES:
            assert np.abs(truth.uplift(ids, offer_type, bonus)).max() < 1e-12


def test_baselines_order_the_archetypes(truth: ResponseTruth) -> None:
    p0 = {g: np.median(truth.p_convert(_ids(truth, g), OfferType.NONE, 0.0)) for g in GROUPS}
    assert p0["sure_thing"] > 0.3 > p0["persuadable"] > p0["lost_cause"]
    assert p0["lost_cause"] < 0.05


def test_persuadables_respond_more_to_bigger_bonuses(truth: ResponseTruth) -> None:
    ids = _ids(truth, "persuadable")
    for offer_type in (OfferType.CASHBACK, OfferType.SPEND_THRESHOLD, OfferType.CROSS_SELL):
        curve = np.stack([truth.uplift(ids, offer_type, b) for b in BONUSES])
        assert (np.diff(curve, axis=0) >= -1e-15).all()
        assert (curve[-1] > curve[0]).mean() > 0.95
    assert (truth.uplift(ids, OfferType.CASHBACK, 0.0) >= 0).all()  # a bare message helps a bit


def test_spend_threshold_is_threshold_like_for_a_persuadable(truth: ResponseTruth) -> None:
    ids = _ids(truth, "persuadable")
    idx = truth.rows(ids)
    params = truth.params
    assert isinstance(params, ArchetypeParams)
    reservation = params.scale[idx, THRESHOLD] * params.check[idx]  # the latent level
    jump = params.ceiling[idx] * params.weight[idx, THRESHOLD]
    message = _logit(truth.p_convert(ids, OfferType.SPEND_THRESHOLD, 0.0)) - _logit(
        truth.p_convert(ids, OfferType.NONE, 0.0)
    )

    def gained(share: float) -> np.ndarray:
        p = truth.p_convert(ids, OfferType.SPEND_THRESHOLD, share * reservation)
        base = _logit(truth.p_convert(ids, OfferType.NONE, 0.0))
        return (_logit(p) - base - message) / jump

    below, above = gained(0.6), gained(1.4)
    shape = 1.0 / (1.0 + np.exp(0.4 * STEEP)) - 1.0 / (1.0 + np.exp(STEEP))  # minus at 0
    np.testing.assert_allclose(below, shape, rtol=1e-6)
    assert below.max() < 0.02 and above.min() > 0.98  # nothing until the level, then all of it
    assert (gained(0.3) < 0.001).all()


def test_reactivation_works_only_on_lapsed_customers(truth: ResponseTruth) -> None:
    ids = _ids(truth, "persuadable")
    params = truth.params
    assert isinstance(params, ArchetypeParams)
    idx = truth.rows(ids)
    lapsed = (params.active_end[idx] <= truth.days) & (params.active_end[idx] > 0)
    lapsed &= params.rate[idx] > 0
    active = params.active_end[idx] == STILL_ACTIVE
    assert lapsed.sum() > 50 and active.sum() > 50
    big = truth.uplift(ids, OfferType.REACTIVATION, 5000.0)
    bare = truth.uplift(ids, OfferType.REACTIVATION, 0.0)
    np.testing.assert_allclose(big[active], bare[active], rtol=0, atol=1e-15)
    assert (big[lapsed] > bare[lapsed]).all()


def test_documented_formula_reproduces_the_oracle(arch_world: Path, truth: ResponseTruth) -> None:
    """The module docstring's formula, written out again from the ground-truth columns."""
    df = pl.read_parquet(arch_world / "ground_truth" / "customers.parquet")
    ids = df[Col.CUSTOMER].cast(pl.Int64).to_numpy()
    day = truth.days
    c = {name: df[name].to_numpy() for name in df.columns if name != Col.CUSTOMER}
    active = (c["active_start"] <= day) & (day < c["active_end"])
    p_rate = 1.0 - np.exp(-KAPPA * truth.window * (c["rate"] * active + c["floor_rate"]))
    base = _logit(p_rate) + c["shift"]
    bonus = 150.0
    x = bonus / c["check"]
    cashback = c["message"] + c["ceiling"] * c["w_cashback"] * (1 - np.exp(-x / c["s_cashback"]))
    u = x / c["s_spend_threshold"]
    threshold = c["message"] + c["ceiling"] * c["w_spend_threshold"] / (
        1.0 + np.exp(-STEEP * (u - 1.0))
    )
    for offer_type, delta in (
        (OfferType.CASHBACK, cashback),
        (OfferType.SPEND_THRESHOLD, threshold),
    ):
        expected = 1.0 / (1.0 + np.exp(-(base + delta)))
        np.testing.assert_allclose(truth.p_convert(ids, offer_type, bonus), expected, rtol=1e-9)


def test_the_truth_round_trips_and_reproduces_every_drawn_outcome(
    arch_world: Path, truth: ResponseTruth
) -> None:
    assert truth.family == "archetypes"
    meta = json.loads((arch_world / "ground_truth" / "response.json").read_text())
    assert meta["response_family"] == "archetypes"
    offers = pl.read_parquet(arch_world / "offers.parquet")
    drawn = pl.read_parquet(arch_world / "ground_truth" / "offers.parquet")
    offers = offers.join(drawn.drop(Col.CUSTOMER), on=Col.OFFER)
    p = truth.p_convert(
        offers[Col.CUSTOMER], offers[Col.OFFER_TYPE], offers[Col.BONUS], at=offers[Col.SENT_AT]
    )
    np.testing.assert_allclose(p, offers["p_convert"].to_numpy(), rtol=1e-12, atol=0)
    z = (offers[Col.CONVERTED].sum() - p.sum()) / np.sqrt((p * (1 - p)).sum())
    assert abs(z) < 4.0


def test_history_is_a_randomised_test_with_known_assignment_probabilities(
    arch_world: Path,
) -> None:
    offers = pl.read_parquet(arch_world / "offers.parquet")
    assert offers[ASSIGNMENT_PROB].null_count() == 0
    control = offers.filter(pl.col(Col.CONTROL))
    assert (control[Col.OFFER_TYPE] == OfferType.NONE).all()
    assert (control[ASSIGNMENT_PROB] == ARCH.control_share).all()
    levels = offers.filter(~pl.col(Col.CONTROL)).group_by(Col.OFFER_TYPE).agg(pl.col(Col.BONUS))
    for offer_type, bonuses in levels.iter_rows():
        assert sorted(set(bonuses)) == list(ARMS[offer_type])
    assert set(levels[Col.OFFER_TYPE]) == set(ARMS)
    plan = pl.read_parquet(arch_world / "ground_truth" / "campaigns.parquet")
    for campaign, arms in plan.select(Col.CAMPAIGN, "arms").iter_rows():
        rows = offers.filter(pl.col(Col.CAMPAIGN) == campaign)
        probs = rows.group_by(Col.OFFER_TYPE, Col.BONUS).agg(pl.col(ASSIGNMENT_PROB).unique())
        assert (probs[ASSIGNMENT_PROB].list.len() == 1).all()  # one probability per arm
        per_arm = (1.0 - ARCH.control_share) / len(arms)
        assert ARCH.control_share + per_arm * len(arms) == pytest.approx(1.0, abs=1e-12)
        treated = rows.filter(~pl.col(Col.CONTROL))
        np.testing.assert_allclose(treated[ASSIGNMENT_PROB].to_numpy(), per_arm, rtol=1e-12)
        seen = set(treated.select(Col.OFFER_TYPE, Col.BONUS).unique().iter_rows())
        assert seen <= {(a[Col.OFFER_TYPE], a[Col.BONUS]) for a in arms}
    # arms are drawn uniformly: the control share and each mechanic's share are as planned
    share = offers[Col.CONTROL].mean()
    assert isinstance(share, float)
    n = offers.height
    assert abs(share - ARCH.control_share) < 4 * np.sqrt(0.2 * 0.8 / n)


def test_same_seed_gives_byte_identical_files(arch_tiny_world: Path, tmp_path: Path) -> None:
    generate(ARCH_TINY, tmp_path)
    assert _files(tmp_path) == _files(arch_tiny_world)


def test_both_families_share_the_customers_of_a_seed(
    tiny_world: Path, arch_tiny_world: Path
) -> None:
    cols = ["customer_id", "lifecycle", "price_sens", "rate", "active_end", "line_margin"]
    curve = pl.read_parquet(tiny_world / "ground_truth" / "customers.parquet").select(cols)
    arch = pl.read_parquet(arch_tiny_world / "ground_truth" / "customers.parquet").select(cols)
    assert curve.equals(arch)
    assert ASSIGNMENT_PROB not in pl.read_parquet(tiny_world / "offers.parquet").columns


def test_archetypes_world_passes_validation_also_in_chunks(
    arch_tiny_world: Path, tmp_path: Path
) -> None:
    report = validate_dataset(arch_tiny_world)
    assert report.ok, report.format()
    assert not report.warnings, report.format()
    generate(dataclasses.replace(ARCH_TINY, chunk_customers=120), tmp_path)
    report = validate_dataset(tmp_path)
    assert report.ok, report.format()
    assert ResponseTruth.load(tmp_path).family == "archetypes"


def test_a_world_without_a_family_in_its_meta_loads_as_curve(
    tiny_world: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    shutil.copytree(tiny_world, old)
    meta_path = old / "ground_truth" / "response.json"
    meta = json.loads(meta_path.read_text())
    del meta["response_family"]
    meta_path.write_text(json.dumps(meta))
    truth = ResponseTruth.load(old)
    assert truth.family == "curve"
    ids = truth.customer_ids
    np.testing.assert_array_equal(
        truth.p_convert(ids, OfferType.CASHBACK, 100.0),
        ResponseTruth.load(tiny_world).p_convert(ids, OfferType.CASHBACK, 100.0),
    )


def test_expected_order_is_exact_for_the_family(arch_world: Path, truth: ResponseTruth) -> None:
    offers = pl.read_parquet(arch_world / "offers.parquet").filter(pl.col(Col.CONVERTED))
    expected = truth.expected_revenue(offers[Col.CUSTOMER], offers[Col.OFFER_TYPE])
    ratio = offers[Col.REVENUE].sum() / expected.sum()
    assert 0.9 < ratio < 1.1
    ids = truth.customer_ids
    none = truth.expected_margin(ids, OfferType.NONE)
    back = truth.expected_margin(ids, OfferType.REACTIVATION)
    assert (back < none).all()  # a returning customer buys a smaller basket
    # no free lunch: at bonus 0 a customer who does not respond is never worth an offer
    steady = np.concatenate([_ids(truth, "sure_thing"), _ids(truth, "lost_cause")])
    for offer_type in CONTACT_TYPES:
        assert (truth.expected_profit(steady, offer_type, 0.0) <= 1e-9).all()


def test_playout_and_campaign_simulation_work_on_the_family(
    arch_tiny_world: Path, tmp_path: Path
) -> None:
    truth = ResponseTruth.load(arch_tiny_world)
    ids = [str(i) for i in truth.customer_ids[:80]]
    plan = pl.DataFrame(
        {
            Col.CUSTOMER: ids,
            Col.OFFER_TYPE: [OfferType.SPEND_THRESHOLD] * 60 + [OfferType.NONE] * 20,
            Col.BONUS: [200.0] * 60 + [0.0] * 20,
            Col.CONTROL: [False] * 60 + [True] * 20,
        }
    )
    start = datetime(2025, 4, 1)
    offers, _ = play_out(truth, plan, start=start, seed=1)
    assert offers.height == 80
    assert set(true_effects(truth, plan, start=start)) == {"conversion", "revenue"}
    added, _ = played_out_dataset(
        arch_tiny_world, plan, tmp_path / "after", start=start, seed=1, campaign_id="arch"
    )
    assert added == 80
    assert validate_dataset(tmp_path / "after").ok
    played = simulate_campaign(truth, plan.drop(Col.CONTROL), seed=2)
    assert played.height == 80


def test_config_names_a_bad_family_and_archetypes_campaign_every_two_months() -> None:
    with pytest.raises(ValueError, match=r"^response_family:"):
        WorldConfig(customers=10, items=20, days=60, seed=1, response_family="linear")
    config = WorldConfig(customers=10, items=20, days=730, seed=1, response_family="archetypes")
    assert config.n_campaigns == 12
