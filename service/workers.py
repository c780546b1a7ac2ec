"""Several server processes on one port, sharing one loaded engine.

A Python process runs request handlers on one core at a time, so one process cannot use a
multi-core machine. `serve_processes` loads nothing itself: it is called with the engine
already loaded, then forks ``config.processes`` workers. Each worker:

- shares the parent's model arrays copy-on-write (they are only read, so never copied);
- binds the same port with ``SO_REUSEPORT``, and the kernel spreads connections over them;
- runs `service.server.serve`: its own health status, metrics, hot-swap poller (a model
  swapped in later is that worker's own copy) and offer-event log, `worker_log_path`
  (`offers export-outcomes` reads every worker's log together).

The parent only supervises: SIGTERM/SIGINT are forwarded to every worker (each drains and
stops gracefully); a worker that dies unexpectedly is replaced (at most ``MAX_RESTARTS`` in
``RESTART_WINDOW_S``, after which everything stops with an error rather than crash-looping).

gRPC must not be started in the parent before the fork (no server or channel): every gRPC
object is created inside the workers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from types import FrameType

from service.config import ServiceConfig
from service.hotswap import EngineCheck, EngineHolder
from service.server import serve

log = logging.getLogger(__name__)

MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
_REAP_EVERY_S = 0.2


class WorkerCrashLoopError(RuntimeError):
    """Workers kept dying: more than `MAX_RESTARTS` in `RESTART_WINDOW_S`."""


def worker_log_path(path: Path, index: int, processes: int) -> Path:
    """The offer-event log of worker ``index``: ``path`` itself for a single process."""
    if processes == 1:
        return path
    return path.with_name(f"{path.stem}.{index}{path.suffix}")


def serve_processes(
    engines: EngineHolder, config: ServiceConfig, *, check: EngineCheck | None = None
) -> None:
    """Serve with ``config.processes`` workers until SIGTERM/SIGINT (one: `serve` in-process)."""
    if config.processes == 1:
        serve(engines, config, check=check)
        return
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info(json.dumps({"event": "signal", "signal": signal.Signals(signum).name}))
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    workers: dict[int, int] = {}  # pid -> worker index
    try:
        for index in range(config.processes):
            workers[_fork_worker(index, engines, config, check)] = index
        _supervise(workers, engines, config, check, stop)
    finally:
        _stop_workers(workers, config)
        for s, handler in previous.items():
            signal.signal(s, handler)


def _fork_worker(
    index: int, engines: EngineHolder, config: ServiceConfig, check: EngineCheck | None
) -> int:
    pid = os.fork()
    if pid:
        log.info(json.dumps({"event": "worker_started", "worker": index, "pid": pid}))
        return pid
    code = 0
    try:  # the child: serve until signalled, never return into the parent's code
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, signal.SIG_DFL)
        path = worker_log_path(config.outcome_log_path, index, config.processes)
        serve(engines, replace(config, outcome_log_path=path), check=check)
    except BaseException:  # reported, then the worker exits non-zero
        log.exception("worker %d failed", index)
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def _supervise(
    workers: dict[int, int],
    engines: EngineHolder,
    config: ServiceConfig,
    check: EngineCheck | None,
    stop: threading.Event,
) -> None:
    """Replace workers that die until ``stop`` is set; give up on a crash loop."""
    restarts: deque[float] = deque()
    while not stop.wait(_REAP_EVERY_S):
        for pid, status in _reap(workers):
            index = workers.pop(pid)
            log.error(
                json.dumps({"event": "worker_died", "worker": index, "pid": pid, "status": status})
            )
            now = time.monotonic()
            restarts.append(now)
            while restarts and now - restarts[0] > RESTART_WINDOW_S:
                restarts.popleft()
            if len(restarts) > MAX_RESTARTS:
                raise WorkerCrashLoopError(
                    f"{len(restarts)} worker deaths in {RESTART_WINDOW_S:.0f} s: stopping"
                )
            workers[_fork_worker(index, engines, config, check)] = index


def _reap(workers: dict[int, int]) -> list[tuple[int, str]]:
    """Workers that have exited since the last call, with how they ended."""
    ended = []
    for pid in list(workers):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            ended.append((pid, _describe(status)))
    return ended


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def _stop_workers(workers: dict[int, int], config: ServiceConfig) -> None:
    """SIGTERM every worker, wait for the graceful stop, SIGKILL what is left."""
    for pid in workers:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + config.drain_s + config.grace_s + 5.0
    while workers and time.monotonic() < deadline:
        for pid, status in _reap(workers):
            index = workers.pop(pid)
            log.info(json.dumps({"event": "worker_stopped", "worker": index, "status": status}))
        time.sleep(0.05)
    for pid, index in list(workers.items()):
        log.error(json.dumps({"event": "worker_killed", "worker": index, "pid": pid}))
        _signal(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        del workers[pid]


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone; reaped by the caller
        os.kill(pid, signum)
