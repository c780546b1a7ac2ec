"""`validate_dataset` names the file, column and rows of every contract violation."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from features.validate import validate_dataset


def _tx(**overrides: list[object]) -> pl.DataFrame:
    base: dict[str, list[object]] = {
        "customer_id": ["c1", "c1", "c2"],
        "order_id": ["o1", "o2", "o3"],
        "ts": [datetime(2024, 1, 1), datetime(2024, 1, 5), datetime(2024, 1, 2)],
        "item_id": ["i1", "i1", "i2"],
        "quantity": [2.0, -1.0, 1.0],
        "amount": [20.0, -10.0, 5.0],
    }
    base.update(overrides)
    return pl.DataFrame(base)


def _items(**overrides: list[object]) -> pl.DataFrame:
    base: dict[str, list[object]] = {
        "item_id": ["i1", "i2"],
        "category": ["laptop", "bag"],
        "price": [10.0, 5.0],
    }
    base.update(overrides)
    return pl.DataFrame(base)


def _write(root: Path, **tables: pl.DataFrame) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.write_parquet(root / f"{name}.parquet")
    return root


def _messages(root: Path) -> list[str]:
    return [p.format() for p in validate_dataset(root).errors]


def test_a_clean_dataset_with_a_matched_return_is_valid(tmp_path: Path) -> None:
    report = validate_dataset(_write(tmp_path, transactions=_tx(), items=_items()))
    assert report.ok, report.format()
    assert report.row_counts == {"transactions": 3, "items": 2}
    assert report.facts["return lines (kept, netted out by features and models)"] == 1
    assert report.capabilities["recommendations"]
    assert not report.capabilities["response models"]


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    root = _write(tmp_path, transactions=_tx().drop("amount"), items=_items())
    (message,) = _messages(root)
    assert "transactions.parquet [amount]: required column is missing" in message


def test_wrong_type_names_column_and_expected_type(tmp_path: Path) -> None:
    root = _write(tmp_path, transactions=_tx(quantity=[True, False, True]), items=_items())
    assert any("[quantity]: wrong type Boolean" in m for m in _messages(root))


def test_null_ids_and_unparsable_times_show_example_rows(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        transactions=_tx(
            customer_id=["c1", "c1", None],
            ts=["2024-01-01 00:00:00", "2024-01-05 00:00:00", "yesterday"],
        ),
        items=_items(),
    )
    messages = "\n".join(_messages(root))
    assert "[customer_id]: null or empty values (1 rows)" in messages
    assert "[ts]: unparsable time (1 rows)" in messages
    assert "row 2: ts='yesterday'" in messages


def test_integer_ids_and_iso_time_strings_are_accepted(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        transactions=_tx(
            customer_id=[1, 1, 2], ts=["2024-01-01", "2024-01-05 10:30:00", "2024-01-02"]
        ),
        items=_items(),
    )
    assert validate_dataset(root).ok


def test_sign_mismatch_and_return_without_sale(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        transactions=_tx(quantity=[2.0, -1.0, -1.0], amount=[20.0, 10.0, -5.0]),
        items=_items(),
    )
    messages = "\n".join(_messages(root))
    assert "amount and quantity have opposite signs (1 rows)" in messages
    assert "order_id='o2'" in messages
    assert "a return without an earlier sale of that item to that customer (1 rows)" in messages
    assert "customer_id='c2'" in messages


def test_return_before_its_sale_is_an_error(tmp_path: Path) -> None:
    ts = [datetime(2024, 1, 5), datetime(2024, 1, 1), datetime(2024, 1, 2)]
    root = _write(tmp_path, transactions=_tx(ts=ts), items=_items())
    assert any("return without an earlier sale" in m for m in _messages(root))


def test_duplicate_keys_and_unknown_items(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        transactions=_tx(order_id=["o1", "o1", "o3"], item_id=["i1", "i1", "i7"]),
        items=_items(),
    )
    messages = "\n".join(_messages(root))
    assert "[order_id,item_id]: duplicate keys (2 rows)" in messages
    assert "1 item ids are missing from items" in messages and "item_id='i7'" in messages


def test_transactions_without_items_table(tmp_path: Path) -> None:
    root = _write(tmp_path, transactions=_tx())
    assert any("transactions need an items table" in m for m in _messages(root))


def test_customers_and_offers_alone_are_valid_for_response_models(tmp_path: Path) -> None:
    customers = pl.DataFrame({"customer_id": ["a", "b"], "recency": [3, 9]})
    offers = pl.DataFrame(
        {
            "offer_id": ["1", "2"],
            "customer_id": ["a", "b"],
            "sent_at": [datetime(2024, 3, 1)] * 2,
            "offer_type": ["email_mens", "none"],
            "bonus": [0.0, 0.0],
            "channel": ["email", "email"],
            "converted": [True, False],
            "converted_at": [datetime(2024, 3, 4), None],
            "revenue": [30.0, None],
        }
    )
    report = validate_dataset(_write(tmp_path, customers=customers, offers=offers))
    assert report.ok, report.format()
    assert report.capabilities["response models"]
    assert not report.capabilities["recommendations"]


def test_offer_logic_errors(tmp_path: Path) -> None:
    offers = pl.DataFrame(
        {
            "offer_id": ["1", "2"],
            "customer_id": ["a", "b"],
            "sent_at": [datetime(2024, 3, 5)] * 2,
            "offer_type": ["cashback", "cashback"],
            "bonus": [-5.0, 10.0],
            "channel": ["sms", "sms"],
            "converted": [True, False],
            "converted_at": [datetime(2024, 3, 1), datetime(2024, 3, 7)],
            "revenue": [1.0, None],
        }
    )
    messages = "\n".join(_messages(_write(tmp_path, offers=offers)))
    assert "negative bonus" in messages
    assert "converted before the offer was sent" in messages
    assert "converted_at set on an offer not converted" in messages


def test_empty_folder_and_missing_folder(tmp_path: Path) -> None:
    assert not validate_dataset(tmp_path).ok
    assert "not a folder" in validate_dataset(tmp_path / "nope").format()


@pytest.mark.parametrize("parts", [1, 3])
def test_transactions_as_a_folder_of_parts(tmp_path: Path, parts: int) -> None:
    tx = _tx()
    folder = tmp_path / "transactions"
    folder.mkdir()
    for i, chunk in enumerate(tx.iter_slices(n_rows=-(-tx.height // parts))):
        chunk.write_parquet(folder / f"part-{i}.parquet")
    _write(tmp_path, items=_items())
    report = validate_dataset(tmp_path)
    assert report.ok, report.format()
    assert report.row_counts["transactions"] == 3
