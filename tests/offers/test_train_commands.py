"""`offers evaluate` / `offers train` options: cutoff, test window, models, cached baselines."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from offers.cli import build_parser, main
from offers.train_commands import _eval_cache, _eval_config


def _args(*argv: str):
    return build_parser().parse_args(list(argv))


def test_evaluate_options_make_the_evaluation_config(tmp_path: Path) -> None:
    args = _args(
        "evaluate", "--data", "d", "--out", "o", "--cutoff", "2025-03-01", "--test-days", "14",
        "--models", "popularity, ease_500", "--eval-cache", str(tmp_path),
    )  # fmt: skip

    config = _eval_config(args)

    assert config.cutoff == datetime(2025, 3, 1)
    assert config.split.test_days == 14
    assert config.models == ("popularity", "ease_500")
    assert _eval_cache(args) == tmp_path


def test_defaults_evaluate_everything_with_the_cache_in_offers_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFERS_HOME", str(tmp_path))
    args = _args("evaluate", "--data", "d", "--out", "o")

    config = _eval_config(args)

    assert (config.cutoff, config.models, config.split.test_days) == (None, (), 30)
    assert _eval_cache(args) == tmp_path / "cache" / "evaluation"
    assert _eval_cache(_args("evaluate", "--data", "d", "--out", "o", "--no-eval-cache")) is None


def test_train_skip_baselines_evaluates_ours_alone() -> None:
    from training.pipeline import OURS, selected_models

    config = _eval_config(_args("train", "--data", "d", "--out", "o", "--skip-baselines"))

    assert list(selected_models(config)) == [OURS]


def test_an_unknown_model_is_refused_naming_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["evaluate", "--data", "d", "--out", "o", "--models", "popularity,nope"])

    assert code == 2
    err = capsys.readouterr().err
    assert "unknown model nope" in err and "ease_500" in err


@pytest.mark.slow
def test_evaluate_on_a_cutoff_and_window_then_reuses_the_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    data = tmp_path / "world"
    world = ["--customers", "300", "--items", "60", "--days", "120", "--seed", "3"]
    assert main(["synth", "--out", str(data), *world]) == 0
    evaluate = ["evaluate", "--data", str(data), "--cutoff", "2025-03-20", "--test-days", "14"]
    evaluate += ["--models", "popularity", "--eval-cache", str(tmp_path / "cache")]

    assert main([*evaluate, "--out", str(tmp_path / "first")]) == 0
    assert main([*evaluate, "--out", str(tmp_path / "second")]) == 0

    first = json.loads((tmp_path / "first" / "metrics.json").read_text())
    second = json.loads((tmp_path / "second" / "metrics.json").read_text())
    assert (first["split"]["cutoff"], first["split"]["test_days"]) == ("2025-03-20T00:00:00", 14)
    assert list(first["models"]) == ["hybrid", "popularity"]
    assert second["evaluation_cache"]["reused"] == ["popularity"]
    assert second["models"]["popularity"] == first["models"]["popularity"]
    assert "reused popularity" in capsys.readouterr().out
