"""Building and running the gRPC server.

`create_server` wires the servicer, health checking and reflection into a server bound to
``config.host:config.port`` and returns it unstarted with the bound port (port 0 picks a free
one). `serve` runs it until SIGTERM or SIGINT, then shuts down gracefully: health goes
NOT_SERVING, balancers get ``drain_s`` to move away, in-flight requests get ``grace_s``.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from concurrent import futures
from types import FrameType
from typing import Any

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

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ServerStartError(RuntimeError):
    """The server could not bind its address."""


class OfferServer(grpc.Server):  # type: ignore[misc]  # grpc ships no type hints
    """A `grpc.Server` that also owns the offer-event log, health status and metrics.

    ``stop(grace)`` turns health NOT_SERVING, waits ``config.drain_s`` (new requests are still
    answered), stops the listener giving in-flight requests ``grace`` seconds, then closes the
    log. Like `grpc.Server.stop` it returns at once with an event set when all is done.
    """

    def __init__(
        self,
        server: grpc.Server,
        config: ServiceConfig,
        health_servicer: health.HealthServicer,
        event_log: OfferEventLog,
        metrics: MetricsRecorder,
    ) -> None:
        self._server = server
        self._config = config
        self.health = health_servicer
        self.event_log = event_log
        self.metrics = metrics
        self._summary = SummaryLogger(metrics, config.log_summary_s)
        self._stopping: threading.Event | None = None
        self._stop_lock = threading.Lock()

    def start(self) -> None:
        """Start answering requests (and the periodic log summary)."""
        self._server.start()
        self._summary.start()

    def stop(self, grace: float | None) -> threading.Event:
        """Drain, stop, close the log; the returned event is set when everything is closed."""
        with self._stop_lock:
            if self._stopping is not None:
                return self._stopping
            self._stopping = done = threading.Event()
        self.health.enter_graceful_shutdown()

        def shut() -> None:
            if self._config.drain_s > 0:
                threading.Event().wait(self._config.drain_s)
            self._server.stop(grace).wait()
            self._summary.stop()
            self.event_log.close()
            done.set()

        threading.Thread(target=shut, name="offer-server-stop", daemon=True).start()
        return done

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Block until the server stops (or ``timeout`` passes)."""
        return bool(self._server.wait_for_termination(timeout))

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Any) -> None:
        """Delegate to the wrapped server."""
        self._server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: Any, method_handlers: Any) -> None:
        """Delegate to the wrapped server."""
        self._server.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        """Delegate to the wrapped server."""
        return int(self._server.add_insecure_port(address))

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        """Delegate to the wrapped server."""
        return int(self._server.add_secure_port(address, server_credentials))


def create_server(engines: EngineHolder, config: ServiceConfig) -> tuple[OfferServer, int]:
    """An unstarted server for ``engines`` on ``config.host:config.port``, and its bound port.

    Health is NOT_SERVING until ``engines`` holds an engine, SERVING from then on.
    """
    event_log = OfferEventLog(config.outcome_log_path, issued_sync_s=config.issued_sync_s)
    metrics = MetricsRecorder()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="rpc"),
        maximum_concurrent_rpcs=config.max_concurrent_rpcs or None,
        options=[
            ("grpc.max_receive_message_length", config.max_receive_message_bytes),
            ("grpc.max_send_message_length", config.max_send_message_bytes),
            # workers of `service.workers` share the port; a lone server refuses a taken port
            ("grpc.so_reuseport", int(config.processes > 1)),
        ],
    )
    pb_grpc.add_OfferServiceServicer_to_server(  # type: ignore[no-untyped-call]
        OfferServicer(engines.current, config, event_log, metrics), server
    )
    health_servicer = health.HealthServicer()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, _NOT_SERVING)

    def ready(engine: OfferEngine) -> None:
        for name in ("", SERVICE_NAME):
            health_servicer.set(name, _SERVING)

    engines.subscribe(ready)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{config.host}:{config.port}"
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as err:
        event_log.close()
        raise ServerStartError(f"cannot bind {address}: {err}") from None
    if port == 0:
        event_log.close()
        raise ServerStartError(f"cannot bind {address}")
    return OfferServer(server, config, health_servicer, event_log, metrics), port


def serve(
    engines: EngineHolder, config: ServiceConfig, *, check: EngineCheck | None = None
) -> None:
    """Run the server until SIGTERM/SIGINT, reloading engines with ``check`` if given."""
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
