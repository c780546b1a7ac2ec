"""Ranking metrics at k over a batch of recommendation lists, with binary relevance.

``recs`` is int32 ``[n, K]`` item indices, best first, padded with -1; ``relevant`` is a CSR
``[n, n_items]`` whose non-zeros are the relevant items of each row. Every metric is the mean
over rows; rows without any relevant item must be left out by the caller (`ranking_metrics`
raises rather than count them as zero). Definitions (k <= K):

- precision@k = hits in the top k / k
- recall@k    = hits in the top k / number of relevant items
- ndcg@k      = sum over hits of 1/log2(rank+1), divided by the same sum for min(|rel|, k) hits
- map@k       = sum over hit ranks r of precision@r, divided by min(|rel|, k)
- hit_rate@k  = 1 if any hit in the top k
- coverage@k  = distinct items in all top-k lists / catalogue size
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")
DEFAULT_KS = (5, 10, 20)


class MetricsError(Exception):
    """Metric inputs do not fit together (the message names the field)."""


def hit_matrix(recs: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Bool ``[n, K]``: whether each recommended item is relevant for its row."""
    recs = np.asarray(recs)
    if recs.ndim != 2 or recs.shape[0] != relevant.shape[0]:
        raise MetricsError(
            f"recs has shape {recs.shape}, expected ({relevant.shape[0]}, K) "
            "(one row per row of relevant)"
        )
    n_items = relevant.shape[1]
    rel = relevant.tocoo()
    keys = rel.row.astype(np.int64)[rel.data != 0] * n_items + rel.col[rel.data != 0]
    rows = np.arange(recs.shape[0], dtype=np.int64)[:, None]
    rec_keys = rows * n_items + recs.astype(np.int64)
    return np.isin(rec_keys, keys) & (recs >= 0)


def ranking_metrics(
    recs: np.ndarray, relevant: sp.csr_matrix, ks: Iterable[int] = DEFAULT_KS
) -> dict[str, dict[str, float]]:
    """``{metric: {str(k): mean value}}`` for every metric in `METRICS` and every ``k``."""
    ks = tuple(ks)
    n_rel = np.diff(relevant.indptr)
    if (n_rel == 0).any():
        raise MetricsError(
            f"relevant: {int((n_rel == 0).sum())} rows have no relevant item "
            f"(first at row {int(np.argmax(n_rel == 0))}); leave them out before scoring"
        )
    if recs.shape[0] == 0:
        return {m: {str(k): 0.0 for k in ks} for m in METRICS}
    if max(ks) > recs.shape[1]:
        raise MetricsError(f"recs has {recs.shape[1]} columns, fewer than k={max(ks)}")
    hits = hit_matrix(recs, relevant).astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, recs.shape[1] + 2))
    out: dict[str, dict[str, float]] = {m: {} for m in METRICS}
    for k in ks:
        h = hits[:, :k]
        n_hits = h.sum(axis=1)
        ideal_n = np.minimum(n_rel, k)
        dcg = (h * discounts[:k]).sum(axis=1)
        idcg = np.cumsum(discounts[:k])[ideal_n - 1]
        prec_at_rank = np.cumsum(h, axis=1) / np.arange(1, k + 1)
        ap = (prec_at_rank * h).sum(axis=1) / ideal_n
        out["precision"][str(k)] = float(np.mean(n_hits / k))
        out["recall"][str(k)] = float(np.mean(n_hits / n_rel))
        out["ndcg"][str(k)] = float(np.mean(dcg / idcg))
        out["map"][str(k)] = float(np.mean(ap))
        out["hit_rate"][str(k)] = float(np.mean(n_hits > 0))
    return out


def coverage(recs: np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-``k`` list."""
    if n_items <= 0:
        raise MetricsError(f"n_items must be positive, got {n_items}")
    top = np.asarray(recs)[:, :k]
    return float(np.unique(top[top >= 0]).size / n_items)


def hit_rate(recs: np.ndarray, relevant: sp.csr_matrix, k: int) -> float:
    """Share of rows with at least one relevant item in the top ``k`` (0 rows give 0.0)."""
    if recs.shape[0] == 0:
        return 0.0
    return float(hit_matrix(np.asarray(recs)[:, :k], relevant).any(axis=1).mean())
