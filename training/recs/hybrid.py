"""Our two-stage recommender: candidates from several sources, re-ranked by LightGBM LambdaRank.

Stage one pools, per customer, the items of their own history, the top items of ALS, item-kNN
and EASE, and the most popular and trending items the customer may still be offered. Stage
two scores each (customer, candidate) pair with a LambdaRank booster whose features are what
predicts the next purchase in retail: how often and how lately the customer bought the item,
how their interval compares with the item's usual repurchase cycle, the collaborative scores
and ranks (raw and relative to the customer's best candidate), the item's popularity and
trend, and the customer's share of the item's category.

There are two boosters, one per protocol. ``repeats`` ranks candidate sets that still hold
some of the customer's own items; ``new`` ranks sets without any (the caller excluded the
customer's history). The ``new`` booster learns from candidates drawn with the customer's
items banned, exactly as at serving time, and from labels that are items new to the
customer, so the collaborative ranks it sees mean the same thing in training and in use.

Both are trained on a validation window carved from the end of the training history
(``validation_days``; ``windows`` consecutive ones if asked): the candidate sources are
fitted on the history before the window and the labels are the purchases inside it. The
number of trees is chosen by early stopping on NDCG@10 of customers held out of the booster's
rows. The test period is never seen. The sources are then refitted on the full history for
serving.
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
    check_state_kind,
    csr_from_arrays,
    csr_to_arrays,
    take_rows,
    top_k,
    truncate,
)
from training.recs.ease import EASE, EASEConfig
from training.recs.itemknn import ItemKNN, ItemKNNConfig
from training.recs.scoring import item_popularity, pad_with, recent_buyers

PROTOCOLS = ("repeats", "new")

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
    "als_rel",
    "knn_rel",
    "ease_rel",
    "pop_all",
    "orders_90",
    "pop_90",
    "pop_30",
    "pop_7",
    "trend",
    "item_repeat_rate",
    "item_cycle",
    "price",
    "category_share",
    "pop_in_category",
    "category_pop_score",
    "customer_orders",
    "customer_items",
    "days_since_customer_last",
)


@dataclass(frozen=True)
class HybridConfig:
    """Candidate sources, decay, validation window and LightGBM parameters of `Hybrid`."""

    als: ALSConfig = TUNED_ALS
    knn: ItemKNNConfig = field(default_factory=lambda: ItemKNNConfig("bm25", neighbours=100))
    ease: EASEConfig | None = field(default_factory=lambda: EASEConfig(500.0, max_items=2500))
    own_candidates: int = 200  # most recent-weighted own items kept as candidates
    cf_candidates: int = 50
    popular_candidates: int = 30
    decay_half_life_days: float = 60.0
    validation_days: float = 30.0
    windows: int = 1  # consecutive label windows of validation_days the rankers learn from
    max_train_customers: int = 3_000
    holdout_share: float = 0.2  # of the training customers, to choose the number of trees
    num_trees: int = 300  # at most; early stopping on the holdout picks fewer
    early_stopping_rounds: int = 40
    learning_rate: float = 0.05
    num_leaves: int = 7
    min_data_in_leaf: int = 200
    num_threads: int = 1
    seed: int = 42

    def __post_init__(self) -> None:
        for name in (
            "own_candidates",
            "cf_candidates",
            "popular_candidates",
            "num_trees",
            "num_leaves",
            "max_train_customers",
            "windows",
            "early_stopping_rounds",
            "num_threads",
        ):
            if getattr(self, name) <= 0:
                raise RecsError(f"HybridConfig.{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.holdout_share < 1.0:
            raise RecsError(
                f"HybridConfig.holdout_share must be in [0, 1), got {self.holdout_share}"
            )
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
    recent = data.baskets[np.flatnonzero(data.basket_day >= data.as_of - 90.0)]
    pop["orders_90"] = np.bincount(recent.indices, minlength=data.n_items).astype(np.float64)
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
    cat_top = np.zeros(len(data.categories))
    np.maximum.at(cat_top, data.item_category, pop["pop_90"])
    top = cat_top[data.item_category]
    return {
        **pop,
        "pop_in_category": np.where(top > 0, pop["pop_90"] / np.maximum(top, 1.0), 0.0),
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


def _relative(values: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Each value over the largest finite value of its row (its customer's candidates).

    Collaborative scores are on a per-customer scale (a heavy buyer's are all larger); the
    ratio to the customer's best candidate compares across customers. Zeros where the row's
    best is not positive or the value is not finite.
    """
    v = np.where(np.isfinite(values), values, -np.inf)
    best = np.full(n_rows, -np.inf)
    np.maximum.at(best, rows, v)
    top = best[rows]
    ok = np.isfinite(v) & (top > 0)
    return np.where(ok, v / np.where(ok, top, 1.0), 0.0)


def mark_first_allowed(
    mask: np.ndarray, order: np.ndarray, n: int, banned: np.ndarray | None
) -> None:
    """Mark in ``mask`` each row's first ``n`` items of ``order`` that the row does not ban."""
    if banned is None:
        mask[:, order[:n]] = True
        return
    head = order[: n + int(banned.sum(axis=1).max(initial=0))]
    allowed = ~banned[:, head]
    take = allowed & (np.cumsum(allowed, axis=1) <= n)
    r, j = np.nonzero(take)
    mask[r, head[j]] = True


class CandidateSources:
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

    @property
    def pop_order(self) -> np.ndarray:
        """Items by cold-start popularity, most popular first."""
        return np.argsort(-self.arrays["popularity"], kind="stable")

    @property
    def trend_order(self) -> np.ndarray:
        """Items by distinct buyers of the last 7 days, most first."""
        return np.argsort(-self.arrays["item_pop_7"], kind="stable")

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
        for order in (self.pop_order, self.trend_order):
            mark_first_allowed(mask, order, cfg.popular_candidates, banned)
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
            **{
                f"{n}_rel": _relative(sources[n][r, i], r, b) if n in sources else zeros
                for n in ("als", "knn", "ease")
            },
            "pop_all": a["item_pop_all"][i],
            "orders_90": a["item_orders_90"][i],
            "pop_90": a["item_pop_90"][i],
            "pop_30": a["item_pop_30"][i],
            "pop_7": a["item_pop_7"][i],
            "trend": a["item_trend"][i],
            "item_repeat_rate": a["item_item_repeat_rate"][i],
            "item_cycle": cycle,
            "price": a["item_price"][i],
            "category_share": cat_share,
            "pop_in_category": a["item_pop_in_category"][i],
            "category_pop_score": cat_share * a["item_pop_in_category"][i],
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
    ) -> CandidateSources:
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


def label_matrix(data: Interactions, since_day: float, until_day: float) -> sp.csr_matrix:
    """Customers x items: 1 where the customer bought the item in ``[since_day, until_day)``."""
    keep = np.flatnonzero((data.basket_day >= since_day) & (data.basket_day < until_day))
    b = data.baskets[keep]
    owner = sp.csr_matrix(
        (np.ones(keep.size, dtype=np.float32), (data.basket_customer[keep], np.arange(keep.size))),
        shape=(data.n_customers, keep.size),
    )
    out = sp.csr_matrix(owner @ b)
    out.data[:] = 1.0
    return out


@dataclass(frozen=True)
class RankingRows:
    """LambdaRank training rows of one protocol: features, labels and query group sizes."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    label_pairs: int  # purchases in the window the protocol could have recommended
    label_pairs_in_candidates: int

    @classmethod
    def concat(cls, parts: list[RankingRows]) -> RankingRows:
        """The rows of several windows, one after the other."""
        return cls(
            x=np.vstack([p.x for p in parts]),
            y=np.concatenate([p.y for p in parts]),
            groups=np.concatenate([p.groups for p in parts]),
            label_pairs=sum(p.label_pairs for p in parts),
            label_pairs_in_candidates=sum(p.label_pairs_in_candidates for p in parts),
        )


def ranking_rows(
    src: CandidateSources, labels: sp.csr_matrix, customers: np.ndarray, protocol: str
) -> RankingRows:
    """One query group per customer with at least one bought candidate.

    ``repeats``: every candidate, labelled by any purchase in the window. ``new``: the
    customer's own items are banned before the candidates are drawn (exactly as a caller's
    ``exclude`` bans them at serving time, so the source ranks mean the same thing), and the
    labels are the window purchases of items the customer had not bought before.
    """
    if protocol not in PROTOCOLS:
        raise RecsError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    groups: list[np.ndarray] = []
    label_total = in_candidates = 0
    step = _batch_size(src.n_items)
    for start in range(0, customers.size, step):
        c = customers[start : start + step]
        lab = take_rows(labels, c)
        banned = None
        if protocol == "new":
            banned = take_rows(src.matrices["strength"], c).toarray() > 0
            lab = sp.csr_matrix(lab - lab.multiply(banned))
            lab.eliminate_zeros()
        r, i, x = src.candidates(c, banned)
        y = np.asarray(lab[r, i]).ravel().astype(np.float32)
        label_total += int(lab.nnz)
        in_candidates += int(y.sum())
        counts = np.bincount(r, minlength=c.size)
        pos = np.bincount(r, weights=y, minlength=c.size)
        keep = (pos > 0)[r]
        xs.append(x[keep])
        ys.append(y[keep])
        groups.append(counts[(pos > 0) & (counts > 0)])
    width = len(FEATURES)
    return RankingRows(
        x=np.vstack(xs) if xs else np.zeros((0, width), dtype=np.float32),
        y=np.concatenate(ys) if ys else np.zeros(0, dtype=np.float32),
        groups=np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64),
        label_pairs=label_total,
        label_pairs_in_candidates=in_candidates,
    )


def _lgb_params(cfg: HybridConfig) -> dict[str, Any]:
    return {
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
        "num_threads": cfg.num_threads,
        "verbose": -1,
    }


def train_ranker(
    train: RankingRows, holdout: RankingRows, cfg: HybridConfig
) -> tuple[Any, dict[str, Any]]:
    """A LambdaRank booster; the number of trees is chosen by NDCG@10 on ``holdout``.

    Without holdout groups (tiny data) the booster gets ``cfg.num_trees`` trees.
    """
    import lightgbm as lgb

    if train.groups.size == 0:
        raise RecsError("hybrid: no training customer bought any of their candidates")
    params = _lgb_params(cfg)
    names = list(FEATURES)
    dtrain = lgb.Dataset(train.x, label=train.y, group=train.groups, feature_name=names)
    stats: dict[str, Any] = {"rows": int(train.x.shape[0]), "groups": int(train.groups.size)}
    if holdout.groups.size == 0:
        booster = lgb.train(params, dtrain, num_boost_round=cfg.num_trees)
        stats["trees"] = cfg.num_trees
        return booster, stats
    dhold = lgb.Dataset(
        holdout.x, label=holdout.y, group=holdout.groups, feature_name=names, reference=dtrain
    )
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=cfg.num_trees,
        valid_sets=[dhold],
        valid_names=["holdout"],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
    )
    best = int(booster.best_iteration) or cfg.num_trees
    stats["trees"] = best
    stats["holdout_groups"] = int(holdout.groups.size)
    stats["holdout_ndcg@10"] = round(float(booster.best_score["holdout"]["ndcg@10"]), 4)
    # keep only the chosen trees, so the saved text and every prediction use the same model
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return booster, stats


class Hybrid:
    """Candidates from own history + ALS + item-kNN + EASE + popularity, LambdaRank re-ranked.

    Two rankers share the candidate sources: ``repeats`` ranks candidate sets that hold some
    of the customer's own items, ``new`` ranks sets without any (the caller excluded them).
    """

    kind = "hybrid"

    def __init__(self, config: HybridConfig | None = None, name: str | None = None) -> None:
        self.config = config or HybridConfig()
        self.name = name or self.kind
        self.sources: CandidateSources | None = None
        self.booster_texts: dict[str, str] = {}
        self._boosters: dict[str, Any] = {}
        self.train_stats: dict[str, Any] = {}

    # training ----------------------------------------------------------------------------
    def _window_customers(
        self, inner: Interactions, labels: sp.csr_matrix, held_out: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(fit, holdout) customers of one window: bought before it and inside it, capped."""
        cfg = self.config
        has_hist = np.diff(inner.matrix.indptr) > 0
        has_label = np.diff(labels.indptr) > 0
        pool = np.flatnonzero(has_hist & has_label).astype(np.int64)
        if pool.size > cfg.max_train_customers:
            rng = np.random.default_rng(cfg.seed)
            pool = np.sort(rng.choice(pool, cfg.max_train_customers, replace=False))
        if pool.size < 50:  # too few to hold any out: the booster gets num_trees trees
            return pool, pool[:0]
        return pool[~held_out[pool]], pool[held_out[pool]]

    def fit(self, data: Interactions) -> None:
        """Train both rankers on windows carved from the end of ``data``, then refit the sources.

        Window ``w`` (0 = the latest) holds the purchases of the ``validation_days`` ending
        ``w * validation_days`` before ``data.as_of``: its labels. Its candidates and features
        come from sources fitted on the history before it. A fixed share of customers is held
        out of the booster's rows to choose the number of trees. Nothing after ``data.as_of``
        is used.
        """
        cfg = self.config
        held_out = np.random.default_rng(cfg.seed).random(data.n_customers) < cfg.holdout_share
        rows: dict[tuple[str, str], list[RankingRows]] = {}
        stats: dict[str, Any] = {"windows": []}
        for w in range(cfg.windows):
            end = data.as_of - w * cfg.validation_days
            since = end - cfg.validation_days
            inner = truncate(data, since)
            labels = label_matrix(data, since, end)
            fit_c, hold_c = self._window_customers(inner, labels, held_out)
            if fit_c.size == 0:
                if w == 0:
                    raise RecsError(
                        f"hybrid: no customer both bought before and inside the last "
                        f"{cfg.validation_days} days; cannot train the re-ranker"
                    )
                break  # the history is too short for an older window
            src = CandidateSources(cfg)
            src.fit(inner)
            stats["windows"].append(
                {"since": since, "train_customers": int(fit_c.size), "holdout": int(hold_c.size)}
            )
            for protocol in PROTOCOLS:
                for part, c in (("train", fit_c), ("holdout", hold_c)):
                    rows.setdefault((protocol, part), []).append(
                        ranking_rows(src, labels, c, protocol)
                    )
        stats["train_customers"] = sum(w["train_customers"] for w in stats["windows"])
        stats["holdout_customers"] = sum(w["holdout"] for w in stats["windows"])
        boosters: dict[str, Any] = {}
        for protocol in PROTOCOLS:
            train = RankingRows.concat(rows[(protocol, "train")])
            hold = RankingRows.concat(rows[(protocol, "holdout")])
            booster, st = train_ranker(train, hold, cfg)
            st["candidate_recall"] = round(
                train.label_pairs_in_candidates / max(train.label_pairs, 1), 4
            )
            stats[protocol] = st
            boosters[protocol] = booster
        self._boosters = boosters
        self.booster_texts = {p: b.model_to_string() for p, b in boosters.items()}
        self.train_stats = stats
        self.sources = CandidateSources(cfg)
        self.sources.fit(data)

    # serving -----------------------------------------------------------------------------
    def _check(self) -> CandidateSources:
        if self.sources is None or set(self._boosters) != set(PROTOCOLS):
            raise RecsError(f"model {self.name!r} is not fitted: call fit() or from_state()")
        return self.sources

    def _score(self, r: np.ndarray, x: np.ndarray, n_rows: int) -> np.ndarray:
        """Ranker scores of candidate rows: ``new`` where a customer's set has no own item."""
        owned = x[:, FEATURES.index("owned")] > 0
        with_own = np.bincount(r, weights=owned, minlength=n_rows) > 0
        use_rep = with_own[r]
        out = np.empty(r.size, dtype=np.float64)
        for protocol, sel in (("repeats", use_rep), ("new", ~use_rep)):
            if sel.any():
                out[sel] = self._boosters[protocol].predict(x[sel], num_threads=1)
        return out

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
                    score[r, i] = self._score(r, x, rows.size)
                out[rows] = top_k(score, k, banned=ban_known)
            out[start:stop] = pad_with(out[start:stop], order, banned)
        return out

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Config, booster texts and source params; arrays of every source."""
        src = self._check()
        p, arrays = src.state()
        params = {
            "kind": self.kind,
            "name": self.name,
            "config": asdict(self.config),
            "boosters": dict(self.booster_texts),
            "sources": p,
            "train_stats": self.train_stats,
        }
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        """Rebuild the fitted hybrid from `state` output."""
        import lightgbm as lgb

        check_state_kind(params, cls.kind)
        texts = params.get("boosters")
        if not isinstance(texts, dict) or set(texts) != set(PROTOCOLS):
            raise RecsError(f"hybrid state: 'boosters' must hold one booster per {PROTOCOLS}")
        config = HybridConfig.from_dict(params["config"])
        model = cls(config, name=params.get("name"))
        model.sources = CandidateSources.from_state(config, params["sources"], arrays)
        model.booster_texts = {p: str(t) for p, t in texts.items()}
        model._boosters = {p: lgb.Booster(model_str=t) for p, t in model.booster_texts.items()}
        model.train_stats = dict(params.get("train_stats", {}))
        return model


def _batch_size(n_items: int) -> int:
    """Customers per batch so that each dense batch x items array stays near 2M cells."""
    return int(max(8, min(512, 2_000_000 // max(n_items, 1))))
