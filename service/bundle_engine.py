"""The offer engine the service runs: answers from a trained artifact bundle.

Everything heavy happened at training time: the bundle holds each known customer's top
recommendations (already filtered by the business rules), the cross-sell and up-sell models,
popular items for cold start, the customers' segments, and (when the dataset had an offer
history) the offer book of priced bonus options. A request does id lookups, one cross-sell
scoring over the cart, a few up-sell lookups and a slice of the offer book.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from features.columns import Col, OfferType
from service.engine import (
    OFFER_VALIDITY_DAYS,
    BonusOffer,
    CampaignRow,
    CampaignSpec,
    CrossSellItem,
    EngineUnavailableError,
    InvalidRequestError,
    OfferAnswer,
    OfferRequest,
    ScoredItem,
    Segment,
    UpSellItem,
)
from training.bonus.book import OfferBook
from training.bonus.control import is_control
from training.bonus.rule_book import RuleBook, load_book
from training.bundle import load_bundle
from training.campaign import AudienceError, Segments, plan_campaign
from training.pipeline import (
    CROSS_SELL,
    IDS,
    OFFER_BOOK,
    RECOMMENDED,
    SEGMENTS,
    UP_SELL,
    up_sell_from_state,
)
from training.recs.base import IdMap
from training.recs.crosssell import CrossSell
from training.recs.upsell import UpSell
from training.recs.zoo import model_from_state


class _SameRows:
    """customer id -> row, for a table in the same order as the engine's customer id map.

    Shares the id map's lookup instead of a second dictionary of a million strings (~100 MB).
    """

    def __init__(self, ids: IdMap) -> None:
        self._ids = ids

    def get(self, customer_id: str) -> int | None:
        row = int(self._ids.index([customer_id])[0])
        return None if row < 0 else row


def _row_lookup(customers: IdMap, table_ids: np.ndarray) -> _SameRows | dict[str, int]:
    """customer id -> row of a table keyed by ``table_ids``."""
    if len(table_ids) == len(customers) and np.array_equal(
        np.asarray(table_ids, dtype=str), customers.to_array()
    ):
        return _SameRows(customers)
    return {str(c): i for i, c in enumerate(table_ids)}


@dataclass(frozen=True)
class EngineConfig:
    """Serving rules that are not model parameters."""

    realtime_campaign_id: str = "realtime"  # control-group hash key for real-time offers
    realtime_control_share: float = 0.05  # held out of real-time bonus offers
    offer_validity_days: int = OFFER_VALIDITY_DAYS


class BundleEngine:
    """An `OfferEngine` over one loaded bundle (one registered model version)."""

    def __init__(
        self,
        *,
        version: str,
        customers: IdMap,
        items: IdMap,
        recommended: np.ndarray,
        popular: np.ndarray,
        cross_sell: CrossSell,
        up_sell: UpSell,
        segments: Segments,
        as_of: datetime,
        book: OfferBook | RuleBook | None = None,
        config: EngineConfig | None = None,
    ) -> None:
        self.version = version
        self.customers = customers
        self.items = items
        self.recommended = recommended  # int32 [n_customers, K], -1 padded, best first
        self.popular = popular  # int32 [K] for cold start
        self.cross_sell = cross_sell
        self.up_sell = up_sell
        cross_sell.warm()  # compile the request path now, not on the first request
        up_sell.warm()
        self.segment_table = segments
        self._segment_row = _row_lookup(customers, segments.customer_ids)
        self._segment_names = segments.names()
        self.as_of = as_of
        self.book = book
        self._book_row = _row_lookup(customers, book.customer_ids) if book is not None else {}
        if isinstance(book, OfferBook):
            book.warm()
        self.config = config or EngineConfig()
        self._item_ids: list[str] = [str(i) for i in items.ids]  # plain list: fast to index
        # the book's option columns as plain lists: read per request without numpy scalars
        self._option_type: list[str] = [] if book is None else [str(t) for t in book.offer_types]
        self._option_bonus: list[float] = [] if book is None else book.bonus.astype(float).tolist()

    @classmethod
    def from_bundle(
        cls, path: Path | str, *, version: str, config: EngineConfig | None = None
    ) -> BundleEngine:
        """Load a bundle written by `training.pipeline.save_production_bundle`."""
        bundle = load_bundle(path)
        ids_params, ids = bundle.state(IDS)
        _, rec = bundle.state(RECOMMENDED)
        _, seg = bundle.state(SEGMENTS)
        cross_sell = model_from_state(*bundle.state(CROSS_SELL))
        assert isinstance(cross_sell, CrossSell)
        up_sell = up_sell_from_state(*bundle.state(UP_SELL), cross_sell)
        book = load_book(*bundle.state(OFFER_BOOK)) if OFFER_BOOK in bundle.models else None
        return cls(
            version=version,
            customers=IdMap(ids["customers"]),
            items=IdMap(ids["items"]),
            recommended=rec["items"],
            popular=rec["popular"],
            cross_sell=cross_sell,
            up_sell=up_sell,
            segments=Segments(
                customer_ids=seg[Col.CUSTOMER],
                rfm_code=seg["rfm_code"],
                rfm_group=seg["rfm_segment"],
                lifecycle_stage=seg["lifecycle_stage"],
            ),
            as_of=datetime.fromisoformat(str(ids_params["as_of_iso"])),
            book=book,
            config=config,
        )

    # OfferEngine -------------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        """The one registered model version this engine serves."""
        return {"offer-engine": self.version}

    def segments(self) -> set[str]:
        """RFM groups and lifecycle stages present, plus ``all``."""
        return set(self._segment_names)

    def get_offers(self, req: OfferRequest) -> OfferAnswer:
        """Recommendations, cross-sell, up-sell and bonus offers for one customer."""
        customer = self.customers.position(req.customer_id)
        cart, unknown = self._item_indices(req.cart_item_ids)
        viewed: int | None = None
        if req.viewed_item_id:
            found, missing = self._item_indices((req.viewed_item_id,))
            unknown += missing
            viewed = int(found[0]) if found.size else None
        anchors = cart if viewed is None else np.append(cart, viewed)
        in_context = np.zeros(len(self.items), dtype=bool)
        in_context[anchors] = True
        control = is_control(
            self.config.realtime_campaign_id,
            req.customer_id,
            self.config.realtime_control_share,
        )
        bonus = self._bonus_offers(req.customer_id, req.max_bonus_offers, req.bonus_ceiling)
        return OfferAnswer(
            customer_id=req.customer_id,
            segment=self._segment(req.customer_id),
            cross_sell=self._cross_sell(
                anchors, customer, req.max_cross_sell, in_context, _reason(cart, viewed, customer)
            ),
            up_sell=self._up_sell(anchors, customer, req.max_up_sell),
            recommended=self._recommended(customer, req.max_recommended, in_context),
            bonus_offers=() if control else bonus,
            control_group=control,
            cold_start=customer < 0,
            unknown_item_ids=tuple(unknown),
            campaign_id=self.config.realtime_campaign_id,
            withheld_offers=len(bonus) if control else 0,
        )

    def campaign(self, spec: CampaignSpec) -> Iterator[CampaignRow]:
        """The budgeted plan over the audience (the same planner as `offers campaign`)."""
        if spec.segment is not None and spec.segment not in self._segment_names:
            raise InvalidRequestError("segment", f"unknown segment {spec.segment!r}")
        if self.book is None:
            raise EngineUnavailableError(
                f"model version {self.version} has no offer book (its dataset had no "
                "transactions to price offers from), so it cannot plan campaigns"
            )
        try:
            plan = plan_campaign(
                self.book,
                self.segment_table,
                campaign_id=spec.campaign_id,
                budget=spec.budget,
                control_share=spec.control_share,
                customer_ids=spec.customer_ids,
                segment=spec.segment,
            )
        except AudienceError as exc:
            raise InvalidRequestError(exc.field, exc.reason) from exc
        # column lists zipped, not `iter_rows(named=True)`: a dict per row costs seconds at 1M
        t = plan.rows
        columns = (
            t[Col.CUSTOMER].to_list(),
            t[Col.OFFER_TYPE].to_list(),
            t[Col.BONUS].cast(pl.Float64).to_list(),
            t["expected_uplift"].cast(pl.Float64).to_list(),
            t["expected_cost"].cast(pl.Float64).to_list(),
            t["expected_profit"].cast(pl.Float64).to_list(),
            t[Col.CONTROL].cast(pl.Boolean).to_list(),
            t[Col.ITEM].to_list(),
            t[Col.THRESHOLD].to_list(),
        )
        del t
        for customer, offer_type, bonus, uplift, cost, profit, control, item, threshold in zip(
            *columns, strict=True
        ):
            yield CampaignRow(
                customer_id=customer,
                offer_type=offer_type,
                bonus=bonus,
                expected_uplift=uplift,
                expected_cost=cost,
                expected_profit=profit,
                control=control,
                item_id=item,
                threshold=threshold,
            )

    # helpers -----------------------------------------------------------------------------
    def _segment(self, customer_id: str) -> Segment:
        row = self._segment_row.get(customer_id)
        if row is None:
            return Segment(lifecycle_stage="unknown")
        t = self.segment_table
        return Segment(
            rfm_code=str(t.rfm_code[row]),
            rfm_group=str(t.rfm_group[row]),
            lifecycle_stage=str(t.lifecycle_stage[row]),
        )

    def _item_indices(self, ids: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
        position = self.items.position
        found: list[int] = []
        unknown: list[str] = []
        for item_id in ids:
            i = position(item_id)
            if i < 0:
                unknown.append(item_id)
            else:
                found.append(i)
        return np.array(found, dtype=np.int64), unknown

    def _recommended(self, customer: int, k: int, banned: np.ndarray) -> tuple[ScoredItem, ...]:
        row = self.recommended[customer] if customer >= 0 else self.popular
        row = row[row >= 0]
        found = row[~banned[row]][:k].tolist()
        ids = self._item_ids
        return tuple(
            ScoredItem(item_id=ids[i], score=score)
            for i, score in zip(found, _rank_scores(len(found)), strict=True)
        )

    def _cross_sell(
        self, anchors: np.ndarray, customer: int, k: int, banned: np.ndarray, reason: str
    ) -> tuple[CrossSellItem, ...]:
        if k <= 0:
            return ()
        found = self.cross_sell.recommend_for_cart(
            anchors, k, customer_idx=customer, exclude=banned
        )
        ranked = found[found >= 0].tolist()
        ids = self._item_ids
        return tuple(
            CrossSellItem(item_id=ids[i], score=score, reason=reason)
            for i, score in zip(ranked, _rank_scores(len(ranked)), strict=True)
        )

    def _up_sell(self, anchors: np.ndarray, customer: int, k: int) -> tuple[UpSellItem, ...]:
        out: list[UpSellItem] = []
        ids = self._item_ids
        # the viewed item (last anchor) first, then the cart; without either, what the customer
        # bought most recently ("a better version of what you bought")
        tried = anchors[::-1].tolist() if anchors.size else self.up_sell.recent_anchors(customer)
        seen: set[int] = set(tried)
        for anchor in tried:
            if len(out) >= k:
                break
            found = self.up_sell.recommend_for_item(anchor, k, customer_idx=customer)
            variants = found[found >= 0].tolist()
            for item, score in zip(variants, _rank_scores(len(variants)), strict=True):
                if item in seen or len(out) >= k:
                    continue
                seen.add(item)
                out.append(UpSellItem(item_id=ids[item], anchor_item_id=ids[anchor], score=score))
        return tuple(out)

    def _bonus_offers(
        self, customer_id: str, k: int, ceiling: float | None
    ) -> tuple[BonusOffer, ...]:
        row = self._book_row.get(customer_id)
        if self.book is None or row is None or k <= 0:
            return ()
        book = self.book
        # valid from the moment it is issued (the model's as-of date may be in the past)
        expires = datetime.now(UTC).replace(tzinfo=None) + timedelta(
            days=self.config.offer_validity_days
        )
        offers = []
        for j in book.best_options(row, k=k, bonus_ceiling=ceiling):
            offer_type = self._option_type[j]
            item = ""
            if offer_type == OfferType.CROSS_SELL:
                item = str(book.item[row, 0])
            elif offer_type == OfferType.UP_SELL:
                item = str(book.item[row, 1])
            threshold = float(book.threshold[row])
            offers.append(
                BonusOffer(
                    offer_type=offer_type,
                    bonus=self._option_bonus[j],
                    expires_at=expires,
                    expected_uplift=_predicted(book.uplift[row, j]),
                    expected_profit=_predicted(book.profit[row, j]),
                    threshold=threshold
                    if offer_type == OfferType.SPEND_THRESHOLD and math.isfinite(threshold)
                    else None,
                    item_id=item or None,
                )
            )
        return tuple(offers)


@functools.cache
def _rank_scores(n: int) -> tuple[float, ...]:
    """Display scores of a ranked list of ``n``: 1 for the first, falling evenly."""
    return tuple(round(1.0 - r / max(n, 1), 6) for r in range(n))


def _predicted(value: float) -> float | None:
    """A book's prediction; None where nothing is predicted (a rule book holds NaN)."""
    out = float(value)
    return out if math.isfinite(out) else None


def _reason(cart: np.ndarray, viewed: int | None, customer: int) -> str:
    """Why the cross-sell items are shown, in the shopper's words."""
    if cart.size:
        return "goes with your cart"
    if viewed is not None:
        return "goes with the item you are viewing"
    if customer >= 0:
        return "goes with your recent purchases"
    return "popular with other shoppers"
