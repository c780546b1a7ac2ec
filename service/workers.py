"""Several server processes on one port, sharing one loaded engine.

A Python process runs request handlers on one core at a time, so one process cannot use a
multi-core machine. `serve_processes` is called with the engine already loaded and forks
``config.processes`` workers. Each worker:

- shares the parent's model arrays copy-on-write (they are only read, so never copied);
- binds the same port with ``SO_REUSEPORT``, and the kernel spreads connections over them;
- runs `service.server.serve` without a model poller: its own health status, metrics and
  offer-event log, `worker_log_path` (`offers export-outcomes` reads them together).

The parent supervises and is the only process that talks to the model registry:

- every ``config.reload_poll_s`` it runs ``check``; on a new engine it replaces the workers
  one at a time (each drains and stops gracefully, then a fresh one is forked from the new
  engine), so the other workers keep answering and the new model's arrays are shared again;
- a worker that dies unexpectedly is replaced (at most ``MAX_RESTARTS`` in
  ``RESTART_WINDOW_S``; beyond that everything stops with `WorkerCrashLoopError` rather than
  crash-looping);
- SIGTERM/SIGINT stop every worker gracefully; workers stop by themselves if the parent dies;
- a lock next to the offer-event log keeps a second server group off the same port and logs.

Forking is only safe from a process that has not started threads of its own: neither gRPC
(no server or channel in the parent) nor polars' thread pool (loading an engine does not use
it) may run in the parent before a fork.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
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
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PR_SET_PDEATHSIG = 1


class WorkerCrashLoopError(ValueError):
    """Workers kept dying: more than `MAX_RESTARTS` in `RESTART_WINDOW_S`."""


class ServerInUseError(ValueError):
    """Another server group holds this configuration's offer-event log (and port)."""


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
        with _exclusive(config.outcome_log_path):
            serve(engines, config, check=check)
        return
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info(json.dumps({"event": "signal", "signal": signal.Signals(signum).name}))
        stop.set()

    with _exclusive(config.outcome_log_path):
        previous = {s: signal.signal(s, on_signal) for s in _STOP_SIGNALS}
        workers: dict[int, int] = {}  # pid -> worker index
        try:
            for index in range(config.processes):
                workers[_fork_worker(index, engines, config)] = index
            _supervise(workers, engines, config, check, stop)
        finally:
            _stop_workers(workers, config)
            for s, handler in previous.items():
                signal.signal(s, handler)


@contextlib.contextmanager
def _exclusive(log_path: Path) -> Iterator[None]:
    """Hold ``<log>.lock`` for the server group's lifetime; fail fast if another holds it."""
    lock_path = log_path.with_name(log_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise ServerInUseError(
                f"{lock_path}: in use by pid {holder}: another server group writes these "
                "offer-event logs (stop it, or give this one another outcome_log_path)"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield


def _fork_worker(index: int, engines: EngineHolder, config: ServiceConfig) -> int:
    # stop signals stay blocked across the fork, so none reaches the child before it has
    # installed its own handlers (serve's) nor is lost by the parent
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    pid = os.fork()
    if pid:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        log.info(json.dumps({"event": "worker_started", "worker": index, "pid": pid}))
        return pid
    code = 0
    try:  # the child: serve until signalled, never return into the parent's code
        for s in _STOP_SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        _stop_with_parent()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        path = worker_log_path(config.outcome_log_path, index, config.processes)
        serve(engines, replace(config, outcome_log_path=path), check=None)
    except BaseException:  # reported, then the worker exits non-zero
        log.exception("worker %d failed", index)
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def _stop_with_parent() -> None:
    """Ask Linux for a SIGTERM when the parent dies (no orphaned workers holding the port)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _supervise(
    workers: dict[int, int],
    engines: EngineHolder,
    config: ServiceConfig,
    check: EngineCheck | None,
    stop: threading.Event,
) -> None:
    """Replace dead workers, and every worker on a new model, until ``stop`` is set."""
    deaths: deque[float] = deque()
    next_check = time.monotonic() + config.reload_poll_s
    while not stop.wait(_REAP_EVERY_S):
        for pid, status in _reap(workers):
            index = workers.pop(pid)
            log.error(json.dumps({"event": "worker_died", "worker": index, "status": status}))
            now = time.monotonic()
            deaths.append(now)
            while deaths and now - deaths[0] > RESTART_WINDOW_S:
                deaths.popleft()
            if len(deaths) > MAX_RESTARTS:
                raise WorkerCrashLoopError(
                    f"{len(deaths)} worker deaths in {RESTART_WINDOW_S:.0f} s: stopping"
                )
            workers[_fork_worker(index, engines, config)] = index
        if check is not None and time.monotonic() >= next_check:
            next_check = time.monotonic() + config.reload_poll_s
            _reload(workers, engines, config, check, stop)


def _reload(
    workers: dict[int, int],
    engines: EngineHolder,
    config: ServiceConfig,
    check: EngineCheck,
    stop: threading.Event,
) -> None:
    """Load a new engine if ``check`` has one, then roll it out one worker at a time."""
    try:
        engine = check()
    except Exception:  # the registry is down or the bundle is bad: keep serving the old one
        log.exception("model reload check failed; still serving the loaded model")
        return
    if engine is None:
        return
    engines.swap(engine)
    log.info(json.dumps({"event": "rolling_restart", "versions": engine.versions()}))
    for pid, index in list(workers.items()):
        if stop.is_set():
            return
        del workers[pid]
        _stop_worker(pid, index, config)
        workers[_fork_worker(index, engines, config)] = index


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


def _stop_worker(pid: int, index: int, config: ServiceConfig) -> None:
    """Stop one worker gracefully (SIGKILL if it overruns)."""
    _stop_workers({pid: index}, config)


def _stop_workers(workers: dict[int, int], config: ServiceConfig) -> None:
    """SIGTERM every worker at once, wait for their graceful stop, SIGKILL what overruns."""
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + config.drain_s + config.grace_s + 5.0
    while workers and time.monotonic() < deadline:
        for pid, status in _reap(workers):
            index = workers.pop(pid)
            log.info(json.dumps({"event": "worker_stopped", "worker": index, "status": status}))
        time.sleep(0.02)
    for pid, index in list(workers.items()):
        log.error(json.dumps({"event": "worker_killed", "worker": index, "pid": pid}))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        del workers[pid]
