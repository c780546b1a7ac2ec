"""Our two-stage recommender: candidates from several sources, re-ranked by LightGBM LambdaRank.

Stage one pools, per customer, the items of their own history, the top items of ALS, item-kNN
and EASE, and the popular and trending items. Stage two scores each (customer, candidate) pair
with a LambdaRank booster whose features are what predicts the next purchase in retail: how
often and how lately the customer bought the item, how their interval compares with the
item's usual repurchase cycle, the collaborative scores and ranks, the item's popularity and
trend, and the customer's share of the item's category.

The booster is trained on a validation window carved from the end of the training history
(``validation_days``): the candidate sources are fitted on the history before it, and the
labels are the purchases inside it. The test period is never seen. Each customer contributes
two query groups, all candidates and only the not-yet-bought ones, so the same booster ranks
well whether the caller keeps repeats or excludes them. The sources are then refitted on the
full history for serving.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from training.recs.als import ALS, TUNED_ALS, ALSConfig
from training.recs.base import (
    Interactions,
    RecsError,
    csr_from_arrays,
    csr_to_arrays,
    take_rows,
    top_k,
    truncate,
)
from training.recs.ease import EASE, EASEConfig
from training.recs.itemknn import ItemKNN, ItemKNNConfig
from training.recs.scoring import item_popularity, pad_with, recent_buyers

FEATURES = (
    "owned",
    "own_strength",
    "own_decayed",
    "days_since_own_last",
    "days_since_own_first",
    "own_interval",
    "own_due_ratio",
    "item_due_ratio",
    "als_score",
    "als_rank",
    "knn_score",
    "knn_rank",
    "ease_score",
    "ease_rank",
    "pop_all",
    "pop_90",
    "pop_30",
    "pop_7",
    "trend",
    "item_repeat_rate",
    "item_cycle",
    "price",
    "category_share",
    "customer_orders",
    "customer_items",
    "days_since_customer_last",
)


@dataclass(frozen=True)
class HybridConfig:
    """Candidate sources, decay, validation window and LightGBM parameters of `Hybrid`."""

    als: ALSConfig = TUNED_ALS
    knn: ItemKNNConfig = field(default_factory=lambda: ItemKNNConfig("bm25", neighbours=100))
    ease: EASEConfig | None = field(default_factory=lambda: EASEConfig(500.0, max_items=4000))
    own_candidates: int = 200  # most recent-weighted own items kept as candidates
    cf_candidates: int = 50
    popular_candidates: int = 30
    decay_half_life_days: float = 60.0
    validation_days: float = 30.0
    max_train_customers: int = 50_000
    num_trees: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 50
    seed: int = 42

    def __post_init__(self) -> None:
        for name in (
            "own_candidates",
            "cf_candidates",
            "popular_candidates",
            "num_trees",
            "num_leaves",
        ):
            if getattr(self, name) <= 0:
                raise RecsError(f"HybridConfig.{name} must be positive, got {getattr(self, name)}")
        if self.validation_days <= 0:
            raise RecsError(
                f"HybridConfig.validation_days must be positive, got {self.validation_days}"
            )
        if self.decay_half_life_days <= 0:
            raise RecsError(
                "HybridConfig.decay_half_life_days must be positive, "
                f"got {self.decay_half_life_days}"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HybridConfig:
        """Inverse of `dataclasses.asdict`."""
        d = dict(d)
        d["als"] = ALSConfig(**d["als"])
        d["knn"] = ItemKNNConfig(**d["knn"])
        d["ease"] = None if d.get("ease") is None else EASEConfig(**d["ease"])
        return cls(**d)


def _decayed(data: Interactions, half_life: float) -> sp.csr_matrix:
    """Customers x items: orders containing the pair, each weighted 0.5^(age / half_life)."""
    weight = np.power(0.5, (data.as_of - data.basket_day) / half_life).astype(np.float32)
    owner = sp.csr_matrix(
        (weight, (data.basket_customer, np.arange(weight.size))),
        shape=(data.n_customers, weight.size),
    )
    out = sp.csr_matrix(owner @ data.baskets, dtype=np.float32)
    out.sort_indices()
    return out


def _item_stats(data: Interactions) -> dict[str, np.ndarray]:
    """Per-item popularity windows, trend, repeat rate, repurchase cycle and price."""
    pop = {f"pop_{d}": recent_buyers(data, float(d)) for d in (7, 30, 90)}
    pop["pop_all"] = recent_buyers(data, None)
    trend = (pop["pop_7"] + 1.0) / (pop["pop_30"] / 30.0 * 7.0 + 1.0)
    m = data.matrix.tocoo()
    repeats = np.bincount(m.col[m.data >= 2], minlength=data.n_items)
    repeat_rate = repeats / np.maximum(pop["pop_all"], 1.0)
    first, last = data.first_day.tocoo(), data.last_day.tocoo()
    multi = m.data >= 2
    interval = (last.data[multi] - first.data[multi]) / np.maximum(m.data[multi] - 1, 1)
    cycle = np.full(data.n_items, np.nan)
    if interval.size:
        med = (
            pl.DataFrame({"i": m.col[multi], "v": interval}).group_by("i").agg(pl.col("v").median())
        )
        cycle[med["i"].to_numpy()] = med["v"].to_numpy()
    return {
        **pop,
        "trend": trend,
        "item_repeat_rate": repeat_rate,
        "item_cycle": cycle,
        "price": data.item_price.astype(np.float64),
    }


def _customer_stats(data: Interactions) -> dict[str, np.ndarray]:
    orders = np.bincount(data.basket_customer, minlength=data.n_customers).astype(np.float64)
    last = np.full(data.n_customers, np.nan)
    if data.basket_day.size:
        lastd = np.full(data.n_customers, -np.inf)
        np.maximum.at(lastd, data.basket_customer, data.basket_day)
        last = np.where(np.isfinite(lastd), data.as_of - lastd, np.nan)
    return {
        "customer_orders": orders,
        "customer_items": np.diff(data.matrix.indptr).astype(np.float64),
        "days_since_customer_last": last,
    }


def _category_counts(data: Interactions) -> sp.csr_matrix:
    n_cat = len(data.categories)
    onehot = sp.csr_matrix(
        (np.ones(data.n_items, dtype=np.float32), (np.arange(data.n_items), data.item_category)),
        shape=(data.n_items, n_cat),
    )
    binary = sp.csr_matrix(data.matrix, dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    return sp.csr_matrix(binary @ onehot)


class _Sources:
    """Stage one fitted on one history: candidate generators plus the feature tables."""

    def __init__(self, config: HybridConfig) -> None:
        self.config = config
        self.als = ALS(config.als, name="als")
        self.knn = ItemKNN(config.knn, name="knn")
        self.ease: EASE | None = None if config.ease is None else EASE(config.ease, name="ease")
        self.as_of = 0.0
        self.arrays: dict[str, np.ndarray] = {}
        self.matrices: dict[str, sp.csr_matrix] = {}

    def fit(self, data: Interactions) -> None:
        self.als.fit(data)
        self.knn.fit(data)
        if self.ease is not None:
            self.ease.fit(data)
        self.as_of = data.as_of
        self.arrays = {
            **{f"item_{k}": v for k, v in _item_stats(data).items()},
            **{f"cust_{k}": v for k, v in _customer_stats(data).items()},
            "item_category": data.item_category.astype(np.int32),
            "popularity": item_popularity(data),
            "has_history": np.diff(data.matrix.indptr) > 0,
        }
        self.matrices = {
            "strength": sp.csr_matrix(data.matrix, dtype=np.float32),
            "first_day": data.first_day,
            "last_day": data.last_day,
            "decayed": _decayed(data, self.config.decay_half_life_days),
            "category": _category_counts(data),
        }

    @property
    def n_items(self) -> int:
        return int(self.arrays["popularity"].shape[0])

    def candidates(
        self, cidx: np.ndarray, banned: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row in cidx, item, feature matrix) for every candidate of known customers."""
        cfg, a, n = self.config, self.arrays, self.n_items
        b = cidx.size
        dense = {name: take_rows(m, cidx).toarray() for name, m in self.matrices.items()}
        owned = dense["strength"] > 0
        mask = owned.copy()
        if owned.sum(axis=1).max(initial=0) > cfg.own_candidates:
            decayed = np.where(owned, dense["decayed"], -np.inf)
            top_own = top_k(decayed, cfg.own_candidates)
            mask[:] = False
            rr = np.repeat(np.arange(b), top_own.shape[1])
            flat = top_own.ravel()
            mask[rr[flat >= 0], flat[flat >= 0]] = True
        sources: dict[str, np.ndarray] = {
            "als": self.als.scores(cidx),
            "knn": self.knn.scores(cidx),
        }
        if self.ease is not None:
            sources["ease"] = self.ease.scores(cidx)
        ranks: dict[str, np.ndarray] = {}
        for name, s in sources.items():
            lists = top_k(s, cfg.cf_candidates, banned=banned)
            rank = np.full((b, n), cfg.cf_candidates + 1, dtype=np.float32)
            rows = np.repeat(np.arange(b), lists.shape[1])
            flat = lists.ravel()
            ok = flat >= 0
            rank[rows[ok], flat[ok]] = np.tile(np.arange(1, lists.shape[1] + 1), b)[ok]
            mask[rows[ok], flat[ok]] = True
            ranks[name] = rank
        for pop in (a["popularity"], a["item_pop_7"]):
            top = np.argsort(-pop, kind="stable")[: cfg.popular_candidates]
            mask[:, top] = True
        if banned is not None:
            mask &= ~banned
        r, i = np.nonzero(mask)
        c = cidx[r]
        last = dense["last_day"][r, i]
        first = dense["first_day"][r, i]
        strength = dense["strength"][r, i]
        own = owned[r, i]
        since_last = np.where(own, self.as_of - last, np.nan)
        since_first = np.where(own, self.as_of - first, np.nan)
        interval = np.where(
            own & (strength >= 2), (last - first) / np.maximum(strength - 1, 1), np.nan
        )
        cycle = a["item_item_cycle"][i]
        cat_counts = dense["category"]
        cat_total = cat_counts.sum(axis=1)
        cat_share = cat_counts[r, a["item_category"][i]] / np.maximum(cat_total[r], 1.0)
        zeros = np.zeros(r.size)
        cols = {
            "owned": own.astype(np.float64),
            "own_strength": strength,
            "own_decayed": dense["decayed"][r, i],
            "days_since_own_last": since_last,
            "days_since_own_first": since_first,
            "own_interval": interval,
            "own_due_ratio": since_last / np.where(interval > 0, interval, np.nan),
            "item_due_ratio": since_last / np.where(cycle > 0, cycle, np.nan),
            "als_score": sources["als"][r, i],
            "als_rank": ranks["als"][r, i],
            "knn_score": sources["knn"][r, i],
            "knn_rank": ranks["knn"][r, i],
            "ease_score": sources["ease"][r, i] if "ease" in sources else zeros,
            "ease_rank": ranks["ease"][r, i] if "ease" in ranks else zeros,
            "pop_all": a["item_pop_all"][i],
            "pop_90": a["item_pop_90"][i],
            "pop_30": a["item_pop_30"][i],
            "pop_7": a["item_pop_7"][i],
            "trend": a["item_trend"][i],
            "item_repeat_rate": a["item_item_repeat_rate"][i],
            "item_cycle": cycle,
            "price": a["item_price"][i],
            "category_share": cat_share,
            "customer_orders": a["cust_customer_orders"][c],
            "customer_items": a["cust_customer_items"][c],
            "days_since_customer_last": a["cust_days_since_customer_last"][c],
        }
        x = np.column_stack([np.asarray(cols[f], dtype=np.float32) for f in FEATURES])
        x[~np.isfinite(x) & ~np.isnan(x)] = np.nan
        return r, i.astype(np.int32), x

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        params: dict[str, Any] = {"as_of": self.as_of}
        arrays = dict(self.arrays)
        for name, m in self.matrices.items():
            arrays.update(csr_to_arrays(f"m_{name}", m))
        comps: list[tuple[str, ALS | ItemKNN | EASE | None]] = [
            ("als", self.als),
            ("knn", self.knn),
            ("ease", self.ease),
        ]
        for name, model in comps:
            if model is None:
                continue
            p, arr = model.state()
            params[name] = p
            arrays.update({f"{name}__{k}": v for k, v in arr.items()})
        return params, arrays

    @classmethod
    def from_state(
        cls, config: HybridConfig, params: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> _Sources:
        src = cls(config)
        src.as_of = float(params["as_of"])

        def sub(prefix: str) -> dict[str, np.ndarray]:
            return {
                k[len(prefix) + 2 :]: v for k, v in arrays.items() if k.startswith(prefix + "__")
            }

        src.als = ALS.from_state(params["als"], sub("als"))
        src.knn = ItemKNN.from_state(params["knn"], sub("knn"))
        src.ease = None if "ease" not in params else EASE.from_state(params["ease"], sub("ease"))
        names = ("strength", "first_day", "last_day", "decayed", "category")
        src.matrices = {n: csr_from_arrays(f"m_{n}", arrays) for n in names}
        src.arrays = {k: v for k, v in arrays.items() if not k.startswith("m_") and "__" not in k}
        return src


def _label_matrix(data: Interactions, since_day: float) -> sp.csr_matrix:
    """Customers x items: 1 where the customer bought the item on or after ``since_day``."""
    keep = np.flatnonzero(data.basket_day >= since_day)
    b = data.baskets[keep]
    owner = sp.csr_matrix(
        (np.ones(keep.size, dtype=np.float32), (data.basket_customer[keep], np.arange(keep.size))),
        shape=(data.n_customers, keep.size),
    )
    out = sp.csr_matrix(owner @ b)
    out.data[:] = 1.0
    return out


class Hybrid:
    """Candidates from own history + ALS + item-kNN + EASE + popularity, LambdaRank re-ranked."""

    kind = "hybrid"

    def __init__(self, config: HybridConfig | None = None, name: str | None = None) -> None:
        self.config = config or HybridConfig()
        self.name = name or self.kind
        self.sources: _Sources | None = None
        self.booster_text = ""
        self._booster: Any = None
        self.train_stats: dict[str, Any] = {}

    # training ----------------------------------------------------------------------------
    def fit(self, data: Interactions) -> None:
        """Train the re-ranker on a window carved from ``data``, then refit the sources."""
        import lightgbm as lgb

        cfg = self.config
        since = data.as_of - cfg.validation_days
        inner = truncate(data, since)
        labels = _label_matrix(data, since)
        inner_src = _Sources(cfg)
        inner_src.fit(inner)
        has_hist = np.diff(inner.matrix.indptr) > 0
        has_label = np.diff(labels.indptr) > 0
        train_c = np.flatnonzero(has_hist & has_label).astype(np.int64)
        if train_c.size > cfg.max_train_customers:
            rng = np.random.default_rng(cfg.seed)
            train_c = np.sort(rng.choice(train_c, cfg.max_train_customers, replace=False))
        if train_c.size == 0:
            raise RecsError(
                f"hybrid: no customer both bought before and inside the last "
                f"{cfg.validation_days} days; cannot train the re-ranker"
            )
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        groups: list[np.ndarray] = []
        pos_total = 0
        for start in range(0, train_c.size, _batch_size(data.n_items)):
            c = train_c[start : start + _batch_size(data.n_items)]
            r, i, x = inner_src.candidates(c, None)
            y = np.asarray(take_rows(labels, c)[r, i]).ravel().astype(np.float32)
            pos_total += int(y.sum())
            owned = x[:, 0] > 0
            for subset in (np.ones(r.size, dtype=bool), ~owned):
                rr = r[subset]
                counts = np.bincount(rr, minlength=c.size)
                pos = np.bincount(rr, weights=y[subset], minlength=c.size)
                keep_rows = (pos > 0)[rr]
                xs.append(x[subset][keep_rows])
                ys.append(y[subset][keep_rows])
                groups.append(counts[(pos > 0) & (counts > 0)])
        x_all, y_all, g_all = np.vstack(xs), np.concatenate(ys), np.concatenate(groups)
        label_total = int(labels[train_c].sum())
        self.train_stats = {
            "train_customers": int(train_c.size),
            "train_rows": int(x_all.shape[0]),
            "train_groups": int(g_all.size),
            "label_pairs": label_total,
            "label_pairs_in_candidates": pos_total,
            "candidate_recall": round(pos_total / max(label_total, 1), 4),
        }
        params = {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_data_in_leaf": cfg.min_data_in_leaf,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambdarank_truncation_level": 20,
            "seed": cfg.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 2,
            "verbose": -1,
        }
        dataset = lgb.Dataset(
            x_all, label=y_all, group=g_all, feature_name=list(FEATURES), free_raw_data=True
        )
        booster = lgb.train(params, dataset, num_boost_round=cfg.num_trees)
        self.booster_text = booster.model_to_string()
        self._booster = booster
        self.sources = _Sources(cfg)
        self.sources.fit(data)

    # serving -----------------------------------------------------------------------------
    def _check(self) -> _Sources:
        if self.sources is None or self._booster is None:
            raise RecsError(f"model {self.name!r} is not fitted: call fit() or from_state()")
        return self.sources

    def recommend(
        self, customer_idx: np.ndarray, k: int, *, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """Top-``k`` items per customer; unknown or empty customers get popular items."""
        src = self._check()
        n_items = src.n_items
        idx = np.asarray(customer_idx, dtype=np.int64).ravel()
        if exclude is not None and exclude.shape != (idx.size, n_items):
            raise RecsError(
                f"exclude has shape {exclude.shape}, expected ({idx.size}, {n_items}) "
                "(one row per requested customer, one column per item)"
            )
        pop = src.arrays["popularity"]
        order = np.argsort(-pop, kind="stable")
        has_hist = src.arrays["has_history"]
        known = (idx >= 0) & (idx < has_hist.size)
        known[known] = has_hist[idx[known]]
        out = np.full((idx.size, k), -1, dtype=np.int32)
        step = _batch_size(n_items)
        for start in range(0, idx.size, step):
            stop = min(start + step, idx.size)
            sl = np.arange(start, stop)
            banned = None if exclude is None else np.asarray(exclude[start:stop].toarray() != 0)
            kn = known[sl]
            if kn.any():
                rows = sl[kn]
                ban_known = None if banned is None else banned[kn]
                r, i, x = src.candidates(idx[rows], ban_known)
                score = np.full((rows.size, n_items), -np.inf, dtype=np.float64)
                if r.size:
                    score[r, i] = self._booster.predict(x, num_threads=1)
                out[rows] = top_k(score, k, banned=ban_known)
            out[start:stop] = pad_with(out[start:stop], order, banned)
        return out

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Config, booster text and source params; arrays of every source."""
        src = self._check()
        p, arrays = src.state()
        params = {
            "kind": self.kind,
            "name": self.name,
            "config": asdict(self.config),
            "booster": self.booster_text,
            "sources": p,
            "train_stats": self.train_stats,
        }
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        """Rebuild the fitted hybrid from `state` output."""
        import lightgbm as lgb

        if params.get("kind") != cls.kind:
            raise RecsError(f"state kind {params.get('kind')!r} is not {cls.kind!r}")
        config = HybridConfig.from_dict(params["config"])
        model = cls(config, name=params.get("name"))
        model.sources = _Sources.from_state(config, params["sources"], arrays)
        model.booster_text = str(params["booster"])
        model._booster = lgb.Booster(model_str=model.booster_text)
        model.train_stats = dict(params.get("train_stats", {}))
        return model


def _batch_size(n_items: int) -> int:
    """Customers per batch so that each dense batch x items array stays near 2M cells."""
    return int(max(8, min(512, 2_000_000 // max(n_items, 1))))
