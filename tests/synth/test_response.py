"""The oracle: it reproduces the history's draws exactly and has the promised shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.columns import Col, OfferType
from synth.response import CONTACT_TYPES, GROUPS, ResponseTruth, simulate_campaign
from tests.synth.conftest import MEDIUM

GRID = np.array([0.0, 50.0, 100.0, 200.0, 300.0, 500.0])


@pytest.fixture(scope="module")
def medium_truth(medium_world: Path) -> ResponseTruth:
    return ResponseTruth.load(medium_world)


def _offers_with_truth(root: Path) -> pl.DataFrame:
    offers = pl.read_parquet(root / "offers.parquet")
    truth = pl.read_parquet(root / "ground_truth" / "offers.parquet")
    return offers.join(truth.drop(Col.CUSTOMER), on=Col.OFFER)


def test_oracle_reproduces_the_probability_each_outcome_was_drawn_from(
    medium_world: Path, medium_truth: ResponseTruth
) -> None:
    offers = _offers_with_truth(medium_world)
    p = medium_truth.p_convert(
        offers[Col.CUSTOMER], offers[Col.OFFER_TYPE], offers[Col.BONUS], at=offers[Col.SENT_AT]
    )
    np.testing.assert_allclose(p, offers["p_convert"].to_numpy(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("by", [Col.OFFER_TYPE, Col.BONUS])
def test_empirical_conversion_matches_the_truth_within_sampling_error(
    medium_world: Path, medium_truth: ResponseTruth, by: str
) -> None:
    offers = _offers_with_truth(medium_world)
    offers = offers.with_columns(
        pl.Series(
            "p_oracle",
            medium_truth.p_convert(
                offers[Col.CUSTOMER],
                offers[Col.OFFER_TYPE],
                offers[Col.BONUS],
                at=offers[Col.SENT_AT],
            ),
        )
    )
    cells = offers.group_by(by).agg(
        pl.len().alias("n"),
        pl.col(Col.CONVERTED).sum().alias("hits"),
        pl.col("p_oracle").sum().alias("expected"),
        (pl.col("p_oracle") * (1 - pl.col("p_oracle"))).sum().alias("var"),
    )
    assert cells.height >= 6
    assert cells["n"].min() >= 150
    z = (cells["hits"] - cells["expected"]) / cells["var"].sqrt()
    assert z.abs().max() < 4.0, cells.with_columns(z.alias("z"))


def test_all_four_response_groups_are_present(tiny_world: Path) -> None:
    truth = ResponseTruth.load(tiny_world)
    groups = truth.group(truth.customer_ids)
    counts = {g: int((groups == g).sum()) for g in GROUPS}
    assert all(n >= 5 for n in counts.values()), counts


def test_uplift_rises_with_bonus_for_persuadables_and_is_negative_for_do_not_disturb(
    medium_truth: ResponseTruth,
) -> None:
    ids = medium_truth.customer_ids
    groups = medium_truth.group(ids)
    bonuses = np.linspace(0, 1000, 21)
    persuadable = ids[groups == "persuadable"]
    dnd = ids[groups == "do_not_disturb"]
    steady = ids[(groups == "sure_thing") | (groups == "lost_cause")]
    for offer_type in CONTACT_TYPES:
        curve = np.stack([medium_truth.uplift(persuadable, offer_type, b) for b in bonuses])
        assert (np.diff(curve, axis=0) >= 0).all()
        assert (curve[-1] > curve[0]).mean() > 0.9
        for b in (0.0, 500.0):
            assert (medium_truth.uplift(dnd, offer_type, b) < 0).all()
            assert np.abs(medium_truth.uplift(steady, offer_type, b)).max() < 0.02


def test_sure_things_buy_anyway_and_lost_causes_do_not(medium_truth: ResponseTruth) -> None:
    ids = medium_truth.customer_ids
    groups = medium_truth.group(ids)
    p0 = medium_truth.p_convert(ids, OfferType.NONE, 0.0)
    assert np.median(p0[groups == "sure_thing"]) > 0.3
    assert np.median(p0[groups == "lost_cause"]) < 0.05


def test_a_personalised_bonus_clearly_beats_the_best_uniform_bonus(
    medium_truth: ResponseTruth,
) -> None:
    ids = medium_truth.customer_ids
    profit = np.stack(
        [medium_truth.expected_profit(ids, OfferType.CASHBACK, b) for b in GRID], axis=1
    )
    profit = np.concatenate([np.zeros((ids.shape[0], 1)), profit], axis=1)  # or send nothing
    best_uniform = profit.sum(axis=0).max()
    personalised = profit.max(axis=1).sum()
    assert personalised > 1.3 * best_uniform
    choice = profit.argmax(axis=1)
    shares = np.bincount(choice, minlength=profit.shape[1]) / ids.shape[0]
    assert (shares > 0.03).sum() >= 4, shares  # the optimum varies strongly across customers


def test_the_truth_is_learnable_from_purchase_frequency(
    medium_world: Path, medium_truth: ResponseTruth
) -> None:
    tx = pl.read_parquet(medium_world / "transactions.parquet")
    end = pl.datetime(2025, 1, 1) + pl.duration(days=MEDIUM.days)
    recent = (
        tx.filter(pl.col(Col.TS) >= end - pl.duration(days=60))
        .group_by(Col.CUSTOMER)
        .agg(pl.col(Col.ORDER).n_unique().alias("orders"))
    )
    ids = medium_truth.customer_ids
    frame = pl.DataFrame(
        {Col.CUSTOMER: ids.astype(str), "p0": medium_truth.p_convert(ids, "none", 0)}
    )
    joined = frame.join(recent, on=Col.CUSTOMER, how="left").fill_null(0)
    rho = joined.select(pl.corr("p0", "orders", method="spearman")).item()
    assert 0.5 < rho < 0.99  # strong but noisy signal


def test_expected_margin_matches_realised_conversion_orders(
    medium_world: Path, medium_truth: ResponseTruth
) -> None:
    offers = _offers_with_truth(medium_world).filter(pl.col(Col.CONVERTED))
    tx = pl.read_parquet(medium_world / "transactions.parquet")
    items = pl.read_parquet(medium_world / "items.parquet").select(Col.ITEM, Col.MARGIN)
    margin = (
        tx.join(items, on=Col.ITEM)
        .group_by(Col.ORDER)
        .agg((pl.col(Col.AMOUNT) * pl.col(Col.MARGIN)).sum().alias("margin"))
    )
    realised = offers.join(margin, on=Col.ORDER)
    assert realised.height == offers.height
    expected = medium_truth.expected_margin(realised[Col.CUSTOMER], realised[Col.OFFER_TYPE])
    ratio = realised["margin"].sum() / expected.sum()
    assert 0.85 < ratio < 1.15


def test_up_sell_raises_the_expected_margin(medium_truth: ResponseTruth) -> None:
    ids = medium_truth.customer_ids
    up = medium_truth.expected_margin(ids, OfferType.UP_SELL)
    base = medium_truth.expected_margin(ids, OfferType.NONE)
    assert (up > base).mean() > 0.95


def test_the_oracle_accepts_string_ids_and_names_bad_input(tiny_world: Path) -> None:
    truth = ResponseTruth.load(tiny_world)
    as_int = truth.p_convert(np.array([1, 2, 3]), "cashback", 100.0)
    as_str = truth.p_convert(["1", "2", "3"], "cashback", 100.0)
    np.testing.assert_array_equal(as_int, as_str)
    with pytest.raises(KeyError, match="999999"):
        truth.p_convert(["999999"], "cashback", 100.0)
    with pytest.raises(ValueError, match="offer_type"):
        truth.p_convert(["1"], "free_lunch", 100.0)
    with pytest.raises(ValueError, match="bonus"):
        truth.p_convert(["1"], "cashback", -5.0)


def test_simulated_campaign_profit_matches_the_expected_profit(
    medium_truth: ResponseTruth,
) -> None:
    ids = medium_truth.customer_ids
    campaign = pl.DataFrame(
        {Col.CUSTOMER: ids.astype(str), Col.OFFER_TYPE: "cashback", Col.BONUS: 200.0}
    )
    played = simulate_campaign(medium_truth, campaign, seed=3)
    assert played.height == ids.shape[0]
    expected = medium_truth.p_convert(ids, "cashback", 200.0) * (
        medium_truth.expected_margin(ids, "cashback") - 200.0
    )
    assert played["profit"].sum() == pytest.approx(expected.sum(), rel=0.1)
    again = simulate_campaign(medium_truth, campaign, seed=3)
    assert played.equals(again)


def test_spend_threshold_bonus_is_paid_only_when_the_order_reaches_it(medium_world: Path) -> None:
    offers = pl.read_parquet(medium_world / "offers.parquet").filter(
        (pl.col(Col.OFFER_TYPE) == "spend_threshold")
        & pl.col(Col.CONVERTED)
        & (pl.col(Col.BONUS) > 0)
    )
    ledger = pl.read_parquet(medium_world / "bonus_ledger.parquet")
    bonus_rows = ledger.join(
        offers.select(Col.CUSTOMER, pl.col(Col.CONVERTED_AT).alias(Col.TS), Col.BONUS),
        on=[Col.CUSTOMER, Col.TS],
    ).filter(pl.col(Col.POINTS) == pl.col(Col.BONUS))
    reached = offers.filter(pl.col(Col.REVENUE) >= pl.col(Col.THRESHOLD))
    assert offers.height > reached.height > 0
    assert bonus_rows.height == reached.height
