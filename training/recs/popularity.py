"""Baselines that need no learning: global popularity, per-category popularity, own history."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from training.recs.base import Interactions, csr_from_arrays, csr_to_arrays, take_rows
from training.recs.scoring import ScoringRecommender


class Popularity(ScoringRecommender):
    """Everyone gets the items with the most distinct buyers."""

    kind = "popularity"

    def _fit(self, data: Interactions) -> None:
        pass

    def _known_scores(self, customer_idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity, (customer_idx.size, self.n_items)).copy()

    def _load(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        pass


def _normalised(pop: np.ndarray) -> np.ndarray:
    top = float(pop.max()) if pop.size else 0.0
    return pop / top if top > 0 else pop


class CategoryPopularity(ScoringRecommender):
    """Popular items of the categories the customer buys most.

    score = (customer's share of purchases in the item's category) x (item popularity relative
    to the top item of its category), plus a small global-popularity tie-break.
    """

    kind = "category_popularity"

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self.item_category = np.zeros(0, dtype=np.int32)
        self.customer_category = sp.csr_matrix((0, 0), dtype=np.float32)
        self._within = np.zeros(0, dtype=np.float32)

    def _fit(self, data: Interactions) -> None:
        self.item_category = data.item_category.astype(np.int32)
        n_cat = len(data.categories)
        onehot = sp.csr_matrix(
            (
                np.ones(data.n_items, dtype=np.float32),
                (np.arange(data.n_items), self.item_category),
            ),
            shape=(data.n_items, n_cat),
        )
        binary = data.matrix.copy()
        binary.data[:] = 1.0
        self.customer_category = sp.csr_matrix(binary @ onehot, dtype=np.float32)
        self._prepare()

    def _prepare(self) -> None:
        n_cat = int(self.item_category.max()) + 1 if self.item_category.size else 0
        cat_top = np.zeros(n_cat, dtype=np.float32)
        np.maximum.at(cat_top, self.item_category, self.popularity)
        denom = np.where(cat_top[self.item_category] > 0, cat_top[self.item_category], 1.0)
        self._within = (self.popularity / denom).astype(np.float32)

    def _known_scores(self, customer_idx: np.ndarray) -> np.ndarray:
        rows = take_rows(self.customer_category, customer_idx).toarray()
        totals = rows.sum(axis=1, keepdims=True)
        share = rows / np.where(totals > 0, totals, 1.0)
        scores: np.ndarray = share[:, self.item_category] * self._within
        return (scores + 1e-3 * _normalised(self.popularity)).astype(np.float32)

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = csr_to_arrays("customer_category", self.customer_category)
        arrays["item_category"] = self.item_category
        return arrays

    def _load(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.item_category = np.asarray(arrays["item_category"], dtype=np.int32)
        self.customer_category = csr_from_arrays("customer_category", arrays)
        self._prepare()


class OwnHistory(ScoringRecommender):
    """The customer's own most-bought items first, then popular items.

    With ``binary`` every own item counts the same (popularity orders them): the peer
    baseline "own items then popularity".
    """

    kind = "own_history"

    def __init__(self, binary: bool = False, name: str | None = None) -> None:
        super().__init__(name)
        self.binary = binary
        self.user_items = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, data: Interactions) -> None:
        self.user_items = sp.csr_matrix(data.matrix, dtype=np.float32, copy=True)
        if self.binary:
            self.user_items.data[:] = 1.0

    def _params(self) -> dict[str, Any]:
        return {"binary": self.binary}

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Self:
        return cls(binary=bool(params["binary"]), name=params.get("name"))

    def _known_scores(self, customer_idx: np.ndarray) -> np.ndarray:
        own = take_rows(self.user_items, customer_idx).toarray()
        # own items score above 1; popularity in [0, 1) fills after them
        pop = 0.999 * _normalised(self.popularity)
        return np.where(own > 0, 1.0 + own + 1e-3 * pop, pop).astype(np.float32)

    def _arrays(self) -> dict[str, np.ndarray]:
        return csr_to_arrays("user_items", self.user_items)

    def _load(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.user_items = csr_from_arrays("user_items", arrays)
