"""Every RPC through a real server and a real stub, around a fake engine."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from features.columns import Col
from service.gen.offers.v1 import offers_pb2 as pb
from service.outcome_log import offers_table, read_log
from tests.service.conftest import Running, StartServer
from tests.service.fakes import FakeEngine


def _request(customer_id: str = "c1", **context: object) -> pb.GetOffersRequest:
    ctx = {"channel": pb.CHANNEL_WEB, **context}
    return pb.GetOffersRequest(customer_id=customer_id, context=pb.OfferContext(**ctx))


def _issued(run: Running) -> list[dict[str, object]]:
    return [r for r in read_log(run.config.outcome_log_path).records if r["type"] == "issued"]


def _event(offer_id: str, customer_id: str, kind: int, revenue: float = 0.0) -> pb.OutcomeEvent:
    ev = pb.OutcomeEvent(offer_id=offer_id, customer_id=customer_id, event=kind, revenue=revenue)
    ev.ts.FromDatetime(datetime(2025, 3, 1, 12, tzinfo=UTC))
    return ev


def test_get_offers_answers_and_logs_each_issued_offer(running: Running) -> None:
    reply = running.stub.GetOffers(
        _request(cart_item_ids=["i1", "zz"], max_cross_sell=2, bonus_ceiling=30.0), timeout=5
    )
    assert reply.customer_id == "c1"
    assert [c.item_id for c in reply.cross_sell] == ["i2", "i3"]
    assert reply.cross_sell[0].reason == "bought with i1"
    assert [u.anchor_item_id for u in reply.up_sell] == ["i1", "zz"]
    assert len(reply.recommended) == 5  # 0 = default (10), the fake has 5
    assert list(reply.unknown_item_ids) == ["zz"]
    assert reply.segment.rfm_group == "champions"
    assert dict(reply.model_versions) == {"recs": "A", "bonus": "A-bonus"}
    threshold_offer, item_offer = reply.bonus_offers
    assert threshold_offer.bonus == 30.0  # capped by the ceiling
    assert threshold_offer.HasField("threshold") and not threshold_offer.HasField("item_id")
    assert item_offer.item_id == "i2" and not item_offer.HasField("threshold")
    assert threshold_offer.expires_at.ToDatetime(tzinfo=UTC) == datetime(2030, 1, 1, tzinfo=UTC)
    logged = {r["offer_id"]: r for r in _issued(running)}
    assert set(logged) == {threshold_offer.offer_id, item_offer.offer_id}
    assert logged[item_offer.offer_id]["channel"] == "web"


def test_a_control_customer_gets_no_bonus_offer_and_is_logged_as_held_out(
    running: Running,
) -> None:
    treated = running.stub.GetOffers(_request("c1"), timeout=5)
    reply = running.stub.GetOffers(_request("c5"), timeout=5)
    assert reply.control_group and not reply.bonus_offers
    assert reply.recommended  # recommendations are not held out
    logged = _issued(running)
    held = [r for r in logged if r["customer_id"] == "c5"]
    assert len(held) == 1
    assert (held[0]["offer_type"], held[0]["bonus"], held[0]["control"]) == ("none", 0.0, True)
    assert held[0]["campaign_id"] == "realtime"  # measured by `offers report campaign`
    assert held[0]["offer_id"] not in {o.offer_id for o in treated.bonus_offers}
    assert {r["campaign_id"] for r in logged if r["customer_id"] == "c1"} == {"realtime"}


def test_unknown_customer_gets_the_engines_cold_start_answer(running: Running) -> None:
    reply = running.stub.GetOffers(_request("stranger", max_recommended=2), timeout=5)
    assert reply.cold_start
    assert [r.item_id for r in reply.recommended] == ["i1", "i2"]
    assert not reply.bonus_offers


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (_request(""), "customer_id"),
        (_request(max_cross_sell=101), "context.max_cross_sell"),
        (_request(max_bonus_offers=21), "context.max_bonus_offers"),
        (_request(bonus_ceiling=-1.0), "context.bonus_ceiling"),
        (_request(channel=pb.CHANNEL_UNSPECIFIED), "context.channel"),
        (_request(cart_item_ids=["i1", ""]), "context.cart_item_ids[1]"),
        (_request("blocked"), "customer_id"),  # the engine's own InvalidRequestError
    ],
)
def test_invalid_get_offers_is_rejected_naming_the_field(
    running: Running, request_: pb.GetOffersRequest, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        running.stub.GetOffers(request_, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(f"{field}: ")


def test_engine_crash_is_internal_without_leaking_details(running: Running) -> None:
    with pytest.raises(grpc.RpcError) as err:
        running.stub.GetOffers(_request("crash"), timeout=5)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "bug" not in err.value.details()


def _campaign(**fields: object) -> pb.CampaignRequest:
    base: dict[str, object] = {
        "campaign_id": "spring",
        "customers": pb.CustomerList(customer_ids=["c1", "c2", "c3", "c4"]),
        "budget": 100.0,
        "channel": pb.CHANNEL_EMAIL,
        "control_share": 0.25,
    }
    return pb.CampaignRequest(**{**base, **fields})


def test_campaign_streams_one_offer_per_customer_each_logged(running: Running) -> None:
    offers = list(running.stub.StreamCampaignOffers(_campaign(), timeout=5))
    assert [o.customer_id for o in offers] == ["c1", "c2", "c3", "c4"]
    assert [o.control for o in offers] == [True, False, False, False]
    assert offers[0].offer_type == "none" and offers[1].expected_profit == 5.0
    logged = {r["offer_id"]: r for r in _issued(running)}
    assert set(logged) == {o.offer_id for o in offers}
    assert {r["campaign_id"] for r in logged.values()} == {"spring"}
    assert {r["channel"] for r in logged.values()} == {"email"}


def test_campaign_by_segment(running: Running) -> None:
    request = _campaign(segment="lapsed", control_share=0.0)
    offers = list(running.stub.StreamCampaignOffers(request, timeout=5))
    assert [o.customer_id for o in offers] == ["c3", "c4"]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (_campaign(budget=-1.0), "budget"),
        (_campaign(control_share=1.0), "control_share"),
        (_campaign(control_share=-0.1), "control_share"),
        (_campaign(segment="vip"), "segment"),
        (_campaign(campaign_id=""), "campaign_id"),
        (_campaign(channel=pb.CHANNEL_UNSPECIFIED), "channel"),
        (_campaign(customers=pb.CustomerList()), "customers.customer_ids"),
    ],
)
def test_invalid_campaign_is_rejected_naming_the_field(
    running: Running, request_: pb.CampaignRequest, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        list(running.stub.StreamCampaignOffers(request_, timeout=5))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(f"{field}: ")


def test_record_outcome_feeds_the_offers_table(running: Running) -> None:
    offer = running.stub.GetOffers(_request(max_bonus_offers=1), timeout=5).bonus_offers[0]
    events = [
        _event(offer.offer_id, "c1", pb.OUTCOME_EVENT_TYPE_SHOWN),
        _event(offer.offer_id, "c1", pb.OUTCOME_EVENT_TYPE_REDEEMED, revenue=120.0),
    ]
    ack = running.stub.RecordOutcome(pb.OutcomeBatch(events=events), timeout=5)
    assert ack.accepted == 2
    export = offers_table(running.config.outcome_log_path)
    row = export.table.row(0, named=True)
    assert (row[Col.OFFER], row[Col.CONVERTED], row[Col.REVENUE]) == (offer.offer_id, True, 120.0)
    assert export.outcome_events == 2 and export.orphan_events == 0


def test_invalid_outcome_rejects_the_whole_batch(running: Running) -> None:
    events = [_event("o1", "c1", pb.OUTCOME_EVENT_TYPE_SHOWN), _event("", "c1", 1)]
    with pytest.raises(grpc.RpcError) as err:
        running.stub.RecordOutcome(pb.OutcomeBatch(events=events), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("events[1].offer_id: ")
    assert read_log(running.config.outcome_log_path).records == []


def test_ping_echoes(running: Running) -> None:
    assert running.stub.Ping(pb.PingRequest(payload=b"abc"), timeout=5).payload == b"abc"


def _health(run: Running, service: str = "offers.v1.OfferService") -> int:
    stub = health_pb2_grpc.HealthStub(run.channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_health_is_serving_once_an_engine_is_loaded(start_server: StartServer) -> None:
    run = start_server(engine=None)
    assert _health(run) == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.RpcError) as err:
        run.stub.GetOffers(_request(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    run.holder.swap(FakeEngine())
    assert _health(run) == health_pb2.HealthCheckResponse.SERVING
    assert _health(run, "") == health_pb2.HealthCheckResponse.SERVING


def test_health_is_not_serving_while_draining(start_server: StartServer) -> None:
    run = start_server(drain_s=0.5)
    assert _health(run) == health_pb2.HealthCheckResponse.SERVING
    done = run.server.stop(1.0)
    assert _health(run) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert run.stub.GetOffers(_request(), timeout=5).customer_id == "c1"  # still answering
    assert done.wait(5)


def test_reflection_lists_the_service(running: Running) -> None:
    services = set(ProtoReflectionDescriptorDatabase(running.channel).get_services())
    assert {"offers.v1.OfferService", "grpc.health.v1.Health"} <= services


def test_hot_swap_under_load_fails_no_request(running: Running) -> None:
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def fire() -> None:
        while not stop.is_set():
            try:
                reply = running.stub.GetOffers(_request(), timeout=5)
                seen.append(reply.model_versions["recs"])
            except grpc.RpcError as err:  # pragma: no cover - the assertion reports it
                errors.append(err)

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    running.holder.swap(FakeEngine("B"))
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert seen[0] == "A" and seen[-1] == "B"
    first_b = seen.index("B")
    # each thread switches once; with two threads at most one A may be in flight after a B
    assert seen[first_b:].count("A") <= 1


def test_overload_is_resource_exhausted(start_server: StartServer) -> None:
    slow = FakeEngine(delay_s=1.0)
    run = start_server(engine=slow, max_concurrent_rpcs=1)
    first = run.stub.GetOffers.future(_request(), timeout=5)
    assert slow.entered.wait(5)
    with pytest.raises(grpc.RpcError) as err:
        run.stub.GetOffers(_request(), timeout=5)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert first.result().customer_id == "c1"


def test_slow_stream_ends_with_deadline_exceeded_and_stops_the_engine(
    start_server: StartServer,
) -> None:
    slow = FakeEngine(row_delay_s=0.05)
    run = start_server(engine=slow, campaign_log_chunk=2)
    many = _campaign(customers=pb.CustomerList(customer_ids=[f"c{n}" for n in range(100)]))
    received = []
    with pytest.raises(grpc.RpcError) as err:
        for offer in run.stub.StreamCampaignOffers(many, timeout=0.4):
            received.append(offer)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert 0 < len(received) < 100
    time.sleep(0.2)
    produced = slow.produced
    time.sleep(0.2)
    assert slow.produced == produced < 100  # the server stopped pulling rows
