"""gRPC service throughput and latency, from a client in another process.

Two engines on the same server stack:

- ``none``: no engine loaded; ``Ping`` (an echo) is the transport ceiling.
- ``bundle_1m``: the real `BundleEngine` over a 1M customers x 100k items model: random but
  realistic purchases (power-law items and customers, baskets with companion items, ~10M
  customer-item pairs), the real CrossSell and UpSell models fitted on them (sharing one
  ALS, as training fits them), random top-100 recommendation lists, segments, and an offer
  book of 1M x 40 options. Building it takes a few minutes (in a spawned process), so the
  built engine is cached under ``$OFFERS_BENCH_CACHE``
  (default ``/tmp/offer-engine-bench/service_1m``) and reused while this file is unchanged
  in its world parameters.

For each engine: ``Ping`` and ``GetOffers`` at each concurrency of `CONCURRENCY` (same client,
same server), reporting requests/s, p50, p99 and server RSS; then one ``StreamCampaignOffers``
to every customer (time from request to the last message received by the client).

To add a workload: put an engine factory in `ENGINES` and a request builder in `WORKLOADS`
(module-level, so the spawned client process finds them by name), and add the pair to `RUNS`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing as mp
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import polars as pl
import scipy.sparse as sp

from features.columns import OfferType
from service.bundle_engine import BundleEngine
from service.config import ServiceConfig
from service.engine import OfferEngine
from service.gen.offers.v1 import offers_pb2 as pb
from service.gen.offers.v1 import offers_pb2_grpc as pb_grpc
from service.hotswap import EngineHolder
from service.metrics import percentile
from service.workers import serve_processes
from training.bonus.book import OfferBook
from training.campaign import Segments
from training.pipeline import up_sell_from_state, up_sell_state
from training.recs.base import IdMap, Interactions
from training.recs.crosssell import TUNED_CROSS_SELL, CrossSell
from training.recs.upsell import TUNED_UP_SELL, UpSell

CONCURRENCY = (1, 8, 32, 64)
CONNECTIONS = 8  # client connections (at most one per concurrent caller)
WARMUP_S = 0.5
MEASURE_S = 3.0

# the 1M x 100k world ------------------------------------------------------------------------
N_CUSTOMERS = 1_000_000
N_ITEMS = 100_000
N_CATEGORIES = 500
N_ORDERS = 3_000_000
BASKET_P = 0.3  # basket size ~ geometric(p): mean 1/p items
COMPANION_SHARE = 0.4  # share of basket items drawn from the first item's companions
TOP_K = 100
SEED = 11
WORLD_VERSION = 2  # bump when the generator or the cache layout changes: rebuilds the cache
AS_OF_DAY = 19_365.0  # epoch day (2023-01-08), one year of history before it
CACHE = Path(os.environ.get("OFFERS_BENCH_CACHE", "/tmp/offer-engine-bench/service_1m"))

# the offer book: (offer type, bonus levels) -> 40 options per customer
BOOK_OPTIONS: tuple[tuple[str, tuple[float, ...]], ...] = (
    (OfferType.CASHBACK, (25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 400.0)),
    (OfferType.SPEND_THRESHOLD, (25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 400.0)),
    (OfferType.CROSS_SELL, (25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 400.0)),
    (OfferType.UP_SELL, (25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 400.0)),
    (OfferType.REACTIVATION, (50.0, 100.0, 200.0, 300.0)),
    (OfferType.EXPIRING_POINTS, (0.0, 0.0, 0.0, 0.0)),
)
RFM_GROUPS = ("champions", "loyal", "potential", "new", "at_risk", "hibernating", "lost")
LIFECYCLE = ("new", "active", "lapsing", "lost")


def customer_ids(n: int = N_CUSTOMERS) -> np.ndarray:
    """``c0000000``... (also what the client process builds its requests from)."""
    return np.char.add("c", np.char.zfill(np.arange(n).astype(str), 7))


def item_ids(n: int = N_ITEMS) -> np.ndarray:
    """``i000000``..."""
    return np.char.add("i", np.char.zfill(np.arange(n).astype(str), 6))


def _power_law(rng: np.random.Generator, n: int, size: int, exponent: float) -> np.ndarray:
    """Ranks drawn with P(rank r) ~ r^-exponent (rank 0 the most popular)."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(size)), n - 1)


def item_by_rank() -> np.ndarray:
    """Item index of each popularity rank (popular items scattered over the catalogue)."""
    return np.random.default_rng(SEED + 1).permutation(N_ITEMS)


def build_interactions(seed: int = SEED) -> Interactions:
    """3M baskets of 1M customers over 100k items: ~10M customer-item pairs."""
    rng = np.random.default_rng(seed)
    by_rank = item_by_rank()
    # every customer orders at least once; the other orders follow a power law of activity
    order_c = np.concatenate(
        [
            rng.permutation(N_CUSTOMERS),
            rng.permutation(N_CUSTOMERS)[_power_law(rng, N_CUSTOMERS, N_ORDERS - N_CUSTOMERS, 0.5)],
        ]
    ).astype(np.int32)
    order_day = AS_OF_DAY - 365.0 + rng.random(N_ORDERS) * 365.0
    order_day = np.sort(order_day)  # orders in time order, as build_interactions sorts them
    size = rng.geometric(BASKET_P, N_ORDERS)
    o = np.repeat(np.arange(N_ORDERS, dtype=np.int64), size)
    first_of = np.repeat(np.cumsum(size) - size, size)
    first = by_rank[_power_law(rng, N_ITEMS, N_ORDERS, 1.0)]
    companions = by_rank[_power_law(rng, N_ITEMS, N_ITEMS * 5, 1.0)].reshape(N_ITEMS, 5)
    lines = by_rank[_power_law(rng, N_ITEMS, o.size, 1.0)]
    head = np.arange(o.size) == first_of
    lines[head] = first
    anchor = first[o]
    pick = ~head & (rng.random(o.size) < COMPANION_SHARE)
    lines[pick] = companions[anchor[pick], rng.integers(0, 5, int(pick.sum()))]
    baskets = sp.csr_matrix(
        (np.ones(o.size, dtype=np.float32), (o, lines)), shape=(N_ORDERS, N_ITEMS)
    )
    baskets.sum_duplicates()
    baskets.data[:] = 1.0
    baskets.sort_indices()
    bo = np.repeat(np.arange(N_ORDERS), np.diff(baskets.indptr))
    pairs = (
        pl.DataFrame({"c": order_c[bo], "i": baskets.indices, "day": order_day[bo]})
        .group_by("c", "i")
        .agg(n=pl.len(), first=pl.col("day").min(), last=pl.col("day").max())
    )
    rows, cols = pairs["c"].to_numpy(), pairs["i"].to_numpy()

    def csr(values: np.ndarray, dtype: type) -> sp.csr_matrix:
        m = sp.csr_matrix((values.astype(dtype), (rows, cols)), shape=(N_CUSTOMERS, N_ITEMS))
        m.sort_indices()
        return m

    item_category = rng.integers(0, N_CATEGORIES, N_ITEMS).astype(np.int32)
    category_scale = np.exp(rng.normal(3.0, 1.0, N_CATEGORIES))
    return Interactions(
        customers=IdMap(customer_ids()),
        items=IdMap(item_ids()),
        matrix=csr(pairs["n"].to_numpy(), np.float32),
        first_day=csr(pairs["first"].to_numpy(), np.float64),
        last_day=csr(pairs["last"].to_numpy(), np.float64),
        baskets=baskets,
        basket_customer=order_c,
        basket_day=order_day,
        categories=np.array([f"cat{c:03d}" for c in range(N_CATEGORIES)]),
        item_category=item_category,
        item_price=category_scale[item_category] * np.exp(rng.normal(0.0, 0.5, N_ITEMS)),
        item_active=rng.random(N_ITEMS) < 0.97,
        as_of=AS_OF_DAY,
        stats={"pairs": int(pairs.height), "orders": N_ORDERS, "lines": int(baskets.nnz)},
    )


def build_book(ids: np.ndarray, seed: int = SEED) -> OfferBook:
    """1M x 40 priced options (float32), well formed: profit = uplift * margin - cost."""
    rng = np.random.default_rng(seed + 2)
    n = ids.size
    offer_types = np.array([t for t, levels in BOOK_OPTIONS for _ in levels], dtype=str)
    bonus = np.array([b for _, levels in BOOK_OPTIONS for b in levels], dtype=np.float64)
    m = bonus.size
    margin = rng.lognormal(6.0, 0.6, n).astype(np.float32)[:, None]
    base = rng.beta(1.0, 12.0, (n, 1)).astype(np.float32)
    gain = rng.uniform(0.0, 0.12, (n, m)).astype(np.float32) * (
        1.0 - np.exp(-bonus / 150.0) + 0.2
    ).astype(np.float32)
    uplift = gain.astype(np.float32)
    cost = ((base + uplift) * 0.5 * bonus.astype(np.float32)).astype(np.float32)
    profit = (uplift * margin - cost).astype(np.float32)
    items = item_ids()
    return OfferBook(
        customer_ids=ids,
        offer_types=offer_types,
        bonus=bonus,
        profit=profit,
        cost=cost,
        uplift=uplift,
        mask=rng.random((n, m)) < 0.8,
        threshold=rng.uniform(200.0, 2000.0, n).astype(np.float32),
        channel=np.array(["email", "app", "sms", ""])[rng.integers(0, 4, n)],
        item=items[rng.integers(0, N_ITEMS, (n, 2))],
    )


def build_segments(ids: np.ndarray, seed: int = SEED) -> Segments:
    """Random RFM codes, groups and lifecycle stages."""
    rng = np.random.default_rng(seed + 3)
    n = ids.size
    digits = rng.integers(1, 6, (n, 3)).astype(str)
    code = np.char.add(np.char.add(np.char.add("R", digits[:, 0]), digits[:, 1]), digits[:, 2])
    return Segments(
        customer_ids=ids,
        rfm_code=code,
        rfm_group=np.array(RFM_GROUPS)[rng.integers(0, len(RFM_GROUPS), n)],
        lifecycle_stage=np.array(LIFECYCLE)[rng.integers(0, len(LIFECYCLE), n)],
    )


def build_recommended(seed: int = SEED) -> np.ndarray:
    """Distinct random top-100 lists per customer (popular items more often)."""
    rng = np.random.default_rng(seed + 4)
    by_rank = item_by_rank()
    start = _power_law(rng, N_ITEMS, N_CUSTOMERS, 0.7)[:, None]
    step = rng.integers(1, (N_ITEMS - 1) // TOP_K, N_CUSTOMERS)[:, None]
    ranks = (start + step * np.arange(TOP_K)[None, :]) % N_ITEMS
    recommended: np.ndarray = by_rank[ranks].astype(np.int32)
    return recommended


def _save(path: Path, engine: BundleEngine, seconds: dict[str, float]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "recommended": engine.recommended,
        "popular": engine.popular,
    }
    params: dict[str, Any] = {"world_version": WORLD_VERSION, "seconds": seconds}
    states = {  # the shared ALS stored once, as in a bundle
        "cross_sell": engine.cross_sell.state(),
        "up_sell": up_sell_state(engine.up_sell, engine.cross_sell),
    }
    for name, (p, a) in states.items():
        params[name] = p
        arrays.update({f"{name}__{k}": v for k, v in a.items()})
    assert engine.book is not None
    p, a = engine.book.state()
    params["book"] = p
    arrays.update({f"book__{k}": v for k, v in a.items()})
    seg = engine.segment_table
    arrays.update(
        {
            "seg__rfm_code": seg.rfm_code,
            "seg__rfm_group": seg.rfm_group,
            "seg__lifecycle_stage": seg.lifecycle_stage,
        }
    )
    tmp = path / "arrays.tmp"
    tmp.mkdir(exist_ok=True)
    for k, v in arrays.items():
        np.save(tmp / f"{k}.npy", v, allow_pickle=False)
    (tmp / "params.json").write_text(json.dumps(params))
    final = path / "arrays"
    if final.exists():
        for f in final.iterdir():
            f.unlink()
        final.rmdir()
    tmp.rename(final)


def _load(path: Path) -> tuple[BundleEngine, dict[str, Any]] | None:
    folder = path / "arrays"
    if not (folder / "params.json").exists():
        return None
    params = json.loads((folder / "params.json").read_text())
    if params.get("world_version") != WORLD_VERSION:
        return None
    arrays = {f.stem: np.load(f, allow_pickle=False) for f in folder.glob("*.npy")}

    def sub(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

    ids = customer_ids()
    cross_sell = CrossSell.from_state(params["cross_sell"], sub("cross_sell__"))
    engine = BundleEngine(
        version="bench",
        customers=IdMap(ids),
        items=IdMap(item_ids()),
        recommended=arrays["recommended"],
        popular=arrays["popular"],
        cross_sell=cross_sell,
        up_sell=up_sell_from_state(params["up_sell"], sub("up_sell__"), cross_sell),
        segments=Segments(customer_ids=ids, **sub("seg__")),
        as_of=datetime(2023, 1, 8),
        book=OfferBook.from_state(params["book"], sub("book__")),
    )
    return engine, params


def build_engine(cache: Path = CACHE) -> BundleEngine:
    """The 1M x 100k engine, always loaded from the cache (built first when missing); prints
    build figures.

    The cache is built in a spawned process: building runs polars and ALS thread pools, and a
    process that has started them must not fork the servers (a forked child inherits the pools'
    locks but not their threads, and its first parallel polars call hangs)."""
    if _load(cache) is None:
        builder = mp.get_context("spawn").Process(target=_build_cache, args=(cache,))
        builder.start()
        builder.join()
        if builder.exitcode != 0:
            raise RuntimeError(f"building the engine cache failed (exit {builder.exitcode})")
    started = time.perf_counter()
    loaded = _load(cache)
    if loaded is None:
        raise RuntimeError(f"the engine cache at {cache} was not written")
    engine, params = loaded
    for k, v in params["seconds"].items():
        print(f"build {k} (cached run): {v:.1f} s")
    print(f"engine load from cache: {time.perf_counter() - started:.1f} s", flush=True)
    return engine


def _build_cache(cache: Path) -> None:
    """Child process: build the engine and write it to ``cache``."""
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    data = build_interactions()
    seconds["interactions"] = time.perf_counter() - t
    print(f"interactions: {data.matrix.nnz} pairs, {data.baskets.nnz} basket lines", flush=True)
    cross_sell, up_sell = CrossSell(TUNED_CROSS_SELL), UpSell(TUNED_UP_SELL)
    t = time.perf_counter()
    cross_sell.fit(data)
    seconds["cross_sell_fit"] = time.perf_counter() - t
    t = time.perf_counter()
    up_sell.fit(data, cf=cross_sell.cf)  # one ALS for both, as `fit_production` fits them
    seconds["up_sell_fit"] = time.perf_counter() - t
    for name in ("cross_sell_fit", "up_sell_fit"):
        print(f"build {name}: {seconds[name]:.1f} s", flush=True)
    t = time.perf_counter()
    ids = customer_ids()
    popular = np.argsort(-cross_sell.popularity, kind="stable")[:TOP_K].astype(np.int32)
    engine = BundleEngine(
        version="bench",
        customers=data.customers,
        items=data.items,
        recommended=build_recommended(),
        popular=popular,
        cross_sell=cross_sell,
        up_sell=up_sell,
        segments=build_segments(ids),
        as_of=datetime(2023, 1, 8),
        book=build_book(ids),
    )
    seconds["recommended_segments_book"] = time.perf_counter() - t
    del data
    t = time.perf_counter()
    _save(cache, engine, seconds)
    print(f"engine cached to {cache}: {time.perf_counter() - t:.1f} s", flush=True)


# the benchmark ------------------------------------------------------------------------------

# engine name -> factory (None: no engine loaded; enough for Ping)
ENGINES: dict[str, Callable[[], OfferEngine] | None] = {
    "none": None,
    "bundle_1m": build_engine,
}


def _get_offers(stub: Any) -> Callable[[], Any]:
    """GetOffers for random customers (2% unknown) in a mix of pages: 40% a cart of 1-4 items
    (half of them also viewing an item), 30% viewing an item, 30% no context (home page)."""
    rng = np.random.default_rng(os.getpid())
    n = 4096
    by_rank = item_by_rank()
    items = item_ids()
    custs = rng.integers(0, int(N_CUSTOMERS * 1.02), n)
    sizes = rng.integers(1, 5, n)
    draws = items[by_rank[_power_law(rng, N_ITEMS, int(sizes.sum()) + n, 1.0)]]
    requests = []
    at = 0
    page = rng.random(n)
    for r in range(n):
        cart = draws[at : at + sizes[r]].tolist() if page[r] < 0.4 else []
        at += sizes[r]
        viewed = str(draws[at]) if (page[r] < 0.2 or 0.4 <= page[r] < 0.7) else ""
        at += 1
        requests.append(
            pb.GetOffersRequest(
                customer_id=f"c{custs[r]:07d}",
                context=pb.OfferContext(
                    cart_item_ids=cart, viewed_item_id=viewed, channel=pb.CHANNEL_WEB
                ),
            )
        )
    state = {"i": 0}

    def call() -> Any:
        state["i"] = (state["i"] + 1) % n
        return stub.GetOffers(requests[state["i"]])

    return call


# workload name -> (stub) -> async call issuing one request
WORKLOADS: dict[str, Callable[[Any], Callable[[], Any]]] = {
    "ping": lambda stub: lambda: stub.Ping(pb.PingRequest(payload=b"x" * 16)),
    "get_offers": _get_offers,
}

# engine -> workloads at every concurrency, (workload, requests/s) at a fixed rate, and whether
# to stream a campaign to every customer; all against one server holding the engine
# (engine, server processes, workloads at every concurrency, (workload, requests/s) at a fixed
# rate, whether to stream a campaign to every customer): each run gets its own server
RUNS: tuple[tuple[str, int, tuple[str, ...], tuple[tuple[str, float], ...], bool], ...] = (
    ("none", 1, ("ping",), (), False),
    ("none", 2, ("ping",), (), False),
    ("bundle_1m", 1, ("ping", "get_offers"), (("get_offers", 1000.0),), True),
    (
        "bundle_1m",
        2,
        ("ping", "get_offers"),
        (("get_offers", 1000.0), ("get_offers", 1500.0), ("get_offers", 2000.0)),
        False,
    ),
)


def _channels(port: int, n: int) -> list[grpc.aio.Channel]:
    """``n`` channels with a connection each (server processes share out connections)."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    return [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) for _ in range(n)]


def _stub(channel: grpc.aio.Channel) -> Any:
    return pb_grpc.OfferServiceStub(channel)  # type: ignore[no-untyped-call]


def _client(port: int, workload: str, concurrency: int, out: Any) -> None:
    """Child process: ``concurrency`` concurrent callers for MEASURE_S after a warm-up."""

    async def run() -> tuple[int, float, list[float], int]:  # (all answered, ..., measured)
        channels = _channels(port, min(concurrency, CONNECTIONS))
        calls = [WORKLOADS[workload](_stub(ch)) for ch in channels]
        await asyncio.gather(*(ch.channel_ready() for ch in channels))
        try:
            latencies: list[float] = []
            errors = 0
            start = time.perf_counter()
            measure_from = start + WARMUP_S
            end = measure_from + MEASURE_S

            done = 0

            async def caller(call: Callable[[], Any]) -> None:
                nonlocal errors, done
                while True:
                    t0 = time.perf_counter()
                    if t0 >= end:
                        return
                    try:
                        await call()
                    except grpc.aio.AioRpcError:
                        errors += 1
                        continue
                    done += 1
                    if t0 >= measure_from:
                        latencies.append(time.perf_counter() - t0)

            await asyncio.gather(*(caller(calls[n % len(calls)]) for n in range(concurrency)))
            return done, MEASURE_S, latencies, errors
        finally:
            await asyncio.gather(*(ch.close() for ch in channels))

    done, seconds, latencies, errors = asyncio.run(run())
    out.put((done, seconds, sorted(latencies), errors))


def _rate_client(port: int, workload: str, rate: float, out: Any) -> None:
    """Child process: requests started at a fixed ``rate`` per second (open loop).

    Latency counts from the scheduled start, so a server falling behind shows up in the
    percentiles instead of silently slowing the client down (no coordinated omission).
    """

    async def run() -> tuple[int, int, list[float], int]:
        channels = _channels(port, CONNECTIONS)
        calls = [WORKLOADS[workload](_stub(ch)) for ch in channels]
        await asyncio.gather(*(ch.channel_ready() for ch in channels))
        try:
            latencies: list[float] = []
            errors = 0
            start = time.perf_counter() + 0.1
            total = int(rate * (WARMUP_S + MEASURE_S))
            warm = int(rate * WARMUP_S)

            async def one(n: int, due: float) -> None:
                nonlocal errors
                try:
                    await calls[n % len(calls)]()
                except grpc.aio.AioRpcError:
                    errors += 1
                    return
                if n >= warm:
                    latencies.append(time.perf_counter() - due)

            tasks = []
            for n in range(total):
                due = start + n / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.ensure_future(one(n, due)))
            await asyncio.gather(*tasks)
            return total - warm, len(latencies), latencies, errors
        finally:
            await asyncio.gather(*(ch.close() for ch in channels))

    sent, n, latencies, errors = asyncio.run(run())
    out.put((sent, n, sorted(latencies), errors))


def _stream_client(port: int, budget: float, out: Any) -> None:
    """Child process: one campaign to every customer; time to the last message received."""
    with grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 << 20)]
    ) as channel:
        stub = pb_grpc.OfferServiceStub(channel)  # type: ignore[no-untyped-call]
        request = pb.CampaignRequest(
            campaign_id="bench", budget=budget, control_share=0.05, segment="all"
        )
        request.channel = pb.CHANNEL_EMAIL
        t0 = time.perf_counter()
        first = None
        n = offers = 0
        for msg in stub.StreamCampaignOffers(request, timeout=600):
            if first is None:
                first = time.perf_counter() - t0
            n += 1
            offers += msg.offer_type != "none"
        total = time.perf_counter() - t0
    out.put((n, offers, first or 0.0, total))


def _proc_kib(pid: int, name: str, key: str) -> int:
    for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def _server_pids(supervisor: int) -> list[int]:
    """The server's processes: the supervisor and its workers (if it forked any)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [supervisor, *(int(c) for c in children)]


def _server_cpu_s(supervisor: int) -> float:
    """CPU seconds (user + system) used so far by the server's processes."""
    ticks = 0
    for pid in _server_pids(supervisor):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def memory(supervisor: int) -> str:
    """Server memory: RSS of each process (the model's shared pages count in each) and what the
    server group uses on its own: the supervisor's RSS (it maps the whole model) plus each
    worker's private pages (USS: what the workers add)."""
    pids = _server_pids(supervisor)
    rss = [_proc_kib(p, "status", "VmRSS:") / 1024 for p in pids]
    private = [
        (
            _proc_kib(p, "smaps_rollup", "Private_Clean:")
            + _proc_kib(p, "smaps_rollup", "Private_Dirty:")
        )
        / 1024
        for p in pids[1:]
    ]
    each = ", ".join(f"{r:.0f}" for r in rss)
    group = rss[0] + sum(private)
    return f"rss {max(rss):.1f} MiB (per process: {each}), group {group:.1f} MiB"


def measure(
    workload: str, engine: str, concurrency: int, port: int, server: int
) -> dict[str, float]:
    """Run one client process against the running server and print its figures."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_client, args=(port, workload, concurrency, out))
    proc.start()
    cpu = _server_cpu_s(server)
    done, seconds, lat, errors = out.get(timeout=300)
    cpu = _server_cpu_s(server) - cpu
    n = len(lat)
    proc.join()
    tag = f"{workload}[{engine}] c={concurrency}"
    fig = {
        "rps": n / seconds,
        "p50": percentile(lat, 50) * 1000,
        "p99": percentile(lat, 99) * 1000,
    }
    print(f"{tag} throughput: {fig['rps']:.0f} req/s")
    print(f"{tag} p50: {fig['p50']:.3f} ms")
    print(f"{tag} p99: {fig['p99']:.3f} ms")
    print(f"{tag} errors: {errors}")
    print(f"{tag} server cpu per request: {cpu / max(done, 1) * 1000:.3f} ms")
    print(f"{tag} server {memory(server)}", flush=True)
    return fig


def measure_rate(
    workload: str, engine: str, rate: float, port: int, server: int
) -> dict[str, float]:
    """Requests at a fixed rate from one client process; latency percentiles and RSS."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_rate_client, args=(port, workload, rate, out))
    proc.start()
    sent, n, lat, errors = out.get(timeout=300)
    proc.join()
    tag = f"{workload}[{engine}] rate={rate:.0f}/s"
    fig = {"p50": percentile(lat, 50) * 1000, "p99": percentile(lat, 99) * 1000}
    print(f"{tag} answered: {n} of {sent} ({errors} errors)")
    print(f"{tag} p50: {fig['p50']:.3f} ms")
    print(f"{tag} p99: {fig['p99']:.3f} ms")
    print(f"{tag} server {memory(server)}", flush=True)
    return fig


def measure_stream(engine: str, port: int, server: int, budget: float = 5e7) -> None:
    """One campaign to every customer, streamed to a client in another process."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_stream_client, args=(port, budget, out))
    proc.start()
    n, offers, first, total = out.get(timeout=900)
    proc.join()
    tag = f"stream_campaign[{engine}]"
    print(f"{tag} messages: {n} ({offers} offers)")
    print(f"{tag} first message: {first:.2f} s")
    print(f"{tag} last message: {total:.2f} s ({n / max(total, 1e-9):.0f} msg/s)")
    print(f"{tag} server {memory(server)}", flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(engine: OfferEngine | None, config: ServiceConfig, request_log: Path) -> int:
    """Fork a server (`serve_processes`) for ``engine``; its pid once its port accepts.

    The server logs as `offers serve` does (a JSON line per request, INFO), to ``request_log``
    instead of stderr, so its cost is measured. This process never creates a gRPC object
    itself, so forking it stays safe; the clients are spawned (fresh interpreters).
    """
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            handler = logging.FileHandler(request_log)
            handler.setFormatter(logging.Formatter("[offers] %(message)s"))
            logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
            serve_processes(EngineHolder(engine), config)
        except BaseException:  # reported by the exit code
            code = 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection((config.host, config.port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start listening") from None
            time.sleep(0.1)
    time.sleep(1.0)  # every worker binds and loads its servicer
    return pid


def _stop_server(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        print(f"server exit status {os.waitstatus_to_exitcode(status)}")


def main() -> None:
    """Every run of `RUNS`: its workloads at every concurrency, then the campaign stream."""
    only = os.environ.get("OFFERS_BENCH_ENGINES")
    engines: dict[str, OfferEngine | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine, processes, workloads, rates, stream in RUNS:
            if only and engine not in only.split(","):
                continue
            if engine not in engines:
                factory = ENGINES[engine]
                engines[engine] = factory() if factory is not None else None
            log = Path(tmp) / f"events-{engine}-{processes}.jsonl"
            config = ServiceConfig(
                host="127.0.0.1",
                port=_free_port(),
                processes=processes,
                max_concurrent_rpcs=0,
                drain_s=0.0,
                grace_s=1.0,
                outcome_log_path=log,
            )
            tag = f"{engine}/{processes}p"
            requests_log = Path(tmp) / f"requests-{engine}-{processes}.log"
            server = _start_server(engines[engine], config, requests_log)
            print(f"engine {tag} server {memory(server)}", flush=True)
            try:
                for workload in workloads:
                    for c in CONCURRENCY:
                        measure(workload, tag, c, config.port, server)
                for workload, rate in rates:
                    measure_rate(workload, tag, rate, config.port, server)
                if stream:
                    measure_stream(tag, config.port, server)
            finally:
                _stop_server(server)
            size = sum(f.stat().st_size for f in Path(tmp).glob(f"{log.stem}*"))
            print(f"event log {tag}: {size / 2**20:.0f} MiB")
            with requests_log.open() as f:
                lines = sum(1 for _ in f)
            mib = requests_log.stat().st_size / 2**20
            print(f"request log {tag}: {lines} lines, {mib:.0f} MiB")


if __name__ == "__main__":
    main()
