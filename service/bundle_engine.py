"""The offer engine the service runs: answers from a trained artifact bundle.

Everything heavy happened at training time: the bundle holds each known customer's top
recommendations (already filtered by the business rules), the cross-sell and up-sell models,
popular items for cold start, the customers' segments, and (when the dataset had an offer
history) the bonus book of priced offer options. A request does id lookups, one cross-sell
scoring over the cart, a few up-sell lookups and a slice of the bonus book.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from service.engine import (
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
from training.bonus.control import is_control
from training.bundle import load_bundle
from training.pipeline import (
    CROSS_SELL,
    IDS,
    RECOMMENDED,
    SEGMENTS,
    UP_SELL,
)
from training.recs.base import IdMap
from training.recs.crosssell import CrossSell
from training.recs.upsell import UpSell
from training.recs.zoo import model_from_state

ALL_CUSTOMERS = "all"


@dataclass(frozen=True)
class EngineConfig:
    """Serving rules that are not model parameters."""

    realtime_campaign_id: str = "realtime"  # control-group hash key for real-time offers
    realtime_control_share: float = 0.05  # held out of real-time bonus offers
    offer_validity_days: int = 14


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
        segments: dict[str, Segment],
        as_of: datetime,
        config: EngineConfig | None = None,
    ) -> None:
        self.version = version
        self.customers = customers
        self.items = items
        self.recommended = recommended  # int32 [n_customers, K], -1 padded, best first
        self.popular = popular  # int32 [K] for cold start
        self.cross_sell = cross_sell
        self.up_sell = up_sell
        self._segments = segments
        self.as_of = as_of
        self.config = config or EngineConfig()
        self._segment_names = {ALL_CUSTOMERS} | {
            name
            for seg in segments.values()
            for name in (seg.rfm_group, seg.lifecycle_stage)
            if name
        }

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
        up_sell = model_from_state(*bundle.state(UP_SELL))
        assert isinstance(cross_sell, CrossSell) and isinstance(up_sell, UpSell)
        segments = {
            str(c): Segment(rfm_code=str(code), rfm_group=str(group), lifecycle_stage=str(stage))
            for c, code, group, stage in zip(
                seg["customer_id"],
                seg["rfm_code"],
                seg["rfm_segment"],
                seg["lifecycle_stage"],
                strict=True,
            )
        }
        return cls(
            version=version,
            customers=IdMap(ids["customers"]),
            items=IdMap(ids["items"]),
            recommended=rec["items"],
            popular=rec["popular"],
            cross_sell=cross_sell,
            up_sell=up_sell,
            segments=segments,
            as_of=datetime.fromisoformat(str(ids_params["as_of_iso"])),
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
        customer = int(self.customers.index([req.customer_id])[0])
        known = customer >= 0
        cart, unknown = self._item_indices(req.cart_item_ids)
        viewed: int | None = None
        if req.viewed_item_id:
            found, missing = self._item_indices((req.viewed_item_id,))
            unknown += missing
            viewed = int(found[0]) if found.size else None
        anchors = cart if viewed is None else np.append(cart, viewed)
        in_context = np.zeros(len(self.items), dtype=bool)
        in_context[anchors] = True

        recommended = self._recommended(customer, req.max_recommended, in_context)
        cross = self._cross_sell(anchors, customer, req.max_cross_sell, in_context)
        up = self._up_sell(anchors, customer, req.max_up_sell)
        control = is_control(
            self.config.realtime_campaign_id,
            req.customer_id,
            self.config.realtime_control_share,
        )
        return OfferAnswer(
            customer_id=req.customer_id,
            segment=self._segments.get(req.customer_id, Segment(lifecycle_stage="unknown")),
            cross_sell=cross,
            up_sell=up,
            recommended=recommended,
            bonus_offers=(),
            control_group=control,
            cold_start=not known,
            unknown_item_ids=tuple(unknown),
        )

    def campaign(self, spec: CampaignSpec) -> Iterator[CampaignRow]:
        """Campaigns need the bonus book, which this bundle does not carry."""
        if spec.segment is not None and spec.segment not in self._segment_names:
            raise InvalidRequestError("segment", f"unknown segment {spec.segment!r}")
        raise EngineUnavailableError(
            f"model version {self.version} has no bonus models (its dataset had no offer "
            "history), so it cannot plan campaigns"
        )

    # helpers -----------------------------------------------------------------------------
    def _item_indices(self, ids: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
        idx = self.items.index(list(ids)) if ids else np.zeros(0, dtype=np.int32)
        unknown = [i for i, x in zip(ids, idx, strict=True) if x < 0]
        return idx[idx >= 0].astype(np.int64), unknown

    def _recommended(self, customer: int, k: int, banned: np.ndarray) -> tuple[ScoredItem, ...]:
        row = self.recommended[customer] if customer >= 0 else self.popular
        row = row[row >= 0]
        row = row[~banned[row]][:k]
        n = max(len(row), 1)
        return tuple(
            ScoredItem(item_id=str(self.items.ids[i]), score=round(1.0 - r / n, 6))
            for r, i in enumerate(row)
        )

    def _cross_sell(
        self, anchors: np.ndarray, customer: int, k: int, banned: np.ndarray
    ) -> tuple[CrossSellItem, ...]:
        if k <= 0:
            return ()
        found = self.cross_sell.recommend_for_cart(
            anchors, k, customer_idx=customer, exclude=banned
        )
        found = found[found >= 0]
        reason = "bought with your cart" if anchors.size else "goes with your recent purchases"
        n = max(len(found), 1)
        return tuple(
            CrossSellItem(
                item_id=str(self.items.ids[i]), score=round(1.0 - r / n, 6), reason=reason
            )
            for r, i in enumerate(found)
        )

    def _up_sell(self, anchors: np.ndarray, customer: int, k: int) -> tuple[UpSellItem, ...]:
        out: list[UpSellItem] = []
        seen: set[int] = set(int(a) for a in anchors)
        # the viewed item (last anchor) first, then the cart in order
        for anchor in list(anchors[::-1]):
            if len(out) >= k:
                break
            variants = self.up_sell.recommend_for_item(int(anchor), k, customer_idx=customer)
            variants = variants[variants >= 0]
            for r, item in enumerate(variants):
                if int(item) in seen or len(out) >= k:
                    continue
                seen.add(int(item))
                out.append(
                    UpSellItem(
                        item_id=str(self.items.ids[item]),
                        anchor_item_id=str(self.items.ids[anchor]),
                        score=round(1.0 - r / max(len(variants), 1), 6),
                    )
                )
        return tuple(out)
