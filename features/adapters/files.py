"""Tabular files as people download them: Excel workbooks (every sheet), CSV, Parquet.

Excel is read through polars' ``calamine`` engine (the ``fastexcel`` package) with every cell
as text, so a column mixing numbers and text (invoice 489434 beside C489449) reads whole and
the adapter parses each column itself; date cells come back as ``2010-12-01 08:26:00``. CSV is
read as text too, decoded as UTF-8 or, failing that, Windows-1252 (how the popular CSV copies
of UCI Online Retail are encoded). Parquet keeps its stored types.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from features.adapters.base import AdapterError

SPREADSHEET: Final = (".xlsx", ".xlsm", ".xlsb", ".xls")
TABULAR: Final = (*SPREADSHEET, ".csv", ".parquet")


@dataclass(frozen=True)
class Part:
    """One sheet or file: a label for messages and reports, and its rows."""

    label: str
    frame: pl.DataFrame


def find_data_file(src: Path, dataset: str) -> Path:
    """``src`` itself when it is a file, else the one xlsx/csv/parquet file in folder ``src``."""
    if src.is_file():
        return src
    if not src.is_dir():
        raise AdapterError(f"{dataset}: {src} is neither a file nor a folder")
    found = sorted(
        f
        for f in src.iterdir()
        if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in TABULAR
    )
    if not found:
        raise AdapterError(f"{dataset}: {src} has no {', '.join(TABULAR)} file")
    if len(found) > 1:
        raise AdapterError(
            f"{dataset}: {src} has several data files ({', '.join(f.name for f in found)}); "
            "pass the one to import as --src FILE"
        )
    return found[0]


def read_parts(file: Path) -> list[Part]:
    """Every sheet of a workbook (in workbook order), or the one table of a CSV/Parquet file."""
    suffix = file.suffix.lower()
    if suffix in SPREADSHEET:
        try:
            sheets = pl.read_excel(file, sheet_id=0, engine="calamine", infer_schema_length=0)
        except ModuleNotFoundError as exc:
            raise AdapterError(
                f"{file}: reading Excel needs the fastexcel package ({exc}); "
                "reinstall the project (`make install`)"
            ) from exc
        except Exception as exc:  # calamine's own errors: not a workbook, encrypted, ...
            raise AdapterError(f"{file}: cannot read as a workbook ({exc})") from exc
        return [Part(f"{file.name} [{name}]", df) for name, df in sheets.items() if df.width]
    if suffix == ".csv":
        raw = file.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
        return [Part(file.name, pl.read_csv(text.encode("utf-8"), infer_schema=False))]
    if suffix == ".parquet":
        return [Part(file.name, pl.read_parquet(file))]
    raise AdapterError(f"{file}: unknown file type (expected {', '.join(TABULAR)})")
