"""Loading coerces to contract dtypes; writing is atomic."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from features.dataset import DatasetError, load_dataset, write_parquet_atomic, write_table_atomic


def test_load_coerces_ids_times_and_amounts(tmp_path: Path) -> None:
    pl.DataFrame(
        {
            "customer_id": [17850],
            "order_id": [536365],
            "ts": ["2010-12-01 08:26:00"],
            "item_id": ["85123A"],
            "quantity": [6],
            "amount": [15],
        }
    ).write_parquet(tmp_path / "transactions.parquet")
    pl.DataFrame({"item_id": ["85123A"], "category": ["light"], "price": [2.55]}).write_parquet(
        tmp_path / "items.parquet"
    )
    ds = load_dataset(tmp_path)
    tx = ds.require("transactions", "a test").collect()
    assert tx.schema["customer_id"] == pl.String
    assert tx["customer_id"][0] == "17850"
    assert tx.schema["ts"] == pl.Datetime("us")
    assert tx.schema["quantity"] == pl.Float64
    assert ds.present == ["transactions", "items"]
    with pytest.raises(DatasetError, match="needs the 'offers' table"):
        ds.require("offers", "response models")


def test_load_rejects_a_folder_without_tables(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no contract table"):
        load_dataset(tmp_path)


def test_atomic_write_leaves_no_partial_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    write_parquet_atomic(pl.DataFrame({"a": [1]}), target)

    class Boom(pl.DataFrame):
        def write_parquet(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
            Path(str(args[0])).write_bytes(b"half")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(Boom({"a": [2]}), target)
    assert pl.read_parquet(target)["a"].to_list() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_write_table_by_extension(tmp_path: Path) -> None:
    df = pl.DataFrame({"a": [1, 2]})
    assert pl.read_csv(write_table_atomic(df, tmp_path / "x.csv"))["a"].to_list() == [1, 2]
    with pytest.raises(DatasetError, match=r"\.parquet or \.csv"):
        write_table_atomic(df, tmp_path / "x.json")
