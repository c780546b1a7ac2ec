from __future__ import annotations

import polars as pl

from features.orders import orders_before
from features.rfm import SEGMENT_OF_CODE, rfm, score, segment_of
from tests.features._world import AS_OF, FUTURE_LINES, LINES, tx


def _rfm(lines=LINES) -> dict[str, dict[str, object]]:
    df = rfm(orders_before(tx(lines), as_of=AS_OF), as_of=AS_OF).collect()
    return {row["customer_id"]: row for row in df.to_dicts()}


def test_values_scores_and_segments_match_the_hand_computation() -> None:
    got = _rfm()
    a, b, c = got["a"], got["b"], got["c"]
    # a: last purchase 2024-03-31 12:00 -> 0 whole days; 3 orders; 30 + 10 - 10 + 50 = 80
    assert (a["recency_days"], a["frequency"], a["monetary"]) == (0, 3, 80.0)
    assert (b["recency_days"], b["frequency"], b["monetary"]) == (122, 1, 100.0)
    assert (c["recency_days"], c["frequency"], c["monetary"]) == (59, 2, 60.0)
    # 3 active customers: score = 1 + 3 * (#worse) // 3
    assert (a["r_score"], a["f_score"], a["m_score"], a["rfm_code"]) == (3, 3, 2, "R3F3M2")
    assert (b["r_score"], b["f_score"], b["m_score"], b["rfm_code"]) == (1, 1, 3, "R1F1M3")
    assert (c["r_score"], c["f_score"], c["m_score"], c["rfm_code"]) == (2, 2, 1, "R2F2M1")
    assert (a["r_quintile"], a["f_quintile"], a["m_quintile"]) == (4, 4, 2)
    assert (b["r_quintile"], b["f_quintile"], b["m_quintile"]) == (1, 1, 4)
    assert [a["rfm_segment"], b["rfm_segment"], c["rfm_segment"]] == [
        "loyal",
        "lost",
        "need_attention",
    ]


def test_return_only_customer_has_no_scores_and_no_purchase_segment() -> None:
    g = _rfm()["g"]
    assert (g["frequency"], g["monetary"], g["recency_days"]) == (0, -20.0, None)
    assert g["r_score"] is None and g["rfm_code"] is None
    assert g["rfm_segment"] == "no_purchase"


def test_tied_values_share_one_score_and_the_worst_gets_one() -> None:
    values = pl.DataFrame({"v": [3.0, 3.0, 3.0, 3.0, 7.0, 8.0]})
    tertiles = values.select(score(pl.col("v"), 3)).to_series().to_list()
    quintiles = values.select(score(pl.col("v"), 5)).to_series().to_list()
    assert tertiles == [1, 1, 1, 1, 3, 3]  # 8.0 has 5 worse: 1 + 15 // 6 = 3
    assert quintiles == [1, 1, 1, 1, 4, 5]
    everyone_equal = pl.DataFrame({"v": [2.0] * 4}).select(score(pl.col("v"), 3))
    assert everyone_equal.to_series().to_list() == [1, 1, 1, 1]


def test_lower_recency_is_better() -> None:
    got = pl.DataFrame({"d": [1, 10, 100]}).select(score(pl.col("d"), 3, higher_is_better=False))
    assert got.to_series().to_list() == [3, 2, 1]


def test_every_one_of_the_27_codes_has_a_segment() -> None:
    assert len(SEGMENT_OF_CODE) == 27
    assert segment_of(3, 3, 3) == "champions"
    assert segment_of(3, 1, 1) == "new"
    assert segment_of(1, 3, 3) == "cant_lose"
    assert segment_of(1, 3, 1) == "at_risk"
    assert segment_of(1, 2, 1) == "hibernating"
    assert segment_of(1, 1, 3) == "lost"


def test_rows_after_as_of_change_nothing() -> None:
    assert _rfm(LINES + FUTURE_LINES) == _rfm()


def test_empty_input_gives_empty_frame_with_the_same_schema() -> None:
    full = rfm(orders_before(tx(), as_of=AS_OF), as_of=AS_OF).collect()
    empty = rfm(orders_before(tx([]), as_of=AS_OF), as_of=AS_OF).collect()
    assert empty.height == 0
    assert empty.schema == full.schema
