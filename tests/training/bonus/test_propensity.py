"""Propensity pieces: calibration, metrics, the feature encoder, and a time-split fit."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.build import customer_features
from features.config import FeatureConfig
from features.dataset import load_dataset
from training.bonus.config import BonusConfig, LgbmParams
from training.bonus.propensity import (
    FeatureEncoder,
    PropensityError,
    PropensityModel,
    calibration_bins,
    fit_isotonic,
    fit_platt,
    log_loss,
    roc_auc,
    train_propensity,
)


def _known_probability_sample(
    distort: object, n: int = 20_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels drawn from known probabilities, and a distorted (monotone) score of each."""
    rng = np.random.default_rng(0)
    p_true = rng.uniform(0.02, 0.98, n)
    label = (rng.random(n) < p_true).astype(float)
    return distort(p_true), label, p_true  # type: ignore[operator]


def _overconfident(p: np.ndarray) -> np.ndarray:
    """Twice the log-odds, shifted: what Platt scaling undoes exactly."""
    return 1.0 / (1.0 + np.exp(-(2.0 * np.log(p / (1 - p)) + 0.5)))


@pytest.mark.parametrize(
    ("fit", "distort"), [(fit_isotonic, lambda p: p**3), (fit_platt, _overconfident)]
)
def test_calibration_recovers_known_probabilities(fit: object, distort: object) -> None:
    score, label, p_true = _known_probability_sample(distort)
    calibrated = fit(score, label).predict(score)  # type: ignore[operator]
    for row in calibration_bins(calibrated, label):
        assert abs(row["mean_predicted"] - row["observed"]) < 0.05
    assert log_loss(calibrated, label) < log_loss(score, label)
    assert np.abs(calibrated - p_true).mean() < 0.03


def test_isotonic_pools_violators_by_hand() -> None:
    iso = fit_isotonic([1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 0.0, 1.0])
    # 1 and 0 at scores 2 and 3 pool into one block of mean 0.5 at score 2.5
    assert iso.x.tolist() == [1.0, 2.5, 4.0]
    assert iso.y.tolist() == [0.0, 0.5, 1.0]
    assert np.all(np.diff(iso.predict(np.linspace(0, 5, 50))) >= 0)


def test_auc_and_log_loss_by_hand() -> None:
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc([0.5, 0.5], [0, 1]) == pytest.approx(0.5)
    assert math.isnan(roc_auc([0.1, 0.2], [1, 1]))
    assert log_loss([0.5, 0.5], [0, 1]) == pytest.approx(math.log(2))


def test_encoder_codes_categories_and_maps_unseen_to_missing() -> None:
    train = pl.DataFrame({"customer_id": ["a", "b"], "x": [1, 2], "city": ["Oslo", "Rome"]})
    enc = FeatureEncoder.fit(train)
    assert enc.names == ["x", "city"]
    assert enc.categorical_indices == [1]
    other = pl.DataFrame({"customer_id": ["c"], "x": [None], "city": ["Paris"]})
    m = enc.transform(other)
    assert np.isnan(m).all()
    assert enc.transform(train).tolist() == [[1.0, 0.0], [2.0, 1.0]]
    assert FeatureEncoder.from_state(enc.state()) == enc


def test_encoder_rejects_unusable_dtypes() -> None:
    frame = pl.DataFrame({"customer_id": ["a"], "when": [datetime(2025, 1, 1)]})
    with pytest.raises(PropensityError, match="when"):
        FeatureEncoder.fit(frame)


def test_time_split_fit_reports_and_round_trips(tiny_world: Path) -> None:
    ds = load_dataset(tiny_world)
    as_of = datetime(2025, 1, 1) + timedelta(days=200)
    config = BonusConfig(lgbm=LgbmParams(num_boost_round=40))
    result = train_propensity(ds, as_of=as_of, config=config, feature_config=FeatureConfig())
    report = result.report
    assert report["eval_as_of"] == (as_of - timedelta(days=30)).isoformat()
    assert report["auc"] > 0.7  # buying again is very predictable in the world
    assert len(report["calibration"]) == 10
    params, arrays = result.model.state()
    again = PropensityModel.from_state(params, arrays)
    frame = customer_features(ds, as_of=as_of, config=result.model.feature_config).collect()
    np.testing.assert_allclose(again.predict(frame), result.model.predict(frame))
    p = result.model.predict(frame)
    assert ((p >= 0) & (p <= 1)).all()


def test_encoder_absorbs_last_bit_differences_of_parallel_sums() -> None:
    # regression: polars sums groups in a varying order, so a feature could differ in its
    # last bit between two runs, and a split falling there made two trainings differ
    a = 0.1 + 0.2 + 0.3
    b = 0.3 + 0.2 + 0.1
    assert a != b
    encoder = FeatureEncoder.fit(pl.DataFrame({"x": [a]}))
    assert (
        encoder.transform(pl.DataFrame({"x": [a]}))[0, 0]
        == encoder.transform(pl.DataFrame({"x": [b]}))[0, 0]
    )
