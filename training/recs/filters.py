"""Business filters applied on top of any recommender.

- inactive items are never recommended;
- items the customer already bought are excluded, except in replenishable categories (where
  many buyers buy the same item again), which come back once the customer is due: the days
  since their last purchase reach ``due_fraction`` of their own repurchase interval (or of the
  category's usual cycle when they bought it only once);
- at most ``max_per_category`` items of one category per list;
- price caps (``min_price`` / ``max_price``).

`FilteredRecommender` wraps a model and is itself a `Recommender` (it saves the inner model's
state beside its own tables), so the service applies exactly what evaluation measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from training.recs.base import (
    Interactions,
    Recommender,
    RecsError,
    check_state_kind,
    csr_from_arrays,
    csr_to_arrays,
    gather,
    take_rows,
)


@dataclass(frozen=True)
class FilterConfig:
    """Which business rules apply and their thresholds."""

    exclude_inactive: bool = True
    exclude_bought: bool = True
    replenish_min_repeat_rate: float = 0.3  # share of a category's buyer-item pairs rebought
    replenish_min_buyers: int = 5
    due_fraction: float = 0.8
    max_per_category: int | None = None
    min_price: float | None = None
    max_price: float | None = None
    oversample: int = 4  # ask the inner model for k * oversample before capping categories

    def __post_init__(self) -> None:
        if not 0.0 <= self.replenish_min_repeat_rate <= 1.0:
            raise RecsError(
                "FilterConfig.replenish_min_repeat_rate must be in [0, 1], "
                f"got {self.replenish_min_repeat_rate}"
            )
        if self.max_per_category is not None and self.max_per_category <= 0:
            raise RecsError(
                f"FilterConfig.max_per_category must be positive, got {self.max_per_category}"
            )
        if self.oversample < 1:
            raise RecsError(f"FilterConfig.oversample must be >= 1, got {self.oversample}")
        if (
            self.min_price is not None
            and self.max_price is not None
            and self.min_price > self.max_price
        ):
            raise RecsError(
                f"FilterConfig.min_price {self.min_price} exceeds max_price {self.max_price}"
            )


def category_repeat_stats(data: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per category: repeat rate, buyer-item pairs, median repurchase interval (days)."""
    n_cat = len(data.categories)
    m = data.matrix.tocoo()
    cat = data.item_category[m.col]
    pairs = np.bincount(cat, minlength=n_cat).astype(np.float64)
    repeats = np.bincount(cat[m.data >= 2], minlength=n_cat).astype(np.float64)
    rate = repeats / np.maximum(pairs, 1.0)
    cycle = np.full(n_cat, np.nan)
    multi = m.data >= 2
    if multi.any():
        first = gather(data.first_day, m.row[multi], m.col[multi])
        last = gather(data.last_day, m.row[multi], m.col[multi])
        interval = (last - first) / np.maximum(m.data[multi] - 1, 1)
        med = pl.DataFrame({"c": cat[multi], "v": interval}).group_by("c").agg(pl.col("v").median())
        cycle[med["c"].to_numpy()] = med["v"].to_numpy()
    return rate, pairs, cycle


def cap_per_category(
    recs: np.ndarray, item_category: np.ndarray, max_per_category: int, k: int
) -> np.ndarray:
    """Keep list order, dropping items once their category has ``max_per_category``; first k."""
    out = np.full((recs.shape[0], k), -1, dtype=np.int32)
    for r in range(recs.shape[0]):
        seen: dict[int, int] = {}
        j = 0
        for item in recs[r]:
            if item < 0 or j == k:
                break
            c = int(item_category[item])
            if seen.get(c, 0) >= max_per_category:
                continue
            seen[c] = seen.get(c, 0) + 1
            out[r, j] = item
            j += 1
    return out


class FilteredRecommender:
    """A `Recommender` that applies `FilterConfig` rules around an inner model."""

    kind = "filtered"

    def __init__(
        self, inner: Recommender, config: FilterConfig | None = None, name: str | None = None
    ) -> None:
        self.inner = inner
        self.config = config or FilterConfig()
        self.name = name or f"{inner.name}+filters"
        self.tables: dict[str, np.ndarray] = {}
        self.strength = sp.csr_matrix((0, 0), dtype=np.float32)
        self.first_day = sp.csr_matrix((0, 0))
        self.last_day = sp.csr_matrix((0, 0))
        self.as_of = 0.0

    def fit(self, data: Interactions) -> None:
        """Fit the inner model and learn the replenishable categories and their cycles."""
        self.inner.fit(data)
        self.attach(data)

    def attach(self, data: Interactions) -> None:
        """Learn the filter tables from ``data`` without refitting the inner model."""
        rate, pairs, cycle = category_repeat_stats(data)
        replenish = (rate >= self.config.replenish_min_repeat_rate) & (
            pairs >= self.config.replenish_min_buyers
        )
        self.tables = {
            "item_active": data.item_active.astype(bool),
            "item_price": data.item_price.astype(np.float64),
            "item_category": data.item_category.astype(np.int32),
            "category_replenishable": replenish,
            "category_cycle": cycle,
            "category_repeat_rate": rate,
        }
        self.strength = sp.csr_matrix(data.matrix, dtype=np.float32)
        self.first_day = data.first_day
        self.last_day = data.last_day
        self.as_of = data.as_of

    @property
    def replenishable_categories(self) -> np.ndarray:
        """Indices of the categories treated as replenishable."""
        return np.flatnonzero(self.tables["category_replenishable"])

    def banned(self, customer_idx: np.ndarray) -> sp.csr_matrix:
        """Items the rules forbid per requested customer (CSR, rows aligned with the request)."""
        if not self.tables:
            raise RecsError(f"model {self.name!r} is not fitted: call fit() or from_state()")
        t, cfg = self.tables, self.config
        n_items = t["item_active"].size
        idx = np.asarray(customer_idx, dtype=np.int64).ravel()
        item_ban = np.zeros(n_items, dtype=bool)
        if cfg.exclude_inactive:
            item_ban |= ~t["item_active"]
        price = t["item_price"]
        if cfg.max_price is not None:
            item_ban |= ~(price <= cfg.max_price)
        if cfg.min_price is not None:
            item_ban |= ~(price >= cfg.min_price)
        global_rows = sp.csr_matrix(
            np.broadcast_to(item_ban, (idx.size, n_items)).astype(np.float32)
        )
        if not cfg.exclude_bought:
            return global_rows
        own = take_rows(self.strength, idx).tocoo()
        first = gather(take_rows(self.first_day, idx), own.row, own.col)
        last = gather(take_rows(self.last_day, idx), own.row, own.col)
        cat = t["item_category"][own.col]
        own_interval = np.where(own.data >= 2, (last - first) / np.maximum(own.data - 1, 1), np.nan)
        interval = np.where(np.isnan(own_interval), t["category_cycle"][cat], own_interval)
        due = (self.as_of - last) >= cfg.due_fraction * np.nan_to_num(interval, nan=np.inf)
        comes_back = t["category_replenishable"][cat] & due
        keep = ~comes_back
        bought = sp.csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.float32), (own.row[keep], own.col[keep])),
            shape=(idx.size, n_items),
        )
        return sp.csr_matrix(((global_rows + bought) > 0).astype(np.float32))

    def recommend(
        self, customer_idx: np.ndarray, k: int, *, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """The inner model's top items that pass every rule (int32, -1 padded)."""
        idx = np.asarray(customer_idx, dtype=np.int64).ravel()
        ban = self.banned(idx)
        if exclude is not None:
            if exclude.shape != ban.shape:
                raise RecsError(
                    f"exclude has shape {exclude.shape}, expected {ban.shape} "
                    "(one row per requested customer, one column per item)"
                )
            ban = sp.csr_matrix(((ban + exclude) > 0).astype(np.float32))
        cap = self.config.max_per_category
        if cap is None:
            return self.inner.recommend(idx, k, exclude=ban)
        wide = self.inner.recommend(idx, k * self.config.oversample, exclude=ban)
        return cap_per_category(wide, self.tables["item_category"], cap, k)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Own tables and config plus the inner model's state under ``inner__``."""
        if not self.tables:
            raise RecsError(f"model {self.name!r} is not fitted: call fit() or from_state()")
        inner_params, inner_arrays = self.inner.state()
        params = {
            "kind": self.kind,
            "name": self.name,
            "config": asdict(self.config),
            "as_of": self.as_of,
            "inner": inner_params,
        }
        arrays = dict(self.tables)
        arrays.update(csr_to_arrays("strength", self.strength))
        arrays.update(csr_to_arrays("first_day", self.first_day))
        arrays.update(csr_to_arrays("last_day", self.last_day))
        arrays.update({f"inner__{k}": v for k, v in inner_arrays.items()})
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        """Rebuild the wrapper and its inner model (any kind `zoo` knows)."""
        from training.recs.zoo import model_from_state

        check_state_kind(params, cls.kind)
        inner_arrays = {k[7:]: v for k, v in arrays.items() if k.startswith("inner__")}
        inner = model_from_state(params["inner"], inner_arrays)
        model = cls(inner, FilterConfig(**params["config"]), name=params.get("name"))
        names = (
            "item_active",
            "item_price",
            "item_category",
            "category_replenishable",
            "category_cycle",
            "category_repeat_rate",
        )
        model.tables = {n: np.asarray(arrays[n]) for n in names}
        model.strength = csr_from_arrays("strength", arrays)
        model.first_day = csr_from_arrays("first_day", arrays)
        model.last_day = csr_from_arrays("last_day", arrays)
        model.as_of = float(params["as_of"])
        return model
