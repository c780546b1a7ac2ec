"""EASE (Steck 2019): a closed-form item-item linear model with a zero diagonal.

B = -P / diag(P) with P = (X'X + reg I)^-1 over the binary customers x items matrix. The
inverse is dense items x items, so only the ``max_items`` most popular items are modelled;
the rest are never scored (they can still appear through the popularity padding).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Self

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


@dataclass(frozen=True)
class EASEConfig:
    """L2 regularisation and the cap on modelled items (memory is max_items^2 floats)."""

    regularization: float = 500.0
    max_items: int = 10_000

    def __post_init__(self) -> None:
        if self.regularization <= 0:
            raise RecsError(
                f"EASEConfig.regularization must be positive, got {self.regularization}"
            )
        if self.max_items <= 0:
            raise RecsError(f"EASEConfig.max_items must be positive, got {self.max_items}")


def fit_ease(binary: sp.csr_matrix, regularization: float) -> np.ndarray:
    """The EASE weight matrix B (float32, zero diagonal) of a binary customers x items matrix."""
    gram = np.asarray((binary.T @ binary).toarray(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += regularization
    with threadpool_limits(2, "blas"):
        inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32)


class EASE(ScoringRecommender):
    """score(c, ·) = binary purchase row of c times B."""

    kind = "ease"

    def __init__(self, config: EASEConfig | None = None, name: str | None = None) -> None:
        super().__init__(name)
        self.config = config or EASEConfig()
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.modelled = np.zeros(0, dtype=np.int32)
        self.user_items = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, data: Interactions) -> None:
        order = np.argsort(-self.popularity, kind="stable")
        keep = order[: self.config.max_items]
        self.modelled = np.sort(keep[self.popularity[keep] > 0]).astype(np.int32)
        binary = sp.csr_matrix(data.matrix[:, self.modelled], dtype=np.float32)
        binary.data[:] = 1.0
        self.user_items = binary
        self.weights = fit_ease(binary, self.config.regularization)

    def _known_scores(self, customer_idx: np.ndarray) -> np.ndarray:
        rows = take_rows(self.user_items, customer_idx)
        out = np.full((customer_idx.size, self.n_items), -np.inf, dtype=np.float32)
        out[:, self.modelled] = np.asarray(rows @ self.weights, dtype=np.float32)
        return out

    def _params(self) -> dict[str, Any]:
        return {"config": asdict(self.config)}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "weights": self.weights,
            "modelled": self.modelled,
            **csr_to_arrays("user_items", self.user_items),
        }

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Self:
        return cls(config=EASEConfig(**params["config"]), name=params.get("name"))

    def _load(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.weights = np.asarray(arrays["weights"], dtype=np.float32)
        self.modelled = np.asarray(arrays["modelled"], dtype=np.int32)
        self.user_items = csr_from_arrays("user_items", arrays)
