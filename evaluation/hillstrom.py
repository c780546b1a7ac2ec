"""Uplift benchmark on the Hillstrom e-mail experiment (real, randomised): ours vs S/T-learner.

The 64,000 customers of Kevin Hillstrom's MineThatData experiment were randomised to a men's
e-mail, a women's e-mail or none. Imported through `features.adapters` (customers with the
pre-experiment attributes, one offer each), the treatment here is *any e-mail* vs *none* and
the target ``visit`` (the site visit within two weeks; ``conversion`` is reported too).

Each seed draws a 70/30 split stratified by treatment, visit and conversion. On the same split
every model is fitted on the 70 % and scored on the 30 %:

- ``random``: uniform random scores (the Qini coefficient of targeting at random, about 0);
- ``s_learner`` / ``t_learner``: LightGBM with its default settings
  (`evaluation.uplift_learners.LGBM_DEFAULTS`), treatment as an input / one model per
  group: the usual peers;
- ``ours``: `evaluation.uplift_learners.tune_uplift` over ``DEFAULT_CANDIDATES``, i.e.
  K-fold cross-validation inside the 70 % only (the 30 % is never seen while choosing);
- ``s_cv_best``: the candidate with the best cross-validated Qini, shown for transparency
  (``ours`` is the one-standard-error choice among the same candidates).

Metrics (`training.bonus.uplift_metrics`): the normalised Qini coefficient (scikit-uplift's
``qini_auc_score``), AUUC (mean incremental conversions per row, and normalised), and the
observed uplift among the top 10/20/30 % of the ranking; each as mean, sd and per seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from evaluation.uplift_learners import (
    DEFAULT_CANDIDATES,
    LGBM_DEFAULTS,
    Candidate,
    SLearner,
    TLearner,
    tune_uplift,
)
from features.adapters import import_dataset
from features.adapters.hillstrom import ATTRIBUTES, NAME, VISIT
from features.columns import Col, OfferType
from features.dataset import load_dataset
from features.progress import stage
from training.bonus.propensity import FeatureEncoder
from training.bonus.uplift_metrics import auuc, auuc_normalised, qini_auc, uplift_at_top

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

CONVERSION: Final = "conversion"
TARGETS: Final[dict[str, str]] = {VISIT: VISIT, CONVERSION: Col.CONVERTED}
TRAIN_SHARE: Final = 0.7
MODELS: Final = ("random", "s_learner", "t_learner", "s_cv_best", "ours")
PEERS: Final = ("s_learner", "t_learner")
# Qini coefficients of the visit target measured by the project with scikit-uplift's
# qini_auc_score (LightGBM S-/T-learner); a reference for ours, not a result of this run
REFERENCE_QINI_VISIT: Final = {"s_learner": 0.028, "t_learner": 0.015}


class HillstromError(ValueError):
    """The imported Hillstrom data is unusable (the message says which field)."""


@dataclass(frozen=True)
class Experiment:
    """The randomised experiment as model inputs: features, treatment and outcomes per row."""

    x: FloatArray
    names: tuple[str, ...]
    categorical: tuple[int, ...]
    treated: BoolArray
    outcomes: dict[str, FloatArray]

    @property
    def rows(self) -> int:
        """Number of customers."""
        return int(self.treated.size)


def import_hillstrom(shared_data: Path, work: Path) -> Path:
    """Import ``shared_data/hillstrom_email`` with the adapter into ``work/hillstrom_email``."""
    out = Path(work) / NAME
    import_dataset(NAME, Path(shared_data) / NAME, out)
    return out


def load_experiment(root: Path) -> Experiment:
    """Customers joined with their offer; treatment = any e-mail; outcomes visit, conversion."""
    ds = load_dataset(root)
    customers = ds.require("customers", "the Hillstrom benchmark").collect()
    offers = ds.require("offers", "the Hillstrom benchmark").collect()
    missing = [c for c in ATTRIBUTES if c not in customers.columns]
    if missing:
        raise HillstromError(f"{root}: customers lack the attributes {missing}")
    if VISIT not in offers.columns:
        raise HillstromError(
            f"{root}: offers lack the column {VISIT!r} (import it with the adapter)"
        )
    frame = offers.join(
        customers, on=Col.CUSTOMER, how="inner", validate="1:1", maintain_order="left"
    )
    if frame.height != offers.height or frame.height != customers.height:
        raise HillstromError(
            f"{root}: {offers.height} offers and {customers.height} customers, but only "
            f"{frame.height} pair up one to one"
        )
    for column in (Col.OFFER_TYPE, VISIT, Col.CONVERTED):
        nulls = frame.get_column(column).is_null()
        if nulls.any():
            row = frame.filter(nulls).row(0, named=True)
            raise HillstromError(f"offers [{column}]: null for customer {row[Col.CUSTOMER]}")
    encoder = FeatureEncoder.fit(frame.select(ATTRIBUTES), exclude=())
    return Experiment(
        x=encoder.transform(frame),
        names=tuple(encoder.names),
        categorical=tuple(encoder.categorical_indices),
        treated=(frame.get_column(Col.OFFER_TYPE) != OfferType.NONE).to_numpy(),
        outcomes={
            name: frame.get_column(column).cast(pl.Float64).to_numpy()
            for name, column in TARGETS.items()
        },
    )


def stratified_split(
    strata: Sequence[npt.ArrayLike], *, share: float, seed: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(train, test) row indices; ``round(share * n)`` of every cell of the strata to train."""
    if not 0.0 < share < 1.0:
        raise HillstromError(f"share: must be in (0, 1), got {share}")
    keys = np.zeros(np.asarray(strata[0]).size, dtype=np.int64)
    for s in strata:
        values = np.unique(np.asarray(s), return_inverse=True)[1]
        keys = keys * (int(values.max()) + 1) + values
    rng = np.random.default_rng(seed)
    train = []
    for key in np.unique(keys):
        rows = rng.permutation(np.flatnonzero(keys == key))
        train.append(rows[: round(share * rows.size)])
    is_train = np.zeros(keys.size, dtype=bool)
    is_train[np.concatenate(train)] = True
    return np.flatnonzero(is_train), np.flatnonzero(~is_train)


def uplift_metrics(score: FloatArray, treated: BoolArray, outcome: FloatArray) -> dict[str, float]:
    """Qini coefficient, AUUC (raw and normalised) and uplift at the top 10/20/30 %."""
    return {
        "qini_auc": qini_auc(score, treated, outcome),
        "auuc": auuc(score, treated, outcome),
        "auuc_normalised": auuc_normalised(score, treated, outcome),
        "uplift_at_10": uplift_at_top(score, treated, outcome, 0.1),
        "uplift_at_20": uplift_at_top(score, treated, outcome, 0.2),
        "uplift_at_30": uplift_at_top(score, treated, outcome, 0.3),
    }


@dataclass(frozen=True)
class SeedRun:
    """Test-set uplift scores of every model on one split, and how ours was chosen."""

    scores: dict[str, FloatArray]
    chosen: str
    best_score: str
    cv_qini: dict[str, float]


def run_seed(
    exp: Experiment,
    train: npt.NDArray[np.intp],
    test: npt.NDArray[np.intp],
    target: str,
    seed: int,
    *,
    candidates: Sequence[Candidate] = DEFAULT_CANDIDATES,
    folds: int = 4,
) -> SeedRun:
    """Fit every model on ``train`` rows and score the ``test`` rows (see the module docstring)."""
    y = exp.outcomes[target]
    x_fit, t_fit, y_fit = exp.x[train], exp.treated[train], y[train]
    x_test = exp.x[test]
    cat = exp.categorical
    tuned = tune_uplift(
        x_fit, t_fit, y_fit, categorical=cat, candidates=candidates, folds=folds, seed=seed
    )
    ours = tuned.learner.predict_uplift(x_test)
    if tuned.best_score == tuned.name:
        best = ours
    else:
        make = next(c for c in candidates if c.name == tuned.best_score).make
        best = make(cat).fit(x_fit, t_fit, y_fit).predict_uplift(x_test)
    s = SLearner(LGBM_DEFAULTS, cat).fit(x_fit, t_fit, y_fit)
    t = TLearner(LGBM_DEFAULTS, cat).fit(x_fit, t_fit, y_fit)
    scores = {
        "random": np.random.default_rng(seed).random(test.size),
        "s_learner": s.predict_uplift(x_test),
        "t_learner": t.predict_uplift(x_test),
        "s_cv_best": best,
        "ours": ours,
    }
    return SeedRun(scores, tuned.name, tuned.best_score, tuned.cv_qini)


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample sd and the values per seed (NaNs left out of mean and sd)."""
    finite = [v for v in values if math.isfinite(v)]
    mean = float(np.mean(finite)) if finite else math.nan
    sd = float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan
    return {"mean": mean, "sd": sd, "per_seed": [float(v) for v in values]}


def target_benchmark(
    exp: Experiment,
    target: str,
    splits: Sequence[tuple[int, npt.NDArray[np.intp], npt.NDArray[np.intp]]],
    *,
    candidates: Sequence[Candidate] = DEFAULT_CANDIDATES,
    folds: int = 4,
) -> dict[str, Any]:
    """Every model's metrics over ``splits`` (seed, train rows, test rows) for one target."""
    if target not in exp.outcomes:
        raise HillstromError(f"target: {target!r} is not one of {sorted(exp.outcomes)}")
    y = exp.outcomes[target]
    per_model: dict[str, list[dict[str, float]]] = {m: [] for m in MODELS}
    chosen, best_cv, cv = [], [], []
    for seed, train, test in splits:
        with stage(f"hillstrom {target} seed {seed}") as st:
            run = run_seed(exp, train, test, target, seed, candidates=candidates, folds=folds)
            st.rows = int(train.size)
        for model, score in run.scores.items():
            per_model[model].append(uplift_metrics(score, exp.treated[test], y[test]))
        chosen.append(run.chosen)
        best_cv.append(run.best_score)
        cv.append(run.cv_qini)
    models = {
        model: {metric: summary([r[metric] for r in rows]) for metric in rows[0]}
        for model, rows in per_model.items()
    }
    qini = {m: models[m]["qini_auc"]["mean"] for m in MODELS}
    best_peer = max(PEERS, key=lambda m: qini[m])
    return {
        "target": target,
        "outcome_rate": {
            "treated": float(y[exp.treated].mean()),
            "control": float(y[~exp.treated].mean()),
        },
        "models": models,
        "best_peer": best_peer,
        "ours_minus_best_peer_qini": qini["ours"] - qini[best_peer],
        "ours_beats_best_peer": bool(qini["ours"] > qini[best_peer]),
        "ours_chosen_per_seed": chosen,
        "cv_best_per_seed": best_cv,
        "cv_qini_per_seed": cv,
    }


def uplift_benchmark(
    shared_data: Path,
    work: Path,
    seeds: int = 5,
    *,
    targets: Sequence[str] = (VISIT, CONVERSION),
    folds: int = 4,
    candidates: Sequence[Candidate] = DEFAULT_CANDIDATES,
    on_target: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the benchmark (see the module docstring) and return a JSON-able report.

    ``shared_data`` holds ``hillstrom_email/``; the import is written to ``work``. The first of
    ``targets`` is the headline (``uplift_benchmark.models``); the others go under
    ``other_targets``. ``on_target`` is called with each target's result as it finishes.
    """
    if seeds < 1:
        raise HillstromError(f"seeds: need at least 1, got {seeds}")
    if not targets:
        raise HillstromError("targets: need at least one")
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise HillstromError(f"targets: unknown {unknown}; known: {sorted(TARGETS)}")
    started = time.perf_counter()
    exp = load_experiment(import_hillstrom(shared_data, work))
    strata = [exp.treated, exp.outcomes[VISIT], exp.outcomes[CONVERSION]]
    splits = [(s, *stratified_split(strata, share=TRAIN_SHARE, seed=s)) for s in range(seeds)]
    results = {}
    for target in targets:
        results[target] = target_benchmark(exp, target, splits, candidates=candidates, folds=folds)
        if on_target is not None:
            on_target(target, results[target])
    head = results[targets[0]]
    report: dict[str, Any] = {
        "dataset": NAME,
        **head,
        "treatment": "any e-mail (email_mens or email_womens) vs none",
        "rows": exp.rows,
        "treated_rows": int(exp.treated.sum()),
        "features": list(exp.names),
        "split": {
            "train_share": TRAIN_SHARE,
            "stratified_by": ["treatment", VISIT, CONVERSION],
            "seeds": list(range(seeds)),
            "test_rows": int(splits[0][2].size),
        },
        "tuning": (
            f"{folds}-fold cross-validation inside the training part only; candidates "
            f"{[c.name for c in candidates]}; choice by the one-standard-error rule on the "
            "pooled out-of-fold Qini coefficient"
        ),
        "peers": "LightGBM with default settings (31 leaves, learning rate 0.1, 100 rounds)",
        "reference_qini_auc": REFERENCE_QINI_VISIT if targets[0] == VISIT else {},
        "other_targets": {t: results[t] for t in targets[1:]},
        "seconds": round(time.perf_counter() - started, 1),
    }
    return {"uplift_benchmark": report}
