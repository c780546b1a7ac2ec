"""Bonus policies: the model-driven decision and the rule-based fallback.

Decision (`prepare_decision` + `choose_offers`): features and order values as of the cutoff,
candidate options (`training.bonus.candidates`), the response model's P(convert) for every
option and without an offer, the profit and cost matrices (`training.bonus.profit`), then the
budgeted multiple-choice knapsack (`training.bonus.optimizer.optimize_budget`).

Fallback (`rule_based_offers`): without an offer history no response can be learned
(`training.bonus.response.NoOfferHistoryError`); customers then get offers from a fixed RFM /
lifecycle rule table (first matching rule wins, see `rule_table`), each priced from the
customer's own expected check (``share x expected check``, rounded down to the bonus grid). No
response or profit is claimed for them; `training.bonus.rule_book.RuleBook` stores the choice
for campaigns and the service.

Decision of a policy chosen by off-policy value (`prepare_policy_decision`): the same, priced
by the chosen effect model (`training.bonus.selection`). How policies are judged against a
synthetic world's truth is evaluation's business (`evaluation.oracle`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import polars as pl

from features.columns import Col, OfferType
from features.config import FeatureConfig
from features.dataset import Dataset
from features.names import Feat, Segment, Stage
from features.progress import stage
from training.bonus.candidates import Candidates, build_candidates
from training.bonus.config import BonusConfig
from training.bonus.optimizer import Allocation, optimize_budget
from training.bonus.profit import Option, profit_matrices
from training.bonus.response import ResponseModel, model_features
from training.bonus.selection import Fitted, margins, priced
from training.bonus.value import RevenueRatios, Value

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


class PolicyError(Exception):
    """A policy cannot be built or evaluated (the message says why)."""


# --------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class Decision:
    """Everything the optimizer needs at one cutoff, row i = ``candidates.customer_ids[i]``."""

    as_of: datetime
    features: pl.DataFrame
    value: pl.DataFrame
    candidates: Candidates
    p_offer: FloatArray  # (n, m)
    p_none: FloatArray  # (n,)
    margin_offer: FloatArray  # (n, m)
    margin_none: FloatArray  # (n,)
    profit: FloatArray  # (n, m) expected incremental profit
    cost: FloatArray  # (n, m) expected bonus cost
    # what anyone may be offered (eligibility); candidates.mask is what this policy offers
    eligible: npt.NDArray[np.bool_] | None = None


def decision_inputs(
    ds: Dataset,
    model: ResponseModel,
    *,
    as_of: datetime,
    config: BonusConfig,
    offers: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The response model's features (with order value columns) as of ``as_of``."""
    return model_features(
        ds, offers, as_of=as_of, config=config, feature_config=model.feature_config
    )


def prepare_decision(
    ds: Dataset,
    model: ResponseModel,
    *,
    as_of: datetime,
    config: BonusConfig,
    offers: pl.DataFrame | None = None,
) -> Decision:
    """Candidates, predicted responses and the profit/cost matrices at ``as_of``."""
    with stage("bonus: decision features") as s:
        features = decision_inputs(ds, model, as_of=as_of, config=config, offers=offers)
        value = features.select(Col.CUSTOMER, Value.EXPECTED_CHECK, Value.MARGIN_RATE)
        s.rows = features.height
    candidates = build_candidates(
        features,
        value,
        config=config,
        as_of=as_of,
        offers=offers,
        known_types=model.known_types,
    )
    with stage("bonus: response predictions") as s:
        p_offer, p_none = model.predict_options(features, list(candidates.options))
        s.rows = p_offer.size
    # from the joined frame: its rows are the candidates' rows
    check = features.get_column(Value.EXPECTED_CHECK).to_numpy()
    rate = features.get_column(Value.MARGIN_RATE).to_numpy()
    ratio_none = model.ratios.of(OfferType.NONE)
    ratios = np.array([model.ratios.of(o.offer_type) for o in candidates.options])
    margin_none = check * rate * ratio_none
    margin_offer = (check * rate)[:, None] * ratios[None, :]
    profit, cost = profit_matrices(
        p_offer, p_none, margin_offer, margin_none, candidates.bonus, config.point_value
    )
    return Decision(
        as_of=as_of,
        features=features,
        value=value,
        candidates=candidates,
        p_offer=p_offer,
        p_none=p_none,
        margin_offer=margin_offer,
        margin_none=margin_none,
        profit=profit,
        cost=cost,
    )


def prepare_policy_decision(
    ds: Dataset,
    fitted: Fitted,
    *,
    arms: Sequence[Option],
    ratios: RevenueRatios,
    feature_config: FeatureConfig,
    as_of: datetime,
    config: BonusConfig,
    offers: pl.DataFrame | None = None,
    features: pl.DataFrame | None = None,
) -> Decision:
    """The decision of a policy chosen by `training.bonus.selection.select_policy` at ``as_of``.

    Only options that the history randomised (``arms``) can be priced; the others are masked
    out and counted (``options_never_randomised``). Pass ``features`` to reuse them.
    """
    if features is None:
        with stage("bonus: decision features") as s:
            features = model_features(
                ds, offers, as_of=as_of, config=config, feature_config=feature_config
            )
            s.rows = features.height
    value = features.select(Col.CUSTOMER, Value.EXPECTED_CHECK, Value.MARGIN_RATE)
    candidates = build_candidates(
        features,
        value,
        config=config,
        as_of=as_of,
        offers=offers,
        known_types={a.offer_type for a in arms},
    )
    index = {(a.offer_type, a.bonus): j for j, a in enumerate(arms)}
    cols = np.array([index.get((o.offer_type, o.bonus), -1) for o in candidates.options])
    missing = [o.label for o, c in zip(candidates.options, cols, strict=True) if c < 0]
    if missing:
        candidates.notes.append(
            f"options never randomised in the offer history (no evidence of their effect): "
            f"not offered: {missing}"
        )
        candidates.exclusions["options_never_randomised"] = len(missing)
    priced_arms = [arms[c] if c >= 0 else Option(OfferType.NONE, 0.0) for c in cols]
    allowed = np.array([c >= 0 and bool(fitted.allowed[c]) for c in cols], dtype=bool)
    eligible = candidates.mask & (cols >= 0)[None, :]
    candidates = dataclasses.replace(candidates, mask=candidates.mask & allowed[None, :])
    with stage(f"bonus: {fitted.name} effects") as s:
        effects = fitted.model.effects(features, priced_arms)
        s.rows = effects.uplift.size
    margin_none, margin_offer = margins(features, priced_arms, ratios)
    profit, cost = priced(effects, margin_none, margin_offer, priced_arms, config.point_value)
    return Decision(
        as_of=as_of,
        features=features,
        value=value,
        candidates=candidates,
        p_offer=effects.p_offer,
        p_none=np.clip(effects.p_none, 0.0, 1.0),
        margin_offer=margin_offer,
        margin_none=margin_none,
        profit=profit,
        cost=cost,
        eligible=eligible,
    )


def choose_offers(decision: Decision, budget: float | None, config: BonusConfig) -> Allocation:
    """The optimizer's choice for the decision at ``budget`` (None: no budget)."""
    return optimize_budget(
        decision.profit,
        decision.cost,
        budget,
        mask=decision.candidates.mask,
        min_roi=config.min_roi,
    )


# --------------------------------------------------------------------------- fallback rules


@dataclass(frozen=True)
class Rule:
    """One row of the rule table: who (a polars condition), which offer, bonus share of check."""

    name: str
    condition: pl.Expr
    offer_type: str
    check_share: float


def _rules(config: BonusConfig) -> list[Rule]:
    stage_ = pl.col(Feat.LIFECYCLE_STAGE).cast(pl.String)
    segment = pl.col(Feat.RFM_SEGMENT).cast(pl.String)
    expiring = Feat.points_expiring(config.expiring_window_days)
    return [
        Rule("expiring points", pl.col(expiring).fill_null(0.0) > 0, OfferType.EXPIRING_POINTS, 0),
        Rule(
            "birthday soon",
            pl.col(Feat.DAYS_TO_BIRTHDAY) <= config.birthday_lead_days,
            OfferType.BIRTHDAY,
            0.05,
        ),
        Rule(
            "lapsing",
            stage_.is_in([Stage.AT_RISK, Stage.SLEEPING]),
            OfferType.REACTIVATION,
            0.10,
        ),
        Rule(
            "overdue on cycle",
            pl.col(Feat.OVERDUE_RATIO) >= config.replenishment_overdue_ratio,
            OfferType.REPLENISHMENT,
            0.03,
        ),
        Rule(
            "top segment",
            segment.is_in([Segment.CHAMPIONS, Segment.LOYAL]),
            OfferType.PRIVILEGE,
            0.0,
        ),
        Rule(
            "promising",
            segment.is_in([Segment.NEW, Segment.POTENTIAL_LOYALIST, Segment.NEED_ATTENTION]),
            OfferType.SPEND_THRESHOLD,
            0.05,
        ),
        Rule(
            "new customer", pl.col(Feat.TENURE_DAYS) <= config.welcome_days, OfferType.WELCOME, 0.05
        ),
        Rule("any buyer", pl.col(Feat.FREQUENCY).fill_null(0) > 0, OfferType.CASHBACK, 0.03),
    ]


def rule_table(config: BonusConfig) -> list[Rule]:
    """The fallback's rule table, first (highest priority) rule first."""
    return _rules(config)


@dataclass(frozen=True)
class RuleChoice:
    """The rule-based option per customer (-1 = none) and the rule that chose it."""

    choice: IntArray
    rule: list[str | None]
    priority: IntArray  # index of the rule (len(rules) when none)


def rule_based_offers(
    features: pl.DataFrame, value: pl.DataFrame, candidates: Candidates, config: BonusConfig
) -> RuleChoice:
    """The first matching rule's offer per customer, priced from their own expected check.

    Bonus = the largest eligible grid level <= ``check_share x expected check`` (the smallest
    eligible positive level when the share is below it; 0 for the zero-bonus offer types).
    A rule whose offer is not eligible for the customer (mask) falls through to the next.
    """
    rules = _rules(config)
    n = candidates.mask.shape[0]
    check = (
        features.select(Col.CUSTOMER)
        .join(
            value.select(Col.CUSTOMER, Value.EXPECTED_CHECK),
            on=Col.CUSTOMER,
            how="left",
            maintain_order="left",
        )
        .get_column(Value.EXPECTED_CHECK)
        .fill_null(0.0)
        .to_numpy()
    )
    choice = np.full(n, -1, dtype=np.intp)
    priority = np.full(n, len(rules), dtype=np.intp)
    names: list[str | None] = [None] * n
    bonus = candidates.bonus
    for k, rule in enumerate(rules):
        cols = candidates.columns_of(rule.offer_type)
        if not cols:
            continue
        try:
            hit = features.select(rule.condition.fill_null(False).alias("hit"))["hit"].to_numpy()
        except pl.exceptions.ColumnNotFoundError:
            continue
        open_rows = np.flatnonzero(hit & (choice < 0))
        if open_rows.size == 0:
            continue
        col_arr = np.array(cols)
        elig = candidates.mask[np.ix_(open_rows, col_arr)]
        levels = bonus[col_arr]
        target = rule.check_share * check[open_rows]
        positive = levels > 0
        floor = levels[positive].min() if positive.any() else 0.0
        want = np.maximum(target, floor) if rule.check_share > 0 else np.zeros_like(target)
        fits = elig & (levels[None, :] <= want[:, None] + 1e-9)
        score = np.where(fits, levels[None, :], -1.0)
        best = np.argmax(score, axis=1)
        ok = fits[np.arange(open_rows.size), best]
        rows = open_rows[ok]
        choice[rows] = col_arr[best[ok]]
        priority[rows] = k
        for r in rows.tolist():
            names[r] = rule.name
    return RuleChoice(choice=choice, rule=names, priority=priority)


def fill_to_budget(order: IntArray, option: IntArray, cost: FloatArray, budget: float) -> IntArray:
    """Give ``option[i]`` to customers in ``order`` while the cumulative cost stays <= budget.

    ``cost[i]`` is the cost of customer i's option; a customer whose option does not fit is
    skipped (a cheaper one later may still fit). Returns the choice vector (-1 = nothing).
    """
    choice = np.full(option.shape[0], -1, dtype=np.intp)
    ordered = order[option[order] >= 0]
    c = cost[ordered]
    take = np.cumsum(c) <= budget + 1e-9
    if not take.all():  # the prefix, then any later customers that still fit
        first_miss = int(np.argmin(take))
        chosen = list(ordered[:first_miss])
        spent = float(c[:first_miss].sum())
        for i, ci in zip(ordered[first_miss:].tolist(), c[first_miss:].tolist(), strict=True):
            if spent + ci <= budget + 1e-9:
                chosen.append(i)
                spent += ci
        rows = np.array(chosen, dtype=np.intp)
    else:
        rows = ordered
    choice[rows] = option[rows]
    return choice
