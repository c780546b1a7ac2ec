"""Generate a 1M-customer synthetic world (20k items, 365 days) and print time, rows, memory."""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

from synth.config import WorldConfig
from synth.world import generate

CUSTOMERS = 1_000_000
ITEMS = 20_000
DAYS = 365


def main() -> None:
    """Run the benchmark and print ``name: value unit`` lines."""
    customers = int(sys.argv[1]) if len(sys.argv) > 1 else CUSTOMERS
    config = WorldConfig(customers=customers, items=ITEMS, days=DAYS, seed=1)
    with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
        started = time.perf_counter()
        summary = generate(config, Path(tmp))
        elapsed = time.perf_counter() - started
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*.parquet"))
    label = "1m" if customers == CUSTOMERS else f"{customers}"
    print(f"synth_{label}_customers_seconds: {elapsed:.1f} s")
    for name, rows in summary.rows.items():
        print(f"synth_{name}_rows: {rows} rows")
    print(f"synth_output_size: {size / 1024**2:.0f} MiB")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"synth_peak_rss: {peak_kib / 1024**2:.2f} GiB")


if __name__ == "__main__":
    main()
