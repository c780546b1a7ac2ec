"""Uplift metrics on hand-made randomised samples whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.bonus.uplift_metrics import (
    UpliftMetricsError,
    auuc,
    auuc_normalised,
    qini_auc,
    qini_curve,
    uplift_at_top,
    uplift_by_decile,
    uplift_report,
)

# 8 rows: the first four (high score) respond only when treated, the last four never respond
SCORE = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1])
TREATED = np.array([1, 0, 1, 0, 1, 0, 1, 0], dtype=bool)
OUTCOME = np.array([1, 0, 1, 0, 0, 0, 0, 0])


def test_qini_curve_counts_incremental_conversions_by_hand() -> None:
    curve = qini_curve(SCORE, TREATED, OUTCOME)
    assert curve.x.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    # k=1: one treated converter, no control yet -> 1; k=2: 1 - 0 * 1/1 = 1; k=3: 2; ...
    assert curve.y.tolist() == [0, 1, 1, 2, 2, 2, 2, 2, 2]


def test_qini_of_the_perfect_ranking_is_one_and_of_the_reverse_is_negative() -> None:
    perfect = OUTCOME * TREATED - OUTCOME * ~TREATED  # treated converters first
    assert qini_auc(perfect, TREATED, OUTCOME) == pytest.approx(1.0)
    # SCORE interleaves a control row between the two treated converters: curve area / n is
    # 13 / 8 against random 1.0 and perfect 14 / 8
    assert qini_auc(SCORE, TREATED, OUTCOME) == pytest.approx(0.625 / 0.75)
    assert 0 < auuc_normalised(SCORE, TREATED, OUTCOME) <= 1
    assert qini_auc(-SCORE, TREATED, OUTCOME) < 0


def test_constant_score_is_the_random_ranking() -> None:
    flat = np.zeros(8)
    assert qini_auc(flat, TREATED, OUTCOME) == pytest.approx(0.0)
    assert auuc_normalised(flat, TREATED, OUTCOME) == pytest.approx(0.0)


def test_ties_do_not_depend_on_row_order() -> None:
    score = np.array([1.0, 1.0, 0.0, 0.0])
    treated = np.array([True, False, True, False])
    a = qini_auc(score, treated, np.array([1, 0, 0, 1]))
    b = qini_auc(score[[1, 0, 3, 2]], treated[[1, 0, 3, 2]], np.array([0, 1, 1, 0]))
    assert a == pytest.approx(b)


def test_uplift_at_top_and_overall() -> None:
    assert uplift_at_top(SCORE, TREATED, OUTCOME, 0.5) == pytest.approx(1.0)
    assert uplift_at_top(SCORE, TREATED, OUTCOME, 1.0) == pytest.approx(0.5)
    assert math.isnan(uplift_at_top(SCORE, TREATED, OUTCOME, 0.1))  # one treated row only


def test_auuc_is_positive_for_a_good_ranking() -> None:
    assert auuc(SCORE, TREATED, OUTCOME) > auuc(-SCORE, TREATED, OUTCOME)


def test_deciles_report_observed_uplift_best_bin_first() -> None:
    bins = uplift_by_decile(SCORE, TREATED, OUTCOME, bins=2)
    assert [b["uplift"] for b in bins] == [1.0, 0.0]
    assert bins[0]["predicted"] > bins[1]["predicted"]


def test_report_is_complete() -> None:
    report = uplift_report(SCORE, TREATED, OUTCOME)
    assert report["qini_auc"] == pytest.approx(0.625 / 0.75)
    assert report["overall_uplift"] == pytest.approx(0.5)
    assert len(report["by_decile"]) == 8


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(UpliftMetricsError, match="treated"):
        qini_auc(SCORE, np.ones(8, dtype=bool), OUTCOME)
    with pytest.raises(UpliftMetricsError, match="outcome"):
        qini_auc(SCORE, TREATED, np.full(8, 2))
    with pytest.raises(UpliftMetricsError, match="score"):
        qini_auc(np.full(8, np.nan), TREATED, OUTCOME)
