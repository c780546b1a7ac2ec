"""Run every benchmark module in its own process and print its figures and peak memory.

``python -m benchmarks`` runs all ``benchmarks/bench_*.py``; ``python -m benchmarks synth``
runs only those whose name contains ``synth``. Each module prints its own figures as
``name: value unit`` lines; the harness adds the process's peak resident memory.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path


def _modules(filters: list[str]) -> list[str]:
    here = Path(__file__).parent
    names = sorted(p.stem for p in here.glob("bench_*.py"))
    return [n for n in names if not filters or any(f in n for f in filters)]


def main() -> int:
    """Run the selected benchmarks one by one; non-zero exit if any failed."""
    failed = 0
    for name in _modules(sys.argv[1:]):
        print(f"== {name}", flush=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"])
        wall = time.perf_counter() - started
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        peak = f"{peak_kib / 1024**2:.2f} GiB" if peak_kib > before else "(below earlier peak)"
        print(f"{name}: wall {wall:.1f} s, peak RSS {peak}, exit {rc}", flush=True)
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
