"""Swapping the served engine without stopping the server.

`EngineHolder` holds the current engine; a request takes it once at its start and keeps that
engine to the end, so a swap never changes an answer half-way. `EnginePoller` calls a
user-provided ``check()`` every few seconds and swaps in whatever new engine it returns (e.g.
"resolve the champion alias; load the bundle if the version changed, else None").
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from service.engine import EngineUnavailableError, OfferEngine

log = logging.getLogger(__name__)

EngineCheck = Callable[[], OfferEngine | None]


class EngineHolder:
    """The current engine, swapped atomically (a reference swap under a lock)."""

    def __init__(self, engine: OfferEngine | None = None) -> None:
        self._lock = threading.Lock()
        self._engine = engine
        self._listeners: list[Callable[[OfferEngine], None]] = []

    @property
    def loaded(self) -> bool:
        """Whether an engine is there to answer."""
        return self._engine is not None

    def current(self) -> OfferEngine:
        """The engine to use for one whole request."""
        engine = self._engine  # a single reference read: atomic
        if engine is None:
            raise EngineUnavailableError("no engine loaded yet")
        return engine

    def swap(self, engine: OfferEngine) -> OfferEngine | None:
        """Serve ``engine`` from now on; return the previous one (requests may still use it)."""
        with self._lock:
            previous, self._engine = self._engine, engine
            listeners = list(self._listeners)
        for listener in listeners:
            listener(engine)
        log.info(json.dumps({"event": "engine_swapped", "versions": engine.versions()}))
        return previous

    def subscribe(self, listener: Callable[[OfferEngine], None]) -> None:
        """Call ``listener(engine)`` after every swap, and now if an engine is already loaded."""
        with self._lock:
            self._listeners.append(listener)
            engine = self._engine
        if engine is not None:
            listener(engine)


class EnginePoller:
    """A daemon thread calling ``check()`` every ``interval_s`` and swapping in its result.

    A failing ``check`` is logged and counted; the current engine keeps serving.
    """

    def __init__(self, holder: EngineHolder, check: EngineCheck, interval_s: float) -> None:
        self._holder = holder
        self._check = check
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-poller", daemon=True)
        self.swaps = 0
        self.failures = 0

    def poll_once(self) -> bool:
        """Run the check once; True when a new engine was swapped in."""
        try:
            engine = self._check()
        except Exception as err:  # any loader failure must not stop serving
            self.failures += 1
            log.error(json.dumps({"event": "engine_check_failed", "error": repr(err)}))
            return False
        if engine is None:
            return False
        self._holder.swap(engine)
        self.swaps += 1
        return True

    def start(self) -> None:
        """Begin polling."""
        self._thread.start()

    def stop(self) -> None:
        """End polling (waits for a check in progress)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll_once()
