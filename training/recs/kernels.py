"""Compiled kernels (numba) for the per-request path of cross-sell and up-sell.

A request scores a few hundred candidate items. In numpy that is some forty small array
operations, each costing a microsecond or more of call overhead whatever its size; these kernels
do the same arithmetic in one compiled loop each.

- Cross-sell follows the numpy code it replaced operation for operation (float32 association
  sums added in anchor order, float64 scores, ties to the lower index): the same bits, pinned
  against dense scoring (`CrossSell._score`) by the request-path tests.
- Up-sell's tier fit calls libm's ``exp``, which can differ from numpy's vectorised ``exp`` in
  the last bit; every up-sell path (request, batch, dense) goes through `up_sell_scores`, so
  they agree with each other, and the tests pin the ranking against a plain numpy formula.

Kernels compile in each process (about a second in all, no disk cache: an installed package
may be read-only); the models' ``warm`` compiles them for their own array types when the
engine loads, before the first request (a forked worker inherits them).
"""

from __future__ import annotations

import numba
import numpy as np

NO_FLOATS = np.zeros(0, dtype=np.float64)  # "no CF affinity" for the kernels
NO_BOOLS = np.zeros(0, dtype=np.bool_)  # "nothing banned" for the kernels


@numba.njit(nogil=True)
def associated(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, anchors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Items associated with any of ``anchors`` (sorted, unique) and their summed associations.

    The CSR rows of the anchors are concatenated in anchor order and summed per item in float32
    in that order (as ``np.add.at`` over ``np.unique``'s inverse does), keeping sums > 0; the
    sums are returned as float64.
    """
    total = 0
    for a in anchors:
        total += indptr[a + 1] - indptr[a]
    idx = np.empty(total, dtype=np.int64)
    val = np.empty(total, dtype=np.float32)
    at = 0
    for a in anchors:
        for p in range(indptr[a], indptr[a + 1]):
            idx[at] = indices[p]
            val[at] = data[p]
            at += 1
    order = np.argsort(idx, kind="mergesort")  # stable: anchor order within an item
    cand = np.empty(total, dtype=np.int64)
    sums = np.empty(total, dtype=np.float64)
    n = 0
    p = 0
    while p < total:
        item = idx[order[p]]
        s = np.float32(0.0)
        while p < total and idx[order[p]] == item:
            s = np.float32(s + val[order[p]])
            p += 1
        if s > 0:
            cand[n] = item
            sums[n] = np.float64(s)
            n += 1
    return cand[:n], sums[:n]


@numba.njit(nogil=True)
def cross_sell_ranked(
    cand: np.ndarray,
    assoc: np.ndarray,
    affinity: np.ndarray,
    cf_weight: float,
    item_category: np.ndarray,
    category_hit: np.ndarray,
    banned: np.ndarray,
    anchors: np.ndarray,
) -> np.ndarray:
    """The ranking score of each associated item: ``1 + association x CF boost``, -inf when it
    may not be shown (its category is hit, it is banned, or it is an anchor).

    The boost is ``1 + cf_weight x`` the customer's CF ``affinity`` min-max scaled over the
    candidates (``affinity`` empty: no boost); ``banned`` empty: nothing is banned.
    """
    n = cand.size
    out = np.empty(n, dtype=np.float64)
    boost = affinity.size > 0 and n > 0
    lo = affinity.min() if boost else 0.0
    hi = affinity.max() if boost else 0.0
    for i in range(n):
        c = cand[i]
        allowed = not category_hit[item_category[c]] and not (banned.size > 0 and banned[c])
        for a in anchors:
            if a == c:
                allowed = False
        if not allowed:
            out[i] = -np.inf
            continue
        score = assoc[i]
        if boost:
            scaled = (affinity[i] - lo) / (hi - lo) if hi > lo else 0.0
            score = score * (1.0 + cf_weight * min(max(scaled, 0.0), 1.0))
        out[i] = 1.0 + score
    return out


@numba.njit(nogil=True)
def up_sell_scores(
    base: np.ndarray,
    tier: np.ndarray,
    customer_tier: float,
    tier_weight: float,
    tier_sd: float,
    affinity: np.ndarray,
    cf_weight: float,
) -> np.ndarray:
    """``base`` plus the tier fit to the customer and the min-max scaled CF affinity (see
    `training.recs.upsell.UpSell`), in float64."""
    s = base.astype(np.float64)
    spread = 2.0 * tier_sd**2
    for i in range(s.size):
        d = tier[i] - customer_tier
        s[i] = s[i] + tier_weight * np.exp(-(d * d) / spread)
    if affinity.size > 0:
        lo = affinity.min()
        hi = affinity.max()
        for i in range(s.size):
            s[i] = s[i] + cf_weight * ((affinity[i] - lo) / (hi - lo) if hi > lo else 0.0)
    return s


@numba.njit(nogil=True)
def top_allowed(cand: np.ndarray, score: np.ndarray, banned: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best of ``cand`` (sorted ascending) by ``score``, ties to the lower index,
    skipping non-finite scores and ``banned`` items (empty: none); -1 padded (int32)."""
    keep = np.empty(cand.size, dtype=np.int64)
    m = 0
    for i in range(cand.size):
        if not np.isfinite(score[i]) or (banned.size > 0 and banned[cand[i]]):
            continue
        keep[m] = i
        m += 1
    neg = np.empty(m, dtype=np.float64)
    for j in range(m):
        neg[j] = -score[keep[j]]
    order = np.argsort(neg, kind="mergesort")  # stable: the lower index first
    out = np.full(max(k, 0), -1, dtype=np.int32)
    for j in range(min(k, m)):
        out[j] = cand[keep[order[j]]]
    return out
