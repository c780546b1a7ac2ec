"""The thin gRPC servicer (asyncio): messages in, engine calls, messages out, status codes.

The only place where engine errors become gRPC status codes:

- `FieldError` (bad request) and `InvalidRequestError` (engine refuses) -> INVALID_ARGUMENT
- `EngineUnavailableError` (no engine yet) and `OutcomeLogError` (disk) -> UNAVAILABLE
- a deadline passed before the answer was ready -> DEADLINE_EXCEEDED
- any other error -> INTERNAL (logged with its traceback)

Where the work runs: `GetOffers` and `Ping` run on the event loop itself (an answer takes about
half a millisecond of CPU; handing it to a thread and back would cost more than it does).
Work that waits or takes seconds runs on a small thread pool so the loop keeps answering:
the campaign plan and its rows (`StreamCampaignOffers`), and every ``fsync`` wait
(`RecordOutcome`; issued offers too when ``issued_sync_s`` is 0).

Each request takes the current engine once and uses it to the end (hot swaps never split a
request). Every request logs one JSON line and is counted in the `MetricsRecorder`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import islice
from types import TracebackType
from typing import Any, TypeVar

import grpc

from features.columns import OfferType
from service.config import ServiceConfig
from service.convert import (
    FieldError,
    answer_to_proto,
    campaign_row_to_proto,
    campaign_spec_from_proto,
    offer_request_from_proto,
    outcomes_from_proto,
)
from service.engine import (
    CampaignRow,
    EngineError,
    EngineUnavailableError,
    InvalidRequestError,
    OfferEngine,
)
from service.gen.offers.v1 import offers_pb2 as pb
from service.gen.offers.v1 import offers_pb2_grpc as pb_grpc
from service.metrics import MetricsRecorder
from service.outcome_log import IssuedOffer, OfferEventLog, OutcomeLogError

log = logging.getLogger("service.requests")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["OfferService"].full_name
T = TypeVar("T")


class _Stopped(Exception):
    """The RPC ended early (deadline passed or client cancelled)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _status_of(err: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(err, (FieldError, InvalidRequestError)):
        return grpc.StatusCode.INVALID_ARGUMENT, str(err)
    if isinstance(err, _Stopped):
        return err.code, str(err)
    if isinstance(err, (EngineUnavailableError, OutcomeLogError)):
        return grpc.StatusCode.UNAVAILABLE, str(err)
    if isinstance(err, EngineError):
        return grpc.StatusCode.INTERNAL, f"engine error: {err}"
    return grpc.StatusCode.INTERNAL, "internal error"


def _ensure_active(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """Stop work whose deadline has passed (a client's cancel arrives as `CancelledError` at
    the handler's next ``await``)."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise _Stopped(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")


class _Call:
    """Times one RPC, logs its JSON line, counts it, and maps a failure to a status code."""

    def __init__(
        self,
        rpc: str,
        context: grpc.aio.ServicerContext[Any, Any],
        metrics: MetricsRecorder,
        **fields: Any,
    ) -> None:
        self.rpc = rpc
        self.context = context
        self.metrics = metrics
        self.fields = fields
        self.versions: dict[str, str] = {}
        self.started = time.perf_counter()

    async def __aenter__(self) -> _Call:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self._finish(grpc.StatusCode.OK)
            return
        if isinstance(exc, GeneratorExit | asyncio.CancelledError):  # the RPC is already over
            remaining = self.context.time_remaining()
            late = remaining is not None and remaining <= 0
            self._finish(grpc.StatusCode.DEADLINE_EXCEEDED if late else grpc.StatusCode.CANCELLED)
            return
        if isinstance(exc, grpc.aio.AbortError):
            return
        code, message = _status_of(exc)
        if code == grpc.StatusCode.INTERNAL:
            log.error("unexpected error in %s", self.rpc, exc_info=(exc_type, exc, tb))  # type: ignore[arg-type]
        self._finish(code)
        await self.context.abort(code, message)  # raises: the RPC ends with this status

    def _finish(self, code: grpc.StatusCode) -> None:
        latency_ms = (time.perf_counter() - self.started) * 1000.0
        self.metrics.record(self.rpc, code.name, latency_ms)
        if log.isEnabledFor(logging.INFO):
            line = {
                "rpc": self.rpc,
                **self.fields,
                "latency_ms": round(latency_ms, 3),
                "status": code.name,
                "versions": self.versions,
            }
            log.info(json.dumps(line))


def new_offer_id() -> str:
    """A random 128-bit offer id (32 hex digits): unique, and not guessable by a caller of
    `RecordOutcome` who knows other ids."""
    return secrets.token_hex(16)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OfferServicer(pb_grpc.OfferServiceServicer):
    """`OfferService` over an engine provider, an offer-event log and a metrics recorder."""

    def __init__(
        self,
        engines: Callable[[], OfferEngine],
        config: ServiceConfig,
        event_log: OfferEventLog,
        metrics: MetricsRecorder,
        *,
        new_offer_id: Callable[[], str] = new_offer_id,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._engines = engines
        self._cfg = config
        self._log = event_log
        self._metrics = metrics
        self._new_id = new_offer_id
        self._clock = clock
        # off the event loop: campaign plans and rows; fsync waits (never queued behind plans)
        self._pool = ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="rpc")
        self._disk = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fsync")

    def close(self) -> None:
        """Stop the worker threads (after the server has stopped); a campaign plan still
        running for a client that has gone is not waited for."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._disk.shutdown(wait=True)

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _on_disk(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._disk, fn, *args)

    async def GetOffers(
        self, request: pb.GetOffersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetOffersResponse:
        """Recommendations and bonus offers; issued offers (or, for a customer of the real-time
        control group who would have got one, a hold-out) are logged before the answer."""
        async with _Call(
            "GetOffers", context, self._metrics, customer_id=request.customer_id
        ) as call:
            req = offer_request_from_proto(request, self._cfg)
            engine = self._engines()
            call.versions = engine.versions()
            _ensure_active(context)
            answer = engine.get_offers(req)
            _ensure_active(context)
            ids = [self._new_id() for _ in answer.bonus_offers]
            now = self._clock()
            issued = [
                IssuedOffer(
                    offer_id=oid,
                    customer_id=answer.customer_id,
                    sent_at=now,
                    offer_type=b.offer_type,
                    bonus=b.bonus,
                    channel=req.channel.value,
                    campaign_id=answer.campaign_id,
                    item_id=b.item_id,
                    threshold=b.threshold,
                )
                for oid, b in zip(ids, answer.bonus_offers, strict=True)
            ]
            if answer.control_group and answer.withheld_offers:  # the comparison group
                issued.append(
                    IssuedOffer(
                        offer_id=self._new_id(),
                        customer_id=answer.customer_id,
                        sent_at=now,
                        offer_type=OfferType.NONE,
                        bonus=0.0,
                        channel=req.channel.value,
                        control=True,
                        campaign_id=answer.campaign_id,
                    )
                )
            if self._cfg.issued_sync_s > 0:  # written now, on disk within issued_sync_s
                self._log.append_issued(issued)
            else:  # waits for the fsync: not on the loop
                await self._on_disk(self._log.append_issued, issued)
            return answer_to_proto(answer, ids, call.versions)

    async def StreamCampaignOffers(
        self, request: pb.CampaignRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.CampaignOffer]:
        """The campaign plan, streamed; each chunk is logged as issued before it is sent."""
        async with _Call(
            "StreamCampaignOffers", context, self._metrics, campaign_id=request.campaign_id
        ) as call:
            engine = self._engines()
            call.versions = engine.versions()
            spec = campaign_spec_from_proto(request, self._cfg, engine.segments())
            rows = iter(engine.campaign(spec))
            channel = spec.channel.value
            sent = 0
            while True:
                _ensure_active(context)
                # the first chunk waits for the plan: seconds for a big audience
                chunk = await self._off_loop(_take, rows, self._cfg.campaign_log_chunk)
                if not chunk:
                    break
                now = self._clock()
                issued = [
                    IssuedOffer(
                        offer_id=self._new_id(),
                        customer_id=r.customer_id,
                        sent_at=now,
                        offer_type=r.offer_type,
                        bonus=r.bonus,
                        channel=channel,
                        control=r.control,
                        campaign_id=spec.campaign_id,
                        item_id=r.item_id,
                        threshold=r.threshold,
                    )
                    for r in chunk
                ]
                await self._on_disk(self._log.append_issued, issued)
                for row, offer in zip(chunk, issued, strict=True):
                    yield campaign_row_to_proto(row, offer.offer_id)
                sent += len(chunk)
                call.fields["sent"] = sent

    async def RecordOutcome(
        self, request: pb.OutcomeBatch, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.OutcomeAck:
        """Append the events to the offer-event log; acknowledge once they are on disk."""
        async with _Call("RecordOutcome", context, self._metrics, events=len(request.events)):
            events = outcomes_from_proto(request, self._cfg)
            await self._on_disk(self._log.append_outcomes, events)
            return pb.OutcomeAck(accepted=len(events))

    async def Ping(
        self, request: pb.PingRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.PingResponse:
        """Echo: the transport ceiling probe (no engine, no log line, only counted)."""
        started = time.perf_counter()
        reply = pb.PingResponse(payload=request.payload)
        self._metrics.record("Ping", "OK", (time.perf_counter() - started) * 1000.0)
        return reply


def _take(rows: Iterator[CampaignRow], n: int) -> list[CampaignRow]:
    return list(islice(rows, n))
