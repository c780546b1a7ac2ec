"""Basket completion: hide one item of each test basket and predict it from the rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features.dataset import load_dataset, write_parquet_atomic
from tests.training.recs.conftest import Line, make_items, make_tx
from training.evaluation.baskets import (
    OURS,
    PROTOCOL,
    AssociationRules,
    BasketEASE,
    BasketEvaluationError,
    BasketPopularity,
    CoOccurrenceKNN,
    basket_models,
    evaluate_basket_completion,
)
from training.recs.base import Interactions, build_interactions

# every item in its own category: the cross-sell never drops a candidate as a substitute
ITEMS = {name: (name, 1.0) for name in ("bread", "butter", "jam", "milk", "eggs", "tea")}


def _train_lines() -> list[Line]:
    """Bread and butter are always bought together (6 times with jam); milk is the most
    frequent item, bought alone or with eggs, never with bread; tea is bought alone."""
    lines: list[Line] = []
    for n in range(10):
        o = f"bb{n}"
        lines += [(o, o, n * 0.1, "bread", 1), (o, o, n * 0.1, "butter", 1)]
        if n < 6:
            lines += [(o, o, n * 0.1, "jam", 1)]
    for n in range(16):
        o = f"m{n}"
        lines += [(o, o, 1.0 + n * 0.1, "milk", 1)]
        if n % 2:
            lines += [(o, o, 1.0 + n * 0.1, "eggs", 1)]
    lines += [(f"t{n}", f"t{n}", 3.0 + n * 0.1, "tea", 1) for n in range(3)]
    return lines


def _test_lines() -> list[Line]:
    """After day 5: bread + butter baskets (one with caviar, unknown before), a lone milk."""
    lines: list[Line] = []
    for n in range(8):
        o = f"x{n}"
        lines += [(o, o, 5.0 + n * 0.1, "bread", 1), (o, o, 5.0 + n * 0.1, "butter", 1)]
    lines += [("x0", "x0", 5.0, "caviar", 1), ("solo", "solo", 5.9, "milk", 1)]
    return lines


@pytest.fixture(scope="module")
def train() -> Interactions:
    return build_interactions(make_tx(_train_lines()), make_items(ITEMS), until=None)


def _first(model_factory: object, data: Interactions, cart: list[str], k: int = 3) -> list[str]:
    model = model_factory()  # type: ignore[operator]
    model.fit(data)
    idx = data.items.index(cart)
    exclude = np.zeros(data.n_items, dtype=bool)
    exclude[idx] = True
    recs = model.recommend_for_cart(idx, k, customer_idx=-1, exclude=exclude)
    return list(data.items.to_external(recs))


@pytest.mark.parametrize("name", [OURS, "item_knn_cooccurrence"])
def test_butter_completes_bread_and_jam(train: Interactions, name: str):
    assert _first(basket_models()[name], train, ["bread", "jam"])[0] == "butter"


def test_popularity_offers_the_most_frequent_item_whatever_the_cart(train: Interactions):
    assert _first(BasketPopularity, train, ["bread", "jam"])[:2] == ["milk", "butter"]
    assert _first(BasketPopularity, train, ["milk"])[0] == "bread"


@pytest.mark.parametrize("factory", [BasketEASE, AssociationRules, CoOccurrenceKNN])
def test_baselines_complete_bread_with_butter(train: Interactions, factory: object):
    assert _first(factory, train, ["bread"])[0] == "butter"


@pytest.mark.parametrize("name", list(basket_models()))
def test_cart_items_are_never_recommended(train: Interactions, name: str):
    recs = _first(basket_models()[name], train, ["bread", "butter", "milk"], k=4)
    assert not {"bread", "butter", "milk"} & set(recs)
    assert len(recs) == 4


@pytest.fixture(scope="module")
def results() -> dict[str, object]:
    tx = make_tx(_train_lines() + _test_lines())
    # the 29 train orders are 76% of 38: a share of 0.22 puts the split at the first x basket
    return evaluate_basket_completion(tx, make_items(ITEMS), test_share=0.22, ks=(1, 3), seed=7)


def test_the_split_counts_every_test_basket_and_what_was_left_out(results: dict[str, object]):
    split = results["split"]
    assert isinstance(split, dict)
    assert split["protocol"] == PROTOCOL and split["ours"] == OURS
    assert (split["train_orders"], split["test_orders"]) == (29, 9)
    assert split["test_baskets"] == 9
    assert split["evaluated_baskets"] == 8  # the lone milk basket cannot be completed
    assert split["baskets_under_two_known_items"] == 1
    assert split["test_lines_unknown_item"] == 1  # caviar: dropped, x0 is completed without it


def test_bread_and_butter_complete_each_other_for_ours_and_co_occurrence(
    results: dict[str, object],
):
    models = results["models"]
    assert isinstance(models, dict)
    for name in (OURS, "item_knn_cooccurrence", "ease_baskets"):
        assert models[name]["basket"]["ndcg"] == {"1": 1.0, "3": 1.0}, name
    # milk, the most frequent item, takes the first slot of every popularity list
    assert models["popularity"]["basket"]["hit_rate"]["1"] == 0.0
    assert models["popularity"]["basket"]["hit_rate"]["3"] == 1.0
    assert set(models[OURS]) == {"basket", "coverage", "fit_seconds", "recommend_seconds"}


def test_bad_arguments_name_the_field():
    tx, items = make_tx(_train_lines()), make_items(ITEMS)
    with pytest.raises(BasketEvaluationError, match="test_share"):
        evaluate_basket_completion(tx, items, test_share=1.0)
    with pytest.raises(BasketEvaluationError, match="ks"):
        evaluate_basket_completion(tx, items, ks=(0, 5))
    with pytest.raises(BasketEvaluationError, match="models"):
        evaluate_basket_completion(tx, items, models={})
    only_singles = make_tx([(f"o{n}", f"o{n}", float(n), "milk", 1) for n in range(5)])
    with pytest.raises(BasketEvaluationError, match="two or more items"):
        evaluate_basket_completion(only_singles, items)


@pytest.mark.slow  # importing the training pipeline (MLflow, LightGBM) takes seconds
def test_pipeline_evaluate_falls_back_to_basket_completion_without_warm_customers(
    tmp_path: Path,
):
    from training.pipeline import TrainConfig, evaluate

    write_parquet_atomic(
        make_tx(_train_lines() + _test_lines()).collect(), tmp_path / "transactions.parquet"
    )
    write_parquet_atomic(make_items(ITEMS).collect(), tmp_path / "items.parquet")
    out = evaluate(load_dataset(tmp_path), TrainConfig())
    assert out["split"]["protocol"] == PROTOCOL
    assert "no warm customers" in out["split"]["per_customer_skipped"]
    assert list(out["models"]) == list(basket_models())


@pytest.fixture(scope="module")
def groceries(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from features.adapters import import_dataset

    root = tmp_path_factory.mktemp("groceries")
    import_dataset("groceries_arules", shared_data / "groceries_arules", root)
    ds = load_dataset(root)
    return evaluate_basket_completion(
        ds.require("transactions", "test"), ds.require("items", "test"), seed=0
    )


def _ndcg10(results: dict[str, object]) -> dict[str, float]:
    models = results["models"]
    assert isinstance(models, dict)
    return {name: m["basket"]["ndcg"]["10"] for name, m in models.items()}


@pytest.mark.slow
@pytest.mark.realdata
def test_groceries_baskets_are_completed_better_than_by_chance(groceries: dict[str, object]):
    """9,835 anonymous baskets over 30 days: the last 30% are completed, one item hidden."""
    split = groceries["split"]
    assert isinstance(split, dict)
    assert (split["train_orders"], split["test_orders"]) == (6884, 2951)
    assert split["evaluated_baskets"] == 2313
    ndcg = _ndcg10(groceries)
    chance = 1.0 / 169
    assert all(v > 10 * chance for n, v in ndcg.items() if n != "association_rules_lift")
    # co-occurrence beats popularity; lift alone favours rare items and loses to both
    assert ndcg["item_knn_cooccurrence"] > ndcg["popularity"] > ndcg["association_rules_lift"]


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.xfail(
    strict=True,
    reason="the cross-sell never offers an item of a cart item's category (a substitute, by "
    "design); 18% of the held-out Groceries items share one, which costs more than the gap",
)
def test_ours_beats_every_baseline_on_groceries(groceries: dict[str, object]):
    ndcg = _ndcg10(groceries)
    baselines = {n: v for n, v in ndcg.items() if n != OURS}
    assert ndcg[OURS] > max(baselines.values()), (ndcg[OURS], baselines)
