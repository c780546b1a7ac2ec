"""UCI Online Retail files in the shapes people download: xlsx (both sheets of Online Retail
II), csv and parquet, under each edition's own column names, imported and validated."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from features.adapters import import_dataset
from features.adapters import uci_online_retail as uci
from features.adapters.base import AdapterError
from features.columns import Col
from features.validate import validate_dataset

II_HEADER = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price"]
II_HEADER += ["Customer ID", "Country"]
I_HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice"]
I_HEADER += ["CustomerID", "Country"]
UK = "United Kingdom"

# Online Retail II, as in the UCI workbook: invoice and stock code cells are numbers unless
# they hold a letter, Customer ID is a number cell (read as 13085.0 by most tools), and an
# invoice of the first days of December 2010 is in both sheets.
SHEET_2009 = [
    (489434, 85048, "15CM CHRISTMAS GLASS BALL 20 LIGHTS", 12, datetime(2009, 12, 1, 7, 45), 6.95),
    (489434, "79323P", "PINK CHERRY LIGHTS", 12, datetime(2009, 12, 1, 7, 45), 6.75),
    (
        "C489449",
        85048,
        "15CM CHRISTMAS GLASS BALL 20 LIGHTS",
        -2,
        datetime(2009, 12, 1, 10, 33),
        6.95,
    ),
    (489450, 22087, "PAPER BUNTING WHITE LACE", 6, datetime(2009, 12, 1, 11, 0), 2.95),
    (536365, "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, datetime(2010, 12, 1, 8, 26), 2.55),
]
SHEET_2010 = [
    (536365, "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, datetime(2010, 12, 1, 8, 26), 2.55),
    (536366, 22633, "HAND WARMER UNION JACK", 6, datetime(2010, 12, 1, 8, 28), 1.85),
    (536367, "POST", "POSTAGE", 1, datetime(2010, 12, 1, 8, 34), 18.0),
]
CUSTOMERS_2009 = [13085.0, 13085.0, 13085.0, None, 17850.0]
CUSTOMERS_2010 = [17850.0, 17850.0, 17850.0]


def _write_xlsx(path: Path, sheets: dict[str, list[tuple[object, ...]]], header: list[str]) -> Path:
    xlsxwriter = pytest.importorskip("xlsxwriter")
    book = xlsxwriter.Workbook(str(path))
    when = book.add_format({"num_format": "m/d/yyyy h:mm"})
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, header)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row):
                if isinstance(value, datetime):
                    sheet.write_datetime(r, c, value, when)
                elif value is not None:  # an empty cell, as for a guest's Customer ID
                    sheet.write(r, c, value)
    book.close()
    return path


def _ii_rows() -> dict[str, list[tuple[object, ...]]]:
    def rows(lines: list[tuple[object, ...]], ids: list[float | None]) -> list[tuple[object, ...]]:
        return [(*line, cid, UK) for line, cid in zip(lines, ids, strict=True)]

    return {
        "Year 2009-2010": rows(SHEET_2009, CUSTOMERS_2009),
        "Year 2010-2011": rows(SHEET_2010, CUSTOMERS_2010),
    }


def _import_and_validate(src: Path, out: Path):
    report = import_dataset(uci.NAME, src, out)
    validation = validate_dataset(out)
    assert validation.ok, validation.format()
    assert report.balanced, report.format()
    return report, pl.read_parquet(out / "transactions.parquet")


def test_online_retail_ii_workbook_imports_both_sheets(tmp_path: Path) -> None:
    book = _write_xlsx(tmp_path / "online_retail_II.xlsx", _ii_rows(), II_HEADER)

    report, tx = _import_and_validate(book, tmp_path / "out")

    flow = report.flow("transactions")
    assert flow.source == "online_retail_II.xlsx"
    assert flow.read == len(SHEET_2009) + len(SHEET_2010)
    assert flow.excluded[uci.REPEATED] == 1  # invoice 536365 is in both sheets: read once
    assert flow.excluded[uci.NO_CUSTOMER] == 1
    assert flow.excluded[uci.NON_PRODUCT] == 1
    assert sorted(tx[Col.ORDER].unique()) == ["489434", "536365", "536366", "C489449"]
    assert tx.filter(pl.col(Col.ORDER) == "536365")[Col.QUANTITY].to_list() == [6.0]
    assert set(tx[Col.CUSTOMER]) == {"13085", "17850"}
    assert set(tx[Col.ITEM]) == {"85048", "79323P", "85123A", "22633"}
    assert tx[Col.TS].min() == datetime(2009, 12, 1, 7, 45)
    ret = tx.filter(pl.col(Col.QUANTITY) < 0).row(0, named=True)
    assert (ret[Col.ORDER], ret[uci.RETURN_OF]) == ("C489449", "489434")
    assert report.notes[0] == (
        "online_retail_II.xlsx: invoices from 2009-12-01 to 2010-12-01 in 2 sheet(s) or file(s)."
    )
    assert not any("2010-12-01); kept" in n or "2011" in n for n in report.notes)


def test_online_retail_csv_with_us_dates_float_ids_and_windows_encoding(tmp_path: Path) -> None:
    src = tmp_path / "download"
    src.mkdir()
    lines = [
        ",".join(I_HEADER),
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,UK",
        "536365,71053,WHITE METAL LANTERN £,6,12/1/2010 8:26,3.39,17850.0,UK",
        "C536379,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-2,12/13/2010 9:41,2.55,17850.0,UK",
        "536380,22633,HAND WARMER UNION JACK,4,1/4/2011 10:00,1.85,,UK",
    ]
    (src / "Online Retail.csv").write_bytes("\r\n".join(lines).encode("cp1252"))

    report, tx = _import_and_validate(src, tmp_path / "out")

    assert report.flow("transactions").excluded[uci.NO_CUSTOMER] == 1
    assert uci.REPEATED not in report.flow("transactions").excluded  # one part: no such rule
    assert tx[Col.TS].to_list() == [datetime(2010, 12, 1, 8, 26)] * 2 + [
        datetime(2010, 12, 13, 9, 41)
    ]
    assert tx[Col.CUSTOMER].unique().to_list() == ["17850"]
    items = pl.read_parquet(tmp_path / "out" / "items.parquet")
    assert "WHITE METAL LANTERN £" in items[Col.NAME].to_list()


def test_day_first_dates_are_recognised_when_month_first_cannot_read_them(tmp_path: Path) -> None:
    lines = [
        ",".join(II_HEADER),
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,01/12/2010 08:26,2.55,17850.0,UK",
        "536366,22633,HAND WARMER UNION JACK,6,13/12/2010 08:28,1.85,17850.0,UK",
    ]
    (tmp_path / "retail.csv").write_text("\n".join(lines), encoding="utf-8")

    _, tx = _import_and_validate(tmp_path / "retail.csv", tmp_path / "out")

    assert tx[Col.TS].to_list() == [datetime(2010, 12, 1, 8, 26), datetime(2010, 12, 13, 8, 28)]


def test_online_retail_ii_parquet_with_text_dates_and_float_ids(tmp_path: Path) -> None:
    rows = [row for sheet in _ii_rows().values() for row in sheet]
    frame = pl.DataFrame(
        {
            "Invoice": [str(r[0]) for r in rows],
            "StockCode": [str(r[1]) for r in rows],
            "Description": [r[2] for r in rows],
            "Quantity": [r[3] for r in rows],
            "InvoiceDate": [f"{r[4]:%Y-%m-%d %H:%M:%S}" for r in rows],
            "Price": [r[5] for r in rows],
            "Customer ID": [r[6] for r in rows],
            "Country": [r[7] for r in rows],
        },
        schema_overrides={"Customer ID": pl.Float64},
    )
    frame.write_parquet(tmp_path / "online_retail_II.parquet")

    report, tx = _import_and_validate(tmp_path / "online_retail_II.parquet", tmp_path / "out")

    assert report.flow("transactions").read == len(rows)
    assert set(tx[Col.CUSTOMER]) == {"13085", "17850"}
    assert tx[Col.TS].max() == datetime(2010, 12, 1, 8, 28)


def test_an_unreadable_value_names_the_sheet_column_and_row(tmp_path: Path) -> None:
    sheets = _ii_rows()
    sheets["Year 2010-2011"][1] = (536366, 22633, "HAND WARMER", "six", *SHEET_2010[1][4:], 1.0, UK)
    book = _write_xlsx(tmp_path / "online_retail_II.xlsx", sheets, II_HEADER)

    with pytest.raises(AdapterError, match=r"\[Year 2010-2011\] \[Quantity\]: row 1 has 'six'"):
        import_dataset(uci.NAME, book, tmp_path / "out")


def test_a_fractional_customer_id_is_unreadable() -> None:
    df = pl.DataFrame(
        {h: ["1"] for h in I_HEADER} | {"InvoiceDate": ["2010-12-01 08:26:00"]}
    ).with_columns(pl.lit(12345.5).alias("CustomerID"))

    with pytest.raises(AdapterError, match=r"\[CustomerID\]: row 0 has 12345.5"):
        uci.canonical_lines(df, "t.csv")


def test_missing_columns_are_named_with_what_the_file_has(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("Invoice,StockCode\n1,2\n", encoding="utf-8")

    with pytest.raises(AdapterError, match=r"no column for Description, Quantity.*has: Invoice"):
        import_dataset(uci.NAME, tmp_path / "x.csv", tmp_path / "out")


def test_a_folder_with_two_data_files_asks_for_one(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n", encoding="utf-8")
    (tmp_path / "b.xlsx").write_bytes(b"")

    with pytest.raises(AdapterError, match=r"several data files \(a.csv, b.xlsx\)"):
        import_dataset(uci.NAME, tmp_path, tmp_path / "out")
