"""The real engine: a bundle trained on a tiny synthetic world, answering through a real server."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest

from service.bundle_engine import BundleEngine
from service.engine import CampaignSpec, Channel, EngineUnavailableError, OfferRequest
from service.gen.offers.v1 import offers_pb2 as pb
from tests.service.conftest import StartServer


@pytest.fixture(scope="module")
def engine(tiny_bundle: Path) -> BundleEngine:
    return BundleEngine.from_bundle(tiny_bundle, version="7")


def _known_customer_and_item(engine: BundleEngine) -> tuple[str, str]:
    row = int(np.flatnonzero((engine.recommended >= 0).all(axis=1))[0])
    return str(engine.customers.ids[row]), str(engine.items.ids[engine.recommended[row, 0]])


def test_the_shared_als_is_stored_once_and_shared_again_on_load(
    tiny_bundle: Path, engine: BundleEngine
) -> None:
    from training.bundle import load_bundle

    bundle = load_bundle(tiny_bundle)
    up_params, up_arrays = bundle.state("up_sell")
    assert up_params["cf_from"] == "cross_sell"
    assert not any(name.startswith("cf__") for name in up_arrays)
    assert any(name.startswith("cf__") for name in bundle.state("cross_sell")[1])
    assert engine.up_sell.cf is not None and engine.up_sell.cf is engine.cross_sell.cf


def test_known_customer_gets_personal_answers_without_cart_items(engine: BundleEngine) -> None:
    customer, top_item = _known_customer_and_item(engine)
    answer = engine.get_offers(
        OfferRequest(customer_id=customer, channel=Channel.WEB, cart_item_ids=(top_item,))
    )
    assert not answer.cold_start
    recommended = [r.item_id for r in answer.recommended]
    assert len(recommended) == 10 and top_item not in recommended
    assert top_item not in [c.item_id for c in answer.cross_sell]
    assert answer.segment.lifecycle_stage and answer.segment.rfm_code.startswith("R")
    for up in answer.up_sell:
        assert up.anchor_item_id == top_item


def test_without_context_up_sell_upgrades_what_the_customer_bought(engine: BundleEngine) -> None:
    answered = 0
    for row in range(len(engine.customers)):
        customer = str(engine.customers.ids[row])
        answer = engine.get_offers(OfferRequest(customer_id=customer, channel=Channel.WEB))
        bought = {str(engine.items.ids[i]) for i in engine.up_sell.recent_anchors(row)}
        for up in answer.up_sell:
            assert up.anchor_item_id in bought and up.item_id not in bought
        answered += bool(answer.up_sell)
    assert answered > 0


def test_cross_sell_never_offers_the_carts_own_category(engine: BundleEngine) -> None:
    customer, item = _known_customer_and_item(engine)
    answer = engine.get_offers(
        OfferRequest(customer_id=customer, channel=Channel.APP, cart_item_ids=(item,))
    )
    category = engine.cross_sell.item_category
    anchor = int(engine.items.index([item])[0])
    for c in answer.cross_sell:
        assert category[int(engine.items.index([c.item_id])[0])] != category[anchor]


def test_unknown_customer_and_items_get_a_cold_start_answer(engine: BundleEngine) -> None:
    answer = engine.get_offers(
        OfferRequest(
            customer_id="never-seen",
            channel=Channel.EMAIL,
            cart_item_ids=("no-such-item",),
            viewed_item_id="also-missing",
        )
    )
    assert answer.cold_start
    assert answer.unknown_item_ids == ("no-such-item", "also-missing")
    assert len(answer.recommended) == 10
    assert answer.segment.lifecycle_stage == "unknown"


def test_campaign_needs_bonus_models_and_a_known_segment(engine: BundleEngine) -> None:
    spec = CampaignSpec("c1", Channel.EMAIL, budget=100.0, control_share=0.1, segment="all")
    with pytest.raises(EngineUnavailableError, match="no offer book"):
        list(engine.campaign(spec))
    assert {"all", "active", "lost"} <= engine.segments()


def test_real_server_answers_with_the_bundle_engine(
    engine: BundleEngine, start_server: StartServer
) -> None:
    customer, item = _known_customer_and_item(engine)
    run = start_server(engine)
    reply = run.stub.GetOffers(
        pb.GetOffersRequest(
            customer_id=customer,
            context=pb.OfferContext(
                cart_item_ids=[item], channel=pb.CHANNEL_WEB, max_recommended=5
            ),
        ),
        timeout=5,
    )
    assert len(reply.recommended) == 5
    assert reply.model_versions["offer-engine"] == "7"
    with pytest.raises(grpc.RpcError) as err:
        run.stub.GetOffers(
            pb.GetOffersRequest(customer_id="", context=pb.OfferContext(channel=pb.CHANNEL_WEB)),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "customer_id" in (err.value.details() or "")


@pytest.fixture(scope="module")
def engine_with_book(tiny_bundle_with_book: Path) -> BundleEngine:
    return BundleEngine.from_bundle(tiny_bundle_with_book, version="8")


def test_bonus_offers_respect_the_ceiling_and_the_control_group(
    engine_with_book: BundleEngine,
) -> None:
    ids = [str(c) for c in engine_with_book.segment_table.customer_ids]
    answers = [
        engine_with_book.get_offers(
            OfferRequest(customer_id=c, channel=Channel.WEB, bonus_ceiling=100.0)
        )
        for c in ids[:200]
    ]
    held_out = [a for a in answers if a.control_group]
    treated = [a for a in answers if not a.control_group]
    assert 0 < len(held_out) < 40  # about 5% real-time control share
    assert all(not a.bonus_offers for a in held_out)
    assert any(a.withheld_offers > 0 for a in held_out)  # denied an offer: logged as hold-out
    assert all(a.withheld_offers == 0 for a in treated)
    assert {a.campaign_id for a in answers} == {"realtime"}
    offered = [o for a in treated for o in a.bonus_offers]
    assert offered and all(o.bonus <= 100.0 and o.expected_profit > 0 for o in offered)
    spend = [o for o in offered if o.offer_type == "spend_threshold"]
    assert all(o.threshold == 500.0 for o in spend)


def test_campaign_stream_is_budgeted_and_reproducible(
    engine_with_book: BundleEngine, start_server: StartServer
) -> None:
    run = start_server(engine_with_book)
    request = pb.CampaignRequest(
        campaign_id="spring",
        segment="all",
        budget=500.0,
        channel=pb.CHANNEL_EMAIL,
        control_share=0.2,
    )
    first = list(run.stub.StreamCampaignOffers(request, timeout=10))
    again = list(run.stub.StreamCampaignOffers(request, timeout=10))
    assert len(first) == len(engine_with_book.segment_table.customer_ids)
    assert sum(m.expected_cost for m in first) <= 500.0 + 1e-3
    assert [(m.customer_id, m.offer_type, m.bonus, m.control) for m in first] == [
        (m.customer_id, m.offer_type, m.bonus, m.control) for m in again
    ]
    assert any(m.control for m in first) and all(m.offer_type == "none" for m in first if m.control)
    with pytest.raises(grpc.RpcError) as err:
        list(
            run.stub.StreamCampaignOffers(
                pb.CampaignRequest(
                    campaign_id="x", segment="vip", budget=1.0, channel=pb.CHANNEL_EMAIL
                ),
                timeout=10,
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
