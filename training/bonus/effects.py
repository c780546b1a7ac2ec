"""Treatment-effect models of the bonus offers, learnt from the randomised offer history.

Every model here answers the same question for a frame of customer features and a list of
arms (offer type at a bonus): the no-offer conversion probability ``p_none``, the conversion
uplift of each arm (which may be negative: a contact can put a customer off), and the
redemption probability that prices the arm's cost (``bonus x P(redeem)``). They differ in how
they learn it:

- ``SLearner`` (also the nuisance model of the DR-learner): one LightGBM classifier on the
  features, the offer type (categorical) and the bonus (monotone increasing); the uplift is
  ``mu(x, arm) - mu(x, none)``. Calibrated conversion, but the effect is a small difference of
  two large numbers, and trees that split on the offer type rarely do so for every customer.
- ``DRLearner``: per offer type (mechanic) a LightGBM regression of the doubly-robust
  pseudo-outcome of each arm of that type against the hold-out (Kennedy 2023)::

      phi_a = mu(x, a) - mu(x, none)
              + 1[A = a] (y - mu(x, a)) / e_a - 1[A = none] (y - mu(x, none)) / e_none

  with ``mu`` cross-fitted (fitted on the other customers' rows) and ``e`` the logged
  assignment probabilities (`training.bonus.logged`). The arms of one type are stacked with
  the bonus as a monotone input, so one model per mechanic learns the dose-response. The
  regression targets the effect itself, so it ranks customers by uplift, and it can be
  negative. Redemption (cost) comes from the calibrated nuisance ``mu(x, a)``.
- ``SegmentTable``: the simple rules a shop would learn from the same history. Customers are
  put in segments (everyone; recency x frequency terciles; lifecycle stage) and each segment
  gets the DR mean of every arm's effect over its rows. ``single_arm`` keeps only the best arm
  overall (the best uniform offer).

Only arms present in the history are scored: an arm never randomised has no support.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import polars as pl

from features.columns import Col, OfferType
from features.names import Feat
from training.bonus.config import EffectParams, LgbmParams
from training.bonus.logged import Logged
from training.bonus.profit import Option
from training.bonus.propensity import FeatureEncoder, lgb_params, train_binary

FloatArray = npt.NDArray[np.float64]

_EPS = 1e-6


@dataclass(frozen=True)
class Effects:
    """Per customer (row) and arm (column): what a policy needs to price an offer."""

    p_none: FloatArray  # (n,)
    uplift: FloatArray  # (n, k) conversion uplift of the arm over no offer
    p_redeem: FloatArray  # (n, k) P(convert | arm): prices the bonus cost

    @property
    def p_offer(self) -> FloatArray:
        """``p_none + uplift`` kept in [0, 1]."""
        return np.asarray(np.clip(self.p_none[:, None] + self.uplift, 0.0, 1.0))


class EffectModel(Protocol):
    """Anything that prices arms for customers."""

    @property
    def name(self) -> str: ...

    def effects(self, features: pl.DataFrame, arms: Sequence[Option]) -> Effects: ...


# --------------------------------------------------------------------------- S-learner


@dataclass(frozen=True)
class SLearner:
    """One classifier on (features, offer type, bonus); see the module docstring."""

    encoder: FeatureEncoder
    offer_types: tuple[str, ...]  # code = position; "none" first
    booster: lgb.Booster
    name: str = "s_learner"

    def predict_arm(self, x: FloatArray, offer_type: str, bonus: float) -> FloatArray:
        """P(convert) of encoded rows ``x`` under one arm (offer type ``none`` = no offer)."""
        z = _with_arm(x, float(self.offer_types.index(offer_type)), bonus)
        return np.asarray(self.booster.predict(z), dtype=np.float64)

    def effects(self, features: pl.DataFrame, arms: Sequence[Option]) -> Effects:
        """See `EffectModel`."""
        x = self.encoder.transform(features)
        return self.effects_x(x, arms)

    def effects_x(self, x: FloatArray, arms: Sequence[Option]) -> Effects:
        """`effects` of already encoded rows."""
        p_none = self.predict_arm(x, OfferType.NONE, 0.0)
        p = np.empty((x.shape[0], len(arms)))
        for j, a in enumerate(arms):
            p[:, j] = self.predict_arm(x, a.offer_type, a.bonus) if self.knows(a) else p_none
        return Effects(p_none, p - p_none[:, None], p)

    def knows(self, arm: Option) -> bool:
        """Whether the arm's offer type was in the training rows."""
        return arm.offer_type in self.offer_types


def _with_arm(x: FloatArray, code: float, bonus: float) -> FloatArray:
    n = x.shape[0]
    return np.hstack([x, np.full((n, 1), code), np.full((n, 1), bonus)])


def fit_s_learner(
    encoder: FeatureEncoder,
    x: FloatArray,
    logged: Logged,
    params: LgbmParams,
    *,
    rounds: int,
) -> SLearner:
    """The S-learner on encoded rows ``x`` of ``logged``."""
    offer_types = (OfferType.NONE, *sorted({a.offer_type for a in logged.arms}))
    code = {t: float(i) for i, t in enumerate(offer_types)}
    arm_code = np.array([code[a.offer_type] for a in logged.arms] + [0.0])
    arm_bonus = np.array([a.bonus for a in logged.arms] + [0.0])
    z = np.hstack([x, arm_code[logged.arm][:, None], arm_bonus[logged.arm][:, None]])
    names = [*encoder.names, "offer_type", "bonus"]
    booster = train_binary(
        z,
        logged.converted,
        names=names,
        categorical=[*encoder.categorical_indices, len(names) - 2],
        params=lgb_params(
            params,
            monotone_constraints=[0] * (len(names) - 1) + [1],
            monotone_constraints_method="intermediate",
        ),
        rounds=rounds,
    )
    return SLearner(encoder, offer_types, booster)


# --------------------------------------------------------------------------- DR-learner


@dataclass(frozen=True)
class DRLearner:
    """Per offer type, a regression of the DR pseudo-outcome on (features, bonus)."""

    encoder: FeatureEncoder
    nuisance: SLearner  # fitted on every training row: p_none and redemption at decision time
    effect: dict[str, lgb.Booster]  # offer type -> booster on (features, bonus)
    name: str = "dr_learner"

    def effects(self, features: pl.DataFrame, arms: Sequence[Option]) -> Effects:
        """See `EffectModel`; arms of a type without an effect model get uplift 0."""
        x = self.encoder.transform(features)
        base = self.nuisance.effects_x(x, arms)
        uplift = np.zeros((x.shape[0], len(arms)))
        for j, a in enumerate(arms):
            booster = self.effect.get(a.offer_type)
            if booster is not None:
                z = np.hstack([x, np.full((x.shape[0], 1), a.bonus)])
                uplift[:, j] = booster.predict(z)
        return Effects(base.p_none, uplift, base.p_redeem)


def customer_folds(customers: pl.Series, k: int, seed: int) -> npt.NDArray[np.intp]:
    """Fold 0..k-1 of every row, the same for all rows of one customer (deterministic)."""
    ids = customers.cast(pl.String)
    unique = ids.unique().sort()
    fold_of = np.random.default_rng(seed).permutation(unique.len()) % k
    mapping = pl.DataFrame({"id": unique, "fold": fold_of.astype(np.int64)})
    folds = pl.DataFrame({"id": ids}).join(mapping, on="id", how="left", maintain_order="left")
    return np.asarray(folds.get_column("fold").to_numpy(), dtype=np.intp)


@dataclass(frozen=True)
class PseudoOutcomes:
    """Cross-fitted nuisance predictions and DR pseudo-outcomes of every (row, arm)."""

    mu_none: FloatArray  # (n,)
    mu: FloatArray  # (n, k)
    phi: FloatArray  # (n, k) DR conversion-effect pseudo-outcome (NaN off support)
    phi_none: FloatArray  # (n,) DR estimate of the no-offer conversion


def pseudo_outcomes(
    encoder: FeatureEncoder,
    x: FloatArray,
    logged: Logged,
    params: LgbmParams,
    *,
    rounds: int,
    folds: int,
    seed: int,
) -> PseudoOutcomes:
    """Cross-fit the S-learner over customer folds and form the DR pseudo-outcomes."""
    fold = customer_folds(logged.frame.get_column(Col.CUSTOMER), folds, seed)
    n, k = logged.n, len(logged.arms)
    mu = np.empty((n, k))
    mu_none = np.empty(n)
    for f in range(folds):
        out = fold == f
        model = fit_s_learner(encoder, x[~out], logged.subset(~out), params, rounds=rounds)
        eff = model.effects_x(x[out], logged.arms)
        mu[out] = eff.p_redeem
        mu_none[out] = eff.p_none
    y = logged.converted
    got = np.zeros((n, k), dtype=bool)
    got[np.flatnonzero(logged.arm >= 0), logged.arm[logged.arm >= 0]] = True
    none = logged.arm < 0
    prob = np.where(logged.support, logged.prob, 1.0)
    phi = (
        mu
        - mu_none[:, None]
        + got * (y[:, None] - mu) / prob
        - (none / logged.prob_none * (y - mu_none))[:, None]
    )
    phi = np.where(logged.support, phi, np.nan)
    phi_none = mu_none + none * (y - mu_none) / logged.prob_none
    return PseudoOutcomes(mu_none, mu, phi, phi_none)


def fit_dr_learner(
    encoder: FeatureEncoder,
    x: FloatArray,
    logged: Logged,
    config: EffectParams,
    lgbm: LgbmParams,
    *,
    pseudo: PseudoOutcomes | None = None,
    nuisance: SLearner | None = None,
) -> DRLearner:
    """The DR-learner on encoded rows ``x`` of ``logged`` (see the module docstring).

    Each arm's regression rows are the rows that got the arm or the hold-out (a random
    subsample of the campaign's rows, since assignment is random), with the assignment
    probabilities renormalised to that pair: the same target as over all rows, with a
    fraction of the rows and much smaller weights. ``nuisance`` (an S-learner on the same rows)
    is fitted when not given.
    """
    if pseudo is None:
        pseudo = pseudo_outcomes(
            encoder,
            x,
            logged,
            lgbm,
            rounds=config.nuisance_rounds,
            folds=config.folds,
            seed=lgbm.seed,
        )
    if nuisance is None:
        nuisance = fit_s_learner(encoder, x, logged, lgbm, rounds=config.nuisance_rounds)
    names = [*encoder.names, "bonus"]
    params = _regression_params(config, lgbm, len(names))
    effect: dict[str, lgb.Booster] = {}
    for offer_type in sorted({a.offer_type for a in logged.arms}):
        cols = [j for j, a in enumerate(logged.arms) if a.offer_type == offer_type]
        blocks_x, blocks_y = [], []
        for j in cols:
            rows = np.flatnonzero(logged.support[:, j] & ((logged.arm == j) | (logged.arm < 0)))
            if rows.size == 0:
                continue
            e_arm, e_none = logged.prob[rows, j], logged.prob_none[rows]
            got = logged.arm[rows] == j
            y, mu, mu0 = logged.converted[rows], pseudo.mu[rows, j], pseudo.mu_none[rows]
            phi = np.where(
                got,
                mu - mu0 + (y - mu) * (e_arm + e_none) / e_arm,
                mu - mu0 - (y - mu0) * (e_arm + e_none) / e_none,
            )
            blocks_x.append(np.hstack([x[rows], np.full((rows.size, 1), logged.arms[j].bonus)]))
            blocks_y.append(np.clip(phi, -config.clip, config.clip))
        if not blocks_x:
            continue
        data = lgb.Dataset(
            np.vstack(blocks_x),
            label=np.concatenate(blocks_y),
            feature_name=names,
            categorical_feature=encoder.categorical_indices,
            free_raw_data=True,
        )
        effect[offer_type] = lgb.train(params, data, num_boost_round=config.rounds)
    return DRLearner(encoder, nuisance, effect)


# --------------------------------------------------------------------------- X-learner


@dataclass(frozen=True)
class XLearner:
    """Imputed effects regressed on (features, offer type, bonus), pooled over mechanics.

    Kuenzel et al. (2019): ``mu0`` is fitted on the hold-outs, ``mu1`` on the offers; the
    imputed effect of an offer row is ``y - mu0(x)``, of a hold-out row under arm ``a``
    ``mu1(x, a) - y``; ``tau1`` and ``tau0`` regress them and are blended by the arm's share
    of the (arm, hold-out) rows: ``tau = g tau0 + (1 - g) tau1``. No inverse probability
    weights, so the targets are as noisy as the outcome itself, not 1/e times noisier: the
    learner for histories where each arm got a small share of the customers.
    """

    encoder: FeatureEncoder
    offer_types: tuple[str, ...]  # code = position; "none" first (unused code 0)
    mu0: lgb.Booster
    mu1: lgb.Booster
    tau0: lgb.Booster
    tau1: lgb.Booster
    blend: dict[str, float]  # arm label -> g
    name: str = "x_learner"

    def _z(self, x: FloatArray, arm: Option) -> FloatArray:
        code = float(self.offer_types.index(arm.offer_type))
        return _with_arm(x, code, arm.bonus)

    def effects(self, features: pl.DataFrame, arms: Sequence[Option]) -> Effects:
        """See `EffectModel`; arms of an offer type never offered get no effect."""
        x = self.encoder.transform(features)
        p_none = np.asarray(self.mu0.predict(x), dtype=np.float64)
        uplift = np.zeros((x.shape[0], len(arms)))
        p_redeem = np.repeat(p_none[:, None], len(arms), axis=1)
        for j, a in enumerate(arms):
            if a.offer_type not in self.offer_types[1:]:
                continue
            z = self._z(x, a)
            g = self.blend.get(a.label, 0.5)
            t0 = np.asarray(self.tau0.predict(z), dtype=np.float64)
            t1 = np.asarray(self.tau1.predict(z), dtype=np.float64)
            uplift[:, j] = g * t0 + (1.0 - g) * t1
            p_redeem[:, j] = np.asarray(self.mu1.predict(z), dtype=np.float64)
        return Effects(p_none, uplift, p_redeem)


def _regression_params(config: EffectParams, lgbm: LgbmParams, width: int) -> dict[str, object]:
    return {
        "objective": "regression",
        "num_leaves": config.num_leaves,
        "learning_rate": config.learning_rate,
        "min_data_in_leaf": config.min_data_in_leaf,
        "feature_fraction": config.feature_fraction,
        "lambda_l2": config.lambda_l2,
        "monotone_constraints": [0] * (width - 1) + [1],
        "monotone_constraints_method": "intermediate",
        "seed": lgbm.seed,
        "num_threads": lgbm.num_threads,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


def fit_x_learner(
    encoder: FeatureEncoder, x: FloatArray, logged: Logged, config: EffectParams, lgbm: LgbmParams
) -> XLearner:
    """The pooled X-learner on encoded rows ``x`` of ``logged`` (see `XLearner`)."""
    offer_types = (OfferType.NONE, *sorted({a.offer_type for a in logged.arms}))
    code = np.array([float(offer_types.index(a.offer_type)) for a in logged.arms])
    bonus = np.array([a.bonus for a in logged.arms])
    y = logged.converted
    none = logged.arm < 0
    treated = ~none
    names = encoder.names
    arm_names = [*names, "offer_type", "bonus"]
    categorical = [*encoder.categorical_indices, len(names)]
    fold = customer_folds(logged.frame.get_column(Col.CUSTOMER), config.folds, lgbm.seed)
    binary = lgb_params(lgbm)

    def fit_mu0(rows: npt.NDArray[np.bool_]) -> lgb.Booster:
        return train_binary(
            x[rows],
            y[rows],
            names=names,
            categorical=encoder.categorical_indices,
            params=binary,
            rounds=config.nuisance_rounds,
        )

    # mu0 on the hold-outs; out-of-fold for their own rows
    mu0 = fit_mu0(none)
    mu0_x = np.asarray(mu0.predict(x), dtype=np.float64)
    for f in range(config.folds):
        fit_rows, own = none & (fold != f), none & (fold == f)
        if fit_rows.any() and own.any():
            mu0_x[own] = fit_mu0(fit_rows).predict(x[own])
    z1 = np.hstack(
        [x[treated], code[logged.arm[treated]][:, None], bonus[logged.arm[treated]][:, None]]
    )
    mono = lgb_params(
        lgbm,
        monotone_constraints=[0] * (len(arm_names) - 1) + [1],
        monotone_constraints_method="intermediate",
    )
    mu1 = train_binary(
        z1,
        y[treated],
        names=arm_names,
        categorical=categorical,
        params=mono,
        rounds=config.nuisance_rounds,
    )
    reg = _regression_params(config, lgbm, len(arm_names))
    d1 = lgb.Dataset(
        z1,
        label=y[treated] - mu0_x[treated],
        feature_name=arm_names,
        categorical_feature=categorical,
        free_raw_data=True,
    )
    tau1 = lgb.train(reg, d1, num_boost_round=config.rounds)
    blocks_z, blocks_d = [], []
    xc = x[none]
    for j in range(len(logged.arms)):
        rows = logged.support[none, j]
        if not rows.any():
            continue
        zc = np.hstack(
            [
                xc[rows],
                np.full((int(rows.sum()), 1), code[j]),
                np.full((int(rows.sum()), 1), bonus[j]),
            ]
        )
        blocks_z.append(zc)
        blocks_d.append(np.asarray(mu1.predict(zc)) - y[none][rows])
    d0 = lgb.Dataset(
        np.vstack(blocks_z),
        label=np.concatenate(blocks_d),
        feature_name=arm_names,
        categorical_feature=categorical,
        free_raw_data=True,
    )
    tau0 = lgb.train(reg, d0, num_boost_round=config.rounds)
    blend = {}
    for j, a in enumerate(logged.arms):
        sup = logged.support[:, j]
        p_arm = float(logged.prob[sup, j].mean()) if sup.any() else 0.0
        p_none = float(logged.prob_none[sup].mean()) if sup.any() else 1.0
        blend[a.label] = p_arm / (p_arm + p_none) if p_arm + p_none > 0 else 0.5
    return XLearner(encoder, offer_types, mu0, mu1, tau0, tau1, blend)


# --------------------------------------------------------------------------- segment rules


def _terciles(values: FloatArray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (0.0, 0.0)
    lo, hi = np.quantile(finite, [1 / 3, 2 / 3])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Segmenter:
    """Names each customer's segment: ``everyone``, ``recency x frequency`` or ``lifecycle``."""

    kind: str
    cuts: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def fit(cls, kind: str, features: pl.DataFrame) -> Segmenter:
        """Learn tercile cut points (recency x frequency) from ``features``."""
        if kind != "recency_frequency":
            return cls(kind)
        cuts: dict[str, tuple[float, float]] = {
            c: _terciles(features.get_column(c).cast(pl.Float64).to_numpy())
            for c in (Feat.RECENCY_DAYS, Feat.FREQUENCY)
            if c in features.columns
        }
        return cls(kind, cuts)

    def segments(self, features: pl.DataFrame) -> npt.NDArray[np.str_]:
        """Segment label of every row."""
        n = features.height
        if self.kind == "everyone":
            return np.full(n, "all")
        if self.kind == "lifecycle":
            if Feat.LIFECYCLE_STAGE not in features.columns:
                return np.full(n, "unknown")
            stage = features.get_column(Feat.LIFECYCLE_STAGE).cast(pl.String).fill_null("unknown")
            return np.asarray(stage.to_numpy().astype(str))
        parts = []
        for c, (lo, hi) in self.cuts.items():
            v = features.get_column(c).cast(pl.Float64).to_numpy()
            level = np.where(
                ~np.isfinite(v), "na", np.where(v <= lo, "1", np.where(v <= hi, "2", "3"))
            )
            parts.append(np.char.add(f"{c[0]}", level.astype(str)))
        if not parts:
            return np.full(n, "all")
        out = parts[0]
        for p in parts[1:]:
            out = np.char.add(np.char.add(out, "_"), p)
        return np.asarray(out)


@dataclass(frozen=True)
class SegmentTable:
    """Per segment, the DR mean effect of every arm; unseen segments use the overall means."""

    name: str
    segmenter: Segmenter
    arms: tuple[Option, ...]
    table: dict[str, tuple[float, FloatArray]]  # segment -> (p_none, uplift per arm)
    overall: tuple[float, FloatArray]
    single_arm: int | None = None  # index of the only arm offered (best uniform offer)

    def effects(self, features: pl.DataFrame, arms: Sequence[Option]) -> Effects:
        """See `EffectModel`; arms this table never saw get uplift 0 and are not priced."""
        seg = self.segmenter.segments(features)
        n = features.height
        index = {(a.offer_type, a.bonus): j for j, a in enumerate(self.arms)}
        cols = [index.get((a.offer_type, a.bonus), -1) for a in arms]
        p_none = np.empty(n)
        uplift = np.zeros((n, len(arms)))
        for label in np.unique(seg):
            rows = seg == label
            p0, up = self.table.get(str(label), self.overall)
            p_none[rows] = p0
            for j, c in enumerate(cols):
                if c >= 0 and (self.single_arm is None or c == self.single_arm):
                    uplift[rows, j] = up[c]
        p_redeem = np.clip(p_none[:, None] + uplift, 0.0, 1.0)
        return Effects(p_none, uplift, p_redeem)

    def allowed(self, arms: Sequence[Option]) -> npt.NDArray[np.bool_]:
        """Arms this rule may offer."""
        if self.single_arm is None:
            return np.ones(len(arms), dtype=bool)
        only = self.arms[self.single_arm]
        return np.array([a == only for a in arms], dtype=bool)


def fit_segment_table(
    name: str,
    kind: str,
    features: pl.DataFrame,
    logged: Logged,
    pseudo: PseudoOutcomes,
    *,
    margin: FloatArray,
    point_value: float,
    single_arm: bool = False,
    min_rows: int = 30,
) -> SegmentTable:
    """DR means per segment and arm over the rows of ``logged`` (``features`` aligned with it).

    ``margin`` is each row's expected order margin (to pick the best single arm by profit).
    Segment cells with fewer than ``min_rows`` supported rows fall back to the overall mean.
    """
    segmenter = Segmenter.fit(kind, features)
    seg = segmenter.segments(features)
    k = len(logged.arms)

    def means(rows: npt.NDArray[np.bool_], fallback: FloatArray | None) -> tuple[float, FloatArray]:
        p0 = float(np.mean(pseudo.phi_none[rows])) if rows.any() else 0.0
        up = np.zeros(k)
        for j in range(k):
            vals = pseudo.phi[rows, j]
            vals = vals[np.isfinite(vals)]
            if vals.size >= min_rows or fallback is None:
                up[j] = float(vals.mean()) if vals.size else 0.0
            else:
                up[j] = fallback[j]
        return min(max(p0, 0.0), 1.0), up

    overall = means(np.ones(logged.n, dtype=bool), None)
    table = {str(s): means(seg == s, overall[1]) for s in np.unique(seg)}
    best: int | None = None
    if single_arm:
        p0, up = overall
        m = float(np.mean(margin))
        bonus = np.array([a.bonus * point_value for a in logged.arms])
        profit = (p0 + up) * (m - bonus) - p0 * m
        best = int(np.argmax(profit))
    return SegmentTable(name, segmenter, logged.arms, table, overall, best)
