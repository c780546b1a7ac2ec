"""Cross-sell: complements of an anchor cart, mined from baskets.

Item j complements item i when j is bought in the same basket as i, or by the same customer
within ``window_days`` after it, more often than chance. The association is the confidence
P(j | i) among pairs with lift above 1 (or NPMI, or lift) over anchor orders, kept when the
pair occurs in at least ``min_support`` orders; items of the
anchor's own category are substitutes, not complements, and are dropped. The score of a
candidate for a cart is the sum of its associations with the cart items, multiplied by
``1 + cf_weight * affinity`` (the customer's ALS affinity, min-max scaled over the
candidates). Without a cart, the customer's most recent purchases are the anchor. A cart with
no known complement falls back to popular items of the categories most bought with the
cart's categories.
"""

from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Literal, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from training.recs import kernels
from training.recs.als import (
    ALS,
    TUNED_ALS,
    ALSConfig,
    add_cf_state,
    cf_from_state,
    config_with_cf,
    fit_cf,
)
from training.recs.base import (
    Interactions,
    RecsError,
    check_state_kind,
    csr_from_arrays,
    csr_to_arrays,
    exclusion_mask,
    latest_items,
    top_k,
)
from training.recs.scoring import item_popularity

Measure = Literal["npmi", "lift", "confidence"]


@dataclass(frozen=True)
class CrossSellConfig:
    """Co-purchase window, association measure and blending."""

    window_days: float = 0.0  # 0: same basket only
    min_support: int = 3
    measure: Measure = "confidence"
    neighbours: int = 50
    anchor_items: int = 5  # most recent purchases used when there is no cart
    cf_weight: float = 0.5
    cf: ALSConfig | None = None  # None: no CF blending

    def __post_init__(self) -> None:
        if self.window_days < 0:
            raise RecsError(f"CrossSellConfig.window_days must be >= 0, got {self.window_days}")
        if self.min_support < 1:
            raise RecsError(f"CrossSellConfig.min_support must be >= 1, got {self.min_support}")
        if self.measure not in ("npmi", "lift", "confidence"):
            raise RecsError(
                f"CrossSellConfig.measure must be npmi/lift/confidence, got {self.measure!r}"
            )
        if self.neighbours <= 0 or self.anchor_items <= 0:
            raise RecsError("CrossSellConfig.neighbours and anchor_items must be positive")


# Chosen on the validation split of uci_online_retail (last 30 days of train), hit rate@10 of
# the next basket's complements: confidence + CF 0.347, confidence 0.323, the category
# fallback alone 0.290, NPMI + CF 0.195, lift + CF 0.118; a 14-day window did not help (0.337).
TUNED_CROSS_SELL = CrossSellConfig(measure="confidence", cf=TUNED_ALS)


_BOUND_CACHE_SIZE = 100_000  # category sets remembered by `_fallback_bound` (then cleared)


def _small_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` of a few values (a cart's categories) without its per-call overhead."""
    return np.array(sorted(set(values.tolist())), dtype=values.dtype)


def _follow_matrix(data: Interactions, window_days: float) -> sp.csr_matrix:
    """Orders x items: items of the same customer's orders in [day, day + window]."""
    if window_days <= 0:
        return data.baskets
    orders = pl.DataFrame(
        {
            "o": np.arange(data.basket_day.size),
            "c": data.basket_customer,
            "day": data.basket_day,
        }
    )
    pairs = (
        orders.join(orders, on="c", suffix="_next")
        .filter(
            (pl.col("day_next") >= pl.col("day"))
            & (pl.col("day_next") <= pl.col("day") + window_days)
        )
        .select("o", "o_next")
    )
    link = sp.csr_matrix(
        (np.ones(pairs.height, dtype=np.float32), (pairs["o"], pairs["o_next"])),
        shape=(data.basket_day.size, data.basket_day.size),
    )
    out = sp.csr_matrix(link @ data.baskets)
    out.data[:] = 1.0
    return out


def associations(data: Interactions, config: CrossSellConfig) -> sp.csr_matrix:
    """Items x items association (positive NPMI or lift-1), support-filtered, other categories."""
    anchor = sp.csr_matrix(data.baskets, dtype=np.float32)
    follow = sp.csr_matrix(_follow_matrix(data, config.window_days), dtype=np.float32)
    n = float(anchor.shape[0])
    co = sp.coo_matrix(anchor.T @ follow)
    n_i = np.asarray(anchor.sum(axis=0)).ravel()
    n_j = np.asarray(follow.sum(axis=0)).ravel()
    i, j, n_ij = co.row, co.col, co.data.astype(np.float64)
    cat = data.item_category
    keep = (n_ij >= config.min_support) & (i != j) & (cat[i] != cat[j])
    i, j, n_ij = i[keep], j[keep], n_ij[keep]
    p_ij = n_ij / n
    p_i, p_j = n_i[i] / n, n_j[j] / n
    pmi = np.log(p_ij / (p_i * p_j))
    if config.measure == "npmi":
        value = np.where(p_ij < 1.0, pmi / -np.log(np.minimum(p_ij, 1 - 1e-12)), 1.0)
    elif config.measure == "lift":
        value = np.exp(pmi) - 1.0
    else:  # P(j | i), kept only where j is bought with i more often than chance (lift > 1)
        value = np.where(pmi > 0, n_ij / np.maximum(n_i[i], 1.0), 0.0)
    pos = value > 0
    assoc = sp.csr_matrix(
        (value[pos].astype(np.float32), (i[pos], j[pos])), shape=(data.n_items, data.n_items)
    )
    return _top_per_row(assoc, config.neighbours)


def _top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        if hi == lo:
            continue
        d, c = m.data[lo:hi], m.indices[lo:hi]
        if d.size > k:
            sel = np.argpartition(-d, k - 1)[:k]
            d, c = d[sel], c[sel]
        rows.append(np.full(d.size, r))
        cols.append(c)
        vals.append(d)
    if not rows:
        return sp.csr_matrix(m.shape, dtype=np.float32)
    out = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=m.shape
    )
    out.sort_indices()
    return out


class CrossSell:
    """Complements for a cart (`recommend_for_cart`) or for a customer's recent purchases."""

    kind = "cross_sell"

    def __init__(self, config: CrossSellConfig | None = None, name: str | None = None) -> None:
        self.config = config or CrossSellConfig()
        self.name = name or self.kind
        self.assoc = sp.csr_matrix((0, 0), dtype=np.float32)
        self.category_assoc = np.zeros((0, 0), dtype=np.float32)
        self.item_category = np.zeros(0, dtype=np.int32)
        self.popularity = np.zeros(0, dtype=np.float32)
        self.recent = sp.csr_matrix((0, 0), dtype=np.float32)
        self.cf: ALS | None = None
        self._pop_top_cache: float | None = None
        self._bound_cache: dict[bytes, float] = {}  # category set -> `_fallback_bound`
        self._fitted = False

    def fit(self, data: Interactions, *, cf: ALS | None = None) -> None:
        """Mine associations; remember each customer's recent items; fit the CF if asked.

        ``cf``: an ALS of this model's CF configuration already fitted on ``data``, shared
        instead of fitting another (`fit_cf`).
        """
        self.assoc = associations(data, self.config)
        self.item_category = data.item_category.astype(np.int32)
        self.popularity = item_popularity(data)
        self._pop_top_cache = None
        self._bound_cache = {}
        for lookup in ("_fallback_index", "_popularity_order"):  # cached per fitted model
            self.__dict__.pop(lookup, None)
        n_cat = len(data.categories)
        onehot = sp.csr_matrix(
            (
                np.ones(data.n_items, dtype=np.float32),
                (np.arange(data.n_items), self.item_category),
            ),
            shape=(data.n_items, n_cat),
        )
        basket_cats = sp.csr_matrix(data.baskets @ onehot)
        basket_cats.data[:] = 1.0
        cc = np.asarray((basket_cats.T @ basket_cats).toarray(), dtype=np.float64)
        totals = np.diag(cc).copy()
        np.fill_diagonal(cc, 0.0)
        self.category_assoc = (cc / np.maximum(totals[:, None], 1.0)).astype(np.float32)
        recent = data.last_day.copy()
        recent.data = (recent.data + 1.0).astype(np.float64)  # +1 keeps day 0 non-zero
        self.recent = sp.csr_matrix(recent)
        self.cf = fit_cf(self.config.cf, data, cf)
        self._fitted = True

    def _check(self) -> None:
        if not self._fitted:
            raise RecsError(f"model {self.name!r} is not fitted: call fit() or from_state()")

    @property
    def n_items(self) -> int:
        """Number of items the model knows."""
        return int(self.item_category.size)

    def _anchor_rows(self, customer_idx: np.ndarray) -> sp.csr_matrix:
        """Customers x items: 1 on each customer's ``anchor_items`` most recent items."""
        n = len(customer_idx)
        out_r, out_c = [], []
        for r, customer in enumerate(np.asarray(customer_idx).tolist()):
            items = latest_items(self.recent, customer, self.config.anchor_items)
            out_r.append(np.full(items.size, r))
            out_c.append(items)
        if not any(c.size for c in out_c):
            return sp.csr_matrix((n, self.n_items), dtype=np.float32)
        return sp.csr_matrix(
            (
                np.ones(sum(x.size for x in out_r), dtype=np.float32),
                (np.concatenate(out_r), np.concatenate(out_c)),
            ),
            shape=(n, self.n_items),
        )

    def _score(self, anchors: sp.csr_matrix, customer_idx: np.ndarray) -> np.ndarray:
        scores = np.asarray((anchors @ self.assoc).toarray(), dtype=np.float64)
        # fallback: popular items of the categories co-bought with the anchors' categories
        pop = self.popularity / max(float(self.popularity.max(initial=0.0)), 1.0)
        for r in range(anchors.shape[0]):
            items = anchors.indices[anchors.indptr[r] : anchors.indptr[r + 1]]
            cats = np.unique(self.item_category[items])
            own_cat = np.isin(self.item_category, cats)
            if self.cf is not None and customer_idx[r] >= 0:
                aff = self.cf.scores(customer_idx[r : r + 1])[0].astype(np.float64)
                pos = scores[r] > 0
                if pos.any():
                    lo, hi = aff[pos].min(), aff[pos].max()
                    scaled = (aff - lo) / (hi - lo) if hi > lo else np.zeros_like(aff)
                    scores[r] = scores[r] * (1.0 + self.config.cf_weight * np.clip(scaled, 0, 1))
            fallback = 1e-3 * pop
            if cats.size:
                fallback = fallback * (self.category_assoc[cats].sum(axis=0)[self.item_category])
            scores[r] = np.where(scores[r] > 0, 1.0 + scores[r], fallback + 1e-9 * pop)
            scores[r, own_cat] = -np.inf
            scores[r, items] = -np.inf
        return scores

    def _affinity(self, customer: int, items: np.ndarray) -> np.ndarray | None:
        """The CF scores of ``items`` for one customer (as `ALS.scores` gives them), or None."""
        cf = self.cf
        if cf is None or customer < 0:
            return None
        if customer < cf.n_customers and cf.has_history[customer]:
            aff: np.ndarray = cf.user_factors[customer : customer + 1] @ cf.item_factors[items].T
            out: np.ndarray = aff[0].astype(np.float64)
        else:
            out = cf.popularity[items].astype(np.float64)
        return out

    def _pop_top(self) -> float:
        cached = self._pop_top_cache
        if cached is None:
            cached = float(self.popularity.max(initial=0.0))
            self._pop_top_cache = cached
        return cached

    def _fallback_bound(self, cats: np.ndarray) -> float:
        """An upper bound of the fallback score of any item for anchors of ``cats``."""
        key = cats.tobytes()
        bound = self._bound_cache.get(key)
        if bound is None:
            if len(self._bound_cache) >= _BOUND_CACHE_SIZE:
                self._bound_cache.clear()
            bound = self._bound_cache[key] = self._compute_fallback_bound(cats)
        return bound

    def _compute_fallback_bound(self, cats: np.ndarray) -> float:
        pop_top = self._pop_top()
        pop_top = pop_top / max(pop_top, 1.0)
        weight = float(self.category_assoc[cats].sum(axis=0).max(initial=0.0)) if cats.size else 1.0
        return 1e-3 * pop_top * max(weight, 1.0) + 1e-9 * pop_top

    def _top_for_anchors(
        self, items: np.ndarray, customer: int, k: int, banned: np.ndarray | None
    ) -> np.ndarray:
        """`top_k` of `_score` for one anchor row, without scoring every item.

        Items with a positive association score at least 1 and every other item scores its
        category fallback, which stays below 1: when the associated items (the union of the
        anchors' top neighbours) fill ``k`` slots, only they are scored; otherwise the best
        fallback items are merged in (`_top_with_fallback`; CF only changes associated items).
        The arithmetic runs in `training.recs.kernels`. Same answer as `_score` + `top_k`.
        """
        anchors = np.asarray(items, dtype=np.int64)
        cats = _small_unique(self.item_category[anchors])
        a = self.assoc
        cand, assoc = kernels.associated(a.indptr, a.indices, a.data, anchors)
        aff = self._affinity(customer, cand)
        hit = np.zeros(max(self.category_assoc.shape[0], 1), dtype=bool)
        hit[cats] = True
        ranked = kernels.cross_sell_ranked(
            cand,
            assoc,
            kernels.NO_FLOATS if aff is None else aff,
            float(self.config.cf_weight),
            self.item_category,
            hit,
            kernels.NO_BOOLS if banned is None else banned,
            anchors,
        )
        shown = int(np.isfinite(ranked).sum())
        if shown >= k and self._fallback_bound(cats) < 1.0:
            return kernels.top_allowed(cand, ranked, kernels.NO_BOOLS, k)
        return self._top_with_fallback(anchors, cats, cand, ranked, k, banned)

    def warm(self) -> None:
        """Compile the request path's kernels for this model's array types."""
        self._check()
        a, none = self.assoc, np.zeros(0, dtype=np.int64)
        cand, assoc = kernels.associated(a.indptr, a.indices, a.data, none)
        hit = np.zeros(1, dtype=bool)
        for aff in (kernels.NO_FLOATS, np.zeros(1)):
            for banned in (kernels.NO_BOOLS, np.zeros(1, dtype=bool)):
                ranked = kernels.cross_sell_ranked(
                    cand, assoc, aff, 0.0, self.item_category, hit, banned, none
                )
        kernels.top_allowed(cand, ranked, kernels.NO_BOOLS, 1)

    def _top_with_fallback(
        self,
        items: np.ndarray,
        cats: np.ndarray,
        cand: np.ndarray,
        ranked: np.ndarray,
        k: int,
        banned: np.ndarray | None,
    ) -> np.ndarray:
        """`top_k` of the `_score` row when category fallback items may enter the top ``k``.

        The associated items that may be shown score ``ranked`` (``1 + association``, -inf
        when not allowed); every other item scores its fallback (`_fallback_top` finds the
        best ``k`` of those without scoring every item). The top ``k`` of both, ties to the
        lower index, -1 padded.
        """
        skip = np.zeros(self.n_items, dtype=bool) if banned is None else banned.copy()
        skip[items] = True
        skip[cand] = True  # associated items score 1 + association (or are not allowed)
        fb_items, fb_scores = self._fallback_top(cats, skip, k)
        ok = np.isfinite(ranked)
        every = np.concatenate([cand[ok], np.asarray(fb_items, dtype=np.int64)])
        score = np.concatenate([ranked[ok], np.asarray(fb_scores, dtype=np.float64)])
        order = np.lexsort((every, -score))[:k]
        out = np.full(k, -1, dtype=np.int32)
        out[: order.size] = every[order]
        return out

    @cached_property
    def _fallback_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Items by (category, popularity desc, index), category offsets, and the two terms of
        the fallback score (float32, as `_score` computes them)."""
        pop = self.popularity / max(self._pop_top(), 1.0)
        order = np.lexsort((np.arange(self.n_items), -self.popularity, self.item_category)).astype(
            np.int64
        )
        n_cat = self.category_assoc.shape[0]
        counts = np.bincount(self.item_category, minlength=n_cat)
        start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return order, start, 1e-3 * pop, 1e-9 * pop

    def _fallback_top(
        self, cats: np.ndarray, skip: np.ndarray, need: int
    ) -> tuple[list[int], list[float]]:
        """The ``need`` best fallback items outside ``cats`` and ``skip``, best first.

        An item's fallback score is ``popularity x (1e-3 x weight of its category + 1e-9)``
        (the category's association with the anchors' categories), so within a category the
        order is by popularity: a k-way merge over the categories (a heap of each category's
        next item, categories joining in order of their best item) reads only the items that
        can win. Ties go to the lower item index, as in `top_k`.
        """
        order, start, a, b = self._fallback_index
        n_cat = start.size - 1
        weight = (
            self.category_assoc[cats].sum(axis=0)
            if cats.size
            else np.ones(n_cat, dtype=self.category_assoc.dtype)
        )
        allowed = start[1:] > start[:-1]
        allowed[cats] = False
        cs = np.flatnonzero(allowed)
        heads = order[start[cs]]
        head_score = a[heads] * weight[cs] + b[heads]
        rank = np.lexsort((heads, -head_score))
        cs, heads, head_score = cs[rank].tolist(), heads[rank].tolist(), head_score[rank].tolist()
        heap: list[tuple[float, int, int, int]] = []  # (-score, item, category, position)
        items: list[int] = []
        scores: list[float] = []
        nxt = 0
        while len(items) < need:
            while nxt < len(cs) and (
                not heap or (-head_score[nxt], heads[nxt]) < (heap[0][0], heap[0][1])
            ):
                heapq.heappush(heap, (-head_score[nxt], heads[nxt], cs[nxt], int(start[cs[nxt]])))
                nxt += 1
            if not heap:
                break
            neg, item, c, pos = heapq.heappop(heap)
            if not skip[item]:
                items.append(item)
                scores.append(-neg)
            pos += 1
            if pos < start[c + 1]:
                j = int(order[pos])
                s_j = float((a[j : j + 1] * weight[c : c + 1] + b[j : j + 1])[0])
                heapq.heappush(heap, (-s_j, j, c, pos))
        return items, scores

    def recommend_for_cart(
        self, cart: np.ndarray, k: int, *, customer_idx: int = -1, exclude: np.ndarray | None = None
    ) -> np.ndarray:
        """Complements (int32 [k], -1 padded) of the item indices in ``cart``.

        An empty cart anchors on the customer's recent purchases (popular items when unknown).
        ``exclude`` is an optional bool mask over items.
        """
        self._check()
        cart = np.asarray(cart, dtype=np.int64).ravel()
        if ((cart < 0) | (cart >= self.n_items)).any():
            bad = cart[(cart < 0) | (cart >= self.n_items)][0]
            raise RecsError(f"cart: item index {bad} is not a known item")
        if k <= 0:
            return np.full(max(k, 0), -1, dtype=np.int32)
        banned = None if exclude is None else np.asarray(exclude, dtype=bool)
        if cart.size == 0:  # the customer's recent purchases anchor, as in `recommend`
            cart = latest_items(self.recent, int(customer_idx), self.config.anchor_items)
            if cart.size == 0:
                return self._popular_top(k, banned)
        return self._top_for_anchors(_small_unique(cart), int(customer_idx), k, banned)

    def _popular_top(self, k: int, banned: np.ndarray | None) -> np.ndarray:
        """The ``k`` most popular items not banned (ties to the lower index), -1 padded."""
        ranked = self._popularity_order
        if banned is not None:
            ranked = ranked[~banned[ranked]]
        out = np.full(k, -1, dtype=np.int32)
        top = ranked[:k]
        out[: top.size] = top
        return out

    @cached_property
    def _popularity_order(self) -> np.ndarray:
        order: np.ndarray = np.argsort(-self.popularity, kind="stable")
        return order

    def recommend(
        self, customer_idx: np.ndarray, k: int, *, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """Complements of each customer's recent purchases; unknown customers get popular items."""
        self._check()
        idx = np.asarray(customer_idx, dtype=np.int64).ravel()
        banned = exclusion_mask(exclude, idx.size, self.n_items)
        anchors = self._anchor_rows(idx)
        scores = self._score(anchors, idx)
        empty = np.diff(anchors.indptr) == 0
        scores[empty] = self.popularity
        return top_k(scores, k, banned=banned)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Config and arrays (associations, recent items, CF factors if any)."""
        self._check()
        params: dict[str, Any] = {"kind": self.kind, "name": self.name}
        params["config"] = asdict(self.config)
        arrays = {
            **csr_to_arrays("assoc", self.assoc),
            **csr_to_arrays("recent", self.recent),
            "category_assoc": self.category_assoc,
            "item_category": self.item_category,
            "popularity": self.popularity,
        }
        add_cf_state(self.cf, params, arrays)
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        """Rebuild the fitted model from `state` output."""
        check_state_kind(params, cls.kind)
        cfg = config_with_cf(params["config"])
        model = cls(CrossSellConfig(**cfg), name=params.get("name"))
        model.assoc = csr_from_arrays("assoc", arrays)
        model.recent = csr_from_arrays("recent", arrays)
        model.category_assoc = np.asarray(arrays["category_assoc"], dtype=np.float32)
        model.item_category = np.asarray(arrays["item_category"], dtype=np.int32)
        model.popularity = np.asarray(arrays["popularity"], dtype=np.float32)
        model.cf = cf_from_state(params, arrays)
        model._fitted = True
        return model
