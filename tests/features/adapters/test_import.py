from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from features.adapters import ADAPTERS, AdapterError, import_dataset
from features.adapters import hillstrom as hs
from features.dataset import DatasetError


def test_the_four_datasets_are_registered():
    assert set(ADAPTERS) == {
        "uci_online_retail",
        "dunnhumby_complete_journey",
        "groceries_arules",
        "hillstrom_email",
    }


def test_an_unknown_name_lists_the_known_ones(tmp_path: Path):
    with pytest.raises(AdapterError, match=r"unknown dataset 'instacart'.*hillstrom_email"):
        import_dataset("instacart", tmp_path, tmp_path / "out")


def test_a_source_folder_missing_a_file_names_it(tmp_path: Path):
    with pytest.raises(AdapterError, match=r"lacks hillstrom\.parquet"):
        import_dataset("hillstrom_email", tmp_path, tmp_path / "out")


def test_a_missing_column_is_named(tmp_path: Path):
    pl.DataFrame({"row_id": [0], "segment": ["No E-Mail"]}).write_parquet(tmp_path / hs.FILE)
    with pytest.raises(AdapterError, match="column 'recency' is missing"):
        import_dataset("hillstrom_email", tmp_path, tmp_path / "out")


def test_adapter_errors_are_dataset_errors():
    assert issubclass(AdapterError, DatasetError)


def _hillstrom_source(folder: Path) -> Path:
    folder.mkdir()
    schema = hs.INPUTS[hs.FILE]
    row = (0, 10, "2) $100 - $200", 142.44, 1, 0, "Urban", 0, "Web", "No E-Mail", 0, 0, 0.0)
    pl.DataFrame([row], schema=schema, orient="row").write_parquet(folder / hs.FILE)
    return folder


def test_import_writes_the_tables_and_refuses_a_folder_holding_other_tables(tmp_path: Path):
    src = _hillstrom_source(tmp_path / "src")
    out = tmp_path / "out"
    report = import_dataset("hillstrom_email", src, out)
    assert sorted(p.name for p in out.iterdir()) == ["customers.parquet", "offers.parquet"]
    assert report.rows_written == {"customers": 1, "offers": 1}
    import_dataset("hillstrom_email", src, out)  # re-importing over itself is fine
    pl.DataFrame({"x": [1]}).write_parquet(out / "transactions.parquet")
    with pytest.raises(AdapterError, match="already holds transactions"):
        import_dataset("hillstrom_email", src, out)


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_every_real_dataset_reconciles_row_by_row(imported, name: str):
    report, _ = imported(name)
    for flow in report.flows:
        assert flow.balanced, flow.format()
    assert report.format().startswith(f"import {name}")
