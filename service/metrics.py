"""A small in-process metrics recorder: request counts and latency percentiles per RPC.

`MetricsRecorder.record` is called once per request; `summary` returns (and by default
resets) the figures since the last summary; `SummaryLogger` logs them as one JSON line every
few seconds.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter, deque
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

_MAX_SAMPLES = 20_000  # latencies kept per RPC and interval for the percentiles


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0..100) of already sorted values.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.0
    """
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil without floats drifting
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


@dataclass
class _RpcWindow:
    count: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=_MAX_SAMPLES))


@dataclass(frozen=True)
class RpcSummary:
    """Figures of one RPC over one interval."""

    count: int
    statuses: dict[str, int]
    p50_ms: float
    p99_ms: float


class MetricsRecorder:
    """Thread-safe counts and latencies per RPC since the last `summary`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, _RpcWindow] = {}

    def record(self, rpc: str, status: str, latency_ms: float) -> None:
        """Count one finished request."""
        with self._lock:
            w = self._windows.setdefault(rpc, _RpcWindow())
            w.count += 1
            w.statuses[status] += 1
            w.latencies.append(latency_ms)

    def summary(self, reset: bool = True) -> dict[str, RpcSummary]:
        """Per RPC: requests, status counts, p50 and p99 latency (ms) since the last reset."""
        with self._lock:
            windows = self._windows
            if reset:
                self._windows = {}
            else:
                windows = {
                    k: _RpcWindow(w.count, Counter(w.statuses), deque(w.latencies))
                    for k, w in windows.items()
                }
        out = {}
        for rpc, w in sorted(windows.items()):
            lat = sorted(w.latencies)
            out[rpc] = RpcSummary(
                count=w.count,
                statuses=dict(w.statuses),
                p50_ms=round(percentile(lat, 50), 3),
                p99_ms=round(percentile(lat, 99), 3),
            )
        return out


class SummaryLogger:
    """A daemon thread logging `MetricsRecorder.summary` as JSON every ``interval_s``."""

    def __init__(self, metrics: MetricsRecorder, interval_s: float) -> None:
        self._metrics = metrics
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-summary", daemon=True)

    def start(self) -> None:
        """Begin logging."""
        self._thread.start()

    def stop(self) -> None:
        """Log a last summary and end the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._log()
        self._log()

    def _log(self) -> None:
        summary = self._metrics.summary()
        if summary:
            log.info(
                json.dumps(
                    {
                        "event": "summary",
                        "interval_s": self._interval,
                        "rpcs": {k: vars(v) for k, v in summary.items()},
                    }
                )
            )
