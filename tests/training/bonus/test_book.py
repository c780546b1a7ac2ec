"""The offer book: budgeted plans, control hold-outs, per-customer best options, persistence."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from training.bonus.book import PLAN_COLUMNS, OfferBook, OfferBookError
from training.campaign import AudienceError, Segments, plan_campaign


def _book(n: int = 200, seed: int = 0) -> OfferBook:
    rng = np.random.default_rng(seed)
    offer_types = np.array(["cashback"] * 3 + ["spend_threshold"] * 3 + ["cross_sell"], dtype=str)
    bonus = np.array([50, 100, 200, 50, 100, 200, 0], dtype=np.float64)
    uplift = (rng.uniform(0, 0.2, (n, 1)) * (1 - np.exp(-bonus / 150)))[:, :].astype(np.float32)
    uplift[:, 6] = rng.uniform(0, 0.05, n)
    profit = (uplift * rng.uniform(500, 2000, (n, 1)) - 0.3 * bonus).astype(np.float32)
    cost = (0.3 * bonus * np.ones((n, 1))).astype(np.float32)
    mask = rng.uniform(size=(n, 7)) > 0.1
    return OfferBook(
        customer_ids=np.array([f"c{i}" for i in range(n)], dtype=str),
        offer_types=offer_types,
        bonus=bonus,
        profit=profit,
        cost=cost,
        uplift=uplift,
        mask=mask,
        threshold=rng.uniform(100, 900, n).astype(np.float32),
        channel=np.array(["email"] * n, dtype=str),
        item=np.array([["bag", "pro-laptop"]] * n, dtype=str),
    )


def test_plan_stays_within_budget_and_holds_out_control() -> None:
    book = _book()
    plan, alloc = book.plan(np.arange(200), campaign_id="spring", budget=2000.0, control_share=0.2)
    assert plan.columns == list(PLAN_COLUMNS)
    assert plan.height == 200
    assert plan["expected_cost"].sum() <= 2000.0 + 1e-6
    control = plan.filter("control")
    assert 20 <= control.height <= 60
    assert (control["offer_type"] == "none").all() and (control["bonus"] == 0).all()
    assert alloc.total_cost <= 2000.0 + 1e-6


def test_same_campaign_id_same_plan_and_another_id_another_control_group() -> None:
    book = _book()
    a, _ = book.plan(np.arange(200), campaign_id="x", budget=3000.0, control_share=0.1)
    b, _ = book.plan(np.arange(200), campaign_id="x", budget=3000.0, control_share=0.1)
    c, _ = book.plan(np.arange(200), campaign_id="y", budget=3000.0, control_share=0.1)
    assert a.equals(b)
    assert not a["control"].equals(c["control"])


def test_offer_specific_columns() -> None:
    plan, _ = _book().plan(np.arange(200), campaign_id="z", budget=None, control_share=0.0)
    spend = plan.filter(plan["offer_type"] == "spend_threshold")
    assert spend.height and spend["threshold"].null_count() == 0
    assert plan.filter(plan["offer_type"] == "cashback")["threshold"].null_count() == len(
        plan.filter(plan["offer_type"] == "cashback")
    )
    cross = plan.filter(plan["offer_type"] == "cross_sell")
    assert (cross["item_id"] == "bag").all()


def test_negative_budget_is_refused() -> None:
    with pytest.raises(OfferBookError, match="budget"):
        _book().plan(np.arange(3), campaign_id="z", budget=-1.0, control_share=0.0)


def test_best_options_one_per_type_within_the_ceiling() -> None:
    book = _book()
    for row in range(20):
        picks = book.best_options(row, k=3, bonus_ceiling=100.0)
        assert len({book.offer_types[j] for j in picks}) == len(picks) <= 3
        assert all(book.bonus[j] <= 100 and book.mask[row, j] for j in picks)
        assert all(book.profit[row, j] > 0 for j in picks)
        assert [book.profit[row, j] for j in picks] == sorted(
            (book.profit[row, j] for j in picks), reverse=True
        )


def test_best_options_without_a_ceiling_are_the_precomputed_ranking() -> None:
    book = replace(_book(n=300, seed=4), min_roi=0.5)  # some options pay but miss the ROI
    for row in range(300):
        for k in (1, 2, 3, 5):
            assert book.best_options(row, k=k) == book.best_options(
                row, k=k, bonus_ceiling=np.inf
            ), (row, k)
    assert any(book.best_options(row, k=3) for row in range(300))


def test_state_round_trip() -> None:
    book = _book()
    again = OfferBook.from_state(*book.state())
    a, _ = book.plan(np.arange(200), campaign_id="r", budget=1500.0, control_share=0.1)
    b, _ = again.plan(np.arange(200), campaign_id="r", budget=1500.0, control_share=0.1)
    assert a.equals(b)


def _segments(book: OfferBook) -> Segments:
    n = book.n_customers
    return Segments(
        customer_ids=book.customer_ids,
        rfm_code=np.array(["R1F1M1"] * n, dtype=str),
        rfm_group=np.array(["champions" if i % 2 else "at_risk" for i in range(n)], dtype=str),
        lifecycle_stage=np.array(["active"] * n, dtype=str),
    )


def test_plan_campaign_by_segment_and_by_list() -> None:
    book = _book()
    seg = _segments(book)
    by_segment = plan_campaign(
        book, seg, campaign_id="s", budget=1000.0, control_share=0.1, segment="champions"
    )
    assert by_segment.rows.height == 100
    by_list = plan_campaign(
        book,
        seg,
        campaign_id="s",
        budget=1000.0,
        control_share=0.1,
        customer_ids=["c1", "c3", "nobody"],
    )
    assert by_list.rows["customer_id"].to_list() == ["c1", "c3"]
    assert by_list.not_in_book == ("nobody",)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"segment": "vip"}, "segment"),
        ({"segment": "all", "customer_ids": ["c1"]}, "audience"),
        ({"segment": "all", "control_share": 1.0}, "control_share"),
        ({"segment": "all", "campaign_id": ""}, "campaign_id"),
    ],
)
def test_bad_audience_names_the_field(kwargs: dict[str, object], field: str) -> None:
    book = _book(10)
    args: dict[str, object] = {"campaign_id": "c", "budget": 10.0, "control_share": 0.1}
    args.update(kwargs)
    with pytest.raises(AudienceError) as err:
        plan_campaign(book, _segments(book), **args)  # type: ignore[arg-type]
    assert err.value.field == field
