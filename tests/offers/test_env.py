"""Where the command line puts the MLflow store: never the current directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from offers.env import offers_home, tracking_config

REPO = Path(__file__).resolve().parents[2]


def test_the_store_defaults_to_the_checkout_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    cfg = tracking_config({})

    assert offers_home({}) == REPO
    assert cfg.tracking_uri == f"sqlite:///{REPO / 'mlflow.db'}"
    assert cfg.artifact_location == (REPO / "mlruns").as_uri()
    assert not any(tmp_path.iterdir())


def test_offers_home_moves_the_store(tmp_path: Path) -> None:
    home = tmp_path / "home"

    cfg = tracking_config({"OFFERS_HOME": str(home)})

    assert cfg.tracking_uri == f"sqlite:///{home / 'mlflow.db'}"
    assert cfg.artifact_location == (home / "mlruns").as_uri()
    assert home.is_dir()  # created, so sqlite can open the database


def test_mlflow_tracking_uri_wins_over_offers_home(tmp_path: Path) -> None:
    db = tmp_path / "other" / "m.db"

    cfg = tracking_config(
        {"MLFLOW_TRACKING_URI": f"sqlite:///{db}", "OFFERS_HOME": str(tmp_path / "home")}
    )

    assert cfg.tracking_uri == f"sqlite:///{db}"
    assert cfg.artifact_location == (tmp_path / "other" / "mlruns").as_uri()
    assert not (tmp_path / "home").exists()
