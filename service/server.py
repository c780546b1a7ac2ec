"""Building and running the gRPC server.

`create_server` wires the servicer, health checking and reflection into a server bound to
``config.host:config.port`` and returns it unstarted with the bound port (port 0 picks a free
one). `serve` runs it until SIGTERM or SIGINT, then shuts down gracefully: health goes
NOT_SERVING, balancers get ``drain_s`` to move away, in-flight requests get ``grace_s``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service.config import ServiceConfig
from service.engine import OfferEngine
from service.gen.offers.v1 import offers_pb2_grpc as pb_grpc
from service.hotswap import EngineCheck, EngineHolder, EnginePoller
from service.metrics import MetricsRecorder, SummaryLogger
from service.outcome_log import OfferEventLog
from service.servicer import SERVICE_NAME, OfferServicer

log = logging.getLogger(__name__)

T = TypeVar("T")
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ServerStartError(RuntimeError):
    """The server could not bind its address."""


class OfferServer:
    """The asyncio gRPC server on its own event-loop thread, with the offer-event log, health
    status and metrics it owns; driven from ordinary threads.

    ``stop(grace)`` turns health NOT_SERVING, waits ``config.drain_s`` (new requests are still
    answered), stops the listener giving in-flight requests ``grace`` seconds, then closes the
    log. Like `grpc.Server.stop` it returns at once with an event set when all is done.
    """

    def __init__(
        self,
        loop: _LoopThread,
        server: grpc.aio.Server,
        config: ServiceConfig,
        health_servicer: health.aio.HealthServicer,
        servicer: OfferServicer,
        event_log: OfferEventLog,
        metrics: MetricsRecorder,
    ) -> None:
        self._loop = loop
        self._server = server
        self._config = config
        self.health = health_servicer
        self._servicer = servicer
        self.event_log = event_log
        self.metrics = metrics
        self._summary = SummaryLogger(metrics, config.log_summary_s)
        self._stopping: threading.Event | None = None
        self._stop_lock = threading.Lock()

    def start(self) -> None:
        """Start answering requests (and the periodic log summary)."""
        self._loop.run(self._server.start())
        self._summary.start()

    def stop(self, grace: float | None) -> threading.Event:
        """Drain, stop, close the log; the returned event is set when everything is closed."""
        with self._stop_lock:
            if self._stopping is not None:
                return self._stopping
            self._stopping = done = threading.Event()
        self._loop.run(self.health.enter_graceful_shutdown())

        def shut() -> None:
            try:
                if self._config.drain_s > 0:
                    threading.Event().wait(self._config.drain_s)
                self._loop.run(self._server.stop(grace))
                self._servicer.close()
                self._summary.stop()
            except Exception:  # still close the log and the loop, and report done
                log.exception("error while stopping the server")
            finally:
                try:
                    self.event_log.close()
                finally:
                    self._loop.close()
                    done.set()

        threading.Thread(target=shut, name="offer-server-stop", daemon=True).start()
        return done

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Block until the server stops or ``timeout`` passes; True on timeout (as grpc)."""
        stopping = self._stopping
        if stopping is None:
            return bool(self._loop.run(self._server.wait_for_termination(timeout)))
        return not stopping.wait(timeout)


class _LoopThread:
    """An asyncio event loop running on a daemon thread; `run` executes a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="grpc-aio", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def call(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the loop soon (from any thread)."""
        self.loop.call_soon_threadsafe(fn)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


def create_server(engines: EngineHolder, config: ServiceConfig) -> tuple[OfferServer, int]:
    """An unstarted server for ``engines`` on ``config.host:config.port``, and its bound port.

    Health is NOT_SERVING until ``engines`` holds an engine, SERVING from then on.
    """
    event_log = OfferEventLog(config.outcome_log_path, issued_sync_s=config.issued_sync_s)
    metrics = MetricsRecorder()
    loop = _LoopThread()
    servicer = OfferServicer(engines.current, config, event_log, metrics)
    health_servicer = health.aio.HealthServicer()
    address = f"{config.host}:{config.port}"

    async def build() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server(
            maximum_concurrent_rpcs=config.max_concurrent_rpcs or None,
            options=[
                ("grpc.max_receive_message_length", config.max_receive_message_bytes),
                ("grpc.max_send_message_length", config.max_send_message_bytes),
                # workers of `service.workers` share the port; a lone server refuses a taken one
                ("grpc.so_reuseport", int(config.processes > 1)),
            ],
        )
        pb_grpc.add_OfferServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
        for name in ("", SERVICE_NAME):
            await health_servicer.set(name, _NOT_SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        try:
            port = server.add_insecure_port(address)
        except RuntimeError:
            port = 0
        return server, port

    server, port = loop.run(build())
    if port == 0:
        loop.close()
        servicer.close()
        event_log.close()
        raise ServerStartError(f"cannot bind {address}")

    def ready(engine: OfferEngine) -> None:
        async def serving() -> None:
            for name in ("", SERVICE_NAME):
                await health_servicer.set(name, _SERVING)

        loop.call(lambda: asyncio.ensure_future(serving()))

    engines.subscribe(ready)
    return OfferServer(loop, server, config, health_servicer, servicer, event_log, metrics), port


def serve(
    engines: EngineHolder,
    config: ServiceConfig,
    *,
    check: EngineCheck | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Run the server until SIGTERM/SIGINT, reloading engines with ``check`` if given;
    ``on_ready`` is called once the server answers."""
    server, port = create_server(engines, config)
    poller = EnginePoller(engines, check, config.reload_poll_s) if check is not None else None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info(json.dumps({"event": "signal", "signal": signal.Signals(signum).name}))
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        if poller is not None:
            poller.start()
        if on_ready is not None:
            on_ready()
        log.info(
            json.dumps(
                {
                    "event": "serving",
                    "host": config.host,
                    "port": port,
                    "log": str(config.outcome_log_path),
                }
            )
        )
        stop.wait()
    finally:
        if poller is not None:
            poller.stop()
        server.stop(config.grace_s).wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
        log.info(json.dumps({"event": "stopped"}))
