"""A real server on 127.0.0.1, port 0, with a real stub, around a fake engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
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
from training.pipeline import TrainConfig, fit_production, save_production_bundle


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
def tiny_bundle(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = load_dataset(tiny_world)
    config = replace(TrainConfig(), serve_top_k=20)
    production = fit_production(ds, config, as_of=default_as_of(ds))
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    return save_production_bundle(
        production, out, fingerprint={"rows": 1}, config=config, metrics={"m": 1.0}
    )
