"""Adapters: convert each real public dataset into the data contract.

`import_dataset(name, src, out)` reads the dataset's files from ``src``, converts them with the
adapter registered under ``name`` in `ADAPTERS`, writes the contract tables to ``out`` (atomic
Parquet writes) and returns an `ImportReport` accounting for every row read. See
docs/adapters.md for each mapping.
"""

from __future__ import annotations

from pathlib import Path

from features.adapters import dunnhumby, groceries, hillstrom, uci_online_retail
from features.adapters.base import Adapter, AdapterError, read_sources
from features.adapters.report import Flow, ImportReport
from features.contract import TABLES
from features.dataset import table_path, write_parquet_atomic
from features.progress import stage

ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (
        uci_online_retail.ADAPTER,
        dunnhumby.ADAPTER,
        groceries.ADAPTER,
        hillstrom.ADAPTER,
    )
}

__all__ = ["ADAPTERS", "Adapter", "AdapterError", "Flow", "ImportReport", "import_dataset"]


def get_adapter(name: str) -> Adapter:
    """The adapter called ``name``, or an `AdapterError` listing the known ones."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise AdapterError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(ADAPTERS))}"
        ) from None


def import_dataset(name: str, src: Path, out: Path) -> ImportReport:
    """Convert dataset ``name`` from folder ``src`` into contract tables in folder ``out``.

    ``out`` may exist, but must not hold contract tables this import would not overwrite
    (mixing two datasets' tables in one folder would make a dataset that is neither).
    """
    adapter = get_adapter(name)
    src, out = Path(src), Path(out)
    sources = read_sources(adapter, src)
    with stage(f"import {name}") as s:
        conversion = adapter.convert(sources)
        s.rows = sum(df.height for df in conversion.tables.values())
    stale = [
        table
        for table in TABLES
        if table not in conversion.tables and table_path(out, table) is not None
    ]
    if stale:
        raise AdapterError(
            f"{out} already holds {', '.join(stale)} from another import; "
            "choose an empty output folder"
        )
    with stage(f"write {out}") as s:
        for table, df in conversion.tables.items():
            write_parquet_atomic(df, out / f"{table}.parquet")
        s.rows = sum(df.height for df in conversion.tables.values())
    return ImportReport(
        dataset=name, src=src, out=out, flows=conversion.flows, notes=conversion.notes
    )
