"""The offline evaluation harness on a small world with known structure."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.training.recs.conftest import make_items, make_tx, world_lines
from training.evaluation.offline import evaluate_models
from training.recs.popularity import OwnHistory, Popularity


def test_report_structure_and_repeat_buyers_favour_own_history():
    lines, items = world_lines()
    result = evaluate_models(
        make_tx(lines),
        make_items(items),
        cutoff=datetime(2024, 4, 20),
        models={"popularity": Popularity, "own": OwnHistory},
        ks=(5, 10),
    )
    json.dumps(result)
    split = result["split"]
    assert split["cutoff"] == "2024-04-20T00:00:00"
    assert split["warm_customers"] > 0
    assert (
        split["evaluated_repeats"] + split["warm_without_known_test_item"]
        == split["warm_customers"]
    )
    models = result["models"]
    assert set(models) == {"popularity", "own"}
    for m in models.values():
        assert set(m["new"]) == {"precision", "recall", "ndcg", "map", "hit_rate"}
        assert set(m["new"]["ndcg"]) == {"5", "10"}
    # customers here rebuy a staple: their own history beats popularity on repeats
    assert models["own"]["repeats"]["ndcg"]["10"] > models["popularity"]["repeats"]["ndcg"]["10"]
    # with seen items excluded, own history is popularity
    assert models["own"]["new"]["ndcg"]["10"] == models["popularity"]["new"]["ndcg"]["10"]
    segs = result["segments"]
    assert set(segs) == {"new", "active", "sleeping"}
    total = sum(segs[s]["own"]["customers"] for s in segs)
    assert total == split["evaluated_repeats"]


@pytest.mark.slow
@pytest.mark.realdata
def test_hybrid_beats_every_peer_on_uci_online_retail(shared_data: Path, tmp_path: Path):
    """The headline table: last 30 days = test, warm customers, NDCG@10, both protocols."""
    from features.adapters import import_dataset
    from features.dataset import load_dataset
    from training.recs.als import ALS, ALSConfig
    from training.recs.ease import EASE
    from training.recs.hybrid import Hybrid
    from training.recs.itemknn import ItemKNN, ItemKNNConfig

    import_dataset("uci_online_retail", shared_data / "uci_online_retail", tmp_path)
    ds = load_dataset(tmp_path)
    peers = {
        "popularity": Popularity,
        "own_binary": lambda: OwnHistory(binary=True),
        "own": OwnHistory,
        "als_defaults": lambda: ALS(ALSConfig(binary=True)),
        "item_item_bm25": lambda: ItemKNN(ItemKNNConfig("bm25", neighbours=200, binary=True)),
        "ease_500": EASE,
    }
    result = evaluate_models(
        ds.require("transactions", "test"),
        ds.require("items", "test"),
        cutoff=None,
        models={**peers, "hybrid": Hybrid},
        ks=(10,),
    )
    m = result["models"]
    # the peers land on the published figures (within noise)
    assert m["popularity"]["new"]["ndcg"]["10"] == pytest.approx(0.061, abs=0.005)
    assert m["als_defaults"]["repeats"]["ndcg"]["10"] == pytest.approx(0.276, abs=0.01)
    for protocol in ("new", "repeats"):
        best_peer = max(m[p][protocol]["ndcg"]["10"] for p in peers)
        assert m["hybrid"][protocol]["ndcg"]["10"] > best_peer + 0.01, protocol


def test_one_basket_per_customer_is_refused_with_the_counts():
    """Like groceries_arules: every customer shops once, so no one is on both sides."""
    from training.evaluation.offline import EvaluationError

    lines = [(f"c{d}", f"o{d}", float(d), "milk", 1.0) for d in range(60)]
    with pytest.raises(EvaluationError, match="30 customers bought before it and 30 in"):
        evaluate_models(
            make_tx(lines),
            make_items({"milk": ("dairy", 1.0)}),
            cutoff=datetime(2024, 1, 31),
            models={"popularity": Popularity},
        )


@pytest.mark.slow
def test_hybrid_beats_every_peer_on_the_synthetic_demo_world(tmp_path: Path):
    """The demo world of `make demo` (5,000 customers, 400 items, a year), both protocols."""
    from features.dataset import load_dataset
    from synth.config import WorldConfig
    from synth.world import generate
    from training.pipeline import OURS, TrainConfig, evaluate

    generate(WorldConfig(customers=5000, items=400, days=365, seed=7), tmp_path)
    m = evaluate(load_dataset(tmp_path), TrainConfig())["models"]
    for protocol in ("new", "repeats"):
        best_peer = max(v[protocol]["ndcg"]["10"] for k, v in m.items() if k != OURS)
        assert m[OURS][protocol]["ndcg"]["10"] > best_peer, protocol
    assert m[OURS]["fit_seconds"] < 30  # about 9 s on a quiet 2-core machine
