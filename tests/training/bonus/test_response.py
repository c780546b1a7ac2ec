"""The offer response model: monotone in bonus, point-in-time rows, no history -> clear error."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.columns import Col, OfferType
from features.config import FeatureConfig
from features.dataset import load_dataset, write_parquet_atomic
from training.bonus.config import BonusConfig, LgbmParams
from training.bonus.propensity import fixed_feature_config
from training.bonus.response import (
    NoOfferHistoryError,
    ResponseResult,
    offer_history,
    offer_history_features,
    train_response,
)

END = datetime(2025, 1, 1) + timedelta(days=200)
CONFIG = BonusConfig(lgbm=LgbmParams(num_boost_round=40, min_data_in_leaf=10))


@pytest.fixture(scope="module")
def fitted(tiny_world: Path) -> tuple[ResponseResult, pl.DataFrame]:
    ds = load_dataset(tiny_world)
    fc = fixed_feature_config(ds, as_of=END, config=FeatureConfig())
    result = train_response(ds, config=CONFIG, feature_config=fc)
    from training.bonus.response import model_features

    features = model_features(ds, offer_history(ds), as_of=END, config=CONFIG, feature_config=fc)
    return result, features


def test_predictions_never_fall_as_the_bonus_rises_for_any_customer(
    fitted: tuple[ResponseResult, pl.DataFrame],
) -> None:
    result, features = fitted
    grid = np.linspace(0, 1000, 21)
    for offer_type in result.model.offer_types[1:]:
        p = np.column_stack([result.model.predict(features, offer_type, b) for b in grid])
        assert (np.diff(p, axis=1) >= -1e-12).all(), offer_type


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
