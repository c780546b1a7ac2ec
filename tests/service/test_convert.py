"""Engine answers -> response messages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from service.convert import answer_to_proto
from service.engine import (
    BonusOffer,
    CrossSellItem,
    OfferAnswer,
    ScoredItem,
    Segment,
    UpSellItem,
)
from service.gen.offers.v1 import offers_pb2 as pb

NOON = datetime(2030, 1, 1, 12, 0, 0, 250_000)  # naive: UTC, as the engine writes times


def _answer(expires_at: datetime = NOON) -> OfferAnswer:
    return OfferAnswer(
        customer_id="c1",
        segment=Segment(rfm_code="333", rfm_group="champions", lifecycle_stage="active"),
        cross_sell=(CrossSellItem(item_id="i2", score=1.0, reason="goes with your cart"),),
        up_sell=(UpSellItem(item_id="i9", anchor_item_id="i1", score=0.5),),
        recommended=(ScoredItem(item_id="i3", score=1.0), ScoredItem(item_id="i4", score=0.5)),
        bonus_offers=(
            BonusOffer("spend_threshold", 50.0, expires_at, 0.02, 3.5, threshold=120.0),
            BonusOffer("cross_sell", 20.0, expires_at, None, None, item_id="i2"),
        ),
        unknown_item_ids=("zz",),
    )


@pytest.fixture
def moscow_time() -> Iterator[None]:
    """The server's local time zone is UTC+3."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TZ", "Europe/Moscow")
    time.tzset()
    yield
    mp.undo()
    time.tzset()


def test_every_field_of_the_answer_reaches_the_message() -> None:
    msg = answer_to_proto(_answer(), ["o1", "o2"], {"offer-engine": "7"})
    expected = pb.GetOffersResponse(
        customer_id="c1",
        cross_sell=[pb.CrossSellItem(item_id="i2", score=1.0, reason="goes with your cart")],
        up_sell=[pb.UpSellItem(item_id="i9", anchor_item_id="i1", score=0.5)],
        recommended=[
            pb.RecommendedItem(item_id="i3", score=1.0),
            pb.RecommendedItem(item_id="i4", score=0.5),
        ],
        bonus_offers=[
            pb.BonusOffer(
                offer_id="o1",
                offer_type="spend_threshold",
                bonus=50.0,
                threshold=120.0,
                expected_uplift=0.02,
                expected_profit=3.5,
            ),
            pb.BonusOffer(offer_id="o2", offer_type="cross_sell", bonus=20.0, item_id="i2"),
        ],
        segment=pb.Segment(rfm_code="333", rfm_group="champions", lifecycle_stage="active"),
        unknown_item_ids=["zz"],
        model_versions={"offer-engine": "7"},
    )
    for offer in expected.bonus_offers:
        offer.expires_at.FromDatetime(NOON.replace(tzinfo=UTC))
    assert msg == expected
    assert not msg.bonus_offers[1].HasField("expected_uplift")  # unset, not 0


def test_a_naive_expiry_is_utc_whatever_the_servers_time_zone(moscow_time: None) -> None:
    msg = answer_to_proto(_answer(NOON), ["o1", "o2"], {})
    assert msg.bonus_offers[0].expires_at.ToDatetime(tzinfo=UTC) == NOON.replace(tzinfo=UTC)


def test_an_aware_expiry_keeps_its_instant() -> None:
    in_moscow = datetime(2030, 1, 1, 15, tzinfo=timezone(timedelta(hours=3)))
    msg = answer_to_proto(_answer(in_moscow), ["o1", "o2"], {})
    assert msg.bonus_offers[0].expires_at.ToDatetime(tzinfo=UTC) == datetime(
        2030, 1, 1, 12, tzinfo=UTC
    )


def test_one_offer_id_is_needed_per_bonus_offer() -> None:
    with pytest.raises(ValueError, match="1 offer ids for 2 bonus offers"):
        answer_to_proto(_answer(), ["o1"], {})
