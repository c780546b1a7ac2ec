"""ALS fit time on 10M interactions and single-customer recommendation latency.

A sparse random power-law world: 1M customers x 100k items, 10M (customer, item) purchases
(item popularity ~ rank^-1, customer activity ~ rank^-0.5). Targets on the 2-core machine:
ALS fit < 2 min; p99 single-customer latency < 1 ms with the float32 candidate-pool fast path.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from training.recs.als import ALS, TUNED_ALS, fit_als, weight_matrix

N_CUSTOMERS = 1_000_000
N_ITEMS = 100_000
N_INTERACTIONS = 10_000_000
CONFIG = TUNED_ALS
POOL = 20_000
REQUESTS = 5_000


def _power_law(rng: np.random.Generator, n: int, size: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    draws = np.searchsorted(cdf, rng.random(size))
    perm = rng.permutation(n)  # popular ids scattered, as in a real catalogue
    return perm[np.minimum(draws, n - 1)]


def _matrix(seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    draws = int(N_INTERACTIONS * 1.08)  # about 7% repeat pairs collapse when summed
    users = _power_law(rng, N_CUSTOMERS, draws, 0.5)
    items = _power_law(rng, N_ITEMS, draws, 1.0)
    m = sp.csr_matrix(
        (np.ones(draws, dtype=np.float32), (users, items)),
        shape=(N_CUSTOMERS, N_ITEMS),
    )
    m.sum_duplicates()
    return m


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    """Print fit time, memory and latency figures."""
    started = time.perf_counter()
    matrix = _matrix()
    print(f"generate_seconds: {time.perf_counter() - started:.1f} s")
    print(f"interactions_nnz: {matrix.nnz} pairs")

    started = time.perf_counter()
    weighted = weight_matrix(matrix, CONFIG)
    user_f, item_f = fit_als(weighted, CONFIG)
    fit_s = time.perf_counter() - started
    print(f"als_fit_seconds: {fit_s:.1f} s ({CONFIG.factors} factors, {CONFIG.iterations} it)")
    print(f"als_fit_peak_rss: {_rss_gib():.2f} GiB")

    model = ALS(CONFIG, name="bench")
    model.user_factors, model.item_factors = user_f, item_f
    model.popularity = np.bincount(matrix.indices, minlength=N_ITEMS).astype(np.float32)
    model.n_customers = N_CUSTOMERS
    model.has_history = np.diff(matrix.indptr) > 0
    model._fitted = True
    del weighted

    rng = np.random.default_rng(1)
    customers = rng.integers(0, N_CUSTOMERS, REQUESTS)
    for label, pool in (("pool", POOL), ("full", None)):
        model.recommend_one(0, 10, pool_size=pool)  # builds the contiguous pool once
        times = np.empty(REQUESTS)
        # a request handler runs single-threaded BLAS: no thread hand-off per request
        with threadpool_limits(1, "blas"):
            for n, c in enumerate(customers):
                seen = matrix.indices[matrix.indptr[c] : matrix.indptr[c + 1]]
                t = time.perf_counter()
                model.recommend_one(int(c), 10, exclude_items=seen, pool_size=pool)
                times[n] = time.perf_counter() - t
        ms = times * 1e3
        size = POOL if pool else N_ITEMS
        print(f"latency_{label}_p50: {np.percentile(ms, 50):.3f} ms ({size} items scored)")
        print(f"latency_{label}_p99: {np.percentile(ms, 99):.3f} ms")

    batch = customers[:1000]
    t = time.perf_counter()
    model.recommend(batch, 10, exclude=sp.csr_matrix(matrix[batch]))
    print(f"batch_recommend_1000_customers: {time.perf_counter() - t:.2f} s")
    print(f"peak_rss: {_rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
