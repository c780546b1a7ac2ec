"""The offer response model: monotone in bonus, point-in-time rows, no history -> clear error."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.special import expit

from features.columns import Col, OfferType
from features.config import FeatureConfig
from features.dataset import load_dataset, write_parquet_atomic
from training.bonus.config import BonusConfig, BonusConfigError, LgbmParams
from training.bonus.propensity import fixed_feature_config
from training.bonus.response import (
    BonusCurve,
    NoOfferHistoryError,
    ResponseModel,
    ResponseModelError,
    ResponseResult,
    _curve_objective,
    model_features,
    offer_history,
    offer_history_features,
    response_lgbm,
    train_response,
)

END = datetime(2025, 1, 1) + timedelta(days=200)
CONFIG = BonusConfig(lgbm=LgbmParams(num_boost_round=40, min_data_in_leaf=10))


@pytest.fixture(scope="module")
def fitted(tiny_world: Path) -> tuple[ResponseResult, pl.DataFrame]:
    ds = load_dataset(tiny_world)
    fc = fixed_feature_config(ds, as_of=END, config=FeatureConfig())
    result = train_response(ds, config=CONFIG, feature_config=fc)
    features = model_features(ds, offer_history(ds), as_of=END, config=CONFIG, feature_config=fc)
    return result, features


def _s_learner(model: ResponseModel) -> ResponseModel:
    """The curve model's first booster alone: an S-learner on (features, offer_type, bonus)."""
    return dataclasses.replace(model, uplift=None, uplift_init=0.0, curve=None)


@pytest.mark.parametrize("structure", ["curve", "s_learner"])
def test_predictions_never_fall_as_the_bonus_rises_for_any_customer(
    fitted: tuple[ResponseResult, pl.DataFrame], structure: str
) -> None:
    from training.bonus.profit import Option

    result, features = fitted
    model = result.model if structure == "curve" else _s_learner(result.model)
    assert model.structure == structure
    grid = np.linspace(0, 1000, 21)
    for offer_type in model.offer_types[1:]:
        p, _ = model.predict_options(features, [Option(offer_type, b) for b in grid])
        assert (np.diff(p, axis=1) >= -1e-12).all(), offer_type


def test_the_curve_model_predicts_the_no_offer_response_plus_a_saturating_uplift(
    fitted: tuple[ResponseResult, pl.DataFrame],
) -> None:
    model, features = fitted[0].model, fitted[1]
    p0 = model.predict(features, OfferType.NONE, 0.0)
    np.testing.assert_allclose(p0, _s_learner(model).predict(features, OfferType.NONE, 0.0))
    p_msg = model.predict(features, OfferType.CASHBACK, 0.0)
    p_far = model.predict(features, OfferType.CASHBACK, 1e9)
    assert (p_msg > p0).all() and (p_far < 1.0).all()
    # at bonus 0 the message alone gives `message` of the saturated uplift
    assert model.curve is not None
    np.testing.assert_allclose(p_msg - p0, model.curve.message * (p_far - p0), rtol=1e-9)


def test_report_holds_conversion_and_uplift_metrics(
    fitted: tuple[ResponseResult, pl.DataFrame],
) -> None:
    report = fitted[0].report
    assert report["train_rows"] + report["test_rows"] == report["offers"]
    assert 0 <= report["conversion"]["auc"] <= 1
    for key in ("qini_auc", "auuc", "uplift_top_10", "uplift_top_20", "uplift_top_30"):
        assert key in report["uplift"]
    assert report["revenue_ratios"][OfferType.NONE] > 0


def test_options_give_one_column_per_option_and_the_no_offer_response(
    fitted: tuple[ResponseResult, pl.DataFrame],
) -> None:
    from training.bonus.profit import Option

    result, features = fitted
    options = [Option(OfferType.CASHBACK, 0.0), Option(OfferType.CASHBACK, 500.0)]
    p, p_none = result.model.predict_options(features, options)
    assert p.shape == (features.height, 2)
    assert p_none.shape == (features.height,)
    assert (p[:, 1] >= p[:, 0]).all()


def test_history_features_only_see_the_past() -> None:
    offers = pl.DataFrame(
        {
            Col.CUSTOMER: ["a", "a", "a"],
            Col.SENT_AT: [datetime(2025, 1, 1), datetime(2025, 2, 1), datetime(2025, 3, 1)],
            Col.OFFER_TYPE: ["cashback", "none", "cashback"],
            Col.CONVERTED: [True, True, True],
            Col.CONVERTED_AT: [datetime(2025, 1, 3), datetime(2025, 2, 20), datetime(2025, 3, 2)],
        }
    )
    row = offer_history_features(offers, as_of=datetime(2025, 2, 10)).row(0, named=True)
    # the second offer's conversion (20 Feb) is after the cutoff; the third offer too
    assert row["hist_offers"] == 1
    assert row["hist_offers_converted"] == 1
    assert row["hist_held_out"] == 1
    assert row["hist_held_out_converted"] == 0
    assert row["hist_days_since_offer"] == 40


def _copy_without_offers(src: Path, dst: Path, offers: pl.DataFrame | None) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("offers*", "ground_truth"))
    if offers is not None:
        write_parquet_atomic(offers, dst / "offers.parquet")
    return dst


def test_a_dataset_without_offers_says_so(tiny_world: Path, tmp_path: Path) -> None:
    ds = load_dataset(_copy_without_offers(tiny_world, tmp_path / "no_offers", None))
    with pytest.raises(NoOfferHistoryError, match="no offers table"):
        train_response(ds, config=CONFIG, feature_config=FeatureConfig())


def test_an_offer_history_without_control_rows_says_so(tiny_world: Path, tmp_path: Path) -> None:
    offers = pl.read_parquet(tiny_world / "offers.parquet")
    treated_only = offers.filter(pl.col(Col.OFFER_TYPE) != OfferType.NONE)
    ds = load_dataset(_copy_without_offers(tiny_world, tmp_path / "no_control", treated_only))
    with pytest.raises(NoOfferHistoryError, match="no control rows"):
        offer_history(ds)


def _round_trip(model: ResponseModel, tmp_path: Path) -> ResponseModel:
    """Through JSON and an ``.npz`` read without pickle, as the artifact bundle stores it."""
    params, arrays = model.state()
    np.savez(tmp_path / "response.npz", **arrays)
    with np.load(tmp_path / "response.npz", allow_pickle=False) as loaded:
        back = {k: loaded[k] for k in loaded.files}
    return ResponseModel.from_state(json.loads(json.dumps(params)), back)


def _assert_same_predictions(a: ResponseModel, b: ResponseModel, features: pl.DataFrame) -> None:
    from training.bonus.profit import Option

    options = [Option(t, bonus) for t in a.offer_types[1:] for bonus in (0.0, 100.0, 500.0)]
    p_a, none_a = a.predict_options(features, options)
    p_b, none_b = b.predict_options(features, options)
    np.testing.assert_array_equal(p_a, p_b)
    np.testing.assert_array_equal(none_a, none_b)


def test_the_curve_model_round_trips_with_identical_predictions(
    fitted: tuple[ResponseResult, pl.DataFrame], tmp_path: Path
) -> None:
    result, features = fitted
    assert result.model.structure == "curve"
    again = _round_trip(result.model, tmp_path)
    assert again.structure == "curve"
    assert again.curve == result.model.curve
    assert again.ratios == result.model.ratios
    assert again.value_priors == result.model.value_priors
    assert again.feature_config == result.model.feature_config
    _assert_same_predictions(result.model, again, features)


def test_the_s_learner_round_trips_with_identical_predictions(
    fitted: tuple[ResponseResult, pl.DataFrame], tmp_path: Path
) -> None:
    result, features = fitted
    model = _s_learner(result.model)
    again = _round_trip(model, tmp_path)
    assert again.structure == "s_learner"
    _assert_same_predictions(model, again, features)


def test_a_state_of_another_kind_is_refused(fitted: tuple[ResponseResult, pl.DataFrame]) -> None:
    params, arrays = fitted[0].model.state()
    with pytest.raises(ResponseModelError, match="expected kind"):
        ResponseModel.from_state({**params, "version": 99}, arrays)
    with pytest.raises(ResponseModelError, match="'uplift'"):
        ResponseModel.from_state(params, {"booster": arrays["booster"]})


def test_the_bonus_curve_saturates_and_big_spenders_need_more() -> None:
    curve = BonusCurve(half_share=0.1, check_power=0.5, message=0.2, reference_check=1000.0)
    # at the reference check the half-saturation bonus is 10% of it: 100 points
    assert curve.half([1000.0])[0] == pytest.approx(100.0)
    assert curve.half([4000.0])[0] == pytest.approx(200.0)  # 100 * (4000 / 1000) ** 0.5
    assert curve.shape(0.0, [1000.0])[0] == pytest.approx(0.2)  # the message alone
    assert curve.shape(100.0, [1000.0])[0] == pytest.approx(0.2 + 0.8 * (1 - math.exp(-1)))
    assert curve.shape(1e6, [1000.0])[0] == pytest.approx(1.0)
    assert curve.shape(100.0, [4000.0])[0] < curve.shape(100.0, [1000.0])[0]
    # a missing check counts as the reference one, a tiny one as 5% of it
    assert curve.half([math.nan])[0] == pytest.approx(100.0)
    assert curve.half([0.0])[0] == pytest.approx(100.0 * 0.05**0.5)


def test_the_curve_objective_is_the_log_loss_gradient() -> None:
    rng = np.random.default_rng(0)
    n = 50
    p0, shape = rng.uniform(0.05, 0.6, n), rng.uniform(0.1, 1.0, n)
    y = (rng.random(n) < 0.4).astype(np.float64)
    raw = rng.normal(0, 1, n)

    def loss(r: np.ndarray) -> np.ndarray:
        p = p0 + (1 - p0) * expit(r) * shape
        return -(y * np.log(p) + (1 - y) * np.log(1 - p))

    class Labels:
        def get_label(self) -> np.ndarray:
            return y

    grad, hess = _curve_objective(p0, shape)(raw, Labels())  # type: ignore[arg-type]
    h = 1e-6
    numeric = (loss(raw + h) - loss(raw - h)) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-8)
    assert (hess > 0).all()


def test_the_response_boosters_use_their_own_feature_fraction(
    fitted: tuple[ResponseResult, pl.DataFrame],
) -> None:
    model = fitted[0].model
    assert CONFIG.response_feature_fraction == 0.5
    assert CONFIG.lgbm.feature_fraction == 0.9  # the propensity model's stays
    assert model.uplift is not None
    for booster in (model.booster, model.uplift):
        assert float(booster.params["feature_fraction"]) == 0.5
    assert response_lgbm(BonusConfig(response_feature_fraction=1.0)).feature_fraction == 1.0
    with pytest.raises(BonusConfigError, match="response_feature_fraction"):
        BonusConfig(response_feature_fraction=0.0)
