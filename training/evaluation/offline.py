"""Offline ranking evaluation of recommenders on a temporal split.

Every model is fitted on the train period (before the cutoff) and asked for the warm
customers (buyers in both periods). Two protocols:

- ``new``: relevant = test items the customer had not bought in train; the customer's train
  items are excluded from the recommendations; customers with no new item are left out.
- ``repeats``: relevant = every item bought in the test window; nothing is excluded.

Segments (from the train history alone): ``new`` customers made their first purchase in the
last 30 days of train, ``sleeping`` ones their last purchase 90 or more days before the
cutoff, the rest are ``active``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from features.columns import Col
from features.progress import stage
from training.evaluation.cache import EvaluationCache
from training.evaluation.metrics import DEFAULT_KS, coverage, ranking_metrics
from training.evaluation.split import SplitConfig, temporal_split
from training.recs.base import Interactions, Recommender, build_interactions
from training.recs.crosssell import CrossSell
from training.recs.upsell import UpSell

log = logging.getLogger("offers")

NEW_DAYS = 30
SLEEPING_DAYS = 90
SEGMENT_K = 10


class EvaluationError(Exception):
    """The evaluation cannot run as asked (the message names the field)."""


class NoWarmCustomersError(EvaluationError):
    """Nobody bought on both sides of the cutoff: the per-customer protocols cannot run."""


def test_relevance(
    test: pl.LazyFrame, data: Interactions, customer_idx: np.ndarray
) -> tuple[sp.csr_matrix, dict[str, int]]:
    """Items bought (positive quantity) in ``test`` by ``customer_idx``, as a CSR.

    Rows align with ``customer_idx``; test items unknown to ``data`` cannot be recommended and
    are left out (counted in the returned stats).
    """
    buys = test.filter(pl.col(Col.QUANTITY) > 0).select(Col.CUSTOMER, Col.ITEM).unique().collect()
    c = data.customers.index(buys[Col.CUSTOMER])
    i = data.items.index(buys[Col.ITEM])
    row_of = np.full(data.n_customers, -1, dtype=np.int64)
    row_of[customer_idx] = np.arange(customer_idx.size)
    in_rows = (c >= 0) & (row_of[np.maximum(c, 0)] >= 0)
    unknown_item = in_rows & (i < 0)
    ok = in_rows & (i >= 0)
    rel = sp.csr_matrix(
        (np.ones(int(ok.sum()), dtype=np.float32), (row_of[c[ok]], i[ok])),
        shape=(customer_idx.size, data.n_items),
    )
    rel.sum_duplicates()
    rel.data[:] = 1.0
    return rel, {"test_pairs": int(ok.sum()), "test_pairs_unknown_item": int(unknown_item.sum())}


def customer_segments(data: Interactions, customer_idx: np.ndarray) -> np.ndarray:
    """Segment name per customer (``new`` / ``active`` / ``sleeping``) from train history."""
    first = np.full(data.n_customers, np.inf)
    last = np.full(data.n_customers, -np.inf)
    np.minimum.at(first, data.basket_customer, data.basket_day)
    np.maximum.at(last, data.basket_customer, data.basket_day)
    f, la = first[customer_idx], last[customer_idx]
    out = np.full(customer_idx.size, "active", dtype=object)
    out[la <= data.as_of - SLEEPING_DAYS] = "sleeping"
    out[f >= data.as_of - NEW_DAYS] = "new"
    return out


def _ndcg_rows(recs: np.ndarray, relevant: sp.csr_matrix, k: int) -> np.ndarray:
    from training.evaluation.metrics import hit_matrix

    hits = hit_matrix(recs[:, :k], relevant).astype(np.float64)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    n_rel = np.minimum(np.diff(relevant.indptr), k)
    idcg = np.where(n_rel > 0, np.cumsum(disc)[np.maximum(n_rel, 1) - 1], 1.0)
    return np.asarray((hits * disc).sum(axis=1) / idcg)


def evaluate_models(
    tx: pl.LazyFrame,
    items: pl.LazyFrame,
    *,
    cutoff: datetime | None,
    models: dict[str, Callable[[], Recommender]],
    ks: Iterable[int] = DEFAULT_KS,
    config: SplitConfig | None = None,
    cross_sell: Callable[[], CrossSell] | None = None,
    up_sell: Callable[[], UpSell] | None = None,
    cache: EvaluationCache | None = None,
    fresh: Collection[str] = (),
) -> dict[str, Any]:
    """Fit each model factory on the train period and score it on the test window.

    With ``cross_sell`` / ``up_sell`` factories the result also holds ``"cross_sell"`` and
    ``"up_sell"`` hit rates (see `cross_sell_hit_rate`, `up_sell_hit_rate`). With ``cache``,
    a model not in ``fresh`` whose scores on this data, split and code are cached is not
    refitted; ``"evaluation_cache"`` then lists the models ``reused`` and ``computed``.

    Returns a JSON-able dict: ``{"split": {...}, "models": {name: {"new": {metric: {k: v}},
    "repeats": {...}, "coverage": {k: v}, "fit_seconds": s, "recommend_seconds": s}},
    "segments": {segment: {name: {"ndcg@10": repeats v, "new_ndcg@10": v, "customers": n}}}}``.
    """
    ks = tuple(sorted(set(ks)))
    if not ks or ks[0] <= 0:
        raise EvaluationError(f"ks must be positive integers, got {ks}")
    if not models:
        raise EvaluationError("models: nothing to evaluate")
    config = config or SplitConfig()
    split = temporal_split(tx, cutoff=cutoff, config=config)
    with stage("interactions") as s:
        data = build_interactions(split.train, items, until=split.cutoff)
        s.rows = data.matrix.nnz
    warm_idx = data.customers.index(split.warm_customers)
    if (warm_idx < 0).any():
        raise EvaluationError("warm customers missing from the train interactions")
    if warm_idx.size == 0:
        test_buyers = split.test.filter(pl.col(Col.QUANTITY) > 0).select(Col.CUSTOMER).unique()
        n_test = test_buyers.select(pl.len()).collect().item()
        raise NoWarmCustomersError(
            f"no warm customers around cutoff {split.cutoff:%Y-%m-%d}: {data.n_customers} "
            f"customers bought before it and {n_test} in the {config.test_days}-day test "
            "window, none in both; the per-customer protocols need customers with purchases "
            "on both sides of the cutoff"
        )
    rel_all, rel_stats = test_relevance(split.test, data, warm_idx)
    seen = data.rows(warm_idx)
    seen.data[:] = 1.0
    rel_new = rel_all - rel_all.multiply(seen)
    rel_new = sp.csr_matrix(rel_new)
    rel_new.eliminate_zeros()
    has_all = np.diff(rel_all.indptr) > 0
    has_new = np.diff(rel_new.indptr) > 0
    k_max = max(ks)
    segments = customer_segments(data, warm_idx)
    seg_names = ("new", "active", "sleeping")

    test_customers = split.test.select(pl.col(Col.CUSTOMER).n_unique()).collect().item()
    result: dict[str, Any] = {
        "split": {
            "cutoff": split.cutoff.isoformat(),
            "test_end": split.end.isoformat(),
            "test_days": config.test_days,
            "train_customers": data.n_customers,
            "train_items": data.n_items,
            "train_pairs": int(data.matrix.nnz),
            "test_customers": int(test_customers),
            "warm_customers": int(warm_idx.size),
            "evaluated_repeats": int(has_all.sum()),
            "evaluated_new": int(has_new.sum()),
            "warm_without_known_test_item": int((~has_all).sum()),
            "warm_without_new_item": int((~has_new).sum()),
            "segments": {n: int((segments == n).sum()) for n in seg_names},
            **rel_stats,
            **{f"train_{k}": v for k, v in data.stats.items()},
        },
        "models": {},
        "segments": {n: {} for n in seg_names},
    }
    cache_split = {
        "cutoff": split.cutoff.isoformat(),
        "test_end": split.end.isoformat(),
        "validation_days": config.validation_days,
        "ks": list(ks),
    }
    reused: list[str] = []
    for name, factory in models.items():
        cached = None if cache is None or name in fresh else cache.load(name, cache_split)
        if cached is not None and not _complete(cached, seg_names):
            cached = None
        if cached is not None:
            log.info("evaluate %s: scores from the evaluation cache (same data, split, code)", name)
            result["models"][name] = cached["scores"]
            for seg in seg_names:
                result["segments"][seg][name] = cached["segments"][seg]
            reused.append(name)
            continue
        with stage(f"evaluate {name}"):
            model = factory()
            started = time.perf_counter()
            model.fit(data)
            fit_s = time.perf_counter() - started
            started = time.perf_counter()
            recs_rep = model.recommend(warm_idx[has_all], k_max)
            recs_new = model.recommend(warm_idx[has_new], k_max, exclude=seen[has_new])
            rec_s = time.perf_counter() - started
        result["models"][name] = {
            "repeats": ranking_metrics(recs_rep, rel_all[has_all], ks),
            "new": ranking_metrics(recs_new, rel_new[has_new], ks),
            "coverage": {str(k): coverage(recs_rep, data.n_items, k) for k in ks},
            "fit_seconds": round(fit_s, 3),
            "recommend_seconds": round(rec_s, 3),
        }
        k_seg = min(SEGMENT_K, k_max)
        nd_rep = _ndcg_rows(recs_rep, rel_all[has_all], k_seg)
        nd_new = _ndcg_rows(recs_new, rel_new[has_new], k_seg)
        for seg in seg_names:
            in_rep = segments[has_all] == seg
            in_new = segments[has_new] == seg
            result["segments"][seg][name] = {
                f"ndcg@{k_seg}": float(nd_rep[in_rep].mean()) if in_rep.any() else None,
                f"new_ndcg@{k_seg}": float(nd_new[in_new].mean()) if in_new.any() else None,
                "customers": int(in_rep.sum()),
            }
        if cache is not None and name not in fresh:
            cache.save(
                name,
                cache_split,
                {
                    "scores": result["models"][name],
                    "segments": {seg: result["segments"][seg][name] for seg in seg_names},
                },
            )
    if cache is not None:
        result["evaluation_cache"] = {
            "folder": str(cache.folder),
            "reused": reused,
            "computed": [n for n in models if n not in reused],
        }
    if cross_sell is not None:
        with stage("evaluate cross-sell"):
            xs = cross_sell()
            xs.fit(data)
            result["cross_sell"] = cross_sell_hit_rate(xs, data, split.test, warm_idx, k_max)
    if up_sell is not None:
        with stage("evaluate up-sell"):
            us = up_sell()
            us.fit(data)
            result["up_sell"] = up_sell_hit_rate(us, data, split.test, warm_idx, k_max)
    return result


def _complete(entry: dict[str, Any], segments: Iterable[str]) -> bool:
    """A cache entry holds the scores and every segment's entry (else it is recomputed)."""
    by_segment = entry.get("segments")
    return (
        isinstance(entry.get("scores"), dict)
        and isinstance(by_segment, dict)
        and all(seg in by_segment for seg in segments)
    )


def _test_orders(test: pl.LazyFrame, data: Interactions) -> pl.DataFrame:
    """Test purchases as (c, i, order, ts) in dense indices; unknown ids dropped."""
    buys = (
        test.filter(pl.col(Col.QUANTITY) > 0)
        .select(Col.CUSTOMER, Col.ITEM, Col.ORDER, Col.TS)
        .collect()
    )
    return buys.with_columns(
        c=pl.Series(data.customers.index(buys[Col.CUSTOMER])),
        i=pl.Series(data.items.index(buys[Col.ITEM])),
    ).filter((pl.col("c") >= 0) & (pl.col("i") >= 0))


def cross_sell_hit_rate(
    model: CrossSell, data: Interactions, test: pl.LazyFrame, customer_idx: np.ndarray, k: int
) -> dict[str, Any]:
    """Share of customers whose later test orders hold a complement of their first test cart.

    For each given customer with two or more test orders: cart = the first test order;
    relevant = items of later test orders that are not in the cart; hit when one of the
    ``k`` complements of the cart (for that customer) is relevant.
    """
    buys = _test_orders(test, data).filter(pl.col("c").is_in(customer_idx.tolist()))
    first = buys.group_by("c").agg(pl.col(Col.TS).min().alias("t0"))
    buys = buys.join(first, on="c")
    hits = evaluated = 0
    for (c,), group in buys.group_by("c", maintain_order=True):
        cart_rows = group.filter(pl.col(Col.TS) == pl.col("t0"))
        cart = np.unique(cart_rows["i"].to_numpy())
        later = set(group.filter(pl.col(Col.TS) > pl.col("t0"))["i"].to_list()) - set(cart.tolist())
        if not later:
            continue
        recs = model.recommend_for_cart(cart, k, customer_idx=int(str(c)))
        evaluated += 1
        hits += bool(later & set(recs[recs >= 0].tolist()))
    return {"customers": evaluated, f"hit_rate@{k}": hits / evaluated if evaluated else None}


def up_sell_hit_rate(
    model: UpSell, data: Interactions, test: pl.LazyFrame, customer_idx: np.ndarray, k: int
) -> dict[str, Any]:
    """How often a customer's test purchases take an up-sell of their latest anchor.

    Anchor = the customer's most recent train purchase that has up-sell candidates. Strict hit:
    a recommended variant is bought in the test window; loose hit: any item of the anchor's
    category pricier than the anchor is bought.
    """
    buys = _test_orders(test, data)
    bought: dict[int, set[int]] = {}
    for c, i in zip(buys["c"].to_list(), buys["i"].to_list(), strict=True):
        bought.setdefault(int(c), set()).add(int(i))
    evaluated = strict = loose = 0
    for c in customer_idx.tolist():
        lo, hi = data.last_day.indptr[c], data.last_day.indptr[c + 1]
        days, items = data.last_day.data[lo:hi], data.last_day.indices[lo:hi]
        anchor = next(
            (int(a) for a in items[np.lexsort((items, -days))] if model.candidates(int(a)).size),
            None,
        )
        if anchor is None:
            continue
        recs = model.recommend_for_item(anchor, k, customer_idx=c)
        got = bought.get(c, set())
        evaluated += 1
        strict += bool(got & set(recs[recs >= 0].tolist()))
        same_cat = data.item_category == data.item_category[anchor]
        pricier = np.flatnonzero(same_cat & (data.item_price > data.item_price[anchor]))
        loose += bool(got & set(pricier.tolist()))
    return {
        "customers": evaluated,
        f"hit_rate@{k}": strict / evaluated if evaluated else None,
        "pricier_in_category_rate": loose / evaluated if evaluated else None,
    }
