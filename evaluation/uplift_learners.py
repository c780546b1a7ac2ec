"""Uplift learners on randomised data: LightGBM S-learner, T-learner and a tuned ensemble.

Every learner takes a float feature matrix ``x`` (NaN = missing; category codes in the
``categorical`` columns), a boolean ``treatment`` and a binary outcome ``y``, and predicts the
uplift ``P(y | x, treated) - P(y | x, control)`` of each row:

- `SLearner`: one booster with the treatment as an extra input column; uplift = the
  prediction with the column set to 1 minus the prediction with it set to 0.
- `TLearner`: one booster per group; uplift = difference of the two predictions.
- `EnsembleSLearner`: the mean uplift of several S-learners of different capacity.
- `tune_uplift`: picks among candidate learners by the Qini coefficient of their pooled
  out-of-fold predictions (K folds stratified by treatment and outcome) on the data it is
  given (the caller's training part only), then refits the winner on all of it.

`DEFAULT_CANDIDATES` is what the Hillstrom benchmark tunes over
(`evaluation.hillstrom`): the S-learners of a small regularisation grid (3 or 7 leaves,
100 or 300 rows per leaf, 100 or 250 rounds at learning rate 0.05) and their ensemble (the
preferred candidate of the one-standard-error rule). LightGBM's defaults (31 leaves, 20 rows
per leaf, learning rate 0.1) fit the noise of a small effect: on the Hillstrom visit target they
rank customers worse than every member of the grid.

`state` / `learner_from_state` give a JSON-able form (boosters as LightGBM model text).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from training.bonus.uplift_metrics import qini_auc

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class UpliftLearnerError(ValueError):
    """Uplift learner inputs or state are unusable (the message names the argument)."""


@dataclass(frozen=True)
class TreeParams:
    """LightGBM settings of one booster (``rounds`` boosting rounds, no early stopping)."""

    num_leaves: int = 7
    learning_rate: float = 0.05
    min_data_in_leaf: int = 100
    rounds: int = 100
    lambda_l2: float = 0.0
    feature_fraction: float = 1.0
    bagging_fraction: float = 1.0
    seed: int = 0
    # 1: on a shared 2-core machine two OpenMP threads ran many times slower than one
    num_threads: int = 1

    def __post_init__(self) -> None:
        for name in ("num_leaves", "min_data_in_leaf", "rounds", "num_threads"):
            if getattr(self, name) < 1:
                raise UpliftLearnerError(
                    f"TreeParams.{name} must be >= 1, got {getattr(self, name)}"
                )
        if self.num_leaves < 2:
            raise UpliftLearnerError(f"TreeParams.num_leaves must be >= 2, got {self.num_leaves}")
        for name in ("learning_rate", "feature_fraction", "bagging_fraction"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise UpliftLearnerError(f"TreeParams.{name} must be in (0, 1], got {value}")
        if self.lambda_l2 < 0:
            raise UpliftLearnerError(f"TreeParams.lambda_l2 must be >= 0, got {self.lambda_l2}")

    def lgb(self) -> dict[str, Any]:
        """LightGBM parameters for a binary objective (deterministic)."""
        return {
            "objective": "binary",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_data_in_leaf,
            "lambda_l2": self.lambda_l2,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1 if self.bagging_fraction < 1.0 else 0,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }


# LightGBM's own defaults: what an untuned S- or T-learner baseline uses
LGBM_DEFAULTS: Final = TreeParams(
    num_leaves=31, learning_rate=0.1, min_data_in_leaf=20, rounds=100, lambda_l2=0.0
)

REGULARISED_GRID: Final = tuple(
    TreeParams(num_leaves=leaves, learning_rate=0.05, min_data_in_leaf=per_leaf, rounds=rounds)
    for leaves in (3, 7)
    for per_leaf in (100, 300)
    for rounds in (100, 250)
)


class UpliftLearner(Protocol):
    """What every learner of this module offers."""

    def fit(self, x: FloatArray, treatment: npt.ArrayLike, y: npt.ArrayLike) -> UpliftLearner: ...

    def predict_uplift(self, x: FloatArray) -> FloatArray: ...

    def state(self) -> dict[str, Any]: ...


# --------------------------------------------------------------------------- checks


def check_inputs(
    x: npt.ArrayLike, treatment: npt.ArrayLike, y: npt.ArrayLike
) -> tuple[FloatArray, BoolArray, FloatArray]:
    """``x`` as a 2-d float matrix, ``treatment`` as bool and ``y`` as 0/1 floats, or an error."""
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim != 2:
        raise UpliftLearnerError(f"x: must be a 2-d matrix, got shape {xa.shape}")
    t = np.asarray(treatment)
    ya = np.asarray(y, dtype=np.float64)
    if t.shape != (xa.shape[0],) or ya.shape != (xa.shape[0],):
        raise UpliftLearnerError(
            f"treatment and y must be 1-d with one entry per row of x ({xa.shape[0]}), got "
            f"{t.shape} and {ya.shape}"
        )
    if t.dtype != np.bool_:
        bad = np.flatnonzero(~np.isin(t, (0, 1)))
        if bad.size:
            raise UpliftLearnerError(f"treatment: must be 0/1 or bool; row {bad[0]} is {t[bad[0]]}")
        t = t.astype(np.bool_)
    bad = np.flatnonzero(~np.isin(ya, (0.0, 1.0)))
    if bad.size:
        raise UpliftLearnerError(f"y: must be binary (0/1); row {bad[0]} is {ya[bad[0]]}")
    for group, rows in (("treated", t), ("control", ~t)):
        if not rows.any():
            raise UpliftLearnerError(f"treatment: no {group} rows; uplift needs both groups")
        if np.unique(ya[rows]).size < 2:
            raise UpliftLearnerError(
                f"y: the {group} rows hold one outcome only ({ya[rows][0]:.0f}); nothing to learn"
            )
    return xa, t, ya


def _check_x(x: npt.ArrayLike, columns: int) -> FloatArray:
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim != 2 or xa.shape[1] != columns:
        raise UpliftLearnerError(f"x: expected a 2-d matrix with {columns} columns, got {xa.shape}")
    return xa


def _train(
    x: FloatArray, y: FloatArray, params: TreeParams, categorical: Sequence[int]
) -> lgb.Booster:
    data = lgb.Dataset(x, label=y, categorical_feature=list(categorical), free_raw_data=True)
    return lgb.train(params.lgb(), data, num_boost_round=params.rounds)


def _predict(booster: lgb.Booster, x: FloatArray) -> FloatArray:
    return np.asarray(booster.predict(x), dtype=np.float64)


def _booster(text: str) -> lgb.Booster:
    return lgb.Booster(model_str=text)


def _params(state: dict[str, Any]) -> TreeParams:
    return TreeParams(**state)


# --------------------------------------------------------------------------- learners


@dataclass
class SLearner:
    """One booster on ``[x, treatment]``; uplift = p(x, 1) - p(x, 0)."""

    params: TreeParams = dataclasses.field(default_factory=TreeParams)
    categorical: tuple[int, ...] = ()
    booster: lgb.Booster | None = None
    columns: int = 0

    KIND: Final = "s_learner"

    def fit(self, x: FloatArray, treatment: npt.ArrayLike, y: npt.ArrayLike) -> SLearner:
        """Fit on ``x`` (categorical columns as codes), ``treatment`` and the 0/1 ``y``."""
        xa, t, ya = check_inputs(x, treatment, y)
        self.columns = xa.shape[1]
        self.booster = _train(np.column_stack([xa, t]), ya, self.params, self.categorical)
        return self

    def predict(self, x: FloatArray, treated: bool) -> FloatArray:
        """P(y) of every row with the treatment set to ``treated``."""
        if self.booster is None:
            raise UpliftLearnerError("SLearner: predict before fit")
        xa = _check_x(x, self.columns)
        return _predict(self.booster, np.column_stack([xa, np.full(xa.shape[0], float(treated))]))

    def predict_uplift(self, x: FloatArray) -> FloatArray:
        """P(y | treated) - P(y | control) of every row."""
        return self.predict(x, True) - self.predict(x, False)

    def importance(self) -> dict[str, float]:
        """Total split gain per input (``x0..``, ``treatment``)."""
        if self.booster is None:
            raise UpliftLearnerError("SLearner: importance before fit")
        gain = self.booster.feature_importance(importance_type="gain")
        names = [f"x{i}" for i in range(self.columns)] + ["treatment"]
        return {n: float(g) for n, g in zip(names, gain, strict=True)}

    def state(self) -> dict[str, Any]:
        """JSON-able form (the booster as LightGBM model text)."""
        if self.booster is None:
            raise UpliftLearnerError("SLearner: state before fit")
        return {
            "kind": self.KIND,
            "params": dataclasses.asdict(self.params),
            "categorical": list(self.categorical),
            "columns": self.columns,
            "booster": self.booster.model_to_string(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SLearner:
        """Inverse of `state`."""
        _expect(state, cls.KIND)
        return cls(
            _params(state["params"]),
            tuple(state["categorical"]),
            _booster(state["booster"]),
            int(state["columns"]),
        )


@dataclass
class TLearner:
    """One booster per group; uplift = p_treated(x) - p_control(x)."""

    params: TreeParams = dataclasses.field(default_factory=TreeParams)
    categorical: tuple[int, ...] = ()
    treated_booster: lgb.Booster | None = None
    control_booster: lgb.Booster | None = None
    columns: int = 0

    KIND: Final = "t_learner"

    def fit(self, x: FloatArray, treatment: npt.ArrayLike, y: npt.ArrayLike) -> TLearner:
        """Fit the two boosters."""
        xa, t, ya = check_inputs(x, treatment, y)
        self.columns = xa.shape[1]
        self.treated_booster = _train(xa[t], ya[t], self.params, self.categorical)
        self.control_booster = _train(xa[~t], ya[~t], self.params, self.categorical)
        return self

    def predict_uplift(self, x: FloatArray) -> FloatArray:
        """P(y | treated) - P(y | control) of every row."""
        if self.treated_booster is None or self.control_booster is None:
            raise UpliftLearnerError("TLearner: predict before fit")
        xa = _check_x(x, self.columns)
        return _predict(self.treated_booster, xa) - _predict(self.control_booster, xa)

    def state(self) -> dict[str, Any]:
        """JSON-able form."""
        if self.treated_booster is None or self.control_booster is None:
            raise UpliftLearnerError("TLearner: state before fit")
        return {
            "kind": self.KIND,
            "params": dataclasses.asdict(self.params),
            "categorical": list(self.categorical),
            "columns": self.columns,
            "treated_booster": self.treated_booster.model_to_string(),
            "control_booster": self.control_booster.model_to_string(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TLearner:
        """Inverse of `state`."""
        _expect(state, cls.KIND)
        return cls(
            _params(state["params"]),
            tuple(state["categorical"]),
            _booster(state["treated_booster"]),
            _booster(state["control_booster"]),
            int(state["columns"]),
        )


@dataclass
class EnsembleSLearner:
    """The mean uplift of one `SLearner` per entry of ``grid``."""

    grid: tuple[TreeParams, ...] = REGULARISED_GRID
    categorical: tuple[int, ...] = ()
    members: tuple[SLearner, ...] = ()

    KIND: Final = "s_ensemble"

    def __post_init__(self) -> None:
        if not self.grid:
            raise UpliftLearnerError("EnsembleSLearner.grid: needs at least one TreeParams")

    def fit(self, x: FloatArray, treatment: npt.ArrayLike, y: npt.ArrayLike) -> EnsembleSLearner:
        """Fit every member on the same rows."""
        xa, t, ya = check_inputs(x, treatment, y)
        self.members = tuple(SLearner(p, self.categorical).fit(xa, t, ya) for p in self.grid)
        return self

    def predict_uplift(self, x: FloatArray) -> FloatArray:
        """Mean of the members' uplift."""
        if not self.members:
            raise UpliftLearnerError("EnsembleSLearner: predict before fit")
        uplift = np.mean([m.predict_uplift(x) for m in self.members], axis=0)
        return np.asarray(uplift, dtype=np.float64)

    def state(self) -> dict[str, Any]:
        """JSON-able form (the members' states)."""
        if not self.members:
            raise UpliftLearnerError("EnsembleSLearner: state before fit")
        return {
            "kind": self.KIND,
            "categorical": list(self.categorical),
            "members": [m.state() for m in self.members],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EnsembleSLearner:
        """Inverse of `state`."""
        _expect(state, cls.KIND)
        members = tuple(SLearner.from_state(m) for m in state["members"])
        return cls(tuple(m.params for m in members), tuple(state["categorical"]), members)


def _expect(state: dict[str, Any], kind: str) -> None:
    if state.get("kind") != kind:
        raise UpliftLearnerError(f"state: kind is {state.get('kind')!r}, expected {kind!r}")


_KINDS: Final[dict[str, Callable[[dict[str, Any]], UpliftLearner]]] = {
    SLearner.KIND: SLearner.from_state,
    TLearner.KIND: TLearner.from_state,
    EnsembleSLearner.KIND: EnsembleSLearner.from_state,
}


def learner_from_state(state: dict[str, Any]) -> UpliftLearner:
    """Rebuild any learner of this module from its `state`."""
    kind = state.get("kind")
    if kind not in _KINDS:
        raise UpliftLearnerError(f"state: unknown kind {kind!r}; known: {sorted(_KINDS)}")
    return _KINDS[str(kind)](state)


# --------------------------------------------------------------------------- tuning


def stratified_folds(
    treatment: npt.ArrayLike, y: npt.ArrayLike, k: int, seed: int
) -> npt.NDArray[np.intp]:
    """Fold number ``0..k-1`` of each row, balanced within every (treatment, outcome) cell."""
    if k < 2:
        raise UpliftLearnerError(f"k: cross-validation needs at least 2 folds, got {k}")
    t = np.asarray(treatment).astype(bool)
    ya = np.asarray(y).astype(bool)
    rng = np.random.default_rng(seed)
    fold = np.empty(t.size, dtype=np.intp)
    offset = 0
    for cell in (t & ya, t & ~ya, ~t & ya, ~t & ~ya):
        rows = rng.permutation(np.flatnonzero(cell))
        fold[rows] = (np.arange(rows.size) + offset) % k
        offset += rows.size
    return fold


@dataclass(frozen=True)
class Candidate:
    """A named way to build an unfitted learner."""

    name: str
    make: Callable[[tuple[int, ...]], UpliftLearner]


def s_candidate(params: TreeParams) -> Candidate:
    """An `SLearner` with ``params``, named by its capacity."""
    name = f"s_l{params.num_leaves}_m{params.min_data_in_leaf}_r{params.rounds}"
    return Candidate(name, lambda cat: SLearner(params, cat))


def ensemble_candidate(grid: tuple[TreeParams, ...], name: str = "s_ensemble") -> Candidate:
    """An `EnsembleSLearner` over ``grid``."""
    return Candidate(name, lambda cat: EnsembleSLearner(grid, cat))


# preference order for the one-standard-error rule: the ensemble (most stable) first
DEFAULT_CANDIDATES: Final = (
    ensemble_candidate(REGULARISED_GRID),
    *(s_candidate(p) for p in REGULARISED_GRID),
)


@dataclass(frozen=True)
class Tuned:
    """The refitted choice and the cross-validation figures behind it.

    ``cv_qini``: pooled out-of-fold Qini coefficient per candidate; ``cv_se``: its standard
    error (sd of the per-fold coefficients / sqrt(folds)); ``best_score``: the candidate with
    the highest ``cv_qini``; ``name``: the one chosen (see `tune_uplift`).
    """

    learner: UpliftLearner
    name: str
    best_score: str
    cv_qini: dict[str, float]
    cv_se: dict[str, float]


def tune_uplift(
    x: FloatArray,
    treatment: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    categorical: Sequence[int] = (),
    candidates: Sequence[Candidate] = DEFAULT_CANDIDATES,
    folds: int = 4,
    seed: int = 0,
) -> Tuned:
    """Choose among ``candidates`` by K-fold cross-validation on these rows; refit on all of them.

    Each candidate is scored by the Qini coefficient of its pooled out-of-fold uplift. The
    choice follows the one-standard-error rule: the first candidate (in the given order of
    preference) whose score is within one standard error of the best score. Uplift effects
    are small and the Qini coefficient of a fold is noisy, so plain arg-max picks noise; the
    rule prefers the stable candidate unless another is clearly better. An `EnsembleSLearner`
    candidate whose members are all `SLearner` candidates too is scored from their
    out-of-fold predictions (the mean), without refitting them.
    """
    xa, t, ya = check_inputs(x, treatment, y)
    if not candidates:
        raise UpliftLearnerError("candidates: need at least one")
    names = [c.name for c in candidates]
    if len(set(names)) != len(names):
        raise UpliftLearnerError(f"candidates: names must be unique, got {names}")
    cat = tuple(categorical)
    fold = stratified_folds(t, ya, folds, seed)
    oof: dict[str, FloatArray] = {}
    by_params: dict[TreeParams, str] = {}
    ensembles: list[tuple[str, EnsembleSLearner]] = []
    for cand in candidates:
        probe = cand.make(cat)
        if isinstance(probe, EnsembleSLearner):
            ensembles.append((cand.name, probe))
            continue
        oof[cand.name] = _out_of_fold(cand, cat, xa, t, ya, fold, folds)
        if isinstance(probe, SLearner):
            by_params.setdefault(probe.params, cand.name)
    for name, ensemble in ensembles:
        if all(p in by_params for p in ensemble.grid):
            oof[name] = np.mean([oof[by_params[p]] for p in ensemble.grid], axis=0)
        else:
            oof[name] = _out_of_fold(
                next(c for c in candidates if c.name == name), cat, xa, t, ya, fold, folds
            )
    scores = {n: qini_auc(oof[n], t, ya) for n in names}
    ses = {n: _fold_se(oof[n], t, ya, fold, folds) for n in names}
    finite = [n for n in names if math.isfinite(scores[n])]
    if not finite:
        raise UpliftLearnerError("tune_uplift: no candidate has a defined Qini coefficient")
    best = max(finite, key=lambda n: scores[n])
    bar = scores[best] - (ses[best] if math.isfinite(ses[best]) else 0.0)
    chosen = next(n for n in finite if scores[n] >= bar)
    learner = candidates[names.index(chosen)].make(cat).fit(xa, t, ya)
    return Tuned(learner, chosen, best, scores, ses)


def _out_of_fold(
    cand: Candidate,
    cat: tuple[int, ...],
    x: FloatArray,
    t: BoolArray,
    y: FloatArray,
    fold: npt.NDArray[np.intp],
    folds: int,
) -> FloatArray:
    pred = np.empty(t.size)
    for k in range(folds):
        fit_rows, out_rows = fold != k, fold == k
        learner = cand.make(cat).fit(x[fit_rows], t[fit_rows], y[fit_rows])
        pred[out_rows] = learner.predict_uplift(x[out_rows])
    return pred


def _fold_se(
    pred: FloatArray, t: BoolArray, y: FloatArray, fold: npt.NDArray[np.intp], folds: int
) -> float:
    per_fold = [qini_auc(pred[fold == k], t[fold == k], y[fold == k]) for k in range(folds)]
    finite = [q for q in per_fold if math.isfinite(q)]
    if len(finite) < 2:
        return math.nan
    return float(np.std(finite, ddof=1) / math.sqrt(len(finite)))
