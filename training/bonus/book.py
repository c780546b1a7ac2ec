"""The offer book: every customer's priced offer options at the decision date, as plain arrays.

Training builds it once from a `Decision` (model-predicted response, profit and cost of every
(offer type, bonus) option for every customer); the artifact bundle stores it; `offers
campaign` and the service's `StreamCampaignOffers` plan budgeted campaigns over it with the
same optimizer, and `GetOffers` reads a customer's best options from it. Nothing is fitted or
predicted at request time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl

from features.columns import Col, OfferType
from training.bonus.control import control_mask
from training.bonus.optimizer import Allocation, optimize_budget
from training.bonus.policies import Decision

# the columns of a campaign plan (`offers campaign` output, `StreamCampaignOffers` messages)
PLAN_COLUMNS = (
    Col.CUSTOMER,
    Col.OFFER_TYPE,
    Col.ITEM,
    Col.THRESHOLD,
    Col.BONUS,
    "expected_uplift",
    "expected_cost",
    "expected_profit",
    Col.CONTROL,
    Col.CHANNEL,
)


def featured_items(
    n: int, cross_sell_item: np.ndarray | None, up_sell_item: np.ndarray | None
) -> np.ndarray:
    """(n, 2) text: the cross-sell and the up-sell item a book's offers feature ("" for none)."""
    blank = np.full(n, "", dtype=object)
    items = np.stack(
        [
            blank if cross_sell_item is None else cross_sell_item,
            blank if up_sell_item is None else up_sell_item,
        ],
        axis=1,
    )
    out: np.ndarray = items.astype(str)
    return out


def offer_columns(
    offer_type: np.ndarray, item: np.ndarray, threshold: np.ndarray
) -> dict[str, pl.Series]:
    """The plan's item and threshold columns for the chosen offer types: the featured item of a
    cross-sell / up-sell (``item`` is the rows' (cross, up) pair), the spend-X of a spend
    threshold; null elsewhere."""
    which = np.where(offer_type == OfferType.CROSS_SELL, 0, 1)
    featured = np.isin(offer_type, [OfferType.CROSS_SELL, OfferType.UP_SELL])
    picked = np.where(featured, item[np.arange(item.shape[0]), which], "")
    spend_x = np.where(offer_type == OfferType.SPEND_THRESHOLD, threshold, np.nan)
    return {
        Col.ITEM: pl.Series(picked, dtype=pl.String).replace("", None),
        Col.THRESHOLD: pl.Series(spend_x, dtype=pl.Float64).fill_nan(None),
    }


class CustomerRows:
    """Row lookups of a book whose row i is ``customer_ids[i]``."""

    customer_ids: np.ndarray

    @property
    def n_customers(self) -> int:
        """Rows of the book."""
        return int(self.customer_ids.size)

    @cached_property
    def rows_by_customer(self) -> dict[str, int]:
        """customer id -> row (built once per loaded book)."""
        return {str(c): i for i, c in enumerate(self.customer_ids)}


class OfferBookError(ValueError):
    """A plan cannot be made as asked (the message names the argument)."""


@dataclass(frozen=True)
class OfferBook(CustomerRows):
    """Options x customers: row i is ``customer_ids[i]``, column j is (offer_types[j], bonus[j])."""

    customer_ids: np.ndarray  # str (n,)
    offer_types: np.ndarray  # str (m,)
    bonus: np.ndarray  # float64 (m,)
    profit: np.ndarray  # float32 (n, m) expected incremental profit
    cost: np.ndarray  # float32 (n, m) expected bonus cost
    uplift: np.ndarray  # float32 (n, m) P(convert | option) - P(convert | none)
    mask: np.ndarray  # bool (n, m) eligible (consent, caps, limits, offer-type rules)
    threshold: np.ndarray  # float32 (n,) spend X of "spend X get Y"; NaN when not eligible
    channel: np.ndarray  # str (n,) preferred reachable channel; "" when none
    item: np.ndarray  # str (n, 2) cross-sell and up-sell item per customer; "" when none
    min_roi: float = 0.0

    @classmethod
    def from_decision(
        cls,
        decision: Decision,
        *,
        cross_sell_item: np.ndarray | None = None,
        up_sell_item: np.ndarray | None = None,
        min_roi: float = 0.0,
    ) -> OfferBook:
        """The book of a decision; item arrays align with the decision's customers."""
        cand = decision.candidates
        return cls(
            customer_ids=cand.customer_ids.cast(pl.String).to_numpy().astype(str),
            offer_types=np.array([o.offer_type for o in cand.options], dtype=str),
            bonus=cand.bonus.astype(np.float64),
            profit=np.nan_to_num(decision.profit, nan=0.0).astype(np.float32),
            cost=np.nan_to_num(decision.cost, nan=0.0).astype(np.float32),
            uplift=(decision.p_offer - decision.p_none[:, None]).astype(np.float32),
            mask=cand.mask.astype(bool),
            threshold=np.asarray(cand.threshold, dtype=np.float32),
            channel=np.array([c or "" for c in cand.channel], dtype=str),
            item=featured_items(cand.mask.shape[0], cross_sell_item, up_sell_item),
            min_roi=min_roi,
        )

    # persistence -------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able params and plain arrays (no pickle)."""
        arrays = {
            name: getattr(self, name)
            for name in (
                "customer_ids",
                "offer_types",
                "bonus",
                "profit",
                "cost",
                "uplift",
                "mask",
                "threshold",
                "channel",
                "item",
            )
        }
        return {"kind": "offer_book", "min_roi": self.min_roi}, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> OfferBook:
        """The book saved by `state`."""
        return cls(min_roi=float(params["min_roi"]), **arrays)

    # planning ----------------------------------------------------------------------------
    def allocate(
        self, rows: np.ndarray, *, budget: float | None, held_out: np.ndarray
    ) -> Allocation:
        """The optimizer's choice over ``rows``; ``held_out`` customers get nothing."""
        mask = self.mask[rows] & ~held_out[:, None]
        return optimize_budget(
            self.profit[rows], self.cost[rows], budget, mask=mask, min_roi=self.min_roi
        )

    def plan(
        self,
        rows: np.ndarray,
        *,
        campaign_id: str,
        budget: float | None,
        control_share: float,
    ) -> tuple[pl.DataFrame, Allocation]:
        """A budgeted campaign over ``rows``: one row per customer (control rows included).

        Control customers (hash of campaign id and customer id) are held out before the
        optimizer runs; customers for whom no option pays are planned as ``none``.
        """
        if budget is not None and budget < 0:
            raise OfferBookError(f"budget must be >= 0, got {budget}")
        rows = np.asarray(rows, dtype=np.int64)
        ids = self.customer_ids[rows]
        held_out = control_mask(campaign_id, ids, control_share)
        alloc = self.allocate(rows, budget=budget, held_out=held_out)
        choice = alloc.choice
        chosen = choice >= 0
        safe = np.where(chosen, choice, 0)

        def pick(values: np.ndarray) -> np.ndarray:
            return np.where(chosen, values[rows, safe], 0.0)

        offer_type = np.where(chosen, self.offer_types[safe], OfferType.NONE)
        frame = pl.DataFrame(
            {
                Col.CUSTOMER: ids,
                Col.OFFER_TYPE: offer_type,
                **offer_columns(offer_type, self.item[rows], self.threshold[rows]),
                Col.BONUS: np.where(chosen, self.bonus[safe], 0.0),
                "expected_uplift": pick(self.uplift).astype(np.float64),
                "expected_cost": pick(self.cost).astype(np.float64),
                "expected_profit": pick(self.profit).astype(np.float64),
                Col.CONTROL: held_out,
                Col.CHANNEL: self.channel[rows],
            }
        )
        assert frame.height == rows.size
        return frame.select(PLAN_COLUMNS), alloc

    def best_options(self, row: int, *, k: int, bonus_ceiling: float | None = None) -> list[int]:
        """Up to ``k`` eligible option columns for one customer, best expected profit first.

        One option per offer type (its most profitable bonus within the ceiling), and only
        options that pay (positive expected profit, ROI above the minimum).
        """
        if bonus_ceiling is None:  # the common request: precomputed for every customer
            ranked = self._best_by_type[row, : max(k, 0)]
            return [int(j) for j in ranked if j >= 0]
        ok = self.mask[row] & (self.profit[row] > 0)
        if bonus_ceiling is not None:
            ok &= self.bonus <= bonus_ceiling
        cost = self.cost[row]
        with np.errstate(divide="ignore", invalid="ignore"):
            roi = np.where(cost > 0, self.profit[row] / cost, np.inf)
        ok &= roi >= self.min_roi
        best: dict[str, int] = {}
        for j in np.flatnonzero(ok):
            t = str(self.offer_types[j])
            if t not in best or self.profit[row, j] > self.profit[row, best[t]]:
                best[t] = int(j)
        return sorted(best.values(), key=lambda j: -float(self.profit[row, j]))[:k]

    def warm(self) -> None:
        """Build the per-request lookups now rather than on the first request."""
        _ = self.rows_by_customer, self._best_by_type

    @cached_property
    def _best_by_type(self) -> np.ndarray:
        """`best_options` without a ceiling for every row: (n, offer types) columns, -1 padded.

        Built once per loaded book, one offer type at a time (bounded memory).
        """
        n = self.n_customers
        types = list(dict.fromkeys(str(t) for t in self.offer_types))  # first-appearance order
        best = np.full((n, len(types)), -1, dtype=np.int32)
        value = np.full((n, len(types)), -np.inf, dtype=np.float32)
        rows = np.arange(n)
        for t, offer_type in enumerate(types):
            cols = np.flatnonzero(self.offer_types == offer_type)
            profit, cost = self.profit[:, cols], self.cost[:, cols]
            with np.errstate(divide="ignore", invalid="ignore"):
                roi = np.where(cost > 0, profit / cost, np.inf)
            ok = self.mask[:, cols] & (profit > 0) & (roi >= self.min_roi)
            paying = np.where(ok, profit, -np.inf)
            top = np.argmax(paying, axis=1)  # ties: the lowest column, as `best_options`
            top_value = paying[rows, top]
            found = np.isfinite(top_value)
            best[found, t] = cols[top[found]]
            value[:, t] = top_value
        order = np.argsort(-value, axis=1, kind="stable")
        ranked: np.ndarray = np.take_along_axis(best, order, axis=1)
        return ranked
