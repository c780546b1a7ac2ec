"""Several server processes on one port, sharing one loaded engine.

A Python process runs request handlers on one core at a time, so one process cannot use a
multi-core machine. `serve_processes` is called with the engine already loaded and forks
``config.processes`` workers. Each worker:

- shares the parent's model arrays copy-on-write (they are only read, so never copied);
- binds the same port with ``SO_REUSEPORT``, and the kernel spreads connections over them;
- runs `service.server.serve` without a model poller: its own health status, metrics and
  offer-event log, `worker_log_path` (`offers export-outcomes` reads them together).

The parent supervises and is the only process that talks to the model registry:

- every ``config.reload_poll_s`` it runs ``check`` (on a thread, so a slow registry never
  stops it supervising); on a new engine it replaces the workers one at a time: a worker
  drains and stops gracefully, a fresh one is forked from the new engine, and the next worker
  is only replaced once that one answers, so the others keep answering and the new model's
  arrays are shared again. A new worker that does not come up (dies, or is not serving within
  ``READY_TIMEOUT_S``) stops the roll-out: the old model is swapped back and re-forked;
- a worker that dies unexpectedly is replaced (at most ``MAX_RESTARTS`` in
  ``RESTART_WINDOW_S``; beyond that everything stops with `WorkerCrashLoopError` rather than
  crash-looping);
- SIGTERM/SIGINT stop every worker gracefully; workers stop by themselves if the parent dies;
- a second server group is refused: the port must be free when the group starts (checked
  by a plain bind), and a lock next to the offer-event logs keeps two groups off one log.

Forking copies only the forking thread, so nothing the workers use may be held by another
thread of the parent: no gRPC object is ever made in the parent, loading an engine does not
use polars' thread pool, and no fork happens while a model check runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import select
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import NoReturn

from service.config import ServiceConfig
from service.engine import OfferEngine
from service.hotswap import EngineCheck, EngineHolder
from service.server import serve

log = logging.getLogger(__name__)

MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
READY_TIMEOUT_S = 120.0  # a new worker must answer within this long
_REAP_EVERY_S = 0.2
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PR_SET_PDEATHSIG = 1


class WorkerCrashLoopError(ValueError):
    """Workers kept dying: more than `MAX_RESTARTS` in `RESTART_WINDOW_S`."""


class WorkerStartError(ValueError):
    """A new worker died or did not answer within `READY_TIMEOUT_S`."""


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

    _check_port_free(config.host, config.port)
    with _exclusive(config.outcome_log_path):
        previous = {s: signal.signal(s, on_signal) for s in _STOP_SIGNALS}
        workers: dict[int, int] = {}  # pid -> worker index
        try:
            for index in range(config.processes):
                workers[_start_worker(index, engines, config)] = index
            _supervise(workers, engines, config, check, stop)
        finally:
            _stop_workers(workers, config)
            for s, handler in previous.items():
                signal.signal(s, handler)


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port another server listens on (a bind without SO_REUSEPORT fails then)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            raise ServerInUseError(f"{host}:{port}: cannot listen ({err.strerror})") from None


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


def _start_worker(index: int, engines: EngineHolder, config: ServiceConfig) -> int:
    """Fork worker ``index`` and return its pid once it answers; `WorkerStartError` if it
    dies or is not serving within `READY_TIMEOUT_S`."""
    read_end, write_end = os.pipe()
    parent = os.getpid()
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        raise
    finally:
        if os.getpid() == parent:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    if pid == 0:
        os.close(read_end)
        _run_worker(index, engines, config, parent, write_end)
    os.close(write_end)
    try:
        ready = _wait_ready(read_end, pid)
    finally:
        os.close(read_end)
    if not ready:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise WorkerStartError(f"worker {index} (pid {pid}) did not start serving")
    log.info(json.dumps({"event": "worker_started", "worker": index, "pid": pid}))
    return pid


def _wait_ready(read_end: int, pid: int) -> bool:
    """Whether the worker wrote its ready byte (False: it exited or timed out first)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        readable, _, _ = select.select([read_end], [], [], 0.1)
        if readable:
            return os.read(read_end, 1) == b"1"  # b"": the worker exited before it was ready
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    return False


def _run_worker(
    index: int, engines: EngineHolder, config: ServiceConfig, parent: int, ready_fd: int
) -> NoReturn:
    """The child: serve until signalled; never return into the parent's code."""
    code = 0
    try:
        for s in _STOP_SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        _stop_with_parent(parent)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

        def ready() -> None:
            os.write(ready_fd, b"1")
            os.close(ready_fd)

        path = worker_log_path(config.outcome_log_path, index, config.processes)
        serve(engines, replace(config, outcome_log_path=path), check=None, on_ready=ready)
    except BaseException:  # reported, then the worker exits non-zero
        log.exception("worker %d failed", index)
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def _stop_with_parent(parent: int) -> None:
    """Ask Linux for a SIGTERM when the parent dies (no orphaned workers holding the port)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
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
    checker = _Checker(check) if check is not None else None
    next_check = time.monotonic() + config.reload_poll_s
    while not stop.wait(_REAP_EVERY_S):
        if checker is not None and checker.running:
            continue  # no fork while a check (its threads) runs; dead workers wait a moment
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
            workers[_start_worker(index, engines, config)] = index
        if checker is None:
            continue
        engine = checker.result()
        if engine is not None:
            _roll_out(workers, engines, engine, config, stop)
        if time.monotonic() >= next_check:
            next_check = time.monotonic() + config.reload_poll_s
            checker.start()


class _Checker:
    """Runs the model check on a thread; its result is picked up by the supervisor loop."""

    def __init__(self, check: EngineCheck) -> None:
        self._check = check
        self._thread: threading.Thread | None = None
        self._engine: OfferEngine | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._thread = threading.Thread(target=self._run, name="model-check", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._engine = self._check()
        except Exception:  # the registry is down or the bundle is bad: keep the loaded model
            log.exception("model reload check failed; still serving the loaded model")

    def result(self) -> OfferEngine | None:
        """The engine a finished check found (once), else None."""
        engine, self._engine = self._engine, None
        return engine


def _roll_out(
    workers: dict[int, int],
    engines: EngineHolder,
    engine: OfferEngine,
    config: ServiceConfig,
    stop: threading.Event,
) -> None:
    """Replace the workers one at a time with ``engine``; back to the old one on a failure."""
    previous = engines.swap(engine)
    log.info(json.dumps({"event": "rolling_restart", "versions": engine.versions()}))
    moved: list[int] = []  # worker indices now on the new model
    for pid, index in list(workers.items()):
        if stop.is_set():
            return
        del workers[pid]
        _stop_worker(pid, index, config)
        try:
            workers[_start_worker(index, engines, config)] = index
            moved.append(index)
        except WorkerStartError:
            log.exception("the new model's worker did not start; rolling back")
            if previous is None:
                raise
            engines.swap(previous)
            workers[_start_worker(index, engines, config)] = index
            for other_pid, other in list(workers.items()):
                if other in moved:
                    del workers[other_pid]
                    _stop_worker(other_pid, other, config)
                    workers[_start_worker(other, engines, config)] = other
            log.error(json.dumps({"event": "rollout_failed", "kept": previous.versions()}))
            return


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
