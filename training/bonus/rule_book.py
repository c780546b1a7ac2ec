"""The rule book: rule-based offers for a dataset without an offer history, as plain arrays.

Without an offer history no response can be learned (`NoOfferHistoryError`), so nothing is
predicted. Training applies the fallback rule table once at the decision date
(`training.bonus.policies.rule_based_offers`: the first matching RFM / lifecycle rule per
customer, its bonus priced from the customer's own expected check, eligibility from
`training.bonus.candidates.build_candidates`: consents, contact caps, bonus limits) and keeps
each customer's choice. `offers campaign`, `StreamCampaignOffers` and `GetOffers` read it
through the same calls as `training.bonus.book.OfferBook`.

A campaign over the rule book (`RuleBook.plan`):

- control customers (hash of campaign id and customer id, `training.bonus.control`, as in
  `OfferBook.plan`) are held out first;
- cost is counted at its worst case, since no redemption rate is known: every contacted
  customer redeems the full bonus, ``cost = bonus x point_value``;
- the others are taken in rule-priority order (ties: larger expected check first, then
  customer id) while the worst-case total stays within the budget; a customer whose bonus does
  not fit is skipped and a cheaper one further down may still fit (`fill_to_budget`, the same
  filling as the rule baseline of the policy comparison), so zero-cost offers always go out;
- ``expected_uplift`` and ``expected_profit`` are null and ``expected_cost`` is the worst-case
  cost; the extra column ``rule`` names the rule that matched the customer (also on control and
  budget-skipped rows, so each rule's treated customers can be compared with its hold-outs;
  null when no rule matched).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

import numpy as np
import polars as pl

from features.columns import Col, OfferType
from features.config import FeatureConfig
from features.dataset import Dataset
from features.progress import stage
from training.bonus.book import (
    PLAN_COLUMNS,
    CustomerRows,
    OfferBook,
    featured_items,
    offer_columns,
)
from training.bonus.candidates import Candidates, build_candidates
from training.bonus.config import BonusConfig
from training.bonus.control import control_mask
from training.bonus.policies import RuleChoice, fill_to_budget, rule_based_offers, rule_table
from training.bonus.response import model_features
from training.bonus.value import Value

RULE: Final = "rule"
RULE_PLAN_COLUMNS = (*PLAN_COLUMNS, RULE)
_ARRAYS = (
    "customer_ids",
    "offer_types",
    "bonus",
    "choice",
    "priority",
    "rule_names",
    "expected_check",
    "threshold",
    "channel",
    "item",
)


class RuleBookError(ValueError):
    """A rule book cannot be built, loaded or planned as asked (the message names the field)."""


@dataclass(frozen=True)
class RuleAllocation:
    """What a rule-based plan chose (per planned row) and what it left out, with counts.

    There is no predicted profit, so there is no optimum or gap: ``total_cost`` is the
    worst-case cost (every contacted customer redeems the full bonus).
    """

    choice: np.ndarray  # intp (rows,) option column per planned row; -1 = nothing
    total_cost: float
    budget: float | None
    held_out: int  # control customers
    without_channel: int  # not held out, no consented channel (so no offer is eligible)
    without_rule: int  # not held out, reachable, but no rule matched with an eligible offer
    over_budget: int  # a rule matched, but the bonus did not fit in what was left

    @property
    def n_treated(self) -> int:
        """Customers who receive an offer."""
        return int(np.count_nonzero(self.choice >= 0))

    @property
    def budget_binding(self) -> bool:
        """Whether the budget kept somebody from their rule's offer."""
        return self.over_budget > 0


@dataclass(frozen=True)
class RuleBook(CustomerRows):
    """Per customer the rule-chosen option; row i is ``customer_ids[i]``.

    The option columns (``offer_types[j]``, ``bonus[j]``) are those of the candidates, as in
    `OfferBook`, so the service reads ``offer_types[j]``, ``bonus[j]``, ``threshold[i]`` and
    ``item[i, 0 | 1]`` the same way; ``uplift`` and ``profit`` are NaN (nothing is predicted).
    """

    customer_ids: np.ndarray  # str (n,)
    offer_types: np.ndarray  # str (m,)
    bonus: np.ndarray  # float64 (m,) points
    choice: np.ndarray  # int32 (n,) option column chosen by the rules; -1 when none
    priority: np.ndarray  # int32 (n,) index into rule_names; len(rule_names) when none
    rule_names: np.ndarray  # str (r,) the rule table, highest priority first
    expected_check: np.ndarray  # float64 (n,) the check the bonus was priced from
    threshold: np.ndarray  # float32 (n,) spend X of "spend X get Y"; NaN when not eligible
    channel: np.ndarray  # str (n,) preferred reachable channel; "" when none
    item: np.ndarray  # str (n, 2) cross-sell and up-sell item per customer; "" when none
    point_value: float = 1.0

    def __post_init__(self) -> None:
        n, m = self.customer_ids.shape[0], self.offer_types.shape[0]
        for name in ("choice", "priority", "expected_check", "threshold", "channel", "item"):
            if getattr(self, name).shape[0] != n:
                raise RuleBookError(f"{name}: {getattr(self, name).shape[0]} rows, expected {n}")
        if self.bonus.shape != (m,):
            raise RuleBookError(f"bonus: shape {self.bonus.shape}, expected ({m},)")
        if n and (self.choice.min() < -1 or self.choice.max() >= m):
            row = int(np.flatnonzero((self.choice < -1) | (self.choice >= m))[0])
            raise RuleBookError(f"choice: row {row} is {self.choice[row]}, not an option column")
        if not self.point_value > 0:
            raise RuleBookError(f"point_value: must be > 0, got {self.point_value}")

    @classmethod
    def from_rules(
        cls,
        candidates: Candidates,
        rules: RuleChoice,
        *,
        rule_names: list[str],
        expected_check: np.ndarray,
        point_value: float,
        cross_sell_item: np.ndarray | None = None,
        up_sell_item: np.ndarray | None = None,
    ) -> RuleBook:
        """The book of a rule choice; all arrays align with the candidates' customers."""
        n = candidates.mask.shape[0]
        return cls(
            customer_ids=candidates.customer_ids.cast(pl.String).to_numpy().astype(str),
            offer_types=np.array([o.offer_type for o in candidates.options], dtype=str),
            bonus=candidates.bonus.astype(np.float64),
            choice=np.asarray(rules.choice, dtype=np.int32),
            priority=np.asarray(rules.priority, dtype=np.int32),
            rule_names=np.array(rule_names, dtype=str),
            expected_check=np.asarray(expected_check, dtype=np.float64),
            threshold=np.asarray(candidates.threshold, dtype=np.float32),
            channel=np.array([c or "" for c in candidates.channel], dtype=str),
            item=featured_items(n, cross_sell_item, up_sell_item),
            point_value=point_value,
        )

    # persistence -------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able params and plain arrays (no pickle)."""
        params = {"kind": "rule_book", "point_value": self.point_value}
        return params, {name: getattr(self, name) for name in _ARRAYS}

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> RuleBook:
        """The book saved by `state`."""
        if params.get("kind") != "rule_book":
            raise RuleBookError(f"kind: expected 'rule_book', got {params.get('kind')!r}")
        missing = [name for name in _ARRAYS if name not in arrays]
        if missing:
            raise RuleBookError(f"arrays: missing {missing}")
        return cls(point_value=float(params["point_value"]), **{k: arrays[k] for k in _ARRAYS})

    # what the service reads ----------------------------------------------------------------
    @property
    def uplift(self) -> np.ndarray:
        """(n, m) NaN: no response is predicted (a read-only view, no memory)."""
        return np.broadcast_to(np.float32(np.nan), (self.n_customers, self.offer_types.size))

    @property
    def profit(self) -> np.ndarray:
        """(n, m) NaN: no profit is predicted (a read-only view, no memory)."""
        return self.uplift

    @property
    def rule(self) -> np.ndarray:
        """Per customer, the name of the rule that chose the offer ("" when none)."""
        names: np.ndarray = np.append(self.rule_names, "")[self.priority]
        return names

    def worst_case_cost(self, rows: np.ndarray) -> np.ndarray:
        """Money paid if each customer of ``rows`` redeems the full bonus of their option."""
        choice = self.choice[rows]
        cost: np.ndarray = np.where(
            choice >= 0, self.bonus[np.maximum(choice, 0)] * self.point_value, 0.0
        )
        return cost

    def best_options(self, row: int, *, k: int, bonus_ceiling: float | None = None) -> list[int]:
        """The rule's option for one customer (at most one), as an option column.

        Above ``bonus_ceiling`` the rule's offer type is given with its largest positive bonus
        level within the ceiling (lower levels pass every eligibility limit the chosen one
        passed); nothing when there is none.
        """
        j = int(self.choice[row])
        if k <= 0 or j < 0:
            return []
        if bonus_ceiling is None or self.bonus[j] <= bonus_ceiling:
            return [j]
        same = (self.offer_types == self.offer_types[j]) & (self.bonus > 0)
        fits = np.flatnonzero(same & (self.bonus <= bonus_ceiling))
        if fits.size == 0:
            return []
        return [int(fits[np.argmax(self.bonus[fits])])]

    # planning ----------------------------------------------------------------------------
    def allocate(
        self, rows: np.ndarray, *, budget: float | None, held_out: np.ndarray
    ) -> RuleAllocation:
        """The rule options over ``rows`` within ``budget`` at worst-case cost."""
        option = np.where(held_out, -1, self.choice[rows]).astype(np.intp)
        cost = self.worst_case_cost(rows)
        if budget is None:
            choice = option
        else:
            order = np.lexsort(
                (self.customer_ids[rows], -self.expected_check[rows], self.priority[rows])
            ).astype(np.intp)
            choice = fill_to_budget(order, option, cost, budget)
        taken = choice >= 0
        none = (self.choice[rows] < 0) & ~held_out
        unreachable = self.channel[rows] == ""
        return RuleAllocation(
            choice=choice,
            total_cost=float(cost[taken].sum()),
            budget=budget,
            held_out=int(held_out.sum()),
            without_channel=int((none & unreachable).sum()),
            without_rule=int((none & ~unreachable).sum()),
            over_budget=int(((option >= 0) & ~taken).sum()),
        )

    def plan(
        self,
        rows: np.ndarray,
        *,
        campaign_id: str,
        budget: float | None,
        control_share: float,
    ) -> tuple[pl.DataFrame, RuleAllocation]:
        """A budgeted rule-based campaign over ``rows``: one row per customer (see the module).

        Columns: `PLAN_COLUMNS` (``expected_uplift`` and ``expected_profit`` null,
        ``expected_cost`` the worst-case cost) and ``rule``.
        """
        if budget is not None and budget < 0:
            raise RuleBookError(f"budget must be >= 0, got {budget}")
        rows = np.asarray(rows, dtype=np.int64)
        ids = self.customer_ids[rows]
        held_out = control_mask(campaign_id, ids, control_share)
        alloc = self.allocate(rows, budget=budget, held_out=held_out)
        chosen = alloc.choice >= 0
        safe = np.where(chosen, alloc.choice, 0)
        offer_type = np.where(chosen, self.offer_types[safe], OfferType.NONE)
        bonus = np.where(chosen, self.bonus[safe], 0.0)
        frame = pl.DataFrame(
            {
                Col.CUSTOMER: ids,
                Col.OFFER_TYPE: offer_type,
                **offer_columns(offer_type, self.item[rows], self.threshold[rows]),
                Col.BONUS: bonus,
                "expected_uplift": pl.Series([None] * rows.size, dtype=pl.Float64),
                "expected_cost": bonus * self.point_value,
                "expected_profit": pl.Series([None] * rows.size, dtype=pl.Float64),
                Col.CONTROL: held_out,
                Col.CHANNEL: self.channel[rows],
                RULE: pl.Series(self.rule[rows], dtype=pl.String).replace("", None),
            }
        )
        return frame.select(RULE_PLAN_COLUMNS), alloc


def load_book(params: dict[str, Any], arrays: dict[str, np.ndarray]) -> OfferBook | RuleBook:
    """The book saved by `OfferBook.state` or `RuleBook.state` (dispatch on ``kind``)."""
    kind = params.get("kind")
    if kind == "offer_book":
        return OfferBook.from_state(params, arrays)
    if kind == "rule_book":
        return RuleBook.from_state(params, arrays)
    raise RuleBookError(f"kind: unknown book kind {kind!r} (expected 'offer_book' or 'rule_book')")


def rule_book_from_dataset(
    ds: Dataset,
    *,
    as_of: datetime,
    config: BonusConfig,
    feature_config: FeatureConfig,
    cross_sell_item: dict[str, str] | None = None,
    up_sell_item: dict[str, str] | None = None,
) -> tuple[RuleBook, dict[str, Any]]:
    """Apply the rule table to every customer of ``ds`` as of ``as_of``; the book and a report.

    ``cross_sell_item`` / ``up_sell_item`` map customer id -> the item a cross-sell / up-sell
    offer would feature. Any offers table (one without usable history) still counts toward the
    contact caps.
    """
    offers = ds.offers.collect() if ds.offers is not None else None
    # the rules price from the expected check alone and never read a margin, so items without
    # a margin must not stop them: the margin rate is valued at 0 and dropped unread
    no_margin = replace(config, default_margin_rate=config.default_margin_rate or 0.0)
    with stage("bonus: rule-based offers") as s:
        features = model_features(
            ds, None, as_of=as_of, config=no_margin, feature_config=feature_config
        ).drop(Value.MARGIN_RATE)
        value = features.select(Col.CUSTOMER, Value.EXPECTED_CHECK)
        candidates = build_candidates(features, value, config=config, as_of=as_of, offers=offers)
        rules = rule_based_offers(features, value, candidates, config)
        s.rows = features.height
    ids = candidates.customer_ids.cast(pl.String).to_list()
    book = RuleBook.from_rules(
        candidates,
        rules,
        rule_names=[r.name for r in rule_table(config)],
        expected_check=features.get_column(Value.EXPECTED_CHECK).fill_null(0.0).to_numpy(),
        point_value=config.point_value,
        cross_sell_item=_aligned(ids, cross_sell_item),
        up_sell_item=_aligned(ids, up_sell_item),
    )
    return book, rule_book_report(book, candidates)


def rule_book_report(book: RuleBook, candidates: Candidates) -> dict[str, Any]:
    """JSON-able summary: customers per rule (offer type, bonus), and what was excluded."""
    chosen = book.choice >= 0
    safe = np.where(chosen, book.choice, 0)
    frame = pl.DataFrame(
        {
            RULE: book.rule[chosen],
            Col.OFFER_TYPE: book.offer_types[safe][chosen],
            Col.BONUS: book.bonus[safe][chosen],
        }
    )
    by_rule = (
        frame.group_by(RULE, Col.OFFER_TYPE)
        .agg(pl.len().alias("customers"), pl.col(Col.BONUS).mean().alias("mean_bonus"))
        .sort("customers", RULE, descending=[True, False])
    )
    return {
        "customers": book.n_customers,
        "with_offer": int(chosen.sum()),
        "without_offer": int((~chosen).sum()),
        "by_rule": {
            str(r[RULE]): {k: v for k, v in r.items() if k != RULE} for r in by_rule.to_dicts()
        },
        "candidates": {"exclusions": candidates.exclusions, "notes": candidates.notes},
    }


def _aligned(ids: list[str], by_customer: dict[str, str] | None) -> np.ndarray | None:
    if by_customer is None:
        return None
    return np.array([by_customer.get(c, "") for c in ids], dtype=object)
