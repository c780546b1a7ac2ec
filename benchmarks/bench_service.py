"""gRPC service throughput and latency, from a client in another process.

Today it measures the transport ceiling: the ``Ping`` RPC (an echo that touches no engine)
at several client concurrencies. Whatever GetOffers achieves later is bounded by these figures.

To add a workload with a real engine: put an engine factory in `ENGINES` and a request builder
in `WORKLOADS` (both module-level, so the spawned client process can find them by name), then
add the pair to `RUNS`.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc

from service.config import ServiceConfig
from service.engine import OfferEngine
from service.gen.offers.v1 import offers_pb2 as pb
from service.gen.offers.v1 import offers_pb2_grpc as pb_grpc
from service.hotswap import EngineHolder
from service.metrics import percentile
from service.server import create_server

CONCURRENCY = (1, 8, 32, 64)
WARMUP_S = 0.5
MEASURE_S = 3.0

# engine name -> factory (None: no engine loaded; enough for Ping)
ENGINES: dict[str, Callable[[], OfferEngine] | None] = {"none": None}

# workload name -> (stub) -> async call issuing one request
WORKLOADS: dict[str, Callable[[Any], Callable[[], Any]]] = {
    "ping": lambda stub: lambda: stub.Ping(pb.PingRequest(payload=b"x" * 16)),
}

# (workload, engine) pairs measured by main()
RUNS: tuple[tuple[str, str], ...] = (("ping", "none"),)


def _client(port: int, workload: str, concurrency: int, out: Any) -> None:
    """Child process: ``concurrency`` concurrent callers for MEASURE_S after a warm-up."""

    async def run() -> tuple[int, float, list[float]]:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.OfferServiceStub(channel)  # type: ignore[no-untyped-call]
            call = WORKLOADS[workload](stub)
            latencies: list[float] = []
            start = time.perf_counter()
            measure_from = start + WARMUP_S
            end = measure_from + MEASURE_S

            async def caller() -> None:
                while True:
                    t0 = time.perf_counter()
                    if t0 >= end:
                        return
                    await call()
                    if t0 >= measure_from:
                        latencies.append(time.perf_counter() - t0)

            await asyncio.gather(*(caller() for _ in range(concurrency)))
            return len(latencies), MEASURE_S, latencies

    n, seconds, latencies = asyncio.run(run())
    out.put((n, seconds, sorted(latencies)))


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(workload: str, engine: str, concurrency: int, port: int) -> None:
    """Run one client process against the running server and print its figures."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_client, args=(port, workload, concurrency, out))
    proc.start()
    n, seconds, lat = out.get(timeout=120)
    proc.join()
    tag = f"{workload}[{engine}] c={concurrency}"
    print(f"{tag} throughput: {n / seconds:.0f} req/s")
    print(f"{tag} p50: {percentile(lat, 50) * 1000:.3f} ms")
    print(f"{tag} p99: {percentile(lat, 99) * 1000:.3f} ms")
    print(f"{tag} server rss: {_rss_mib():.1f} MiB", flush=True)


def main() -> None:
    """Every pair of `RUNS` at every concurrency of `CONCURRENCY`."""
    with tempfile.TemporaryDirectory() as tmp:
        base = ServiceConfig(
            host="127.0.0.1",
            port=0,
            max_workers=16,
            max_concurrent_rpcs=0,
            drain_s=0.0,
            outcome_log_path=Path(tmp) / "events.jsonl",
        )
        for workload, engine in RUNS:
            factory = ENGINES[engine]
            holder = EngineHolder(factory() if factory is not None else None)
            server, port = create_server(holder, replace(base))
            server.start()
            try:
                for c in CONCURRENCY:
                    measure(workload, engine, c, port)
            finally:
                server.stop(1.0).wait()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"server peak rss: {peak:.1f} MiB")


if __name__ == "__main__":
    main()
