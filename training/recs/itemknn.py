"""Item-item nearest neighbours (implicit's BM25 / cosine / TF-IDF similarity).

The similarity is computed by implicit (top ``neighbours`` per item); scoring is the
customer's purchase row times the similarity matrix, the same sum implicit's scorer does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Self

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from training.recs.base import (
    Interactions,
    RecsError,
    csr_from_arrays,
    csr_to_arrays,
    take_rows,
)
from training.recs.scoring import ScoringRecommender

Similarity = Literal["bm25", "cosine", "tfidf"]


@dataclass(frozen=True)
class ItemKNNConfig:
    """Similarity measure and its parameters; the defaults are implicit's."""

    similarity: Similarity = "bm25"
    neighbours: int = 20
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    binary: bool = False  # use 1 per bought pair instead of the purchase strength

    def __post_init__(self) -> None:
        if self.similarity not in ("bm25", "cosine", "tfidf"):
            raise RecsError(
                f"ItemKNNConfig.similarity must be bm25/cosine/tfidf, got {self.similarity!r}"
            )
        if self.neighbours <= 0:
            raise RecsError(f"ItemKNNConfig.neighbours must be positive, got {self.neighbours}")


def item_similarity(user_items: sp.csr_matrix, config: ItemKNNConfig) -> sp.csr_matrix:
    """Items x items similarity, the top ``config.neighbours`` per row (float32 CSR)."""
    from implicit.nearest_neighbours import (
        ItemItemRecommender,
        bm25_weight,
        normalize,
        tfidf_weight,
    )

    # the same weightings as implicit's BM25/Cosine/TFIDFRecommender.fit, kept in CSR
    items_users = sp.csr_matrix(user_items.T, dtype=np.float32)
    if config.similarity == "bm25":
        weighted = bm25_weight(items_users, K1=config.bm25_k1, B=config.bm25_b)
    elif config.similarity == "cosine":
        weighted = normalize(items_users)
    else:
        weighted = normalize(tfidf_weight(items_users))
    model = ItemItemRecommender(K=config.neighbours)
    with threadpool_limits(1, "blas"):
        model.fit(sp.csr_matrix(weighted.T, dtype=np.float64), show_progress=False)
    sim = sp.csr_matrix(model.similarity, dtype=np.float32)
    sim.sort_indices()
    return sim


class ItemKNN(ScoringRecommender):
    """score(c, i) = sum over items j the customer bought of strength(c, j) * sim(j, i)."""

    kind = "item_knn"

    def __init__(self, config: ItemKNNConfig | None = None, name: str | None = None) -> None:
        super().__init__(name)
        self.config = config or ItemKNNConfig()
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        self.user_items = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, data: Interactions) -> None:
        self.user_items = sp.csr_matrix(data.matrix, dtype=np.float32, copy=True)
        if self.config.binary:
            self.user_items.data[:] = 1.0
        self.similarity = item_similarity(self.user_items, self.config)

    def _known_scores(self, customer_idx: np.ndarray) -> np.ndarray:
        rows = take_rows(self.user_items, customer_idx)
        return np.asarray((rows @ self.similarity).toarray(), dtype=np.float32)

    def _params(self) -> dict[str, Any]:
        return {"config": asdict(self.config)}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            **csr_to_arrays("similarity", self.similarity),
            **csr_to_arrays("user_items", self.user_items),
        }

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Self:
        return cls(config=ItemKNNConfig(**params["config"]), name=params.get("name"))

    def _load(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.similarity = csr_from_arrays("similarity", arrays)
        self.user_items = csr_from_arrays("user_items", arrays)
