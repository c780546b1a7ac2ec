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


def test_synth_validate_features_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "world"
    args = ["--customers", "300", "--items", "60", "--days", "120", "--seed", "3"]
    assert main(["synth", "--out", str(data), *args]) == 0
    assert main(["validate", str(data)]) == 0
    out = tmp_path / "features.csv"
    # --horizon joins labels: a regression test for the polars 2.1 streaming-join panic
    assert (
        main(
            [
                "features",
                "--data",
                str(data),
                "--as-of",
                "2025-03-01",
                "--horizon",
                "30",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    features = pl.read_csv(out)
    assert features["customer_id"].is_unique().all()
    assert {"rfm_code", "lifecycle_stage", "activity_coef", "bought", "spend"} <= set(
        features.columns
    )
    assert features["bought"].null_count() == 0
    assert "wrote" in capsys.readouterr().out
