"""A real server on 127.0.0.1, port 0, with a real stub, around a fake engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import numpy as np
import pytest

from features.build import default_as_of
from features.dataset import load_dataset
from service.config import ServiceConfig
from service.gen.offers.v1 import offers_pb2_grpc as pb_grpc
from service.hotswap import EngineHolder
from service.server import OfferServer, create_server
from synth.config import WorldConfig
from synth.world import generate
from tests.service.fakes import FakeEngine
from training.bonus.book import OfferBook
from training.pipeline import Production, TrainConfig, fit_production, save_production_bundle

TINY_CONFIG = replace(TrainConfig(), serve_top_k=20)


@dataclass
class Running:
    server: OfferServer
    port: int
    channel: grpc.Channel
    stub: pb_grpc.OfferServiceStub
    holder: EngineHolder
    config: ServiceConfig

    def stop(self) -> None:
        self.channel.close()
        assert self.server.stop(0).wait(5)


def make_config(tmp_path: Path, **overrides: object) -> ServiceConfig:
    base = ServiceConfig(
        host="127.0.0.1",
        port=0,
        max_workers=4,
        outcome_log_path=tmp_path / "events.jsonl",
        drain_s=0.0,
        grace_s=1.0,
        log_summary_s=60.0,
    )
    return replace(base, **overrides)


StartServer = Callable[..., Running]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """``start_server(engine, **config_overrides)`` -> a started `Running` (engine None: empty)."""
    started: list[Running] = []

    def start(engine: object = "fake", **overrides: object) -> Running:
        cfg = make_config(tmp_path, **overrides)
        holder = EngineHolder(FakeEngine() if engine == "fake" else engine)  # type: ignore[arg-type]
        server, port = create_server(holder, cfg)
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        run = Running(server, port, channel, pb_grpc.OfferServiceStub(channel), holder, cfg)
        started.append(run)
        return run

    yield start
    for run in started:
        run.channel.close()
        run.server.stop(0).wait(5)


@pytest.fixture
def running(start_server: StartServer) -> Running:
    return start_server()


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    generate(WorldConfig(customers=400, items=80, days=150, seed=5), out)
    return out


@pytest.fixture(scope="session")
def tiny_production(tiny_world: Path) -> Production:
    ds = load_dataset(tiny_world)
    return fit_production(ds, TINY_CONFIG, as_of=default_as_of(ds))


@pytest.fixture(scope="session")
def tiny_bundle(tiny_production: Production, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    return save_production_bundle(
        tiny_production, out, fingerprint={"rows": 1}, config=TINY_CONFIG, metrics={"m": 1.0}
    )


def random_book(customer_ids: np.ndarray, seed: int = 0) -> OfferBook:
    """A book of made-up (but well-formed) priced options for ``customer_ids``."""
    rng = np.random.default_rng(seed)
    n = customer_ids.size
    bonus = np.array([0.0, 50.0, 100.0, 200.0, 100.0])
    offer_types = np.array(
        ["expiring_points", "cashback", "cashback", "cashback", "spend_threshold"], dtype=str
    )
    uplift = rng.uniform(0.0, 0.2, (n, bonus.size)).astype(np.float32)
    cost = np.broadcast_to(0.3 * bonus, (n, bonus.size)).astype(np.float32)
    profit = (uplift * 1000 - cost).astype(np.float32)
    return OfferBook(
        customer_ids=customer_ids.astype(str),
        offer_types=offer_types,
        bonus=bonus,
        profit=profit,
        cost=cost,
        uplift=uplift,
        mask=np.ones((n, bonus.size), dtype=bool),
        threshold=np.full(n, 500.0, dtype=np.float32),
        channel=np.full(n, "email").astype(str),
        item=np.full((n, 2), "").astype(str),
    )


@pytest.fixture(scope="session")
def tiny_bundle_with_book(
    tiny_production: Production, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("bundle_book") / "bundle"
    book = random_book(tiny_production.segments["customer_id"].to_numpy())
    return save_production_bundle(
        tiny_production,
        out,
        fingerprint={"rows": 1},
        config=TINY_CONFIG,
        metrics={},
        book=book,
    )
