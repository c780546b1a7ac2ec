"""A hand-written fake engine for the service tests (tests only: never shipped)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from service.engine import (
    BonusOffer,
    CampaignRow,
    CampaignSpec,
    CrossSellItem,
    InvalidRequestError,
    OfferAnswer,
    OfferRequest,
    ScoredItem,
    Segment,
    UpSellItem,
)

EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)
CATALOGUE = ("i1", "i2", "i3", "i4", "i5")
CUSTOMERS = ("c1", "c2", "c3", "c4", "c5")
CONTROL = ("c5",)  # the real-time control group
SEGMENTS = {"loyal": ("c1", "c2"), "lapsed": ("c3", "c4")}


class FakeEngine:
    """Known answers: known customers get items and two bonus offers (none for the control
    group, c5); others get cold start.

    ``delay_s`` slows `get_offers` (and sets ``entered`` when a call is inside); ``row_delay_s``
    slows each campaign row; ``produced`` counts the campaign rows handed out.
    """

    def __init__(self, version: str = "A", *, delay_s: float = 0.0, row_delay_s: float = 0.0):
        self.version = version
        self.delay_s = delay_s
        self.row_delay_s = row_delay_s
        self.entered = threading.Event()
        self.produced = 0

    def versions(self) -> dict[str, str]:
        return {"recs": self.version, "bonus": f"{self.version}-bonus"}

    def segments(self) -> set[str]:
        return set(SEGMENTS)

    def get_offers(self, req: OfferRequest) -> OfferAnswer:
        self.entered.set()
        if self.delay_s:
            time.sleep(self.delay_s)
        if req.customer_id == "blocked":
            raise InvalidRequestError("customer_id", "customer opted out of offers")
        if req.customer_id == "crash":
            raise RuntimeError("bug in the engine")
        asked = (*req.cart_item_ids, *([req.viewed_item_id] if req.viewed_item_id else []))
        unknown = tuple(i for i in asked if i not in CATALOGUE)
        popular = tuple(ScoredItem(i, 1.0 / (n + 1)) for n, i in enumerate(CATALOGUE))
        if req.customer_id not in CUSTOMERS:
            return OfferAnswer(
                customer_id=req.customer_id,
                segment=Segment(lifecycle_stage="new"),
                recommended=popular[: req.max_recommended],
                cold_start=True,
                unknown_item_ids=unknown,
            )
        others = [i for i in CATALOGUE if i not in asked]
        bonus = 50.0 if req.bonus_ceiling is None else min(50.0, req.bonus_ceiling)
        offers = (
            BonusOffer("spend_threshold", bonus, EXPIRES, 0.1, 2.5, threshold=100.0),
            BonusOffer("cross_sell", 10.0, EXPIRES + timedelta(days=1), 0.05, 1.0, item_id="i2"),
        )[: req.max_bonus_offers]
        held_out = req.customer_id in CONTROL
        return OfferAnswer(
            customer_id=req.customer_id,
            segment=Segment("555", "champions", "active"),
            cross_sell=tuple(
                CrossSellItem(i, 0.9, f"bought with {asked[0]}") for i in others if asked
            )[: req.max_cross_sell],
            up_sell=tuple(UpSellItem("i5", a, 0.5) for a in asked if a != "i5")[: req.max_up_sell],
            recommended=popular[: req.max_recommended],
            bonus_offers=() if held_out else offers,
            control_group=held_out,
            unknown_item_ids=unknown,
            campaign_id="realtime",
            withheld_offers=len(offers) if held_out else 0,
        )

    def campaign(self, spec: CampaignSpec) -> Iterator[CampaignRow]:
        audience = (
            spec.customer_ids if spec.customer_ids is not None else SEGMENTS[spec.segment or ""]
        )
        n_control = math.ceil(spec.control_share * len(audience))
        for n, cid in enumerate(audience):
            if self.row_delay_s:
                time.sleep(self.row_delay_s)
            self.produced += 1
            if n < n_control:
                yield CampaignRow(cid, "none", 0.0, 0.0, 0.0, 0.0, control=True)
            else:
                yield CampaignRow(cid, "cashback", 20.0, 0.1, 20.0, 5.0)
