"""Basket completion (cross-sell) evaluation, for data without returning customers.

When every basket is its own anonymous customer (e.g. the Groceries point-of-sale data) the
per-customer protocols of `training.evaluation.offline` have no warm customer to score. The
meaningful question is then the cross-sell one: given most of a basket, which item completes
it?

Protocol: orders are sorted by time; the last ``test_share`` of them are the test baskets and
every model is fitted on the purchases before the first test order. For each test basket with
at least two items known to the train catalogue, one item is held out at random (seeded); the
rest is the cart. Relevant = the held-out item; the cart items are never recommended. Test
items unknown to the train data are dropped from their basket and counted; baskets left with
fewer than two items are counted and skipped.

Models are cart recommenders (`CartRecommender`): our `CrossSell` and the baselines below, all
fitted on the train `Interactions` and asked ``recommend_for_cart(cart, k, customer_idx=-1,
exclude=mask)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import polars as pl
import scipy.sparse as sp

from features.columns import Col
from features.progress import stage
from training.evaluation.metrics import DEFAULT_KS, coverage, ranking_metrics
from training.recs.base import Interactions, build_interactions, top_k
from training.recs.crosssell import TUNED_CROSS_SELL, CrossSell
from training.recs.ease import fit_ease

PROTOCOL = "basket_completion"
PART = "basket"  # the protocol key of each model's metrics
OURS = "cross_sell"
# Scores are padded with popularity scaled below this, so every list is full and ties among
# unscored items go to the popular ones without overtaking any real score.
_PAD = 1e-9


class BasketEvaluationError(Exception):
    """The basket-completion evaluation cannot run as asked (the message names the field)."""


class CartRecommender(Protocol):
    """A model fitted on interactions that completes a cart."""

    def fit(self, data: Interactions) -> None:
        """Learn from the train interactions."""
        ...

    def recommend_for_cart(
        self, cart: np.ndarray, k: int, *, customer_idx: int = -1, exclude: np.ndarray | None = None
    ) -> np.ndarray:
        """Top-``k`` item indices (int32, -1 padded) to add to ``cart``; never cart items."""
        ...


def _binary_baskets(data: Interactions) -> sp.csr_matrix:
    x = sp.csr_matrix(data.baskets, dtype=np.float64)
    x.data[:] = 1.0
    return x


class _ScoredCart:
    """Shared plumbing: item popularity over train baskets, banning and top-k of a score row."""

    def __init__(self) -> None:
        self.popularity = np.zeros(0, dtype=np.float64)

    def fit(self, data: Interactions) -> None:
        """Count the train baskets of every item, then fit the model's own part."""
        x = _binary_baskets(data)
        self.popularity = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
        self._fit(x)

    def _fit(self, baskets: sp.csr_matrix) -> None:
        raise NotImplementedError

    def _scores(self, cart: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def recommend_for_cart(
        self, cart: np.ndarray, k: int, *, customer_idx: int = -1, exclude: np.ndarray | None = None
    ) -> np.ndarray:
        """Top ``k`` by the model's score, popularity breaking ties; cart items never returned."""
        cart = np.asarray(cart, dtype=np.int64).ravel()
        top = max(float(self.popularity.max(initial=0.0)), 1.0)
        row = self._scores(cart) + _PAD * self.popularity / top
        row[cart] = -np.inf
        banned = None if exclude is None else np.asarray(exclude, dtype=bool)[None, :]
        out: np.ndarray = top_k(row[None, :], k, banned=banned)[0]
        return out


class BasketPopularity(_ScoredCart):
    """The items in most train baskets, whatever the cart."""

    def _fit(self, baskets: sp.csr_matrix) -> None:
        pass

    def _scores(self, cart: np.ndarray) -> np.ndarray:
        return np.zeros(self.popularity.size)


class CoOccurrenceKNN(_ScoredCart):
    """Item kNN: cosine over the item x basket incidence, summed over the cart items."""

    def __init__(self) -> None:
        super().__init__()
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float64)

    def _fit(self, baskets: sp.csr_matrix) -> None:
        co = sp.csr_matrix(baskets.T @ baskets)
        norm = np.sqrt(np.maximum(self.popularity, 1.0))
        sim = sp.csr_matrix(sp.diags(1.0 / norm) @ co @ sp.diags(1.0 / norm))
        sim.setdiag(0.0)
        sim.eliminate_zeros()
        self.similarity = sim

    def _scores(self, cart: np.ndarray) -> np.ndarray:
        return np.asarray(self.similarity[cart].sum(axis=0), dtype=np.float64).ravel()


@dataclass(frozen=True)
class RulesConfig:
    """Pair rules kept when both items are in at least this share of train baskets (arules
    ``supp``), and in at least ``min_count`` of them."""

    min_support: float = 0.001
    min_count: int = 2


class AssociationRules(_ScoredCart):
    """Pair rules ``a -> b`` by lift; a candidate scores its best rule from a cart item."""

    def __init__(self, config: RulesConfig | None = None) -> None:
        super().__init__()
        self.config = config or RulesConfig()
        self.lift = sp.csr_matrix((0, 0), dtype=np.float64)

    def _fit(self, baskets: sp.csr_matrix) -> None:
        n = float(max(baskets.shape[0], 1))
        co = sp.coo_matrix(baskets.T @ baskets)
        need = max(self.config.min_count, math.ceil(self.config.min_support * n))
        keep = (co.data >= need) & (co.row != co.col)
        i, j, n_ij = co.row[keep], co.col[keep], co.data[keep]
        lift = n_ij * n / (self.popularity[i] * self.popularity[j])
        self.lift = sp.csr_matrix((lift, (i, j)), shape=co.shape)

    def _scores(self, cart: np.ndarray) -> np.ndarray:
        rows = self.lift[cart]
        if rows.nnz == 0:
            return np.zeros(self.lift.shape[1])
        return np.asarray(rows.max(axis=0).toarray(), dtype=np.float64).ravel()


@dataclass(frozen=True)
class BasketEASEConfig:
    """L2 regularisation and the cap on modelled items (memory is max_items^2 floats)."""

    regularization: float = 50.0
    max_items: int = 5_000


class BasketEASE(_ScoredCart):
    """EASE fitted on the baskets x items matrix; the cart is the input row."""

    def __init__(self, config: BasketEASEConfig | None = None) -> None:
        super().__init__()
        self.config = config or BasketEASEConfig()
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.modelled = np.zeros(0, dtype=np.int64)

    def _fit(self, baskets: sp.csr_matrix) -> None:
        order = np.argsort(-self.popularity, kind="stable")[: self.config.max_items]
        self.modelled = np.sort(order[self.popularity[order] > 0])
        x = sp.csr_matrix(baskets[:, self.modelled])
        self.weights = fit_ease(x, self.config.regularization)

    def _scores(self, cart: np.ndarray) -> np.ndarray:
        out = np.zeros(self.popularity.size)
        inside = np.isin(self.modelled, cart)
        out[self.modelled] = self.weights[inside].sum(axis=0)
        return out


def basket_models() -> dict[str, Callable[[], CartRecommender]]:
    """Ours (the tuned cross-sell) and every basket baseline, by report name (ours first)."""
    return {
        OURS: lambda: CrossSell(TUNED_CROSS_SELL),
        "popularity": BasketPopularity,
        "item_knn_cooccurrence": CoOccurrenceKNN,
        "association_rules_lift": AssociationRules,
        "ease_baskets": BasketEASE,
    }


@dataclass(frozen=True)
class _TestBaskets:
    carts: list[np.ndarray]
    held_out: np.ndarray
    stats: dict[str, int]


def _split_orders(tx: pl.LazyFrame, test_share: float) -> tuple[Any, dict[str, Any]]:
    """The first test order's time: the last ``test_share`` of purchase orders by time."""
    orders = (
        tx.filter(pl.col(Col.QUANTITY) > 0)
        .group_by(Col.ORDER)
        .agg(pl.col(Col.TS).min())
        .sort(Col.TS, Col.ORDER)
        .collect()
    )
    n = orders.height
    if n < 2:
        raise BasketEvaluationError(f"transactions: {n} purchase orders, need at least 2")
    first_test = min(max(math.floor(n * (1.0 - test_share)), 1), n - 1)
    cutoff = orders[Col.TS][first_test]
    n_train = int((orders[Col.TS] < cutoff).sum())
    if n_train == 0:
        raise BasketEvaluationError(
            f"transactions.{Col.TS}: every order is at or after the cutoff {cutoff}; "
            "no train baskets"
        )
    return cutoff, {"orders": n, "train_orders": n_train, "test_orders": n - n_train}


def _test_baskets(test: pl.LazyFrame, data: Interactions, rng: np.random.Generator) -> _TestBaskets:
    lines = (
        test.filter(pl.col(Col.QUANTITY) > 0)
        .select(Col.ORDER, Col.TS, Col.ITEM)
        .unique([Col.ORDER, Col.ITEM])
        .collect()
    )
    lines = lines.with_columns(i=pl.Series(data.items.index(lines[Col.ITEM]), dtype=pl.Int64))
    unknown = int((lines["i"] < 0).sum())
    known = lines.filter(pl.col("i") >= 0)
    grouped = (
        known.group_by(Col.ORDER)
        .agg(pl.col(Col.TS).min(), pl.col("i").sort())
        .sort(Col.TS, Col.ORDER)
    )
    n_orders = lines[Col.ORDER].n_unique()
    carts: list[np.ndarray] = []
    held: list[int] = []
    for basket in grouped["i"].to_list():
        if len(basket) < 2:
            continue
        items = np.asarray(basket, dtype=np.int64)
        pick = int(rng.integers(items.size))
        held.append(int(items[pick]))
        carts.append(np.delete(items, pick))
    stats = {
        "test_baskets": n_orders,
        "evaluated_baskets": len(carts),
        "baskets_under_two_known_items": n_orders - len(carts),
        "test_lines_unknown_item": unknown,
    }
    return _TestBaskets(carts, np.asarray(held, dtype=np.int64), stats)


def evaluate_basket_completion(
    tx: pl.LazyFrame,
    items: pl.LazyFrame,
    *,
    test_share: float = 0.3,
    ks: Iterable[int] = DEFAULT_KS,
    models: dict[str, Callable[[], CartRecommender]] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit each cart model on the train baskets; score it on completing the test baskets.

    Returns the JSON-able shape of `evaluate_models`: ``{"split": {...}, "models": {name:
    {"basket": {metric: {k: v}}, "coverage": {k: v}, "fit_seconds": s, "recommend_seconds":
    s}}}``; ``split["protocol"]`` is ``"basket_completion"`` and ``split["ours"]`` names our
    model when it is among ``models`` (default: `basket_models`).
    """
    ks = tuple(sorted(set(ks)))
    if not ks or ks[0] <= 0:
        raise BasketEvaluationError(f"ks must be positive integers, got {ks}")
    if not 0.0 < test_share < 1.0:
        raise BasketEvaluationError(f"test_share must be in (0, 1), got {test_share}")
    models = basket_models() if models is None else models
    if not models:
        raise BasketEvaluationError("models: nothing to evaluate")
    cutoff, order_stats = _split_orders(tx, test_share)
    with stage("basket interactions") as s:
        data = build_interactions(tx.filter(pl.col(Col.TS) < cutoff), items, until=cutoff)
        s.rows = int(data.baskets.nnz)
    test = _test_baskets(tx.filter(pl.col(Col.TS) >= cutoff), data, np.random.default_rng(seed))
    n = len(test.carts)
    if n == 0:
        raise BasketEvaluationError(
            f"no test basket after {cutoff} has two or more items known to the train data "
            f"({test.stats['test_baskets']} test baskets)"
        )
    relevant = sp.csr_matrix(
        (np.ones(n, dtype=np.float32), (np.arange(n), test.held_out)), shape=(n, data.n_items)
    )
    k_max = max(ks)
    result: dict[str, Any] = {
        "split": {
            "protocol": PROTOCOL,
            **({"ours": OURS} if OURS in models else {}),
            "cutoff": cutoff.isoformat(),
            "test_share": test_share,
            "seed": seed,
            **order_stats,
            "train_items": data.n_items,
            "train_basket_lines": int(data.baskets.nnz),
            **test.stats,
            "held_out_per_basket": 1,
        },
        "models": {},
    }
    for name, factory in models.items():
        with stage(f"basket completion {name}") as s:
            model = factory()
            started = time.perf_counter()
            model.fit(data)
            fit_s = time.perf_counter() - started
            started = time.perf_counter()
            recs = np.full((n, k_max), -1, dtype=np.int32)
            exclude = np.zeros(data.n_items, dtype=bool)
            for r, cart in enumerate(test.carts):
                exclude[cart] = True
                recs[r] = model.recommend_for_cart(cart, k_max, customer_idx=-1, exclude=exclude)
                exclude[cart] = False
            rec_s = time.perf_counter() - started
            s.rows = n
        result["models"][name] = {
            PART: ranking_metrics(recs, relevant, ks),
            "coverage": {str(k): coverage(recs, data.n_items, k) for k in ks},
            "fit_seconds": round(fit_s, 3),
            "recommend_seconds": round(rec_s, 3),
        }
    return result
