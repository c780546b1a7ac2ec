"""Playing campaigns out under a known truth, and the measurement's intervals covering it.

The coverage tests are the proof that `training.results` measures what a campaign caused: a
campaign is randomised and played out many times; the 95% interval of the measured effect must
contain the TRUE effect (exact, from the truth) in about 95% of the plays.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from features.columns import OfferType
from synth.config import WorldConfig
from synth.playout import PLAYOUT_ITEM, PlayoutError, play_out, true_effect, true_effects
from synth.response import ResponseTruth
from synth.world import generate
from training.results.campaign import campaign_rows, customer_outcomes, measure
from training.results.stats import NOT_ENOUGH

START = datetime(2024, 6, 1)


class HandTruth:
    """Known probabilities per customer: p(none) = base, p(offer, b) = base + lift * b / 100."""

    window = 14

    def __init__(self, base: dict[str, float], lift: dict[str, float]) -> None:
        self.base, self.lift = base, lift

    def p_convert(self, ids: Any, offer_type: Any, bonus: Any, at: Any = None) -> np.ndarray:
        ids = list(ids)
        types = [offer_type] * len(ids) if isinstance(offer_type, str) else list(offer_type)
        b = np.broadcast_to(np.asarray(bonus, dtype=float), (len(ids),))
        base = np.array([self.base[i] for i in ids])
        lift = np.array([self.lift[i] for i in ids]) * b / 100.0
        return np.where(np.array(types) == OfferType.NONE, base, np.minimum(1.0, base + lift))

    def expected_revenue(self, ids: Any, offer_type: Any = OfferType.NONE) -> np.ndarray:
        types = [offer_type] * len(ids) if isinstance(offer_type, str) else list(offer_type)
        return np.where(np.array(types) == OfferType.CROSS_SELL, 150.0, 100.0)


def hand_truth(n: int, seed: int = 0) -> HandTruth:
    rng = np.random.default_rng(seed)
    ids = [f"h{i}" for i in range(n)]
    base = dict(zip(ids, rng.uniform(0.05, 0.4, n), strict=True))
    lift = dict(zip(ids, rng.uniform(0.0, 0.15, n), strict=True))
    return HandTruth(base, lift)


def random_campaign(
    ids: list[str], rng: np.random.Generator, control_share: float = 0.3
) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame(
        {
            "customer_id": ids,
            "offer_type": rng.choice([OfferType.CASHBACK, OfferType.CROSS_SELL], n),
            "bonus": rng.choice([50.0, 100.0, 200.0], n),
            "control": rng.random(n) < control_share,
        }
    )


def measured(offers: pl.DataFrame, tx: pl.DataFrame, items: pl.DataFrame | None) -> dict[str, Any]:
    rows = campaign_rows(offers.lazy(), "playout")
    out = customer_outcomes(
        rows, tx.lazy(), None if items is None else items.lazy(), window_days=14
    )
    return measure(out.frame, has_margin=out.has_margin)


def coverage(truth: Any, ids: list[str], sims: int, items: pl.DataFrame | None) -> dict[str, float]:
    rng = np.random.default_rng(2024)
    hits: dict[str, int] = {}
    for k in range(sims):
        campaign = random_campaign(ids, rng)
        truth_k = true_effects(truth, campaign, start=START, items=items)
        offers, tx = play_out(truth, campaign, start=START, seed=k, items=items)
        effects = measured(offers, tx, items)["effects"]
        pairs = {"conversion": "conversion_uplift", "revenue": "revenue_per_customer"}
        if "net_margin" in truth_k:
            pairs["net_margin"] = "net_margin_per_customer"
        for name, key in pairs.items():
            est = effects[key]
            hits[name] = hits.get(name, 0) + int(est["low"] <= truth_k[name] <= est["high"])
    return {name: h / sims for name, h in hits.items()}


def test_outcomes_follow_the_truth_exactly_at_the_extremes() -> None:
    ids = ["a", "b", "c", "d"]
    truth = HandTruth(dict.fromkeys(ids, 0.0), {"a": 1.0, "b": 1.0, "c": 0.0, "d": 1.0})
    campaign = pl.DataFrame(
        {
            "customer_id": ids,
            "offer_type": ["cashback", "cross_sell", "cashback", "cashback"],
            "bonus": [100.0, 100.0, 100.0, 100.0],
            "control": [False, False, False, True],
            "expected_uplift": [0.9, 0.8, 0.7, 0.6],
        }
    )
    offers, tx = play_out(truth, campaign, start=START, seed=1)
    assert offers["converted"].to_list() == [True, True, False, False]
    assert offers["offer_type"].to_list()[3] == OfferType.NONE  # control is held out
    assert offers["expected_uplift"].to_list() == [0.9, 0.8, 0.7, 0.6]  # carried through
    assert offers["revenue"].to_list() == [100.0, 150.0, None, None]
    assert tx["item_id"].unique().to_list() == [PLAYOUT_ITEM]
    assert ((tx["ts"] >= START) & (tx["ts"] < datetime(2024, 6, 15))).all()
    assert true_effect(truth, campaign, start=START) == pytest.approx(2 / 3)


def test_same_seed_same_play() -> None:
    truth = hand_truth(300)
    campaign = random_campaign(list(truth.base), np.random.default_rng(1))
    first = play_out(truth, campaign, start=START, seed=7)
    second = play_out(truth, campaign, start=START, seed=7)
    assert first[0].equals(second[0]) and first[1].equals(second[1])


def test_orders_from_a_catalogue_match_the_expected_amount_on_average() -> None:
    ids = [f"c{i}" for i in range(4000)]
    truth = HandTruth(dict.fromkeys(ids, 1.0), dict.fromkeys(ids, 0.0))
    items = pl.DataFrame(
        {"item_id": ["x", "y", "z"], "price": [20.0, 40.0, 60.0], "margin": [0.5, 0.5, 0.5],
         "is_active": [True, True, False]}
    )  # fmt: skip
    campaign = random_campaign(ids, np.random.default_rng(3), control_share=0.0)
    offers, tx = play_out(truth, campaign, start=START, seed=3, items=items)
    assert set(tx["item_id"].unique().to_list()) == {"x", "y"}  # z is inactive
    by_type = offers.group_by("offer_type").agg(pl.col("revenue").mean())
    means = dict(by_type.iter_rows())
    assert means["cashback"] == pytest.approx(100.0, rel=0.03)
    assert means["cross_sell"] == pytest.approx(150.0, rel=0.03)
    assert tx.select("order_id", "item_id").is_duplicated().sum() == 0  # contract key


def test_bad_campaign_is_named() -> None:
    truth = hand_truth(3)
    campaign = pl.DataFrame(
        {"customer_id": ["h0", "h1"], "offer_type": ["cashback", None], "bonus": [1.0, 2.0],
         "control": [False, False]}
    )  # fmt: skip
    with pytest.raises(PlayoutError, match=r"campaign.offer_type: null at row 1"):
        play_out(truth, campaign, start=START, seed=0)
    with pytest.raises(PlayoutError, match="missing column"):
        play_out(truth, campaign.drop("control"), start=START, seed=0)


def test_interval_covers_the_true_effect_hand_truth_fast() -> None:
    """60 plays of 1,500 customers: binomial(60, 0.95) falls below 52 with chance < 0.2%."""
    truth = hand_truth(1500)
    rates = coverage(truth, list(truth.base), sims=60, items=None)
    assert rates["conversion"] >= 52 / 60
    assert rates["revenue"] >= 52 / 60


def test_too_small_a_control_group_is_not_enough_data() -> None:
    truth = hand_truth(2000, seed=5)
    ids = list(truth.base)
    rng = np.random.default_rng(5)
    campaign = random_campaign(ids, rng, control_share=0.002)  # about 4 held out
    items = pl.DataFrame({"item_id": ["x"], "price": [100.0], "margin": [0.4]})
    offers, tx = play_out(truth, campaign, start=START, seed=5, items=items)
    result = measured(offers, tx, items)
    assert result["control_customers"] < 10
    assert result["verdict"] == NOT_ENOUGH
    # the same campaign with a proper control group can tell
    big = random_campaign(ids, rng, control_share=0.5)
    offers, tx = play_out(truth, big, start=START, seed=6, items=items)
    assert measured(offers, tx, items)["verdict"] != NOT_ENOUGH


@pytest.fixture(scope="module")
def oracle_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("playout_world")
    generate(WorldConfig(customers=3000, items=120, days=150, seed=17), out)
    return out


def test_interval_covers_the_true_effect_under_the_oracle_fast(oracle_world: Path) -> None:
    """60 plays of 1,500 world customers under ResponseTruth (see the fast hand-truth bound)."""
    truth = ResponseTruth.load(oracle_world)
    items = pl.read_parquet(oracle_world / "items.parquet")
    ids = [str(i) for i in truth.customer_ids[:1500]]
    rates = coverage(truth, ids, sims=60, items=items)
    for name, rate in rates.items():
        assert rate >= 52 / 60, f"{name}: coverage {rate}"


@pytest.mark.slow
def test_interval_covers_the_true_effect_under_the_oracle(oracle_world: Path) -> None:
    """200 plays of 3,000 world customers under ResponseTruth: coverage in [0.92, 0.98]."""
    truth = ResponseTruth.load(oracle_world)
    items = pl.read_parquet(oracle_world / "items.parquet")
    ids = [str(i) for i in truth.customer_ids]
    rates = coverage(truth, ids, sims=200, items=items)
    print(f"coverage under the oracle (200 sims): {rates}")
    for name, rate in rates.items():
        assert 0.92 <= rate <= 0.98, f"{name}: coverage {rate}"
