"""What every recommender shares: id maps, the interaction matrix, and the model protocol.

`build_interactions` turns contract transactions and the catalogue into an `Interactions`:
a customers x items matrix of net purchase strength (returns netted out, only positive pairs
kept), the baskets it came from, and the per-item side information (category, price, active
flag) the business filters and the cross-sell / up-sell models need. Every model implements
`Recommender`: it fits on an `Interactions`, answers with item indices, and saves as plain
JSON-able parameters plus numpy arrays (``.npz``), never a pickle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import polars as pl
import scipy.sparse as sp

from features.columns import Col
from features.reductions import stable_sum

UNKNOWN_CATEGORY = "__unknown__"
_EPOCH = datetime(1970, 1, 1)
_US_PER_DAY = 86_400_000_000


class RecsError(Exception):
    """Recommendation input or model state is not usable (the message names the field)."""


def check_state_kind(params: dict[str, Any], kind: str) -> None:
    """Refuse a saved state of another kind of model."""
    if params.get("kind") != kind:
        raise RecsError(f"state kind {params.get('kind')!r} is not {kind!r}")


def latest_items(recent: sp.csr_matrix, customer: int, k: int) -> np.ndarray:
    """The ``k`` items of ``customer``'s row in ``recent`` (higher = more recent) that are most
    recent, latest first, ties to the lower index; empty for -1 or an unknown customer."""
    if not 0 <= customer < recent.shape[0]:
        return np.zeros(0, dtype=np.int64)
    lo, hi = recent.indptr[customer], recent.indptr[customer + 1]
    items, days = recent.indices[lo:hi], recent.data[lo:hi]
    latest: np.ndarray = items[np.lexsort((items, -days))[:k]].astype(np.int64)
    return latest


def epoch_days(ts: datetime) -> float:
    """Days since 1970-01-01 (naive) as a float; the time unit of every `*_day` array."""
    return (ts - _EPOCH).total_seconds() / 86_400.0


class IdMap:
    """External string ids <-> dense indices ``0..n-1`` (the order of ``ids``)."""

    def __init__(self, ids: np.ndarray | list[str]) -> None:
        arr = np.asarray(ids, dtype=object)
        if arr.ndim != 1:
            raise RecsError(f"IdMap ids must be one-dimensional, got shape {arr.shape}")
        self.ids: np.ndarray = arr
        self._lookup: dict[str, int] = {str(x): i for i, x in enumerate(arr)}
        if len(self._lookup) != len(arr):
            raise RecsError(f"IdMap ids must be unique: {len(arr) - len(self._lookup)} duplicates")

    def __len__(self) -> int:
        return len(self.ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and np.array_equal(self.ids, other.ids)

    def __hash__(self) -> int:
        return hash(tuple(self.ids[:16]))

    def index(self, ids: np.ndarray | list[str] | pl.Series) -> np.ndarray:
        """Dense indices (int32) of ``ids``; -1 for an id this map does not know."""
        get = self._lookup.get
        values = ids.to_list() if isinstance(ids, pl.Series) else ids
        return np.fromiter((get(str(x), -1) for x in values), dtype=np.int32, count=len(values))

    def position(self, id_: str) -> int:
        """The dense index of one id; -1 when this map does not know it."""
        return self._lookup.get(id_, -1)

    def to_external(self, idx: np.ndarray) -> list[str | None]:
        """External ids of dense indices; None where the index is -1 (padding)."""
        return [None if i < 0 else str(self.ids[i]) for i in np.asarray(idx).ravel()]

    def to_array(self) -> np.ndarray:
        """The ids as a unicode numpy array (what `.npz` stores without pickle)."""
        return np.asarray(self.ids, dtype=str)


@dataclass(frozen=True)
class Interactions:
    """Purchase history up to ``as_of`` in dense-index form.

    ``matrix[c, i]`` is the net purchase strength: the number of orders of the customer that
    contained the item, scaled by the fraction of the bought quantity not returned; pairs whose
    net quantity is not positive are left out (and counted in ``stats``). ``first_day`` and
    ``last_day`` have the same sparsity as ``matrix`` and hold the epoch day (see `epoch_days`)
    of the first and last purchase of the pair. ``baskets`` is orders x items (1 where the
    order bought the item), with ``basket_customer`` and ``basket_day`` per order.
    """

    customers: IdMap
    items: IdMap
    matrix: sp.csr_matrix
    first_day: sp.csr_matrix
    last_day: sp.csr_matrix
    baskets: sp.csr_matrix
    basket_customer: np.ndarray  # int32 [n_orders]
    basket_day: np.ndarray  # float64 [n_orders]
    categories: np.ndarray  # str [n_categories]
    item_category: np.ndarray  # int32 [n_items], index into categories
    item_price: np.ndarray  # float64 [n_items], NaN when the catalogue has no price
    item_active: np.ndarray  # bool [n_items]
    as_of: float  # epoch day: the end of the history (exclusive)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def n_customers(self) -> int:
        """Number of customers (rows of ``matrix``)."""
        return len(self.customers)

    @property
    def n_items(self) -> int:
        """Number of items (columns of ``matrix``)."""
        return len(self.items)

    def rows(self, customer_idx: np.ndarray) -> sp.csr_matrix:
        """Rows of ``matrix`` for ``customer_idx``; an empty row where the index is -1."""
        return take_rows(self.matrix, customer_idx)


def take_rows(matrix: sp.csr_matrix, idx: np.ndarray) -> sp.csr_matrix:
    """Rows ``idx`` of a CSR matrix, an empty row wherever ``idx`` is -1 (or out of range)."""
    idx = np.asarray(idx, dtype=np.int64).ravel()
    ok = (idx >= 0) & (idx < matrix.shape[0])
    safe = np.where(ok, idx, 0)
    picked = matrix[safe]
    if ok.all():
        return sp.csr_matrix(picked)
    mask = sp.diags(ok.astype(matrix.dtype))
    out = sp.csr_matrix(mask @ picked)
    out.eliminate_zeros()
    return out


def _pairs_frame(tx: pl.LazyFrame, until: datetime | None) -> pl.LazyFrame:
    lf = tx.select(Col.CUSTOMER, Col.ORDER, Col.ITEM, Col.TS, Col.QUANTITY)
    if until is not None:
        lf = lf.filter(pl.col(Col.TS) < until)
    return lf


def build_interactions(
    tx: pl.LazyFrame, items: pl.LazyFrame, *, until: datetime | None
) -> Interactions:
    """The interactions of transactions before ``until`` (all of them when None).

    Items come from the catalogue plus any item sold but missing from it (category
    `UNKNOWN_CATEGORY`, price NaN, counted in ``stats['items_missing_from_catalogue']``).
    Customers are those with at least one purchase (positive quantity) before ``until``.
    """
    lines = _pairs_frame(tx, until).collect()
    for name in (Col.CUSTOMER, Col.ITEM, Col.ORDER, Col.TS, Col.QUANTITY):
        nulls = lines[name].null_count()
        if nulls:
            row = int(lines.with_row_index().filter(pl.col(name).is_null())["index"][0])
            raise RecsError(f"transactions.{name}: {nulls} null values (first at row {row})")
    if until is not None:
        as_of = epoch_days(until)
    elif lines.height:
        as_of = epoch_days(lines[Col.TS].max()) + 1e-6  # type: ignore[arg-type]
    else:
        raise RecsError("transactions: no rows to build interactions from")

    cat = items.select(
        Col.ITEM,
        Col.CATEGORY,
        Col.PRICE,
        (
            pl.col(Col.IS_ACTIVE).fill_null(True)
            if Col.IS_ACTIVE in items.collect_schema()
            else pl.lit(True)
        ).alias(Col.IS_ACTIVE),
    ).collect()
    dup = cat[Col.ITEM].is_duplicated()
    if dup.any():
        first = cat.filter(dup)[Col.ITEM][0]
        raise RecsError(f"items.{Col.ITEM}: {int(dup.sum())} duplicated rows (e.g. {first!r})")

    day = (pl.col(Col.TS).cast(pl.Datetime("us")).cast(pl.Int64) / _US_PER_DAY).alias("day")
    lines = lines.with_columns(day)
    buys = lines.filter(pl.col(Col.QUANTITY) > 0)

    sold_items = lines[Col.ITEM].unique()
    missing = sold_items.filter(~sold_items.is_in(cat[Col.ITEM].implode()))
    all_items = pl.concat([cat[Col.ITEM], missing.sort()])
    item_map = IdMap(all_items.to_numpy())
    cust_ids = buys[Col.CUSTOMER].unique().sort()
    cust_map = IdMap(cust_ids.to_numpy())

    cat_names = cat[Col.CATEGORY].fill_null(UNKNOWN_CATEGORY)
    categories = np.asarray(sorted(set(cat_names.to_list()) | {UNKNOWN_CATEGORY}), dtype=str)
    cat_lookup = {c: i for i, c in enumerate(categories)}
    item_category = np.full(len(item_map), cat_lookup[UNKNOWN_CATEGORY], dtype=np.int32)
    item_category[: cat.height] = [cat_lookup[c] for c in cat_names.to_list()]
    item_price = np.full(len(item_map), np.nan)
    item_price[: cat.height] = cat[Col.PRICE].cast(pl.Float64).fill_null(np.nan).to_numpy()
    item_active = np.ones(len(item_map), dtype=bool)
    item_active[: cat.height] = cat[Col.IS_ACTIVE].fill_null(True).to_numpy()

    n_c, n_i = len(cust_map), len(item_map)
    cust_idx = pl.Series("c", cust_map.index(cust_ids), dtype=pl.Int32)
    cust_frame = pl.DataFrame({Col.CUSTOMER: cust_ids, "c": cust_idx})
    item_frame = pl.DataFrame({Col.ITEM: pl.Series(all_items), "i": np.arange(n_i, dtype=np.int32)})
    lines = lines.join(cust_frame, on=Col.CUSTOMER, how="left").join(
        item_frame, on=Col.ITEM, how="left"
    )

    pairs = (
        lines.group_by("c", "i")
        .agg(
            net=stable_sum(pl.col(Col.QUANTITY)),
            gross=stable_sum(pl.col(Col.QUANTITY).filter(pl.col(Col.QUANTITY) > 0)),
            orders=pl.col(Col.ORDER).filter(pl.col(Col.QUANTITY) > 0).n_unique(),
            first=pl.col("day").filter(pl.col(Col.QUANTITY) > 0).min(),
            last=pl.col("day").filter(pl.col(Col.QUANTITY) > 0).max(),
        )
        .with_columns(strength=pl.col("orders") * (pl.col("net") / pl.col("gross")))
    )
    kept = pairs.filter(pl.col("c").is_not_null() & (pl.col("net") > 0) & (pl.col("gross") > 0))
    shape = (n_c, n_i)
    rows, cols = kept["c"].to_numpy(), kept["i"].to_numpy()

    def _csr(values: np.ndarray, dtype: type) -> sp.csr_matrix:
        m = sp.csr_matrix((values.astype(dtype), (rows, cols)), shape=shape)
        m.sort_indices()
        return m

    matrix = _csr(kept["strength"].to_numpy(), np.float32)
    first_day = _csr(kept["first"].to_numpy(), np.float64)
    last_day = _csr(kept["last"].to_numpy(), np.float64)

    basket_lines = buys.join(cust_frame, on=Col.CUSTOMER, how="left").join(
        item_frame, on=Col.ITEM, how="left"
    )
    orders = (
        basket_lines.group_by(Col.ORDER)
        .agg(c=pl.col("c").first(), day=pl.col("day").min())
        .sort("day", Col.ORDER)
        .with_row_index("o")
    )
    bl = basket_lines.join(orders.select(Col.ORDER, "o"), on=Col.ORDER).unique(["o", "i"])
    baskets = sp.csr_matrix(
        (
            np.ones(bl.height, dtype=np.float32),
            (bl["o"].to_numpy().astype(np.int64), bl["i"].to_numpy()),
        ),
        shape=(orders.height, n_i),
    )
    baskets.sort_indices()

    stats = {
        "transaction_lines": lines.height,
        "return_lines": int((lines[Col.QUANTITY] < 0).sum()),
        "pairs": pairs.height,
        "pairs_dropped_not_positive": pairs.height - kept.height,
        "customers": n_c,
        "items": n_i,
        "items_missing_from_catalogue": missing.len(),
        "orders": orders.height,
    }
    return Interactions(
        customers=cust_map,
        items=item_map,
        matrix=matrix,
        first_day=first_day,
        last_day=last_day,
        baskets=baskets,
        basket_customer=orders["c"].to_numpy().astype(np.int32),
        basket_day=orders["day"].to_numpy().astype(np.float64),
        categories=categories,
        item_category=item_category,
        item_price=item_price,
        item_active=item_active,
        as_of=as_of,
        stats=stats,
    )


@runtime_checkable
class Recommender(Protocol):
    """A fitted-then-queried recommendation model.

    ``recommend`` answers int32 item indices ``[len(customer_idx), k]``, best first, padded
    with -1. A customer index of -1 (unknown customer) gets the model's cold-start answer; it
    never raises. ``exclude`` is a CSR matrix whose row ``r`` marks items (non-zero) that must
    not be recommended to ``customer_idx[r]``. ``state`` returns JSON-able params and plain
    arrays; ``from_state(*model.state())`` gives a model with identical recommendations.
    """

    name: str

    def fit(self, data: Interactions) -> None:
        """Learn from the interactions."""
        ...

    def recommend(
        self, customer_idx: np.ndarray, k: int, *, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """Top-``k`` item indices per customer (int32, -1 padded)."""
        ...

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able parameters and numpy arrays that fully describe the fitted model."""
        ...

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        """Rebuild a fitted model from `state` output."""
        ...


def top_k(scores: np.ndarray, k: int, *, banned: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` highest scores per row (int32, -1 padded), best first.

    ``scores`` is ``[n, n_items]``; entries that are ``-inf`` or ``banned`` (bool, same shape)
    are never returned. Ties break by the lower item index, so answers are deterministic.
    """
    scores = np.array(scores, copy=True, ndmin=2)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    if banned is not None:
        scores[banned] = -np.inf
    n, m = scores.shape
    out = np.full((n, k), -1, dtype=np.int32)
    if m == 0 or k <= 0:
        return out
    kk = min(k, m)
    if kk < m:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    else:
        part = np.tile(np.arange(m), (n, 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    if kk < m:
        # argpartition keeps an arbitrary subset of the items tied at the k-th score: in rows
        # with such ties, take every item above it and the lowest indices among the tied
        kth = part_scores.min(axis=1)
        tied = np.isfinite(kth) & ((scores >= kth[:, None]).sum(axis=1) > kk)
        for r in np.flatnonzero(tied):
            row = scores[r]
            above = np.flatnonzero(row > kth[r])
            at = np.flatnonzero(row == kth[r])[: kk - above.size]
            part[r] = np.concatenate([above, at])
            part_scores[r] = row[part[r]]
    order = np.lexsort((part, -part_scores), axis=1)
    best = np.take_along_axis(part, order, axis=1)
    best_scores = np.take_along_axis(part_scores, order, axis=1)
    out[:, :kk] = np.where(np.isfinite(best_scores), best, -1)
    return out


def exclusion_mask(exclude: sp.csr_matrix | None, n_rows: int, n_items: int) -> np.ndarray | None:
    """Dense bool mask from an exclusion CSR (rows aligned with the request), or None."""
    if exclude is None:
        return None
    if exclude.shape[0] != n_rows or exclude.shape[1] != n_items:
        raise RecsError(
            f"exclude has shape {exclude.shape}, expected ({n_rows}, {n_items}) "
            "(one row per requested customer, one column per item)"
        )
    return np.asarray(exclude.toarray() != 0)


def csr_to_arrays(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A CSR matrix as plain arrays ``{prefix}_data/_indices/_indptr/_shape`` for `.npz`."""
    return {
        f"{prefix}_data": m.data,
        f"{prefix}_indices": m.indices,
        f"{prefix}_indptr": m.indptr,
        f"{prefix}_shape": np.asarray(m.shape, dtype=np.int64),
    }


def csr_from_arrays(prefix: str, arrays: dict[str, np.ndarray]) -> sp.csr_matrix:
    """Inverse of `csr_to_arrays`."""
    try:
        shape = tuple(int(x) for x in arrays[f"{prefix}_shape"])
        return sp.csr_matrix(
            (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
            shape=shape,
        )
    except KeyError as exc:
        raise RecsError(f"model state lacks array {exc.args[0]!r}") from exc


def gather(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Values of ``m`` at (rows, cols) as float64 (0 where not stored; empty in, empty out)."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.float64)
    return np.asarray(m[rows, cols], dtype=np.float64).ravel()


def _pair_frame(data: Interactions, keep: np.ndarray) -> pl.DataFrame:
    """One row per (order, item) of the kept orders: customer ``c``, item ``i``, ``day``."""
    b = data.baskets[np.flatnonzero(keep)]
    per_order = np.diff(b.indptr)
    return pl.DataFrame(
        {
            "c": np.repeat(data.basket_customer[keep], per_order),
            "i": b.indices.astype(np.int32),
            "day": np.repeat(data.basket_day[keep], per_order),
        }
    )


def truncate(data: Interactions, until_day: float) -> Interactions:
    """The same customers and items with only the orders before epoch day ``until_day``.

    Rebuilt from the baskets: strength is the number of orders, scaled by the pair's
    not-returned fraction in ``data`` (a pair fully returned in ``data`` is left out).
    The id maps stay the same, so indices mean the same customers and items.
    """
    keep = data.basket_day < until_day
    lines = _pair_frame(data, keep)
    pairs = lines.group_by("c", "i").agg(
        orders=pl.len(), first=pl.col("day").min(), last=pl.col("day").max()
    )
    rows, cols = pairs["c"].to_numpy(), pairs["i"].to_numpy()
    full_orders = gather(_orders_per_pair(data), rows, cols)
    full_strength = gather(data.matrix, rows, cols)
    factor = np.where(full_orders > 0, full_strength / np.maximum(full_orders, 1), 0.0)
    strength = pairs["orders"].to_numpy() * np.minimum(factor, 1.0)
    ok = strength > 0
    shape = data.matrix.shape

    def _csr(values: np.ndarray, dtype: type) -> sp.csr_matrix:
        m = sp.csr_matrix((values[ok].astype(dtype), (rows[ok], cols[ok])), shape=shape)
        m.sort_indices()
        return m

    idx = np.flatnonzero(keep)
    stats = dict(data.stats)
    stats["orders"] = int(idx.size)
    stats["pairs"] = int(ok.sum())
    return Interactions(
        customers=data.customers,
        items=data.items,
        matrix=_csr(strength, np.float32),
        first_day=_csr(pairs["first"].to_numpy(), np.float64),
        last_day=_csr(pairs["last"].to_numpy(), np.float64),
        baskets=sp.csr_matrix(data.baskets[idx]),
        basket_customer=data.basket_customer[idx],
        basket_day=data.basket_day[idx],
        categories=data.categories,
        item_category=data.item_category,
        item_price=data.item_price,
        item_active=data.item_active,
        as_of=float(until_day),
        stats=stats,
    )


def _orders_per_pair(data: Interactions) -> sp.csr_matrix:
    """Customers x items: number of orders containing the pair (from the baskets)."""
    owner = sp.csr_matrix(
        (
            np.ones(data.basket_customer.size, dtype=np.float32),
            (data.basket_customer, np.arange(data.basket_customer.size)),
        ),
        shape=(data.n_customers, data.basket_customer.size),
    )
    return sp.csr_matrix(owner @ data.baskets)
