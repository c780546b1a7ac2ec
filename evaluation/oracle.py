"""Bonus policies judged against a synthetic world's ground truth (the oracle comparison).

Every policy picks at most one option per customer within a budget ``B``; each choice is
scored with the generator's TRUE response (`synth.response.ResponseTruth`): realised expected
incremental profit = ``sum_i p_true(t_i, b_i) * (m_true(t_i) - b_i) - p_true(none) *
m_true(none)`` and spend = ``sum_i p_true(t_i, b_i) * b_i``. Policies:

- ``ours``: the shipped policy's predicted profit and cost fed to `optimize_budget` at ``B``.
- ``oracle``: the true profit and cost fed to `optimize_budget` at the same ``B`` (the best
  any model could do with this optimizer and these candidates).
- ``no_bonus``: nobody is contacted (profit 0, spend 0).
- ``uniform``: the same cashback bonus for everyone, to eligible customers in random order
  until the (true) expected spend reaches ``B``; the bonus level is the best grid level in
  hindsight (a generous baseline).
- ``rfm_rules``: the fixed rule table of the fallback, customers in rule-priority order until
  the spend reaches ``B``.
- ``random``: a random eligible option per customer, customers in random order until ``B``.
- every alternative passed in (the simple rules and learners refitted on the whole history by
  `training.bonus.selection`), planned like ``ours``.

The baselines are filled to the budget with the TRUE expected cost so every policy is compared
at (about) the same spend; ``ours`` and the alternatives stop where the optimizer says, and may
overshoot or undershoot ``B`` in true spend because they budget with predicted costs (the
reported ``spend`` is the true one, ``planned_spend`` the predicted one).

Production code never imports this module: the command line passes `oracle_judge` to training
when the dataset has a ground truth.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from scipy.stats import spearmanr

from features.columns import Col, OfferType
from features.progress import stage
from synth.response import ResponseTruth
from training.bonus.candidates import Candidates
from training.bonus.config import BonusConfig
from training.bonus.optimizer import optimize_budget
from training.bonus.policies import (
    Decision,
    PolicyError,
    choose_offers,
    fill_to_budget,
    rule_based_offers,
)
from training.bonus.propensity import FeatureEncoder
from training.bonus.selection import Selection, margins

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

BUDGET_SHARES: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)
GROUND_TRUTH = "ground_truth"


class Truth(Protocol):
    """What the evaluation needs from the ground truth (`synth.response.ResponseTruth`)."""

    def p_convert(
        self, customer_ids: Any, offer_type: Any, bonus: Any, at: Any = None
    ) -> np.ndarray: ...

    def expected_profit(
        self, customer_ids: Any, offer_type: Any, bonus: Any, at: Any = None
    ) -> np.ndarray: ...

    def expected_margin(self, customer_ids: Any, offer_type: Any = ...) -> np.ndarray: ...


@dataclass(frozen=True)
class TrueMatrices:
    """True expected incremental profit and cost of every (customer, option)."""

    profit: FloatArray
    cost: FloatArray
    p_none: FloatArray
    margin_none: FloatArray


def true_matrices(
    truth: Truth, candidates: Candidates, *, as_of: datetime, point_value: float
) -> TrueMatrices:
    """Evaluate every option column with the oracle."""
    ids = candidates.customer_ids.to_numpy()
    n, m = candidates.mask.shape
    profit = np.empty((n, m))
    cost = np.empty((n, m))
    for j, option in enumerate(candidates.options):
        paid = option.bonus * point_value
        profit[:, j] = truth.expected_profit(ids, option.offer_type, paid, at=as_of)
        cost[:, j] = truth.p_convert(ids, option.offer_type, option.bonus, at=as_of) * paid
    p_none = truth.p_convert(ids, OfferType.NONE, 0.0, at=as_of)
    margin_none = truth.expected_margin(ids, OfferType.NONE)
    return TrueMatrices(profit, cost, p_none, margin_none)


def realised(choice: IntArray, true: TrueMatrices) -> tuple[float, float, int]:
    """(true profit, true spend, customers treated) of a choice vector (-1 = nothing)."""
    rows = np.flatnonzero(choice >= 0)
    cols = choice[rows]
    return (
        math.fsum(true.profit[rows, cols].tolist()),
        math.fsum(true.cost[rows, cols].tolist()),
        int(rows.size),
    )


def _row_cost(option: IntArray, cost: FloatArray) -> FloatArray:
    rows = np.arange(option.shape[0])
    return np.where(option >= 0, cost[rows, np.maximum(option, 0)], 0.0)


@dataclass
class _Table:
    results: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def add(
        self,
        policy: str,
        budget: float,
        profit: float,
        spend: float,
        treated: int,
        planned: float | None = None,
    ) -> None:
        row = {"spend": spend, "profit": profit, "treated": float(treated)}
        if planned is not None:
            row["planned_spend"] = planned
        self.results.setdefault(policy, {})[_key(budget)] = row


def _key(budget: float) -> str:
    return f"{budget:.0f}"


def evaluate_policies(
    decision: Decision,
    truth: Truth,
    *,
    config: BonusConfig,
    budgets: Sequence[float] | None = None,
    seed: int = 7,
    alternatives: Mapping[str, Decision] | None = None,
    ceiling: bool = False,
) -> dict[str, Any]:
    """Score every policy with the true response at each budget (see the module docstring).

    ``alternatives`` are other fitted policies' decisions over the same customers and options
    (e.g. the simple rules learnt from the same history), each planned like ``ours``.

    ``budgets`` default to `BUDGET_SHARES` of the oracle's unconstrained spend. Returns a
    JSON-able dict: ``policies`` (policy -> str(budget) -> spend, profit, treated,
    ratio_to_oracle), ``plot`` (profit vs budget per policy), ``uniform_bonus`` (the level the
    uniform policy used per budget), ``targets`` and ``diagnostics``.
    """
    cand = decision.candidates
    eligible = decision.eligible if decision.eligible is not None else cand.mask
    with stage("bonus: true response of every option") as s:
        true = true_matrices(truth, cand, as_of=decision.as_of, point_value=config.point_value)
        s.rows = true.profit.size
    unconstrained = optimize_budget(
        true.profit, true.cost, None, mask=eligible, min_roi=config.min_roi
    )
    top_spend = unconstrained.total_cost
    if budgets is None:
        budgets = [round(share * top_spend) for share in BUDGET_SHARES]
    budgets = sorted({float(b) for b in budgets if b > 0})
    if not budgets:
        raise PolicyError("evaluate_policies: no positive budget to evaluate")
    rng = np.random.default_rng(seed)
    n = eligible.shape[0]
    table = _Table()
    uniform_levels: dict[str, float] = {}
    oracle_at_spend: dict[str, float] = {}  # budget key -> oracle profit at ours' true spend

    rules = rule_based_offers(
        decision.features, decision.value, dataclasses.replace(cand, mask=eligible), config
    )
    tie_break: FloatArray = rng.random(size=(n,))
    sort_keys = np.vstack([tie_break, rules.priority.astype(np.float64)])
    rule_order = np.lexsort(sort_keys).astype(np.intp)  # by priority, random within a rule
    rule_cost = _row_cost(rules.choice, true.cost)

    random_option = np.full(n, -1, dtype=np.intp)
    for i in np.flatnonzero(eligible.any(axis=1)):
        random_option[i] = rng.choice(np.flatnonzero(eligible[i]))
    random_order = rng.permutation(n).astype(np.intp)
    random_cost = _row_cost(random_option, true.cost)

    cashback = [j for j in cand.columns_of(OfferType.CASHBACK) if cand.options[j].bonus > 0]
    uniform_order = rng.permutation(n).astype(np.intp)

    for budget in budgets:
        with stage(f"bonus: policies at budget {budget:,.0f}"):
            ours = choose_offers(decision, budget, config)
            table.add("ours", budget, *realised(np.asarray(ours.choice), true), ours.total_cost)
            for name, other in (alternatives or {}).items():
                alloc = choose_offers(other, budget, config)
                table.add(name, budget, *realised(np.asarray(alloc.choice), true), alloc.total_cost)
            oracle = optimize_budget(
                true.profit, true.cost, budget, mask=eligible, min_roi=config.min_roi
            )
            table.add("oracle", budget, *realised(np.asarray(oracle.choice), true))
            # ours budgets with predicted costs, so its true spend can miss the budget: the
            # oracle at ours' true spend is the like-for-like comparison
            ours_spend = table.results["ours"][_key(budget)]["spend"]
            same = optimize_budget(
                true.profit, true.cost, ours_spend, mask=eligible, min_roi=config.min_roi
            )
            oracle_at_spend[_key(budget)] = realised(np.asarray(same.choice), true)[0]
            table.add("no_bonus", budget, 0.0, 0.0, 0)
            best: tuple[float, float, int, float] | None = None
            for j in cashback:
                option = np.where(eligible[:, j], j, -1).astype(np.intp)
                pick = fill_to_budget(uniform_order, option, true.cost[:, j], budget)
                got = realised(pick, true)
                if best is None or got[0] > best[0]:
                    best = (*got, cand.options[j].bonus)
            if best is not None:
                table.add("uniform", budget, best[0], best[1], best[2])
                uniform_levels[_key(budget)] = best[3]
            pick = fill_to_budget(rule_order, rules.choice, rule_cost, budget)
            table.add("rfm_rules", budget, *realised(pick, true))
            pick = fill_to_budget(random_order, random_option, random_cost, budget)
            table.add("random", budget, *realised(pick, true))
    if ceiling:
        with stage("bonus: the feature ceiling (a model fitted on the true profits)"):
            for budget, profit in zip(
                budgets, feature_ceiling(decision, true, budgets, seed=seed), strict=True
            ):
                table.add("feature_ceiling", budget, profit, math.nan, 0)

    policies = table.results
    for per_budget in policies.values():
        for key, row in per_budget.items():
            oracle_profit = policies["oracle"][key]["profit"]
            row["ratio_to_oracle"] = (
                row["profit"] / oracle_profit if oracle_profit > 0 else math.nan
            )
    for key, row in policies["ours"].items():
        at_spend = oracle_at_spend[key]
        row["ratio_at_equal_spend"] = row["profit"] / at_spend if at_spend > 0 else math.nan
    keys = [_key(b) for b in budgets]
    targets = _targets(policies, keys)
    return {
        "as_of": decision.as_of.isoformat(),
        "customers": n,
        "options": [o.label for o in cand.options],
        "budgets": budgets,
        "oracle_unconstrained": {"spend": top_spend, "profit": unconstrained.total_profit},
        "policies": policies,
        "plot": {
            "x": "spend budget",
            "y": "true expected incremental profit",
            "budgets": budgets,
            "series": {p: [policies[p][k]["profit"] for k in keys] for p in policies},
        },
        "uniform_bonus": uniform_levels,
        "targets": targets,
        "candidates": {"exclusions": cand.exclusions, "notes": cand.notes},
        "diagnostics": diagnostics(decision, true),
    }


def _targets(policies: dict[str, dict[str, dict[str, float]]], keys: list[str]) -> dict[str, Any]:
    ours = policies["ours"]
    vs_oracle = {k: ours[k]["ratio_to_oracle"] for k in keys}
    at_spend = [ours[k]["ratio_at_equal_spend"] for k in keys]
    at_spend = [v for v in at_spend if math.isfinite(v)]
    vs_uniform = {}
    for k in keys:
        u = policies.get("uniform", {}).get(k)
        vs_uniform[k] = ours[k]["profit"] / u["profit"] if u and u["profit"] > 0 else math.nan
    finite_o = [v for v in vs_oracle.values() if math.isfinite(v)]
    finite_u = [v for v in vs_uniform.values() if math.isfinite(v)]
    return {
        "ours_vs_oracle": vs_oracle,
        "ours_vs_uniform": vs_uniform,
        "min_ours_vs_oracle": min(finite_o) if finite_o else math.nan,
        # the oracle re-solved at ours' true spend (ours may over- or undershoot the budget)
        "min_ours_vs_oracle_at_equal_spend": min(at_spend) if at_spend else math.nan,
        "min_ours_vs_uniform": min(finite_u) if finite_u else math.nan,
        "target_oracle": 0.9,
        "target_uniform": 1.5,
    }


def diagnostics(decision: Decision, true: TrueMatrices) -> dict[str, float]:
    """How close the predicted pieces are to the truth (rank correlations, ratios)."""
    mask = decision.candidates.mask
    rows = np.flatnonzero(mask.any(axis=1))
    out: dict[str, float] = {"customers_with_option": float(rows.size)}
    if rows.size < 3:
        return out
    pred_best = np.where(mask, decision.profit, -np.inf)[rows].max(axis=1)
    true_best = np.where(mask, true.profit, -np.inf)[rows].max(axis=1)
    out["spearman_best_profit"] = float(spearmanr(pred_best, true_best).statistic)
    out["spearman_p_none"] = float(spearmanr(decision.p_none, true.p_none).statistic)
    # calibration in the large of the no-offer response at the decision day: the model is
    # fitted on earlier send days, and a drift shows here (mean predicted vs mean true)
    out["mean_p_none"] = float(decision.p_none[rows].mean())
    out["mean_true_p_none"] = float(true.p_none[rows].mean())
    out["spearman_margin"] = float(spearmanr(decision.margin_none, true.margin_none).statistic)
    ratio = decision.margin_none / np.maximum(true.margin_none, 1e-9)
    out["median_margin_ratio"] = float(np.median(ratio))
    cells = mask.ravel()
    out["spearman_profit_cells"] = float(
        spearmanr(decision.profit.ravel()[cells], true.profit.ravel()[cells]).statistic
    )
    out["mean_pred_profit"] = float(decision.profit[mask].mean())
    out["mean_true_profit"] = float(true.profit[mask].mean())
    return out


Judge = Callable[[Decision, Mapping[str, Decision], BonusConfig], dict[str, Any]]


def oracle_judge(root: Path, *, ceiling: bool = False) -> Judge | None:
    """The oracle comparison for the dataset at ``root`` (None without a ground truth).

    ``ceiling`` adds `feature_ceiling` (minutes on 20k customers: for benchmarks).
    """
    if not (Path(root) / GROUND_TRUTH).is_dir():
        return None
    truth = ResponseTruth.load(root)

    def judge(
        decision: Decision, alternatives: Mapping[str, Decision], config: BonusConfig
    ) -> dict[str, Any]:
        with stage("bonus: policies vs the ground truth"):
            comparison = evaluate_policies(
                decision, truth, config=config, alternatives=alternatives, ceiling=ceiling
            )
        return {
            "policies": comparison["policies"],
            "policy_comparison": {
                k: v for k, v in comparison.items() if k not in ("policies", "plot")
            },
        }

    return judge


def feature_ceiling(
    decision: Decision,
    true: TrueMatrices,
    budgets: Sequence[float],
    *,
    seed: int = 7,
) -> list[float]:
    """True profit of the best plan a model of these features could make, per budget.

    A LightGBM regression per option column learns the TRUE incremental profit from the
    decision's features (two customer folds, each predicted by the model fitted on the other),
    and the optimizer plans on those predictions with the true costs. No learner that sees
    only these features, however much history it had, can be expected to do better: the gap
    between this and the oracle is what the world keeps hidden (latent types), the gap between
    ours and this is what our learning loses.
    """
    features = decision.features
    eligible = decision.eligible if decision.eligible is not None else decision.candidates.mask
    encoder = FeatureEncoder.fit(features.drop("customer_id"))
    x = encoder.transform(features)
    n, m = eligible.shape
    fold = np.random.default_rng(seed).integers(0, 2, n)
    predicted = np.zeros((n, m))
    params = {
        "objective": "regression",
        "num_leaves": 15,
        "learning_rate": 0.05,
        "min_data_in_leaf": 50,
        "num_threads": 1,
        "deterministic": True,
        "force_row_wise": True,
        "seed": seed,
        "verbosity": -1,
    }
    for j in np.flatnonzero(eligible.any(axis=0)):
        for f in (0, 1):
            fit = (fold != f) & eligible[:, j]
            if fit.sum() < 50:
                continue
            booster = lgb.train(params, lgb.Dataset(x[fit], true.profit[fit, j]), 200)
            predicted[fold == f, j] = booster.predict(x[fold == f])
    out = []
    for budget in budgets:
        alloc = optimize_budget(predicted, true.cost, budget, mask=eligible)
        out.append(realised(np.asarray(alloc.choice), true)[0])
    return out


def held_out_truth(
    selection: Selection, truth: Truth, name: str, *, model_margins: bool = False
) -> list[tuple[float, float]]:
    """(true profit, true spend) of candidate ``name``'s held-out plans, one per budget.

    The plans are those `training.bonus.selection.select_policy` estimated off-policy: each
    row's customer at its send day, with the arm the plan chose. With ``model_margins`` the
    true conversion probabilities are priced at the model's expected order margins (what the
    off-policy reward uses, `training.bonus.logged`), so the figure is exactly what the
    estimate estimates; without, at the world's true margins (the margin model's error
    included).
    """
    evidence = selection.evidence
    if evidence is None:
        raise PolicyError("the selection kept no held-out evidence")
    rows = evidence.rows
    ids = rows.get_column(Col.CUSTOMER).to_numpy()
    sent = rows.get_column(Col.SENT_AT)
    margin_none, margin_arm = margins(rows, selection.arms, selection.ratios)
    out = []
    for _, choice in evidence.plans[name]:
        contact = np.flatnonzero(choice >= 0)
        if contact.size == 0:
            out.append((0.0, 0.0))
            continue
        chosen = choice[contact]
        types = np.array([selection.arms[j].offer_type for j in chosen], dtype=object)
        bonus = np.array([selection.arms[j].bonus for j in chosen])
        at = sent.gather(contact)
        p = truth.p_convert(ids[contact], types, bonus, at=at)
        if model_margins:
            p0 = truth.p_convert(ids[contact], OfferType.NONE, 0.0, at=at)
            m_arm = margin_arm[contact, chosen]
            profit = p * (m_arm - bonus) - p0 * margin_none[contact]
        else:
            profit = truth.expected_profit(ids[contact], types, bonus, at=at)
        out.append((math.fsum(profit.tolist()), math.fsum((p * bonus).tolist())))
    return out
