"""The engine holder and the reload poller."""

from __future__ import annotations

import pytest

from service.engine import EngineUnavailableError, OfferEngine
from service.hotswap import EngineHolder, EnginePoller
from service.metrics import MetricsRecorder, percentile
from tests.service.fakes import FakeEngine


def test_an_empty_holder_is_unavailable_until_a_swap() -> None:
    holder = EngineHolder()
    seen: list[OfferEngine] = []
    holder.subscribe(seen.append)
    with pytest.raises(EngineUnavailableError):
        holder.current()
    engine = FakeEngine()
    assert holder.swap(engine) is None
    assert holder.current() is engine and seen == [engine]


def test_poller_swaps_new_engines_and_survives_a_failing_check() -> None:
    a, b = FakeEngine("A"), FakeEngine("B")
    results: list[object] = [None, RuntimeError("registry down"), b]
    holder = EngineHolder(a)

    def check() -> FakeEngine | None:
        r = results.pop(0)
        if isinstance(r, Exception):
            raise r
        return r  # type: ignore[return-value]

    poller = EnginePoller(holder, check, interval_s=60)
    assert [poller.poll_once() for _ in range(3)] == [False, False, True]
    assert holder.current() is b
    assert (poller.swaps, poller.failures) == (1, 1)


def test_metrics_summary_has_counts_and_percentiles_then_resets() -> None:
    m = MetricsRecorder()
    for ms in range(1, 101):
        m.record("GetOffers", "OK", float(ms))
    m.record("GetOffers", "INVALID_ARGUMENT", 0.5)
    s = m.summary()["GetOffers"]
    assert (s.count, s.statuses) == (101, {"OK": 100, "INVALID_ARGUMENT": 1})
    assert (s.p50_ms, s.p99_ms) == (50.0, 99.0)
    assert m.summary() == {}
    assert percentile([], 50) == 0.0
