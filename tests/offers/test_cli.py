"""The `offers` command line: exit codes and messages a user sees."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from offers.cli import main


def _dataset(root: Path, *, quantity: float = 1.0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {
            "customer_id": ["c1"],
            "order_id": ["o1"],
            "ts": [datetime(2024, 1, 1)],
            "item_id": ["i1"],
            "quantity": [quantity],
            "amount": [10.0],
        }
    ).write_parquet(root / "transactions.parquet")
    pl.DataFrame({"item_id": ["i1"], "category": ["mug"], "price": [10.0]}).write_parquet(
        root / "items.parquet"
    )
    return root


def test_validate_exits_zero_on_a_valid_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(_dataset(tmp_path))]) == 0
    assert "OK: 0 errors" in capsys.readouterr().out


def test_validate_exits_non_zero_and_names_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(_dataset(tmp_path, quantity=-1.0))]) == 1
    out = capsys.readouterr().out
    assert "transactions.parquet [quantity,amount]: amount and quantity have opposite signs" in out


def test_bad_arguments_are_rejected_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--out", "x", "--customers", "-3"])
    assert exc.value.code == 2
    assert "--customers" in capsys.readouterr().err
