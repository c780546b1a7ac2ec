"""Hillstrom uplift benchmark: the Qini definition matches scikit-uplift's, splits are
stratified, the report has every model and metric, and on the real data ours beats the peers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from evaluation.hillstrom import (
    MODELS,
    import_hillstrom,
    load_experiment,
    stratified_split,
    uplift_benchmark,
)
from evaluation.uplift_learners import (
    TreeParams,
    ensemble_candidate,
    s_candidate,
)
from training.bonus.uplift_metrics import qini_auc

# ----------------------------------------------------------------- the Qini definition


def sklift_qini_auc_score(y: np.ndarray, uplift: np.ndarray, treatment: np.ndarray) -> float:
    """scikit-uplift 0.5's qini_auc_score(negative_effect=True), re-typed from its source:
    mergesort of the scores reversed, curve points at the last row of every tie group, perfect
    ranking y*t - y*(1-t), baseline the straight line to the perfect curve's end point."""

    def curve(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(score, kind="mergesort")[::-1]
        yy, ss, tt = y[order], score[order], treatment[order]
        idx = np.r_[np.where(np.diff(ss))[0], ss.size - 1]
        n_t = np.cumsum(tt)[idx].astype(float)
        y_t = np.cumsum(yy * tt)[idx].astype(float)
        n_all = idx + 1
        n_c = n_all - n_t
        y_c = np.cumsum(yy * (1 - tt))[idx].astype(float)
        values = y_t - y_c * np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c != 0)
        return np.r_[0, n_all], np.r_[0, values]

    x_a, y_a = curve(uplift)
    x_p, y_p = curve(y * treatment - y * (1 - treatment))
    base = np.trapezoid([0, y_p[-1]], [0, x_p[-1]])
    return float((np.trapezoid(y_a, x_a) - base) / (np.trapezoid(y_p, x_p) - base))


def test_qini_coefficient_of_a_hand_example() -> None:
    # rows (treated, outcome): (1, 1), (0, 0), (1, 0), (0, 1); perfect Qini curve area 3.
    # ranking rows 0, 2, 3, 1: Q(k) = 1, 1, 1 - 1 * 2/1 = -1, 1 - 1 * 2/2 = 0 -> area 1 -> 1/3
    treated, outcome = np.array([1, 0, 1, 0]), np.array([1, 0, 0, 1])
    assert qini_auc([4, 1, 3, 2], treated, outcome) == pytest.approx(1 / 3)
    # the reverse ranking: Q(k) = 0, -1, -1/2, 0 -> area -3/2 -> -1/2
    assert qini_auc([1, 2, 3, 4], treated, outcome) == pytest.approx(-0.5)
    assert sklift_qini_auc_score(outcome, np.array([4.0, 1, 3, 2]), treated) == pytest.approx(1 / 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_qini_coefficient_equals_scikit_uplift_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    treated = (rng.random(n) < 0.6).astype(int)
    outcome = (rng.random(n) < 0.2 + 0.1 * treated).astype(int)
    score = np.round(rng.normal(size=n) + 0.5 * outcome * treated, 1)  # many ties
    expected = sklift_qini_auc_score(outcome, score, treated)
    assert qini_auc(score, treated, outcome) == pytest.approx(expected, rel=1e-9)


# ----------------------------------------------------------------- splits


def test_split_is_seventy_thirty_within_every_stratum() -> None:
    rng = np.random.default_rng(0)
    t = rng.random(3000) < 2 / 3
    visit = rng.random(3000) < 0.15
    train, test = stratified_split([t, visit], share=0.7, seed=1)
    assert np.intersect1d(train, test).size == 0
    assert np.union1d(train, test).size == 3000
    in_train = np.isin(np.arange(3000), train)
    for cell in (t & visit, t & ~visit, ~t & visit, ~t & ~visit):
        assert in_train[cell].mean() == pytest.approx(0.7, abs=1 / cell.sum())
    again, _ = stratified_split([t, visit], share=0.7, seed=1)
    np.testing.assert_array_equal(train, again)
    other, _ = stratified_split([t, visit], share=0.7, seed=2)
    assert not np.array_equal(train, other)


# ----------------------------------------------------------------- end to end (tiny)


def tiny_hillstrom(folder: Path, n: int = 1500, seed: int = 0) -> Path:
    """A source file shaped like hillstrom.parquet: the e-mail adds visits for women's buyers
    only (+0.4), so a model must find ``womens`` to rank well."""
    rng = np.random.default_rng(seed)
    womens = rng.integers(0, 2, n)
    segment = rng.choice(["Mens E-Mail", "Womens E-Mail", "No E-Mail"], n)
    emailed = segment != "No E-Mail"
    visit = rng.random(n) < 0.1 + 0.4 * emailed * womens
    conversion = visit & (rng.random(n) < 0.3)
    history = rng.uniform(30, 3000, n)
    out = folder / "hillstrom_email"
    out.mkdir(parents=True)
    pl.DataFrame(
        {
            "row_id": np.arange(n),
            "recency": rng.integers(1, 13, n),
            "history_segment": np.where(history < 500, "1) $0 - $100", "7) $1,000 +"),
            "history": history,
            "mens": rng.integers(0, 2, n),
            "womens": womens,
            "zip_code": rng.choice(["Urban", "Surburban", "Rural"], n),
            "newbie": rng.integers(0, 2, n),
            "channel": rng.choice(["Phone", "Web", "Multichannel"], n),
            "segment": segment,
            "visit": visit.astype(np.int64),
            "conversion": conversion.astype(np.int64),
            "spend": conversion * 50.0,
        }
    ).write_parquet(out / "hillstrom.parquet")
    return folder


SMALL = (
    TreeParams(num_leaves=3, min_data_in_leaf=40, rounds=40, learning_rate=0.1),
    TreeParams(num_leaves=5, min_data_in_leaf=60, rounds=30, learning_rate=0.1),
)
SMALL_CANDIDATES = (ensemble_candidate(SMALL), *(s_candidate(p) for p in SMALL))


def test_the_experiment_is_read_through_the_adapter(tmp_path: Path) -> None:
    shared = tiny_hillstrom(tmp_path / "shared", n=300)
    exp = load_experiment(import_hillstrom(shared, tmp_path / "work"))
    assert exp.rows == 300
    assert set(exp.names) == {
        "recency",
        "history_segment",
        "history",
        "mens",
        "womens",
        "zip_code",
        "newbie",
        "channel",
    }
    assert len(exp.categorical) == 3
    source = pl.read_parquet(shared / "hillstrom_email" / "hillstrom.parquet")
    # rows come back in source order (customer_id = row_id)
    np.testing.assert_array_equal(exp.treated, (source["segment"] != "No E-Mail").to_numpy())
    np.testing.assert_array_equal(exp.outcomes["visit"], source["visit"].to_numpy())
    np.testing.assert_array_equal(exp.outcomes["conversion"], source["conversion"].to_numpy())


def test_benchmark_reports_every_model_and_ours_finds_the_effect(tmp_path: Path) -> None:
    shared = tiny_hillstrom(tmp_path / "shared")
    report = uplift_benchmark(
        shared, tmp_path / "work", seeds=2, candidates=SMALL_CANDIDATES, folds=3
    )
    json.dumps(report)  # JSON-able
    bench = report["uplift_benchmark"]
    assert bench["dataset"] == "hillstrom_email"
    assert bench["target"] == "visit"
    assert set(bench["models"]) == set(MODELS)
    for model in bench["models"].values():
        assert set(model) == {
            "qini_auc",
            "auuc",
            "auuc_normalised",
            "uplift_at_10",
            "uplift_at_20",
            "uplift_at_30",
        }
        assert len(model["qini_auc"]["per_seed"]) == 2
    qini = {m: v["qini_auc"]["mean"] for m, v in bench["models"].items()}
    assert qini["ours"] > qini["random"] + 0.1
    assert bench["ours_beats_best_peer"] == (qini["ours"] > qini[bench["best_peer"]])
    assert set(bench["other_targets"]) == {"conversion"}
    assert bench["split"]["test_rows"] == pytest.approx(0.3 * 1500, abs=4)
    assert all(c in {c.name for c in SMALL_CANDIDATES} for c in bench["ours_chosen_per_seed"])


# ----------------------------------------------------------------- the real experiment


@pytest.mark.slow
@pytest.mark.realdata
def test_ours_beats_the_best_of_s_and_t_learner_on_hillstrom_visits(
    shared_data: Path, tmp_path: Path
) -> None:
    report = uplift_benchmark(shared_data, tmp_path, seeds=5, targets=("visit",))
    models = report["uplift_benchmark"]["models"]
    qini = {m: v["qini_auc"]["mean"] for m, v in models.items()}
    assert qini["ours"] > max(qini["s_learner"], qini["t_learner"])
    assert abs(qini["random"]) < 0.01
    # the peers land near the project's measurements (0.028 and 0.015, sd about 0.01)
    assert abs(qini["s_learner"] - 0.028) < 0.015
    assert abs(qini["t_learner"] - 0.015) < 0.015
    assert not math.isnan(models["ours"]["uplift_at_10"]["mean"])
