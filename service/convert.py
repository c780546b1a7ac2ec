"""Protobuf messages <-> engine dataclasses, with input validation.

Pure functions, no gRPC context: each ``*_from_proto`` raises `FieldError` naming the field
(``context.max_cross_sell``, ``events[3].offer_id``) and the servicer turns it into
INVALID_ARGUMENT.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from service.config import ServiceConfig
from service.engine import (
    BonusOffer,
    CampaignRow,
    CampaignSpec,
    Channel,
    OfferAnswer,
    OfferRequest,
    OutcomeEvent,
    OutcomeKind,
)
from service.gen.offers.v1 import offers_pb2 as pb


class FieldError(ValueError):
    """A request field is invalid; ``field`` is its path in the request message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


_CHANNELS: dict[int, Channel] = {
    pb.CHANNEL_WEB: Channel.WEB,
    pb.CHANNEL_APP: Channel.APP,
    pb.CHANNEL_EMAIL: Channel.EMAIL,
    pb.CHANNEL_PUSH: Channel.PUSH,
    pb.CHANNEL_SMS: Channel.SMS,
}
_EVENTS: dict[int, OutcomeKind] = {
    pb.OUTCOME_EVENT_TYPE_SHOWN: OutcomeKind.SHOWN,
    pb.OUTCOME_EVENT_TYPE_REDEEMED: OutcomeKind.REDEEMED,
    pb.OUTCOME_EVENT_TYPE_IGNORED: OutcomeKind.IGNORED,
}


def _channel(value: int, field: str) -> Channel:
    try:
        return _CHANNELS[value]
    except KeyError:
        names = ", ".join(pb.Channel.Name(k) for k in _CHANNELS)
        raise FieldError(field, f"must be one of {names}, got {value}") from None


def _id(value: str, field: str) -> str:
    if not value.strip():
        raise FieldError(field, "must not be empty")
    return value


def _count(value: int, field: str, default: int, limit: int) -> int:
    if value > limit:
        raise FieldError(field, f"must be at most {limit}, got {value}")
    return value or default


def _number(value: float, field: str, *, low: float = -math.inf) -> float:
    if not math.isfinite(value):
        raise FieldError(field, f"must be a finite number, got {value}")
    if value < low:
        raise FieldError(field, f"must be >= {low:g}, got {value:g}")
    return value


def offer_request_from_proto(msg: pb.GetOffersRequest, cfg: ServiceConfig) -> OfferRequest:
    """A validated `OfferRequest`; list counts of 0 become the configured defaults."""
    ctx = msg.context
    if len(ctx.cart_item_ids) > cfg.limit_cart_items:
        raise FieldError(
            "context.cart_item_ids",
            f"at most {cfg.limit_cart_items} items, got {len(ctx.cart_item_ids)}",
        )
    for i, item in enumerate(ctx.cart_item_ids):
        _id(item, f"context.cart_item_ids[{i}]")
    ceiling = ctx.bonus_ceiling if ctx.HasField("bonus_ceiling") else None
    return OfferRequest(
        customer_id=_id(msg.customer_id, "customer_id"),
        channel=_channel(ctx.channel, "context.channel"),
        cart_item_ids=tuple(ctx.cart_item_ids),
        viewed_item_id=ctx.viewed_item_id or None,
        max_cross_sell=_count(
            ctx.max_cross_sell, "context.max_cross_sell", cfg.default_items, cfg.limit_items
        ),
        max_up_sell=_count(
            ctx.max_up_sell, "context.max_up_sell", cfg.default_items, cfg.limit_items
        ),
        max_recommended=_count(
            ctx.max_recommended, "context.max_recommended", cfg.default_items, cfg.limit_items
        ),
        max_bonus_offers=_count(
            ctx.max_bonus_offers,
            "context.max_bonus_offers",
            cfg.default_bonus_offers,
            cfg.limit_bonus_offers,
        ),
        bonus_ceiling=None
        if ceiling is None
        else _number(ceiling, "context.bonus_ceiling", low=0.0),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _timestamp(ts: datetime) -> Timestamp:
    """A protobuf timestamp; a naive ``ts`` is UTC (as the engine writes times), never the
    server's local time."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts - _EPOCH
    return Timestamp(seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1000)


def answer_to_proto(
    answer: OfferAnswer, offer_ids: Iterable[str], versions: Mapping[str, str]
) -> pb.GetOffersResponse:
    """The response message; ``offer_ids`` are the ids issued for ``answer.bonus_offers``.

    Repeated fields are filled in place with ``add``: a message passed to a constructor or to
    ``extend`` is copied, which doubled the cost of a response.
    """
    ids = list(offer_ids)
    if len(ids) != len(answer.bonus_offers):
        raise ValueError(f"{len(ids)} offer ids for {len(answer.bonus_offers)} bonus offers")
    seg = answer.segment
    msg = pb.GetOffersResponse(
        customer_id=answer.customer_id,
        control_group=answer.control_group,
        cold_start=answer.cold_start,
        unknown_item_ids=answer.unknown_item_ids,
        model_versions=versions,
    )
    msg.segment.rfm_code = seg.rfm_code
    msg.segment.rfm_group = seg.rfm_group
    msg.segment.lifecycle_stage = seg.lifecycle_stage
    add_cross = msg.cross_sell.add
    for c in answer.cross_sell:
        add_cross(item_id=c.item_id, score=c.score, reason=c.reason)
    add_up = msg.up_sell.add
    for u in answer.up_sell:
        add_up(item_id=u.item_id, anchor_item_id=u.anchor_item_id, score=u.score)
    add_rec = msg.recommended.add
    for r in answer.recommended:
        add_rec(item_id=r.item_id, score=r.score)
    stamps: dict[datetime, Timestamp] = {}  # offers of one answer share their expiry
    for b, offer_id in zip(answer.bonus_offers, ids, strict=True):
        _fill_bonus(msg.bonus_offers.add(), b, offer_id, stamps)
    return msg


def _fill_bonus(
    msg: pb.BonusOffer, b: BonusOffer, offer_id: str, stamps: dict[datetime, Timestamp]
) -> None:
    expires = stamps.get(b.expires_at)
    if expires is None:
        expires = stamps[b.expires_at] = _timestamp(b.expires_at)
    msg.offer_id = offer_id
    msg.offer_type = b.offer_type
    msg.bonus = b.bonus
    msg.expires_at.CopyFrom(expires)
    _set_predicted(msg, b.expected_uplift, b.expected_profit)
    if b.threshold is not None:
        msg.threshold = b.threshold
    if b.item_id is not None:
        msg.item_id = b.item_id


def campaign_spec_from_proto(
    msg: pb.CampaignRequest, cfg: ServiceConfig, known_segments: set[str]
) -> CampaignSpec:
    """A validated `CampaignSpec`; the segment must be one the engine knows."""
    campaign_id = _id(msg.campaign_id, "campaign_id")
    budget = _number(msg.budget, "budget", low=0.0)
    share = _number(msg.control_share, "control_share", low=0.0)
    if share >= 1.0:
        raise FieldError("control_share", f"must be in [0, 1), got {share:g}")
    channel = _channel(msg.channel, "channel")
    audience = msg.WhichOneof("audience")
    if audience is None:
        raise FieldError("audience", "set customers or segment")
    if audience == "segment":
        if msg.segment not in known_segments:
            known = ", ".join(sorted(known_segments)) or "none"
            raise FieldError("segment", f"unknown segment {msg.segment!r} (known: {known})")
        return CampaignSpec(campaign_id, channel, budget, share, segment=msg.segment)
    ids = msg.customers.customer_ids
    if not ids:
        raise FieldError("customers.customer_ids", "must not be empty")
    if len(ids) > cfg.limit_campaign_customers:
        raise FieldError(
            "customers.customer_ids",
            f"at most {cfg.limit_campaign_customers} customers, got {len(ids)}",
        )
    for i, cid in enumerate(ids):
        _id(cid, f"customers.customer_ids[{i}]")
    return CampaignSpec(campaign_id, channel, budget, share, customer_ids=tuple(ids))


def _set_predicted(
    msg: pb.BonusOffer | pb.CampaignOffer, uplift: float | None, profit: float | None
) -> None:
    """Set the predicted uplift and profit; left unset (not 0) when nothing was predicted."""
    if uplift is not None and math.isfinite(uplift):
        msg.expected_uplift = uplift
    if profit is not None and math.isfinite(profit):
        msg.expected_profit = profit


def campaign_row_to_proto(row: CampaignRow, offer_id: str) -> pb.CampaignOffer:
    """One streamed campaign message."""
    msg = pb.CampaignOffer(
        customer_id=row.customer_id,
        offer_type=row.offer_type,
        bonus=row.bonus,
        expected_cost=row.expected_cost,
        control=row.control,
        offer_id=offer_id,
    )
    _set_predicted(msg, row.expected_uplift, row.expected_profit)
    if row.item_id is not None:
        msg.item_id = row.item_id
    if row.threshold is not None:
        msg.threshold = row.threshold
    return msg


def outcomes_from_proto(msg: pb.OutcomeBatch, cfg: ServiceConfig) -> list[OutcomeEvent]:
    """Validated outcome events; one bad event rejects the whole batch."""
    if not msg.events:
        raise FieldError("events", "must not be empty")
    if len(msg.events) > cfg.limit_outcome_events:
        raise FieldError(
            "events", f"at most {cfg.limit_outcome_events} events, got {len(msg.events)}"
        )
    out = []
    for i, ev in enumerate(msg.events):
        where = f"events[{i}]"
        kind = _EVENTS.get(ev.event)
        if kind is None:
            names = ", ".join(pb.OutcomeEventType.Name(k) for k in _EVENTS)
            raise FieldError(f"{where}.event", f"must be one of {names}, got {ev.event}")
        if not ev.HasField("ts"):
            raise FieldError(f"{where}.ts", "must be set")
        out.append(
            OutcomeEvent(
                offer_id=_id(ev.offer_id, f"{where}.offer_id"),
                customer_id=_id(ev.customer_id, f"{where}.customer_id"),
                event=kind,
                ts=ev.ts.ToDatetime(tzinfo=UTC),
                revenue=_number(ev.revenue, f"{where}.revenue"),
                bonus=_number(ev.bonus, f"{where}.bonus", low=0.0),
            )
        )
    return out
