"""Benchmark: customer features on a 10M-line, retail-shaped synthetic dataset.

Generates (numpy, a fixed seed) one year of transactions: ~500k customers with skewed
activity, 50k items in 2,000 categories, 2-3 lines per order, ~2% of lines returned later in
orders of their own; plus items, customers (10% never buy) and a bonus ledger. Writes Parquet
to a temp folder, then, in a fresh child process, times
``customer_features(load_dataset(dir), ...).collect()`` from the Parquet scan and prints:

- ``features_10m_lines_seconds``: wall time of the collect (plan building included);
- ``features_10m_lines_cpu_seconds``: CPU time of the same phase (less sensitive to other
  load on the machine);
- ``features_10m_lines_peak_rss``: peak resident memory of that child process
  (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the end; the child only imports polars and
  the features package, ~0.2 GB, before the measured phase).

``python -m benchmarks.bench_features [--lines N]`` (default 10,000,000).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from features.columns import Col
from features.dataset import write_parquet_atomic

START = datetime(2024, 1, 1)
N_CUSTOMERS = 500_000
N_ITEMS = 50_000
N_CATEGORIES = 2_000
SEED = 7


def generate(root: Path, n_lines: int) -> None:
    """Write transactions, items, customers and bonus_ledger Parquet files into ``root``."""
    rng = np.random.default_rng(SEED)
    n_orders = int(n_lines / 2.5)
    # customers: lognormal appetite; 10% of the customer table never buys
    appetite = rng.lognormal(0.0, 1.2, N_CUSTOMERS)
    order_customer = rng.choice(N_CUSTOMERS, n_orders, p=appetite / appetite.sum())
    order_seconds = rng.integers(0, 365 * 86_400, n_orders)
    lines_per_order = rng.integers(2, 4, n_orders)  # 2 or 3
    line_order = np.repeat(np.arange(n_orders), lines_per_order)
    n = line_order.size
    popularity = rng.pareto(1.2, N_ITEMS) + 1
    item_category = rng.integers(0, N_CATEGORIES, N_ITEMS)
    item_price = np.round(rng.lognormal(1.5, 0.9, N_ITEMS), 2) + 0.09
    line_item = rng.choice(N_ITEMS, n, p=popularity / popularity.sum())
    quantity = rng.integers(1, 4, n).astype(np.float64)
    discount = np.where(rng.random(n) < 0.1, 0.85, 1.0)
    amount = np.round(item_price[line_item] * quantity * discount, 2)
    # returns: 2% of lines come back 1-20 days later in an order of their own
    returned = rng.random(n) < 0.02
    r_idx = np.flatnonzero(returned)
    r_orders = n_orders + np.arange(r_idx.size)
    r_seconds = order_seconds[line_order[r_idx]] + rng.integers(86_400, 20 * 86_400, r_idx.size)
    tx = pl.DataFrame(
        {
            Col.CUSTOMER: np.concatenate(
                [order_customer[line_order], order_customer[line_order[r_idx]]]
            ),
            Col.ORDER: np.concatenate([line_order, r_orders]),
            "_s": np.concatenate([order_seconds[line_order], r_seconds]),
            Col.ITEM: np.concatenate([line_item, line_item[r_idx]]),
            Col.QUANTITY: np.concatenate([quantity, -quantity[r_idx]]),
            Col.AMOUNT: np.concatenate([amount, -amount[r_idx]]),
        }
    ).with_columns(
        pl.col(Col.CUSTOMER, Col.ORDER, Col.ITEM).cast(pl.String),
        (pl.lit(START) + pl.duration(seconds=pl.col("_s"))).alias(Col.TS),
    )
    tx = tx.select(Col.CUSTOMER, Col.ORDER, Col.TS, Col.ITEM, Col.QUANTITY, Col.AMOUNT)
    write_parquet_atomic(tx, root / "transactions.parquet")

    items = pl.DataFrame(
        {
            Col.ITEM: np.arange(N_ITEMS),
            Col.CATEGORY: item_category,
            Col.PRICE: item_price,
        }
    ).with_columns(
        pl.col(Col.ITEM).cast(pl.String),
        pl.format("cat_{}", pl.col(Col.CATEGORY)).alias(Col.CATEGORY),
    )
    write_parquet_atomic(items, root / "items.parquet")

    n_table = int(N_CUSTOMERS * 1.1)
    customers = pl.DataFrame(
        {
            Col.CUSTOMER: np.arange(n_table),
            "_reg": rng.integers(-3 * 365, 365, n_table),
            "_born": rng.integers(18 * 365, 80 * 365, n_table),
            "region": rng.choice(np.array(["north", "south", "east", "west"]), n_table),
            Col.CONSENT_EMAIL: rng.random(n_table) < 0.6,
        }
    ).select(
        pl.col(Col.CUSTOMER).cast(pl.String),
        (pl.lit(START) + pl.duration(days=pl.col("_reg"))).alias(Col.REGISTERED_AT),
        (pl.lit(START.date()) - pl.duration(days=pl.col("_born"))).alias(Col.BIRTH_DATE),
        "region",
        Col.CONSENT_EMAIL,
    )
    write_parquet_atomic(customers, root / "customers.parquet")

    # ledger: an accrual for half the orders (5% of the check, valid a year), some redemptions
    accrue = rng.random(n_orders) < 0.5
    a_orders = np.flatnonzero(accrue)
    order_total = np.bincount(line_order, weights=amount, minlength=n_orders)
    n_redeem = a_orders.size // 10
    redeem_orders = rng.choice(a_orders, n_redeem, replace=False)
    ledger = pl.DataFrame(
        {
            Col.CUSTOMER: np.concatenate([order_customer[a_orders], order_customer[redeem_orders]]),
            "_s": np.concatenate(
                [order_seconds[a_orders], order_seconds[redeem_orders] + 3 * 86_400]
            ),
            Col.POINTS: np.concatenate(
                [np.round(order_total[a_orders] * 0.05, 0), -np.full(n_redeem, 5.0)]
            ),
            "_valid": np.concatenate([np.ones(a_orders.size), np.zeros(n_redeem)]),
        }
    ).select(
        pl.col(Col.CUSTOMER).cast(pl.String),
        (pl.lit(START) + pl.duration(seconds=pl.col("_s"))).alias(Col.TS),
        Col.POINTS,
        pl.when(pl.col("_valid") > 0)
        .then(pl.lit(START) + pl.duration(seconds=pl.col("_s")) + timedelta(days=365))
        .alias(Col.EXPIRES_AT),
    )
    write_parquet_atomic(ledger, root / "bonus_ledger.parquet")


def measure(root: Path) -> None:
    """In this (fresh) process: time the feature collect and print the figures."""
    from features.build import customer_features, default_as_of
    from features.config import FeatureConfig
    from features.dataset import load_dataset

    started = time.perf_counter()
    cpu_before = time.process_time()
    ds = load_dataset(root)
    as_of = default_as_of(ds) - timedelta(days=1)
    frame = customer_features(ds, as_of=as_of, config=FeatureConfig()).collect(engine="streaming")
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"features_rows: {frame.height} customers")
    print(f"features_columns: {frame.width} columns")
    print(f"features_10m_lines_seconds: {seconds:.2f} s")
    print(f"features_10m_lines_cpu_seconds: {cpu:.2f} s (user + sys, all threads)")
    print(f"features_10m_lines_peak_rss: {peak_gib:.2f} GiB (child process, ru_maxrss)")


def main() -> None:
    """Generate the dataset, then measure the feature build in a child process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        measure(args.measure)
        return
    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        generate(root, args.lines)
        print(f"features_generate_seconds: {time.perf_counter() - started:.2f} s", flush=True)
        subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_features", "--measure", str(root)],
            check=True,
        )


if __name__ == "__main__":
    main()
