"""Id maps, the interaction matrix and history truncation."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training.recs.conftest import START, make_items, make_tx
from training.recs.base import (
    UNKNOWN_CATEGORY,
    IdMap,
    RecsError,
    build_interactions,
    epoch_days,
    top_k,
    truncate,
)

ITEMS = {"x": ("food", 1.0), "y": ("food", 2.0), "z": ("home", 3.0)}


def test_idmap_indexes_known_ids_and_gives_minus_one_for_unknown():
    m = IdMap(["b", "a", "c"])
    np.testing.assert_array_equal(m.index(["a", "zz", "c"]), [1, -1, 2])
    assert m.index(["a"]).dtype == np.int32
    assert m.to_external(np.array([2, -1])) == ["c", None]


def test_idmap_rejects_duplicates():
    with pytest.raises(RecsError, match="unique"):
        IdMap(["a", "a"])


def test_returns_are_netted_out_and_fully_returned_pairs_dropped():
    tx = make_tx(
        [
            ("c1", "o1", 0, "x", 2),
            ("c1", "o2", 5, "x", 2),
            ("c1", "r1", 6, "x", -2),  # half of x returned: strength 2 orders * 0.5
            ("c1", "o1", 0, "y", 1),
            ("c1", "r2", 1, "y", -1),  # y fully returned: dropped
            ("c2", "o3", 3, "z", 1),
        ]
    )
    data = build_interactions(tx, make_items(ITEMS), until=None)
    c1, x, y = data.customers.index(["c1"])[0], *data.items.index(["x", "y"])
    assert data.matrix[c1, x] == pytest.approx(1.0)
    assert data.matrix[c1, y] == 0
    assert data.stats["pairs_dropped_not_positive"] == 1
    assert data.stats["return_lines"] == 2
    assert data.last_day[c1, x] == pytest.approx(epoch_days(START) + 5)
    assert data.first_day[c1, x] == pytest.approx(epoch_days(START))


def test_rows_after_until_are_ignored_and_unknown_items_counted():
    tx = make_tx([("c1", "o1", 0, "x", 1), ("c1", "o2", 3, "new", 1), ("c2", "o3", 20, "y", 1)])
    until = START.replace(day=11)
    data = build_interactions(tx, make_items(ITEMS), until=until)
    assert list(data.customers.ids) == ["c1"]
    assert data.stats["items_missing_from_catalogue"] == 1
    new = data.items.index(["new"])[0]
    assert data.categories[data.item_category[new]] == UNKNOWN_CATEGORY
    assert np.isnan(data.item_price[new])
    assert data.as_of == pytest.approx(epoch_days(until))


def test_null_customer_is_an_error_naming_the_field_and_row():
    tx = make_tx([("c1", "o1", 0, "x", 1)]).with_columns(customer_id=None)
    with pytest.raises(RecsError, match=r"customer_id.*row 0"):
        build_interactions(tx, make_items(ITEMS), until=None)


def test_truncate_keeps_the_maps_and_only_earlier_orders():
    tx = make_tx([("c1", "o1", 0, "x", 1), ("c1", "o2", 10, "x", 1), ("c2", "o3", 12, "y", 1)])
    data = build_interactions(tx, make_items(ITEMS), until=None)
    early = truncate(data, epoch_days(START) + 5)
    assert early.customers == data.customers and early.items == data.items
    c1, c2 = data.customers.index(["c1", "c2"])
    x = data.items.index(["x"])[0]
    assert early.matrix[c1, x] == 1 and data.matrix[c1, x] == 2
    assert early.matrix[c2].nnz == 0
    assert early.baskets.shape[0] == 1


def test_top_k_orders_by_score_breaks_ties_by_index_and_pads():
    scores = np.array([[0.1, 0.5, 0.5, -np.inf], [-np.inf, -np.inf, 1.0, -np.inf]])
    np.testing.assert_array_equal(top_k(scores, 3), [[1, 2, 0], [2, -1, -1]])


def test_top_k_keeps_the_lowest_indices_of_a_tie_at_the_cut():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, (50, 200)).astype(np.float64)  # many ties at every cut
    for k in (1, 7, 30):
        want = np.array([np.lexsort((np.arange(200), -row))[:k] for row in scores])
        np.testing.assert_array_equal(top_k(scores, k), want)


def _csr_bytes(m) -> tuple[bytes, bytes, bytes]:
    return m.indptr.tobytes(), m.indices.tobytes(), m.data.tobytes()


def test_interactions_are_bit_identical_whatever_the_order_of_the_lines():
    # the same data must give the same models: ids, pairs and strengths may not depend on the
    # order polars meets the lines (fractional quantities, e.g. sold by weight, are summed)
    rng = np.random.default_rng(2)
    lines = []
    for n in range(3000):
        customer, item = f"c{rng.integers(40)}", str(rng.choice(list(ITEMS)))
        qty = round(float(rng.uniform(0.05, 2.0)), 3)
        lines.append((customer, f"o{n}", float(rng.integers(0, 90)), item, qty))
        if rng.random() < 0.2:
            lines.append((customer, f"r{n}", 95.0, item, -round(qty * rng.uniform(0.1, 0.6), 3)))
    items = make_items(ITEMS)
    first = build_interactions(make_tx(lines), items, until=None)
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(lines))
        again = build_interactions(make_tx([lines[i] for i in order]), items, until=None)
        assert list(again.customers.ids) == list(first.customers.ids)
        assert list(again.items.ids) == list(first.items.ids)
        for name in ("matrix", "first_day", "last_day", "baskets"):
            assert _csr_bytes(getattr(again, name)) == _csr_bytes(getattr(first, name)), name
