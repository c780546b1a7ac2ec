"""The shared machinery of score-based recommenders: batching, exclusion, cold start, padding.

A subclass of `ScoringRecommender` computes dense scores for known customers
(`_known_scores`); this base answers unknown customers (index -1) with item popularity, drops
excluded items, takes the top k, and pads short lists with popular items, so every model
honours the `Recommender` contract the same way.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from training.recs.base import Interactions, RecsError, check_state_kind, exclusion_mask, top_k

BATCH = 512


POPULARITY_DAYS = 90.0


def recent_buyers(data: Interactions, days: float | None) -> np.ndarray:
    """Distinct buyers per item over the last ``days`` of the history (all of it when None)."""
    if days is None:
        return np.bincount(data.matrix.indices, minlength=data.n_items).astype(np.float64)
    recent = data.last_day.copy()
    recent.data = (recent.data >= data.as_of - days).astype(np.float64)
    recent.eliminate_zeros()
    return np.bincount(recent.indices, minlength=data.n_items).astype(np.float64)


def item_popularity(data: Interactions, days: float | None = POPULARITY_DAYS) -> np.ndarray:
    """Distinct buyers per item in the last ``days`` (float32), the cold-start answer.

    All-time buyers break ties (scaled below one buyer), so items not bought lately still
    come in a meaningful order.
    """
    recent = recent_buyers(data, days)
    overall = recent_buyers(data, None)
    top = overall.max() if overall.size else 0.0
    tie = overall / (top + 1.0) if top > 0 else overall
    return (recent + tie).astype(np.float32)


def pad_with(
    recs: np.ndarray, order: np.ndarray, banned: np.ndarray | None, *, keep_order: bool = True
) -> np.ndarray:
    """Fill the -1 slots of each row of ``recs`` with items from ``order`` not banned or used."""
    out = recs.copy()
    short = np.flatnonzero((out < 0).any(axis=1))
    for r in short:
        row = out[r]
        have = row[row >= 0]
        need = int((row < 0).sum())
        taken = set(have.tolist())
        extra: list[int] = []
        for item in order:
            if len(extra) == need:
                break
            i = int(item)
            if i in taken or (banned is not None and banned[r, i]):
                continue
            extra.append(i)
            taken.add(i)
        row[len(have) : len(have) + len(extra)] = extra
        if not keep_order:
            row.sort()
    return out


class ScoringRecommender:
    """Base of every dense-score model; subclasses set ``kind`` and implement the hooks."""

    kind: ClassVar[str] = ""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.kind
        self.popularity: np.ndarray = np.zeros(0, dtype=np.float32)
        self.n_customers = 0
        self.has_history = np.zeros(0, dtype=bool)
        self._fitted = False

    # hooks -------------------------------------------------------------------------------
    def _fit(self, data: Interactions) -> None:
        raise NotImplementedError

    def _known_scores(self, customer_idx: np.ndarray) -> np.ndarray:
        """Float scores ``[len(customer_idx), n_items]`` for known customers; -inf = never."""
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        return {}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _load(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Self:
        return cls(name=params.get("name"))

    # contract ----------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        """Number of items the model knows."""
        return int(self.popularity.shape[0])

    def fit(self, data: Interactions) -> None:
        """Learn from ``data``; popularity (the cold-start answer) is always learned too."""
        self.popularity = item_popularity(data)
        self.n_customers = data.n_customers
        self.has_history = np.diff(data.matrix.indptr) > 0
        self._fit(data)
        self._fitted = True

    def _check(self) -> None:
        if not self._fitted:
            raise RecsError(f"model {self.name!r} is not fitted: call fit() or from_state()")

    def scores(self, customer_idx: np.ndarray) -> np.ndarray:
        """Dense scores ``[n, n_items]``; unknown customers (-1) and empty ones get popularity."""
        self._check()
        idx = np.asarray(customer_idx, dtype=np.int64).ravel()
        known = (idx >= 0) & (idx < self.n_customers)
        known[known] = self.has_history[idx[known]]
        out = np.empty((idx.size, self.n_items), dtype=np.float32)
        out[~known] = self.popularity
        if known.any():
            out[known] = self._known_scores(idx[known])
        return out

    def recommend(
        self, customer_idx: np.ndarray, k: int, *, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """Top-``k`` item indices per customer (int32, -1 padded only if the catalogue runs out)."""
        self._check()
        idx = np.asarray(customer_idx, dtype=np.int64).ravel()
        banned_all = exclude
        if exclude is not None and exclude.shape != (idx.size, self.n_items):
            raise RecsError(
                f"exclude has shape {exclude.shape}, expected ({idx.size}, {self.n_items}) "
                "(one row per requested customer, one column per item)"
            )
        order = np.argsort(-self.popularity, kind="stable")
        out = np.full((idx.size, k), -1, dtype=np.int32)
        for start in range(0, idx.size, BATCH):
            stop = min(start + BATCH, idx.size)
            s = self.scores(idx[start:stop])
            banned = None
            if banned_all is not None:
                banned = exclusion_mask(banned_all[start:stop], stop - start, self.n_items)
            recs = top_k(s, k, banned=banned)
            out[start:stop] = pad_with(recs, order, banned)
        return out

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able parameters and plain arrays (see `from_state`)."""
        self._check()
        params = {"kind": self.kind, "name": self.name, "n_customers": self.n_customers}
        params.update(self._params())
        arrays = {"popularity": self.popularity, "has_history": self.has_history}
        arrays.update(self._arrays())
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        """Rebuild the fitted model saved by `state`."""
        check_state_kind(params, cls.kind)
        model = cls._from_params(params)
        try:
            model.popularity = np.asarray(arrays["popularity"], dtype=np.float32)
            model.has_history = np.asarray(arrays["has_history"], dtype=bool)
        except KeyError as exc:
            raise RecsError(f"model state lacks array {exc.args[0]!r}") from exc
        model.n_customers = int(params["n_customers"])
        model._load(params, arrays)
        model._fitted = True
        return model
