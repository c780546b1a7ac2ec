"""Which bonus policy ships: every candidate judged by its off-policy value on held-out history.

1. The offer rows (with point-in-time features) become logged bandit data
   (`training.bonus.logged`): arms, assignment probabilities (logged or inferred from the
   design), rewards and costs.
2. Customers are split into ``EffectParams.evaluation_folds`` folds. Every candidate
   (`training.bonus.config.POLICY_CANDIDATES`: the DR-learner, the S-learner, the curve
   response model, and the simple rules a shop would learn from the same history: the best
   uniform offer, a recency x frequency table, a lifecycle table) is fitted without a fold and
   plans that fold's rows, so every row is held out once (cross-fitting: all the evidence is
   used, none of it twice for one plan).
3. Each candidate plans with the budget optimizer at ``EffectParams.budget_shares`` of a
   reference spend (the S-learner plan's unconstrained planned spend on the fold), choosing
   only arms the row's campaign randomised; the plan's incremental profit and spend are
   estimated with IPS and DR (`training.bonus.off_policy`), with 95% intervals. Uplift per
   mechanic (Qini, AUUC, by decile) and the cost calibration (predicted vs observed bonus
   cost by decile) are measured on the same held-out predictions.
4. Among the candidates whose estimated profit is positive, the one with the best mean lower
   bound ships; when none is positive, contacting nobody ships (`choose`). A learnt policy
   gives way to a simple rule whose DR estimate beats it by more than the noise (paired
   difference > 1.96 standard errors at any budget). The shipped kind is refitted on every
   row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from features.columns import Col, OfferType
from features.config import FeatureConfig
from features.progress import stage
from training.bonus.config import LEARNT_POLICIES, RULE_POLICIES, BonusConfig
from training.bonus.effects import (
    EffectModel,
    Effects,
    PseudoOutcomes,
    SLearner,
    customer_folds,
    fit_dr_learner,
    fit_s_learner,
    fit_segment_table,
    fit_x_learner,
    pseudo_outcomes,
)
from training.bonus.logged import Logged, logged_data
from training.bonus.off_policy import (
    Z95,
    DirectModel,
    PolicyValue,
    paired_difference,
    policy_value,
)
from training.bonus.optimizer import optimize_budget
from training.bonus.profit import Option, profit_matrices
from training.bonus.propensity import FeatureEncoder
from training.bonus.response import ResponseModel, fit_response_model
from training.bonus.uplift_metrics import uplift_report
from training.bonus.value import RevenueRatios, Value, fit_revenue_ratios

FloatArray = npt.NDArray[np.float64]

_SEGMENT_KIND = {
    "best_uniform": "everyone",
    "recency_frequency": "recency_frequency",
    "lifecycle": "lifecycle",
}


NOBODY = "nobody"


class SelectionError(ValueError):
    """No policy can be chosen from this history (the message says why)."""


@dataclass(frozen=True)
class CurveEffects:
    """The curve response model (`training.bonus.response`) as an `EffectModel`."""

    model: ResponseModel
    name: str = "curve"

    def effects(self, features: pl.DataFrame, arms: Sequence[Option]) -> Effects:
        """See `training.bonus.effects.EffectModel`."""
        known = [
            a if a.offer_type in self.model.offer_types else Option(OfferType.NONE, 0.0)
            for a in arms
        ]
        p, p0 = self.model.predict_options(features, known)
        return Effects(p0, p - p0[:, None], p)


@dataclass(frozen=True)
class Fitted:
    """A candidate fitted on some rows, and the arms it may offer."""

    name: str
    model: EffectModel
    allowed: npt.NDArray[np.bool_]  # (k,) over the logged arms


@dataclass(frozen=True)
class Selection:
    """The shipped policy (refitted on every row), the alternatives, and the evidence."""

    shipped: Fitted
    arms: tuple[Option, ...]
    ratios: RevenueRatios
    report: dict[str, Any]
    alternatives: dict[str, Fitted] = field(default_factory=dict)
    evidence: Evidence | None = None


@dataclass(frozen=True)
class Evidence:
    """The held-out rows and every candidate's plan over them (for checks against a truth)."""

    rows: pl.DataFrame  # customer_id, sent_at, expected_check, margin_rate of every row
    plans: dict[str, list[tuple[float, npt.NDArray[np.intp]]]]  # name -> [(budget, choice)]
    values: dict[str, list[PolicyValue]]


def margins(
    frame: pl.DataFrame, arms: Sequence[Option], ratios: RevenueRatios
) -> tuple[FloatArray, FloatArray]:
    """Expected order margin per row without an offer ``(n,)`` and under each arm ``(n, k)``."""
    check = frame.get_column(Value.EXPECTED_CHECK).cast(pl.Float64).to_numpy()
    rate = frame.get_column(Value.MARGIN_RATE).cast(pl.Float64).to_numpy()
    base = np.nan_to_num(check * rate, nan=0.0)
    ratio = np.array([ratios.of(a.offer_type) for a in arms])
    return base * ratios.of(OfferType.NONE), base[:, None] * ratio[None, :]


def priced(
    effects: Effects,
    margin_none: FloatArray,
    margin_arm: FloatArray,
    arms: Sequence[Option],
    point_value: float,
) -> tuple[FloatArray, FloatArray]:
    """Expected incremental profit and expected bonus cost ``(n, k)`` of every arm."""
    bonus = np.array([a.bonus for a in arms], dtype=np.float64)
    profit, _ = profit_matrices(
        effects.p_offer,
        np.clip(effects.p_none, 0.0, 1.0),
        margin_arm,
        margin_none,
        bonus,
        point_value,
    )
    cost = np.clip(effects.p_redeem, 0.0, 1.0) * bonus[None, :] * point_value
    return profit, cost


def nobody(arms: Sequence[Option]) -> Fitted:
    """The policy that contacts no one (every arm priced at no effect, none allowed)."""
    return Fitted(NOBODY, NoEffect(), np.zeros(len(arms), dtype=bool))


@dataclass(frozen=True)
class NoEffect:
    """No offer changes anything: the `EffectModel` of contacting nobody."""

    name: str = NOBODY

    def effects(self, features: pl.DataFrame, arms: Sequence[Option]) -> Effects:
        """Zero uplift and zero redemption for every arm."""
        n, k = features.height, len(arms)
        return Effects(np.zeros(n), np.zeros((n, k)), np.zeros((n, k)))


def _fit_candidate(
    name: str,
    frame: pl.DataFrame,
    x: FloatArray,
    logged: Logged,
    pseudo: PseudoOutcomes | None,
    *,
    s_learner: SLearner | None = None,
    encoder: FeatureEncoder,
    ratios: RevenueRatios,
    config: BonusConfig,
    feature_config: FeatureConfig,
) -> Fitted:
    k = len(logged.arms)
    everything = np.ones(k, dtype=bool)
    eff = config.effects
    if name == "x_learner":
        model_x: EffectModel = fit_x_learner(encoder, x, logged, eff, config.lgbm)
        return Fitted(name, model_x, everything)
    if name == "dr_learner":
        model: EffectModel = fit_dr_learner(
            encoder, x, logged, eff, config.lgbm, pseudo=pseudo, nuisance=s_learner
        )
        return Fitted(name, model, everything)
    if name == "s_learner":
        return Fitted(
            name,
            fit_s_learner(encoder, x, logged, config.lgbm, rounds=eff.nuisance_rounds),
            everything,
        )
    if name == "curve":
        return Fitted(
            name,
            CurveEffects(fit_response_model(frame, encoder, ratios, config, feature_config)),
            everything,
        )
    if name in _SEGMENT_KIND:
        if pseudo is None:
            raise SelectionError(f"{name}: needs the DR pseudo-outcomes")
        margin_none, _ = margins(frame, logged.arms, ratios)
        table = fit_segment_table(
            name,
            _SEGMENT_KIND[name],
            frame,
            logged,
            pseudo,
            margin=margin_none,
            point_value=config.point_value,
            single_arm=name == "best_uniform",
        )
        return Fitted(name, table, table.allowed(logged.arms))
    raise SelectionError(f"unknown policy candidate {name!r}")


def _plan(
    fitted: Fitted,
    profit: FloatArray,
    cost: FloatArray,
    logged: Logged,
    budget: float | None,
) -> tuple[npt.NDArray[np.intp], float]:
    """The candidate's plan over the held-out rows and its planned (predicted) spend."""
    mask = logged.support & fitted.allowed[None, :]
    alloc = optimize_budget(profit, cost, budget, mask=mask)
    return np.asarray(alloc.choice, dtype=np.intp), float(alloc.total_cost)


def _direct(
    effects: Effects,
    margin_none: FloatArray,
    margin_arm: FloatArray,
    arms: Sequence[Option],
    point_value: float,
) -> DirectModel:
    bonus = np.array([a.bonus for a in arms]) * point_value
    p = np.clip(effects.p_redeem, 0.0, 1.0)
    return DirectModel(
        reward=p * (margin_arm - bonus[None, :]),
        reward_none=np.clip(effects.p_none, 0.0, 1.0) * margin_none,
        cost=p * bonus[None, :],
    )


def _uplift_quality(effects_of: dict[str, Effects], logged: Logged) -> dict[str, dict[str, Any]]:
    """Per learner and mechanic: Qini, AUUC and uplift by decile of the held-out rows."""
    out: dict[str, dict[str, Any]] = {}
    types = sorted({a.offer_type for a in logged.arms})
    for name, effects in effects_of.items():
        per: dict[str, Any] = {}
        for t in types:
            cols = [j for j, a in enumerate(logged.arms) if a.offer_type == t]
            own = np.isin(logged.arm, cols)
            control = (logged.arm < 0) & logged.support[:, cols].any(axis=1)
            rows = np.flatnonzero(own | control)
            if rows.size < 50 or not own[rows].any() or not control[rows].any():
                continue
            up = effects.uplift[rows][:, cols]
            sup = logged.support[rows][:, cols]
            mean_up = np.where(sup, up, 0.0).sum(axis=1) / np.maximum(sup.sum(axis=1), 1)
            arm = logged.arm[rows]
            score = np.where(arm >= 0, effects.uplift[rows, np.maximum(arm, 0)], mean_up)
            rep = uplift_report(score, arm >= 0, logged.converted[rows])
            per[t] = {
                "qini": rep["qini_auc"],
                "auuc": rep["auuc_normalised"],
                "uplift_top_20": rep["uplift_top_20"],
                "rows": float(rows.size),
                "uplift_by_decile": rep.get("by_decile"),
            }
        out[name] = per
    return out


def _cost_calibration(effects: Effects, logged: Logged, point_value: float) -> dict[str, Any]:
    """Predicted vs observed bonus cost of the held-out offers, by decile of the prediction."""
    treated = np.flatnonzero(logged.arm >= 0)
    if treated.size < 20:
        return {}
    arm = logged.arm[treated]
    bonus = np.array([a.bonus for a in logged.arms]) * point_value
    predicted = np.clip(effects.p_redeem[treated, arm], 0, 1) * bonus[arm]
    observed = logged.cost[treated]
    order = np.argsort(predicted, kind="stable")
    deciles = np.array_split(order, 10)
    table = {
        str(d + 1): {
            "predicted_cost": float(predicted[idx].mean()),
            "observed_cost": float(observed[idx].mean()),
            "rows": float(idx.size),
        }
        for d, idx in enumerate(deciles)
        if idx.size
    }
    total_pred = float(predicted.sum())
    return {
        "by_decile": table,
        "predicted_total": total_pred,
        "observed_total": float(observed.sum()),
        "observed_over_predicted": float(observed.sum()) / total_pred
        if total_pred > 0
        else math.nan,
    }


def choose(
    values: dict[str, list[PolicyValue]], logged: Logged
) -> tuple[str, str, dict[str, float]]:
    """The candidate to ship, why, and every candidate's mean lower bound.

    Among the candidates whose mean DR estimate of incremental profit over the budgets is
    positive, the best mean lower 95% bound; ``nobody`` (contact no one) when no candidate's
    estimate is positive. Why not "the best lower bound, nobody at 0": with a few thousand
    customers' history and heavy-tailed order values no lower bound clears 0, even where a
    learnt policy earns 0.7 of the oracle's profit (measured on the 5k-customer demo world),
    so nobody would ship almost everywhere. A learnt policy gives way to a simple rule whose
    paired DR difference against it is positive beyond 1.96 standard errors at any budget.
    """
    score = {n: float(np.mean([v.dr.low for v in vs])) for n, vs in values.items()}
    mean = {n: float(np.mean([v.dr.value for v in vs])) for n, vs in values.items()}
    score[NOBODY] = 0.0
    earning = [n for n in values if mean[n] > 0]
    if not earning:
        return NOBODY, "no candidate's estimated profit is above 0: contact nobody", score
    best = max(earning, key=lambda n: (score[n], n in RULE_POLICIES))
    reason = "best mean lower 95% bound of the DR incremental profit among those estimated to earn"
    if best in LEARNT_POLICIES:
        beaten = []
        for rule in (n for n in values if n in RULE_POLICIES):
            diffs = [
                paired_difference(r, b, logged)
                for r, b in zip(values[rule], values[best], strict=True)
            ]
            if any(d.value > Z95 * d.se for d in diffs if math.isfinite(d.se)):
                beaten.append((float(np.mean([d.value for d in diffs])), rule))
        if beaten:
            best = max(beaten)[1]
            reason = f"the rule {best} beat the learnt policy by more than the noise"
    return best, reason, score


def _fold_plans(
    frame: pl.DataFrame,
    x: FloatArray,
    logged: Logged,
    out: npt.NDArray[np.bool_],
    *,
    encoder: FeatureEncoder,
    config: BonusConfig,
    feature_config: FeatureConfig,
) -> _FoldResult:
    """Fit every candidate on the rows not in ``out`` and plan the rows in ``out``."""
    eff = config.effects
    train_rows, held_rows = np.flatnonzero(~out), np.flatnonzero(out)
    train_frame, held_frame = frame[train_rows], frame[held_rows]
    train_log, held_log = logged.subset(train_rows), logged.subset(held_rows)
    ratios = fit_revenue_ratios(train_frame, config)
    with stage("bonus policy: cross-fitted pseudo-outcomes") as s:
        pseudo = pseudo_outcomes(
            encoder,
            x[train_rows],
            train_log,
            config.lgbm,
            rounds=eff.nuisance_rounds,
            folds=eff.folds,
            seed=config.seed,
        )
        s.rows = train_log.n
    names = list(dict.fromkeys(["s_learner", *eff.candidates]))  # the S-learner serves others
    fitted: dict[str, Fitted] = {}
    effects_of: dict[str, Effects] = {}
    for name in names:
        with stage(f"bonus policy: {name}") as s:
            shared = fitted["s_learner"].model if "s_learner" in fitted else None
            fitted[name] = _fit_candidate(
                name,
                train_frame,
                x[train_rows],
                train_log,
                pseudo,
                s_learner=shared if isinstance(shared, SLearner) else None,
                encoder=encoder,
                ratios=ratios,
                config=config,
                feature_config=feature_config,
            )
            effects_of[name] = fitted[name].model.effects(held_frame, held_log.arms)
            s.rows = train_log.n
    margin_none, margin_arm = margins(held_frame, held_log.arms, ratios)
    priced_of = {
        n: priced(e, margin_none, margin_arm, held_log.arms, config.point_value)
        for n, e in effects_of.items()
    }
    direct = _direct(
        effects_of["s_learner"], margin_none, margin_arm, held_log.arms, config.point_value
    )
    _, reference = _plan(fitted["s_learner"], *priced_of["s_learner"], held_log, None)
    plans = {
        name: [
            _plan(fitted[name], *priced_of[name], held_log, share * reference)
            for share in eff.budget_shares
        ]
        for name in eff.candidates
    }
    return _FoldResult(held_rows, direct, effects_of, plans, reference)


@dataclass(frozen=True)
class _FoldResult:
    rows: npt.NDArray[np.intp]
    direct: DirectModel
    effects: dict[str, Effects]
    plans: dict[str, list[tuple[npt.NDArray[np.intp], float]]]  # per budget share
    reference: float


def _combine(logged: Logged, parts: list[_FoldResult]) -> tuple[DirectModel, dict[str, Effects]]:
    """Every row's direct model and effects from the fold that held it out."""
    n, k = logged.n, len(logged.arms)
    reward, reward_none, cost = np.empty((n, k)), np.empty(n), np.empty((n, k))
    names = parts[0].effects.keys()
    eff = {m: (np.empty(n), np.empty((n, k)), np.empty((n, k))) for m in names}
    for part in parts:
        r = part.rows
        reward[r], reward_none[r], cost[r] = (
            part.direct.reward,
            part.direct.reward_none,
            part.direct.cost,
        )
        for m in names:
            e = part.effects[m]
            eff[m][0][r], eff[m][1][r], eff[m][2][r] = e.p_none, e.uplift, e.p_redeem
    return DirectModel(reward, reward_none, cost), {m: Effects(*v) for m, v in eff.items()}


def select_policy(
    frame: pl.DataFrame,
    encoder: FeatureEncoder,
    *,
    config: BonusConfig,
    feature_config: FeatureConfig,
    alternatives: bool = False,
) -> Selection:
    """Fit, judge and choose (see the module docstring); ``alternatives`` also refits every
    simple rule and the DR-learner on every row (for comparisons against a ground truth).
    """
    eff = config.effects
    full_ratios = fit_revenue_ratios(frame, config)
    logged = logged_data(frame, point_value=config.point_value, ratios=full_ratios)
    x = encoder.transform(frame)
    fold = customer_folds(frame.get_column(Col.CUSTOMER), eff.evaluation_folds, config.seed + 1)
    if np.bincount(fold, minlength=eff.evaluation_folds).min() == 0:
        raise SelectionError("too few customers in the offer history to hold any out")
    parts = []
    for k in range(eff.evaluation_folds):
        with stage(f"bonus policy: candidates fitted without fold {k + 1}, planned on it") as s:
            parts.append(
                _fold_plans(
                    frame,
                    x,
                    logged,
                    fold == k,
                    encoder=encoder,
                    config=config,
                    feature_config=feature_config,
                )
            )
            s.rows = int((fold == k).sum())
    direct, effects_of = _combine(logged, parts)
    table: dict[str, dict[str, dict[str, float]]] = {}
    values: dict[str, list[PolicyValue]] = {}
    plans: dict[str, list[tuple[float, npt.NDArray[np.intp]]]] = {}
    budgets = [share * sum(p.reference for p in parts) for share in eff.budget_shares]
    with stage("bonus policy: off-policy value of every candidate") as s:
        for name in eff.candidates:
            for b, (share, budget) in enumerate(zip(eff.budget_shares, budgets, strict=True)):
                choice = np.full(logged.n, -1, dtype=np.intp)
                planned = 0.0
                for part in parts:
                    part_choice, part_planned = part.plans[name][b]
                    choice[part.rows] = part_choice
                    planned += part_planned
                value = policy_value(logged, choice, direct)
                values.setdefault(name, []).append(value)
                plans.setdefault(name, []).append((budget, choice))
                row = value.as_dict()
                row["planned_spend"] = planned
                row["budget"] = budget
                table.setdefault(name, {})[f"{share:g}"] = row
        s.rows = logged.n
    best, reason, score = choose(values, logged)
    table[NOBODY] = {f"{share:g}": {"profit_dr": 0.0} for share in eff.budget_shares}
    report: dict[str, Any] = {
        "rows": float(logged.n),
        "evaluation_folds": float(eff.evaluation_folds),
        "arms": [a.label for a in logged.arms],
        "assignment_probabilities": "logged (assignment_prob)"
        if not logged.inferred
        else "inferred per campaign from the design (arm shares)",
        "budgets": budgets,
        "off_policy": table,
        "score_mean_low": score,
        "shipped": best,
        "reason": reason,
        "uplift_by_learner": _uplift_quality(
            {n: e for n, e in effects_of.items() if n in LEARNT_POLICIES}, logged
        ),
        "cost_calibration": _cost_calibration(
            effects_of[best if best != NOBODY else "s_learner"], logged, config.point_value
        ),
    }
    names = [best] if best != NOBODY else []
    if alternatives:
        names += [
            n
            for n in (*RULE_POLICIES, "dr_learner", "x_learner")
            if n != best and n in eff.candidates
        ]
    with stage(f"bonus policy: refit {', '.join(names) or 'nothing'} on every row") as s:
        needs_pseudo = any(n == "dr_learner" or n in RULE_POLICIES for n in names)
        full_pseudo = (
            pseudo_outcomes(
                encoder,
                x,
                logged,
                config.lgbm,
                rounds=eff.nuisance_rounds,
                folds=eff.folds,
                seed=config.seed,
            )
            if needs_pseudo
            else None
        )
        refits = {
            n: _fit_candidate(
                n,
                frame,
                x,
                logged,
                full_pseudo,
                encoder=encoder,
                ratios=full_ratios,
                config=config,
                feature_config=feature_config,
            )
            for n in names
        }
        s.rows = logged.n
    shipped = refits.pop(best) if best != NOBODY else nobody(logged.arms)
    evidence = Evidence(
        frame.select(Col.CUSTOMER, Col.SENT_AT, Value.EXPECTED_CHECK, Value.MARGIN_RATE),
        plans,
        values,
    )
    return Selection(shipped, logged.arms, full_ratios, report, refits, evidence)
