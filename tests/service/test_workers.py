"""Several server processes on one port: spread, replaced when they die, stopped together.

The server runs in a child Python process (it forks its workers; forking the test process,
which has gRPC running, would not be safe), called with real clients over fresh connections.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.gen.offers.v1 import offers_pb2 as pb
from service.gen.offers.v1 import offers_pb2_grpc as pb_grpc
from service.outcome_log import offers_table
from service.workers import worker_log_path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import os, sys
from pathlib import Path
from service.config import ServiceConfig
from service.hotswap import EngineHolder
from service.workers import serve_processes
from tests.service.fakes import FakeEngine

class PidEngine(FakeEngine):
    def versions(self):
        return {"recs": "A", "pid": str(os.getpid())}

serve_processes(
    EngineHolder(PidEngine()),
    ServiceConfig(host="127.0.0.1", port=int(sys.argv[1]), processes=2,
                  outcome_log_path=Path(sys.argv[2]), drain_s=0.0, grace_s=1.0),
)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ask(port: int, customer: str = "c1") -> pb.GetOffersResponse:
    """One GetOffers over a new connection (the kernel picks the worker per connection)."""
    with grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
    ) as channel:
        reply: pb.GetOffersResponse = pb_grpc.OfferServiceStub(channel).GetOffers(  # type: ignore[no-untyped-call]
            pb.GetOffersRequest(
                customer_id=customer, context=pb.OfferContext(channel=pb.CHANNEL_WEB)
            ),
            timeout=5,
        )
        return reply


def _wait_serving(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                status = (
                    health_pb2_grpc.HealthStub(channel)
                    .Check(health_pb2.HealthCheckRequest(), timeout=1)
                    .status
                )
            if status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        assert time.monotonic() < deadline, "workers never became SERVING"
        time.sleep(0.1)


def _pids(port: int, tries: int = 40) -> set[str]:
    return {_ask(port).model_versions["pid"] for _ in range(tries)}


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port, log = _free_port(), tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(port), str(log)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _wait_serving(port)
        yield proc, port, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_workers_share_the_port_and_stop_together(
    workers: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    proc, port, log = workers
    pids = _pids(port)
    assert len(pids) == 2 and str(proc.pid) not in pids  # two workers answer, not the parent
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    logs = [worker_log_path(log, k, 2) for k in range(2)]
    assert all(p.exists() for p in logs)
    export = offers_table(logs)  # both workers' logs read together
    assert export.issued == 40 * 2  # two bonus offers per answer of the fake engine
    assert export.table["offer_id"].n_unique() == export.issued


def test_a_dead_worker_is_replaced(workers: tuple[subprocess.Popen[bytes], int, Path]) -> None:
    proc, port, _ = workers
    before = _pids(port)
    victim = int(sorted(before)[0])
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:
        pids = _pids(port, tries=20)
        if len(pids) == 2 and str(victim) not in pids:
            break
        assert time.monotonic() < deadline, f"worker {victim} not replaced: {pids}"
        time.sleep(0.2)
    assert proc.poll() is None
