"""The plain-Python interface between the gRPC servicer and the offer engine below it.

Protobuf types stop at the servicer: it turns messages into these dataclasses, calls an
`OfferEngine`, and turns the answers back into messages. An engine raises the typed errors
defined here; only the servicer maps them to gRPC status codes.

Offer ids are not the engine's business: the service issues them (and logs every issued offer)
when it sends an answer, so `BonusOffer` and `CampaignRow` carry none.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

# how long a real-time bonus offer stays valid after it is issued
OFFER_VALIDITY_DAYS = 14


class Channel(StrEnum):
    """Where an offer is shown; the value is what the ``channel`` contract column holds."""

    WEB = "web"
    APP = "app"
    EMAIL = "email"
    PUSH = "push"
    SMS = "sms"


class OutcomeKind(StrEnum):
    """What happened to an issued offer."""

    SHOWN = "shown"
    REDEEMED = "redeemed"
    IGNORED = "ignored"


@dataclass(frozen=True)
class OfferRequest:
    """One customer's request in one context. Counts are already resolved (never 0 = default)."""

    customer_id: str
    channel: Channel
    cart_item_ids: tuple[str, ...] = ()
    viewed_item_id: str | None = None
    max_cross_sell: int = 10
    max_up_sell: int = 10
    max_recommended: int = 10
    max_bonus_offers: int = 3
    bonus_ceiling: float | None = None


@dataclass(frozen=True)
class CrossSellItem:
    """An item that goes with the cart or the viewed item."""

    item_id: str
    score: float
    reason: str = ""


@dataclass(frozen=True)
class UpSellItem:
    """A better item in place of ``anchor_item_id`` (a cart or viewed item)."""

    item_id: str
    anchor_item_id: str
    score: float


@dataclass(frozen=True)
class ScoredItem:
    """A personal recommendation."""

    item_id: str
    score: float


@dataclass(frozen=True)
class BonusOffer:
    """A bonus offer the engine proposes; the service gives it an offer id when it issues it."""

    offer_type: str
    bonus: float
    expires_at: datetime
    expected_uplift: float | None  # None: nothing predicted (a rule-based offer)
    expected_profit: float | None
    threshold: float | None = None
    item_id: str | None = None


@dataclass(frozen=True)
class Segment:
    """The customer's segment labels."""

    rfm_code: str = ""
    rfm_group: str = ""
    lifecycle_stage: str = ""


@dataclass(frozen=True)
class OfferAnswer:
    """The engine's answer to an `OfferRequest`.

    ``campaign_id`` names the real-time campaign its bonus offers belong to (its control group
    is held out by the hash of that id and the customer id). A customer of the control group
    gets no bonus offers; ``withheld_offers`` says how many they would have got, so the service
    logs a hold-out only for a customer who was really denied an offer (the treated customers
    it is compared with all got one).
    """

    customer_id: str
    segment: Segment = Segment()
    cross_sell: tuple[CrossSellItem, ...] = ()
    up_sell: tuple[UpSellItem, ...] = ()
    recommended: tuple[ScoredItem, ...] = ()
    bonus_offers: tuple[BonusOffer, ...] = ()
    control_group: bool = False
    cold_start: bool = False
    unknown_item_ids: tuple[str, ...] = ()
    campaign_id: str | None = None
    withheld_offers: int = 0


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign to plan: exactly one of ``customer_ids`` and ``segment`` is set."""

    campaign_id: str
    channel: Channel
    budget: float
    control_share: float
    customer_ids: tuple[str, ...] | None = None
    segment: str | None = None

    def __post_init__(self) -> None:
        if (self.customer_ids is None) == (self.segment is None):
            raise ValueError("CampaignSpec needs exactly one of customer_ids and segment")


@dataclass(frozen=True)
class CampaignRow:
    """One customer's planned offer; ``control`` rows are hold-outs (offer type ``none``)."""

    customer_id: str
    offer_type: str
    bonus: float
    expected_uplift: float | None  # None: nothing predicted (a rule-based plan)
    expected_cost: float
    expected_profit: float | None
    control: bool = False
    item_id: str | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class OutcomeEvent:
    """What happened to an issued offer, as reported by the channel."""

    offer_id: str
    customer_id: str
    event: OutcomeKind
    ts: datetime
    revenue: float = 0.0
    bonus: float = 0.0


class OfferEngine(Protocol):
    """What the servicer needs from the recommendation and offer logic."""

    def get_offers(self, req: OfferRequest) -> OfferAnswer:
        """Recommendations and bonus offers for one customer (cold-start answer if unknown)."""
        ...

    def campaign(self, spec: CampaignSpec) -> Iterator[CampaignRow]:
        """The campaign plan, budget already optimised over the whole audience."""
        ...

    def versions(self) -> dict[str, str]:
        """Model name -> version of every model this engine serves."""
        ...

    def segments(self) -> set[str]:
        """Segment names a campaign may target."""
        ...


class EngineError(Exception):
    """Base class of the errors an engine raises on purpose."""


class InvalidRequestError(EngineError):
    """The request is well formed but the engine cannot accept it; ``field`` names why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class EngineUnavailableError(EngineError):
    """No engine is loaded (yet), or it cannot answer right now; the caller may retry."""
