from __future__ import annotations

from pathlib import Path

import pytest

from features.adapters.report import Flow, ImportReport


def test_a_flow_balances_when_every_row_is_accounted_for():
    flow = Flow(
        source="lines",
        table="transactions",
        read=10,
        written=6,
        excluded={"no customer": 3},
        merged={"duplicates": 2},
        added={"stub": 1},
    )
    assert flow.balanced


def test_an_unreconciled_flow_says_by_how_much():
    flow = Flow(source="lines", table="transactions", read=10, written=6, excluded={"x": 3})
    assert flow.balance == 1
    assert "UNRECONCILED: +1 rows" in flow.format()


def test_report_lists_reads_writes_and_reasons():
    report = ImportReport(
        dataset="demo",
        src=Path("in"),
        out=Path("out"),
        flows=(
            Flow("a.parquet", "transactions", 5, 4, excluded={"no customer": 1}),
            Flow("b.parquet", "items", 2, 2),
        ),
        notes=("amount = quantity * price",),
    )
    assert report.rows_read == {"a.parquet": 5, "b.parquet": 2}
    assert report.rows_written == {"transactions": 4, "items": 2}
    assert report.excluded == {"transactions: no customer": 1}
    assert report.flow("items").written == 2
    text = report.format()
    assert "excluded: 1 no customer" in text
    assert "amount = quantity * price" in text
    with pytest.raises(KeyError):
        report.flow("offers")
