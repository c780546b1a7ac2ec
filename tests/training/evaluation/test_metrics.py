"""Ranking metrics on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from training.evaluation.metrics import MetricsError, coverage, hit_rate, ranking_metrics


def _rel(rows: list[list[int]], n_items: int = 10) -> sp.csr_matrix:
    r = [i for i, row in enumerate(rows) for _ in row]
    c = [x for row in rows for x in row]
    return sp.csr_matrix((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


def test_ndcg_precision_recall_map_of_a_known_ranking():
    # relevant {1, 3}; ranking 1 (hit), 2, 3 (hit), 4, 5
    recs = np.array([[1, 2, 3, 4, 5]])
    m = ranking_metrics(recs, _rel([[1, 3]]), ks=(1, 5))
    ideal = 1 + 1 / math.log2(3)
    assert m["ndcg"]["5"] == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert m["ndcg"]["1"] == pytest.approx(1.0)
    assert m["precision"]["5"] == pytest.approx(2 / 5)
    assert m["recall"]["5"] == pytest.approx(1.0)
    assert m["recall"]["1"] == pytest.approx(0.5)
    assert m["map"]["5"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["hit_rate"]["1"] == 1.0


def test_metrics_are_means_over_rows_and_padding_never_hits():
    recs = np.array([[0, -1], [-1, -1]])
    m = ranking_metrics(recs, _rel([[0], [1]]), ks=(2,))
    assert m["hit_rate"]["2"] == pytest.approx(0.5)
    assert m["ndcg"]["2"] == pytest.approx(0.5)


def test_rows_without_relevant_items_are_refused():
    with pytest.raises(MetricsError, match="no relevant item"):
        ranking_metrics(np.array([[0, 1]]), _rel([[]]), ks=(2,))


def test_k_beyond_the_list_is_refused():
    with pytest.raises(MetricsError, match="k=5"):
        ranking_metrics(np.array([[0, 1]]), _rel([[0]]), ks=(5,))


def test_coverage_and_hit_rate():
    recs = np.array([[0, 1, 2], [0, 3, -1]])
    assert coverage(recs, 10, 2) == pytest.approx(3 / 10)
    assert hit_rate(recs, _rel([[9], [3]]), 2) == pytest.approx(0.5)
