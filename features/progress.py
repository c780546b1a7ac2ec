"""Per-stage progress lines: what runs, how many rows, how long it took.

Long steps log one line when a stage starts and one when it ends, e.g.
``[offers] features: 1,204,331 rows in 4.2 s``. Logging goes to stderr through the standard
``logging`` module (logger name ``offers``), so a caller can silence or redirect it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger("offers")


@dataclass
class Stage:
    """A running stage; set ``rows`` (or ``detail``) inside the block to have it logged."""

    name: str
    rows: int | None = None
    detail: str = ""


@contextmanager
def stage(name: str) -> Iterator[Stage]:
    """Log the start and the end (with rows and seconds) of a named stage."""
    current = Stage(name)
    log.info("%s ...", name)
    started = time.perf_counter()
    yield current
    elapsed = time.perf_counter() - started
    parts = [name + ":"]
    if current.rows is not None:
        parts.append(f"{current.rows:,} rows")
    if current.detail:
        parts.append(current.detail)
    parts.append(f"in {elapsed:.1f} s")
    log.info(" ".join(parts))


def configure_logging(verbose: bool = False) -> None:
    """Send ``offers`` log lines to stderr (INFO, or DEBUG when verbose)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="[offers] %(message)s",
    )
