"""The bonus part of `offers train`: response and propensity models, the offer book, and (on
the synthetic world) the policy comparison against the ground truth.

Without an offer history there is no response to learn (`NoOfferHistoryError`): the result
then says so and carries a `RuleBook` instead (the rule table, priced from each customer's own
check, with no predicted response); campaigns over it count the budget at worst-case cost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from features.config import FeatureConfig
from features.dataset import Dataset
from features.progress import stage
from training.bonus.book import OfferBook
from training.bonus.config import BonusConfig
from training.bonus.policies import Decision, prepare_policy_decision
from training.bonus.propensity import (
    FeatureEncoder,
    PropensityError,
    fixed_feature_config,
    train_propensity,
)
from training.bonus.response import NoOfferHistoryError, offer_history, offer_training_frame
from training.bonus.rule_book import RuleBook, rule_book_from_dataset
from training.bonus.selection import Fitted, Selection, select_policy

# scores a decision and the alternatives' decisions (evaluation.oracle.oracle_judge)
Judge = Callable[[Decision, Mapping[str, Decision], BonusConfig], dict[str, Any]]


@dataclass(frozen=True)
class BonusTraining:
    """The book campaigns plan over and the report sections.

    An `OfferBook` (model-priced options) when the dataset has an offer history, a `RuleBook`
    (rule-based offers, nothing predicted) when it has none, None without transactions either.
    """

    book: OfferBook | RuleBook | None
    results: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    selection: Selection | None = None  # how the shipped policy was chosen (with an offer history)


def train_bonus(
    ds: Dataset,
    *,
    as_of: datetime,
    config: BonusConfig,
    feature_config: FeatureConfig,
    cross_sell_item: dict[str, str] | None = None,
    up_sell_item: dict[str, str] | None = None,
    judge: Judge | None = None,
) -> BonusTraining:
    """Fit the bonus models on ``ds`` and price every customer's options as of ``as_of``.

    ``cross_sell_item`` / ``up_sell_item`` map customer id -> the item a cross-sell / up-sell
    offer would feature (from the recommendation models). ``judge`` (e.g.
    `evaluation.oracle.oracle_judge` on a synthetic world) scores the shipped decision and the
    other candidates refitted on the whole history; its sections join the results.
    """
    results: dict[str, Any] = {}
    notes: list[str] = []
    fc = fixed_feature_config(ds, as_of=as_of, config=feature_config)
    if ds.transactions is not None:
        try:
            with stage("bonus: purchase propensity"):
                propensity = train_propensity(ds, as_of=as_of, config=config, feature_config=fc)
            results["propensity"] = propensity.report
        except PropensityError as exc:
            notes.append(f"purchase propensity not trained: {exc}")
    try:
        offers = offer_history(ds)
    except NoOfferHistoryError as exc:
        notes.append(str(exc))
        status: dict[str, Any] = {"status": "no offer history", "note": str(exc)}
        results["bonus_models"] = status
        if ds.transactions is None:
            notes.append("no transactions either: no rule-based offers can be priced")
            return BonusTraining(book=None, results=results, notes=tuple(notes))
        rule_book, report = rule_book_from_dataset(
            ds,
            as_of=as_of,
            config=config,
            feature_config=fc,
            cross_sell_item=cross_sell_item,
            up_sell_item=up_sell_item,
        )
        notes.append(
            "offers are rule-based (first matching RFM / lifecycle rule, bonus priced from the "
            "customer's own expected check) with no predicted response; campaigns count the "
            f"budget at worst-case cost; {report['with_offer']:,} of {report['customers']:,} "
            "customers have a rule-based offer"
        )
        status["fallback"] = "rule-based offers"
        results["rule_based_offers"] = report
        return BonusTraining(book=rule_book, results=results, notes=tuple(notes))
    with stage("bonus: offer rows with point-in-time features") as s:
        data = offer_training_frame(ds, offers, config=config, feature_config=fc)
        s.rows = data.frame.height
    encoder = FeatureEncoder.fit(data.frame.select(data.feature_columns))
    selection = select_policy(
        data.frame,
        encoder,
        config=config,
        feature_config=fc,
        alternatives=judge is not None,
    )
    results["policy_selection"] = selection.report
    if data.rows_without_features:
        notes.append(
            f"{data.rows_without_features:,} offer rows have no customer features at their "
            "send day and were not learnt from"
        )
        results["policy_selection"]["rows_without_features"] = data.rows_without_features
    notes.append(f"shipped bonus policy: {selection.shipped.name} ({selection.report['reason']})")

    def decide(fitted: Fitted, features: pl.DataFrame | None = None) -> Decision:
        return prepare_policy_decision(
            ds,
            fitted,
            arms=selection.arms,
            ratios=selection.ratios,
            feature_config=fc,
            as_of=as_of,
            config=config,
            offers=offers,
            features=features,
        )

    decision = decide(selection.shipped)
    ids = decision.candidates.customer_ids.cast(str).to_list()
    book = OfferBook.from_decision(
        decision,
        cross_sell_item=_aligned(ids, cross_sell_item),
        up_sell_item=_aligned(ids, up_sell_item),
        min_roi=config.min_roi,
    )
    if judge is not None:
        others = {n: decide(f, decision.features) for n, f in selection.alternatives.items()}
        results.update(judge(decision, others, config))
    return BonusTraining(book=book, results=results, notes=tuple(notes), selection=selection)


def _aligned(ids: list[str], by_customer: dict[str, str] | None) -> np.ndarray | None:
    if by_customer is None:
        return None
    return np.array([by_customer.get(c, "") for c in ids], dtype=object)
