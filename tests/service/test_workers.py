"""Several server processes on one port: spread, replaced when they die or the model changes,
stopped together, alone on their logs, and answering every RPC with a real bundle.

Each server group runs in a child Python process (it forks its workers; forking the test
process, which has gRPC running, would not be safe) in its own session, so a failed test
kills the whole group; it is called with real clients over fresh connections.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.gen.offers.v1 import offers_pb2 as pb
from service.gen.offers.v1 import offers_pb2_grpc as pb_grpc
from service.outcome_log import offers_table
from service.workers import worker_log_path

ROOT = Path(__file__).resolve().parents[2]
FAKE_SCRIPT = """
import os, sys
from pathlib import Path
from service.config import ServiceConfig
from service.hotswap import EngineHolder
from service.workers import serve_processes
from tests.service.fakes import FakeEngine

class PidEngine(FakeEngine):
    def versions(self):
        return {"recs": self.version, "pid": str(os.getpid())}

import service.workers as workers
from service.server import serve

flag = Path(sys.argv[2] + ".promote")
bad = Path(sys.argv[2] + ".promote-bad")

def check():  # "B" is promoted when the test creates the flag file; "C" cannot start
    for path, version in ((flag, "B"), (bad, "C")):
        if path.exists():
            path.unlink()
            return PidEngine(version)
    return None

def serve_unless_c(engines, config, **kwargs):  # a model whose workers die at start
    if engines.current().version == "C":
        raise RuntimeError("model C is broken")
    serve(engines, config, **kwargs)

workers.serve = serve_unless_c

serve_processes(
    EngineHolder(PidEngine("A")),
    ServiceConfig(host="127.0.0.1", port=int(sys.argv[1]), processes=2, reload_poll_s=0.2,
                  outcome_log_path=Path(sys.argv[2]), drain_s=0.0, grace_s=1.0),
    check=check,
)
"""
BUNDLE_SCRIPT = """
import sys
from pathlib import Path
from service.bundle_engine import BundleEngine
from service.config import ServiceConfig
from service.hotswap import EngineHolder
from service.workers import serve_processes

engine = BundleEngine.from_bundle(sys.argv[3], version="9")
serve_processes(
    EngineHolder(engine),
    ServiceConfig(host="127.0.0.1", port=int(sys.argv[1]), processes=2,
                  outcome_log_path=Path(sys.argv[2]), drain_s=0.0, grace_s=1.0),
)
"""

Group = tuple[subprocess.Popen[bytes], int, Path]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _channel(port: int) -> grpc.Channel:
    """A channel with a connection of its own (the kernel picks the worker per connection)."""
    return grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
    )


_RACED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


def _ask(port: int, customer: str = "c1") -> pb.GetOffersResponse:
    """GetOffers as a well-behaved client sends it (README, "processes"): waiting for a
    connection, and retrying once when a new connection raced a worker that was being replaced
    (the kernel resets it, or the stopping worker cancels the call it had not started)."""
    for attempt in (1, 2):
        with _channel(port) as channel:
            try:
                reply: pb.GetOffersResponse = pb_grpc.OfferServiceStub(channel).GetOffers(  # type: ignore[no-untyped-call]
                    pb.GetOffersRequest(
                        customer_id=customer, context=pb.OfferContext(channel=pb.CHANNEL_WEB)
                    ),
                    timeout=5,
                    wait_for_ready=True,
                )
            except grpc.RpcError as err:
                if attempt == 2 or err.code() not in _RACED:  # type: ignore[attr-defined]
                    raise
                continue
            return reply
    raise AssertionError("unreachable")


def _wait_serving(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with _channel(port) as channel:
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


def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _versions(port: int, tries: int = 20) -> set[tuple[str, str]]:
    """(model version, worker pid) of answers over ``tries`` fresh connections."""
    return {
        (reply.model_versions["recs"], reply.model_versions["pid"])
        for reply in (_ask(port) for _ in range(tries))
    }


def _start(script: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
        stderr=subprocess.PIPE,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    if proc.stderr is not None:
        proc.stderr.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Group]:
    port, log = _free_port(), tmp_path / "events.jsonl"
    proc = _start(FAKE_SCRIPT, str(port), str(log))
    try:
        _wait_serving(port)
        yield proc, port, log
    finally:
        _kill_group(proc)


def test_workers_share_the_port_and_stop_together(workers: Group) -> None:
    proc, port, log = workers
    seen: set[str] = set()
    _until(lambda: len(seen.update(p for _, p in _versions(port)) or seen) == 2, "2 workers")
    assert str(proc.pid) not in seen  # the workers answer, not the parent
    asked = len(seen)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    logs = [worker_log_path(log, k, 2) for k in range(2)]
    assert all(p.exists() for p in logs)
    export = offers_table(logs, reissue_window=None)  # both logs together, every issue
    assert export.issued >= 2 * asked  # two bonus offers per answer of the fake engine
    assert export.table["offer_id"].n_unique() == export.issued


def test_a_dead_worker_is_replaced(workers: Group) -> None:
    proc, port, _ = workers
    seen: set[str] = set()
    _until(lambda: len(seen.update(p for _, p in _versions(port)) or seen) == 2, "2 workers")
    victim = sorted(seen)[0]
    os.kill(int(victim), signal.SIGKILL)

    def replaced() -> bool:
        pids = {p for _, p in _versions(port)}
        return len(pids) == 2 and victim not in pids

    _until(replaced, f"worker {victim} not replaced")
    assert proc.poll() is None


def test_a_new_model_is_rolled_out_to_every_worker(workers: Group) -> None:
    _, port, log = workers
    assert {v for v, _ in _versions(port)} == {"A"}
    log.with_name(log.name + ".promote").touch()
    _until(lambda: {v for v, _ in _versions(port)} == {"B"}, "every worker on B")


def test_a_model_whose_workers_cannot_start_is_rolled_back(workers: Group) -> None:
    proc, port, log = workers
    log.with_name(log.name + ".promote-bad").touch()
    _until(lambda: not log.with_name(log.name + ".promote-bad").exists(), "the check ran")
    time.sleep(1.0)  # the failed start and the roll-back
    assert {v for v, _ in _versions(port)} == {"A"} and proc.poll() is None
    log.with_name(log.name + ".promote").touch()  # a good model still rolls out afterwards
    _until(lambda: {v for v, _ in _versions(port)} == {"B"}, "every worker on B")


@pytest.mark.parametrize("same", ["logs", "port"])
def test_a_second_group_on_the_same_logs_or_port_is_refused(
    workers: Group, tmp_path: Path, same: str
) -> None:
    _, port, log = workers
    if same == "logs":
        second = _start(FAKE_SCRIPT, str(_free_port()), str(log))
        message = b"in use by pid"
    else:
        second = _start(FAKE_SCRIPT, str(port), str(tmp_path / "other" / "events.jsonl"))
        message = b"cannot listen"
    try:
        assert second.wait(30) != 0
        assert second.stderr is not None and message in second.stderr.read()
    finally:
        _kill_group(second)
    assert _ask(port).customer_id == "c1"  # the first group is untouched


def test_a_real_bundle_answers_every_rpc_from_two_workers(
    tiny_bundle_with_book: Path, tmp_path: Path
) -> None:
    port, log = _free_port(), tmp_path / "events.jsonl"
    proc = _start(BUNDLE_SCRIPT, str(port), str(log), str(tiny_bundle_with_book))
    try:
        _wait_serving(port)
        for n in range(4):  # fresh connections reach both workers
            with _channel(port) as channel:
                stub = pb_grpc.OfferServiceStub(channel)  # type: ignore[no-untyped-call]
                request = pb.CampaignRequest(
                    campaign_id=f"c{n}", budget=500.0, control_share=0.1, segment="all"
                )
                request.channel = pb.CHANNEL_EMAIL
                offers = list(stub.StreamCampaignOffers(request, timeout=30))
                assert offers and len({o.customer_id for o in offers}) == len(offers)
                event = pb.OutcomeEvent(
                    offer_id=offers[0].offer_id,
                    customer_id=offers[0].customer_id,
                    event=pb.OUTCOME_EVENT_TYPE_SHOWN,
                )
                event.ts.GetCurrentTime()
                ack = stub.RecordOutcome(pb.OutcomeBatch(events=[event]), timeout=10)
                assert ack.accepted == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        export = offers_table([worker_log_path(log, k, 2) for k in range(2)])
        assert export.outcome_events == 4 and export.orphan_events == 0
    finally:
        _kill_group(proc)
