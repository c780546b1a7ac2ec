"""The rule book: rule-based campaigns for datasets without an offer history.

Nothing is predicted, so plans take customers in rule-priority order at worst-case cost
(every contacted customer redeems the full bonus) and leave uplift and profit empty.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.columns import Col, OfferType
from features.names import Feat
from training.bonus.book import OfferBook
from training.bonus.candidates import build_candidates
from training.bonus.config import BonusConfig
from training.bonus.control import control_mask
from training.bonus.policies import rule_based_offers, rule_table
from training.bonus.rule_book import (
    RULE_PLAN_COLUMNS,
    RuleAllocation,
    RuleBook,
    RuleBookError,
    load_book,
)
from training.bonus.value import Value
from training.campaign import Segments, plan_campaign

# option columns: 0 expiring_points@0, 1 cashback@50, 2 cashback@100, 3 birthday@50
OFFER_TYPES = ["expiring_points", "cashback", "cashback", "birthday"]
BONUS = [0.0, 50.0, 100.0, 50.0]
RULES = ["expiring points", "birthday soon", "any buyer"]
NO_RULE = len(RULES)


def _book(point_value: float = 1.0) -> RuleBook:
    """Six customers with a known priority order:

    c0 expiring points (free), c3 birthday@50, then "any buyer" cashback by larger check:
    c2 (@100, check 2000), c1 (@100, check 1000), c5 (@50, check 500); c4 matches no rule.
    """
    return RuleBook(
        customer_ids=np.array([f"c{i}" for i in range(6)], dtype=str),
        offer_types=np.array(OFFER_TYPES, dtype=str),
        bonus=np.array(BONUS),
        choice=np.array([0, 2, 2, 3, -1, 1], dtype=np.int32),
        priority=np.array([0, 2, 2, 1, NO_RULE, 2], dtype=np.int32),
        rule_names=np.array(RULES, dtype=str),
        expected_check=np.array([800.0, 1000.0, 2000.0, 900.0, 700.0, 500.0]),
        threshold=np.full(6, np.nan, dtype=np.float32),
        channel=np.array(["email"] * 5 + [""], dtype=str),
        item=np.full((6, 2), "", dtype=str),
        point_value=point_value,
    )


def _random_book(n: int = 400, seed: int = 0) -> RuleBook:
    rng = np.random.default_rng(seed)
    choice = rng.integers(-1, len(BONUS), n).astype(np.int32)
    priority = np.where(choice >= 0, rng.integers(0, NO_RULE, n), NO_RULE).astype(np.int32)
    return RuleBook(
        customer_ids=np.array([f"c{i}" for i in range(n)], dtype=str),
        offer_types=np.array(OFFER_TYPES, dtype=str),
        bonus=np.array(BONUS),
        choice=choice,
        priority=priority,
        rule_names=np.array(RULES, dtype=str),
        expected_check=rng.uniform(100, 3000, n),
        threshold=np.full(n, np.nan, dtype=np.float32),
        channel=np.array(["email"] * n, dtype=str),
        item=np.full((n, 2), "", dtype=str),
    )


def _plan(
    book: RuleBook, budget: float | None, *, share: float = 0.0, campaign: str = "spring"
) -> tuple[pl.DataFrame, RuleAllocation]:
    return book.plan(
        np.arange(book.n_customers), campaign_id=campaign, budget=budget, control_share=share
    )


def test_customers_are_taken_in_rule_priority_then_larger_check_order() -> None:
    plan, alloc = _plan(_book(), 160.0)
    offers = dict(zip(plan["customer_id"], plan["offer_type"], strict=True))
    # c0 (free) + c3 (50) + c2 (100) = 150; c1 (100) and c5 (50) would pass 160
    assert offers == {
        "c0": "expiring_points",
        "c1": "none",
        "c2": "cashback",
        "c3": "birthday",
        "c4": "none",
        "c5": "none",
    }
    assert alloc.total_cost == 150.0
    assert (alloc.over_budget, alloc.without_rule, alloc.without_channel) == (2, 1, 0)
    assert alloc.held_out == 0
    assert alloc.budget_binding and alloc.n_treated == 3


def test_a_cheaper_customer_further_down_still_fits() -> None:
    plan, alloc = _plan(_book(), 200.0)
    # c0 + c3 + c2 = 150, c1 (100) does not fit, c5 (50) does
    assert plan.filter(pl.col("offer_type") != "none")["customer_id"].to_list() == [
        "c0",
        "c2",
        "c3",
        "c5",
    ]
    assert alloc.total_cost == 200.0


def test_worst_case_cost_is_the_full_bonus_in_money() -> None:
    plan, alloc = _plan(_book(point_value=0.5), None)
    assert plan["expected_cost"].to_list() == [0.0, 50.0, 50.0, 25.0, 0.0, 25.0]
    assert alloc.total_cost == 150.0 and not alloc.budget_binding


@pytest.mark.parametrize("budget", [0.0, 75.0, 1_000.0, 5_000.0, 20_000.0])
def test_worst_case_cost_never_exceeds_the_budget(budget: float) -> None:
    plan, alloc = _plan(_random_book(), budget, share=0.1)
    assert plan["expected_cost"].sum() <= budget + 1e-9
    assert alloc.total_cost == pytest.approx(plan["expected_cost"].sum())
    if budget == 0.0:  # only the free offers go out
        assert (plan.filter(pl.col("offer_type") != "none")["bonus"] == 0).all()


def test_control_is_held_out_first_and_fixed_by_the_campaign_id() -> None:
    book = _random_book()
    a, alloc = _plan(book, None, share=0.2, campaign="x")
    b, _ = _plan(book, None, share=0.2, campaign="x")
    c, _ = _plan(book, None, share=0.2, campaign="y")
    assert a.equals(b)
    assert not a["control"].equals(c["control"])
    assert a["control"].to_numpy().tolist() == control_mask("x", book.customer_ids, 0.2).tolist()
    control = a.filter("control")
    assert (control["offer_type"] == "none").all() and (control["expected_cost"] == 0).all()
    assert alloc.held_out == control.height
    # hold-outs keep the name of their rule, so each rule has a comparison group
    matched = book.choice[a["control"].to_numpy()] >= 0
    assert control["rule"].is_not_null().to_numpy().tolist() == matched.tolist()


def test_no_matching_rule_gives_none_and_nothing_is_predicted() -> None:
    plan, _ = _plan(_book(), None)
    assert plan.columns == list(RULE_PLAN_COLUMNS)
    c4 = plan.row(4, named=True)
    assert (c4["offer_type"], c4["bonus"], c4["rule"]) == ("none", 0.0, None)
    assert plan["expected_uplift"].null_count() == plan.height
    assert plan["expected_profit"].null_count() == plan.height
    assert plan["rule"].to_list()[:4] == [
        "expiring points",
        "any buyer",
        "any buyer",
        "birthday soon",
    ]


def test_negative_budget_is_refused() -> None:
    with pytest.raises(RuleBookError, match="budget"):
        _plan(_book(), -1.0)


def test_best_options_give_the_rule_offer_within_the_ceiling() -> None:
    book = _book()
    assert book.best_options(2, k=3) == [2]  # cashback@100
    assert book.best_options(2, k=3, bonus_ceiling=60.0) == [1]  # the same type @50
    assert book.best_options(2, k=3, bonus_ceiling=10.0) == []
    assert book.best_options(0, k=3, bonus_ceiling=0.0) == [0]  # free reminder
    assert book.best_options(4, k=3) == []  # no rule
    assert book.best_options(2, k=0) == []
    assert np.isnan(book.uplift[2, 2]) and np.isnan(book.profit[2, 2])


def test_state_round_trip_through_load_book() -> None:
    book = _random_book()
    params, arrays = book.state()
    assert params["kind"] == "rule_book"
    again = load_book(params, arrays)
    assert isinstance(again, RuleBook)
    a, _ = _plan(book, 3_000.0, share=0.1)
    b, _ = _plan(again, 3_000.0, share=0.1)
    assert a.equals(b)


def test_load_book_dispatches_on_kind() -> None:
    n = 3
    offer_book = OfferBook(
        customer_ids=np.array(["a", "b", "c"], dtype=str),
        offer_types=np.array(["cashback"], dtype=str),
        bonus=np.array([50.0]),
        profit=np.ones((n, 1), dtype=np.float32),
        cost=np.ones((n, 1), dtype=np.float32),
        uplift=np.ones((n, 1), dtype=np.float32),
        mask=np.ones((n, 1), dtype=bool),
        threshold=np.full(n, np.nan, dtype=np.float32),
        channel=np.array(["email"] * n, dtype=str),
        item=np.full((n, 2), "", dtype=str),
    )
    assert isinstance(load_book(*offer_book.state()), OfferBook)
    with pytest.raises(RuleBookError, match="kind"):
        load_book({"kind": "crystal_ball"}, {})


def test_plan_campaign_takes_a_rule_book() -> None:
    book = _book()
    segments = Segments(
        customer_ids=book.customer_ids,
        rfm_code=np.array([""] * 6, dtype=str),
        rfm_group=np.array(["loyal", "new"] * 3, dtype=str),
        lifecycle_stage=np.array(["active"] * 6, dtype=str),
    )
    plan = plan_campaign(
        book, segments, campaign_id="c", budget=1_000.0, control_share=0.0, segment="loyal"
    )
    assert plan.rule_based
    assert plan.rows["customer_id"].to_list() == ["c0", "c2", "c4"]


# --------------------------------------------------------------------------- from the rules

AS_OF = datetime(2025, 6, 1)
CONFIG = BonusConfig(
    offer_types=(OfferType.CASHBACK, OfferType.EXPIRING_POINTS), bonus_grid=(0.0, 50.0, 100.0)
)


def test_a_book_from_hand_made_features_prices_from_the_check() -> None:
    n = 6
    features = pl.DataFrame(
        {
            Col.CUSTOMER: [str(i) for i in range(n)],
            Feat.FREQUENCY: [3] * n,
            Feat.points_expiring(30): [50.0, 0.0, 0.0, 0.0, 50.0, 0.0],
            Col.CONSENT_EMAIL: [True, True, True, True, True, False],
        }
    )
    value = pl.DataFrame(
        {
            Col.CUSTOMER: [str(i) for i in range(n)],
            Value.EXPECTED_CHECK: [1000.0, 1000.0, 4000.0, 2000.0, 1000.0, 9000.0],
            Value.MARGIN_RATE: [0.3] * n,
        }
    )
    cands = build_candidates(features, value, config=CONFIG, as_of=AS_OF)
    book = RuleBook.from_rules(
        cands,
        rule_based_offers(features, value, cands, CONFIG),
        rule_names=[r.name for r in rule_table(CONFIG)],
        expected_check=value[Value.EXPECTED_CHECK].to_numpy(),
        point_value=CONFIG.point_value,
    )
    plan, alloc = book.plan(np.arange(n), campaign_id="h", budget=120.0, control_share=0.0)
    got = {r["customer_id"]: (r["offer_type"], r["bonus"], r["rule"]) for r in plan.to_dicts()}
    # cashback is 3% of the check: 4000 -> 120 -> 100; 2000 -> 60 -> 50; 1000 -> 30 -> 50
    # (the smallest level); customer 5 has no consent. Order: the two free reminders, then
    # cashback by larger check: 2 (100) fits, 3 (50) would pass 120, 1 (50) too.
    assert got == {
        "0": ("expiring_points", 0.0, "expiring points"),
        "1": ("none", 0.0, "any buyer"),
        "2": ("cashback", 100.0, "any buyer"),
        "3": ("none", 0.0, "any buyer"),
        "4": ("expiring_points", 0.0, "expiring points"),
        "5": ("none", 0.0, None),
    }
    assert (alloc.total_cost, alloc.over_budget) == (100.0, 2)
    assert (alloc.without_rule, alloc.without_channel) == (0, 1)


# --------------------------------------------------------------------------- end to end


def test_training_without_offers_or_margins_bundles_a_rule_book(tmp_path: Path) -> None:
    from dataclasses import replace

    from features.build import default_as_of
    from features.dataset import load_dataset
    from synth.config import WorldConfig
    from synth.world import generate
    from training.bonus.fit import train_bonus
    from training.campaign import load_campaign_inputs
    from training.pipeline import (
        TrainConfig,
        featured_items,
        fit_production,
        save_production_bundle,
    )

    world = tmp_path / "world"
    generate(WorldConfig(customers=300, items=50, days=150, seed=3, campaigns=3), world)
    (world / "offers.parquet").unlink()
    # no margins either (as in UCI Online Retail): rule-based offers only need the check
    items = pl.read_parquet(world / "items.parquet")
    assert Col.MARGIN in items.columns
    items.drop(Col.MARGIN).write_parquet(world / "items.parquet")
    ds = load_dataset(world)
    config = replace(TrainConfig(), serve_top_k=20)
    as_of = default_as_of(ds)
    production = fit_production(ds, config, as_of=as_of)
    cross, up = featured_items(production)
    bonus = train_bonus(
        ds,
        as_of=as_of,
        config=config.bonus,
        feature_config=config.features,
        cross_sell_item=cross,
        up_sell_item=up,
    )
    assert isinstance(bonus.book, RuleBook)
    assert any("no offer history" in n for n in bonus.notes)
    assert any("rule-based" in n and "no predicted response" in n for n in bonus.notes)
    bundle = save_production_bundle(
        production, tmp_path / "bundle", fingerprint={}, config=config, metrics={}, book=bonus.book
    )
    book, segments = load_campaign_inputs(bundle)
    assert isinstance(book, RuleBook)
    plan = plan_campaign(
        book, segments, campaign_id="e2e", budget=2_000.0, control_share=0.1, segment="all"
    )
    assert plan.rule_based
    rows = plan.rows
    assert rows.height == book.n_customers
    contacted = rows.filter(pl.col("offer_type") != "none")
    assert contacted.height > 0 and contacted["rule"].null_count() == 0
    assert rows["expected_cost"].sum() <= 2_000.0
    assert rows["expected_uplift"].null_count() == rows.height
