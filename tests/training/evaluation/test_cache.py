"""The evaluation cache: baselines are refitted only when data, split or code changed."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pytest

from tests.training.recs.conftest import make_items, make_tx, world_lines
from training.evaluation.cache import EvaluationCache
from training.evaluation.offline import evaluate_models
from training.recs.base import Interactions
from training.recs.popularity import OwnHistory, Popularity

CUTOFF = datetime(2024, 4, 20)
FINGERPRINT = {"transactions": {"rows": 100, "sha256": "ab" * 32}}


class CountingPopularity(Popularity):
    """Popularity that counts its fits (a hand-written spy)."""

    fits = 0

    def fit(self, data: Interactions) -> CountingPopularity:
        CountingPopularity.fits += 1
        super().fit(data)
        return self


class CountingOwn(OwnHistory):
    fits = 0

    def fit(self, data: Interactions) -> CountingOwn:
        CountingOwn.fits += 1
        super().fit(data)
        return self


@pytest.fixture(autouse=True)
def _reset_counts() -> None:
    CountingPopularity.fits = CountingOwn.fits = 0


def _evaluate(cache: EvaluationCache | None, cutoff: datetime = CUTOFF) -> dict:
    lines, items = world_lines()
    return evaluate_models(
        make_tx(lines),
        make_items(items),
        cutoff=cutoff,
        models={"own": CountingOwn, "popularity": CountingPopularity},
        ks=(5, 10),
        cache=cache,
        fresh=("own",),
    )


def test_a_rerun_on_unchanged_data_reuses_the_baseline_and_refits_ours(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = EvaluationCache(tmp_path / "cache", FINGERPRINT)
    first = _evaluate(cache)

    with caplog.at_level(logging.INFO):
        second = _evaluate(cache)

    assert (CountingPopularity.fits, CountingOwn.fits) == (1, 2)
    assert second["models"]["popularity"] == first["models"]["popularity"]
    for segment, by_model in first["segments"].items():
        assert second["segments"][segment]["popularity"] == by_model["popularity"]
    assert first["evaluation_cache"]["reused"] == []
    assert second["evaluation_cache"] == {
        "folder": str(tmp_path / "cache"),
        "reused": ["popularity"],
        "computed": ["own"],
    }
    assert any("popularity: scores from the evaluation cache" in m for m in caplog.messages)


def test_other_data_or_another_cutoff_refits_the_baseline(tmp_path: Path) -> None:
    _evaluate(EvaluationCache(tmp_path, FINGERPRINT))
    other = {"transactions": {"rows": 101, "sha256": "cd" * 32}}

    _evaluate(EvaluationCache(tmp_path, other))
    _evaluate(EvaluationCache(tmp_path, FINGERPRINT), cutoff=datetime(2024, 4, 10))

    assert CountingPopularity.fits == 3


def test_an_unreadable_entry_is_recomputed(tmp_path: Path) -> None:
    cache = EvaluationCache(tmp_path, FINGERPRINT)
    _evaluate(cache)
    for entry in tmp_path.glob("*.json"):
        entry.write_text("{not json", encoding="utf-8")

    again = _evaluate(cache)

    assert CountingPopularity.fits == 2
    assert again["evaluation_cache"]["reused"] == []


def test_without_a_cache_every_model_is_fitted_and_nothing_is_reported(tmp_path: Path) -> None:
    result = _evaluate(None)

    assert CountingPopularity.fits == 1
    assert "evaluation_cache" not in result
