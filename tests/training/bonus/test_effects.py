"""Effect models: the DR-learner ranks by uplift and can predict a negative effect."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training.bonus.logged_world import ARMS, history
from training.bonus.config import EffectParams, LgbmParams
from training.bonus.effects import (
    customer_folds,
    fit_dr_learner,
    fit_s_learner,
    fit_segment_table,
    pseudo_outcomes,
)
from training.bonus.logged import logged_data
from training.bonus.propensity import FeatureEncoder

LGBM = LgbmParams(num_boost_round=100, min_data_in_leaf=50)
EFFECTS = EffectParams(rounds=80, min_data_in_leaf=100, nuisance_rounds=80)


def _fitted() -> tuple[object, np.ndarray]:
    frame = history(12000, seed=2)
    encoder = FeatureEncoder.fit(frame.select("f", "noise"))
    logged = logged_data(frame, point_value=1.0)
    x = encoder.transform(frame)
    model = fit_dr_learner(encoder, x, logged, EFFECTS, LGBM)
    return model, frame.get_column("f").to_numpy()


def test_the_dr_learner_finds_the_persuadables_and_the_customers_put_off() -> None:
    model, _ = _fitted()
    frame = history(2000, seed=9)
    effects = model.effects(frame, list(ARMS))  # type: ignore[attr-defined]
    g = frame.get_column("f").to_numpy()
    persuaded = effects.uplift[g == 1].mean(axis=0)
    put_off = effects.uplift[g == 0].mean(axis=0)
    assert persuaded[0] == pytest.approx(0.20, abs=0.05)
    assert persuaded[1] == pytest.approx(0.30, abs=0.06)
    assert put_off.max() < -0.07  # a negative effect, which the curve model cannot express
    assert (effects.uplift[:, 1] >= effects.uplift[:, 0] - 1e-9).all()  # monotone in the bonus


def test_redemption_comes_from_the_calibrated_nuisance_not_the_effect() -> None:
    model, _ = _fitted()
    frame = history(2000, seed=9)
    effects = model.effects(frame, list(ARMS))  # type: ignore[attr-defined]
    g = frame.get_column("f").to_numpy()
    assert effects.p_redeem[g == 1, 1].mean() == pytest.approx(0.60, abs=0.05)
    assert effects.p_redeem[g == 0, 1].mean() == pytest.approx(0.15, abs=0.05)


def test_customer_folds_keep_a_customers_rows_together_and_are_deterministic() -> None:
    frame = history(1000)
    ids = frame.get_column("customer_id")
    a = customer_folds(ids, 2, seed=1)
    assert (a == customer_folds(ids.shuffle(seed=4).sort(), 2, seed=1)).all()
    by_customer = {}
    for c, fold in zip(ids.to_list(), a.tolist(), strict=True):
        assert by_customer.setdefault(c, fold) == fold
    assert 0.4 < a.mean() < 0.6


def test_a_segment_table_without_the_feature_sees_only_the_average_effect() -> None:
    frame = history(12000, seed=2)
    encoder = FeatureEncoder.fit(frame.select("f", "noise"))
    logged = logged_data(frame, point_value=1.0)
    x = encoder.transform(frame)
    pseudo = pseudo_outcomes(encoder, x, logged, LGBM, rounds=80, folds=2, seed=1)
    table = fit_segment_table(
        "best_uniform",
        "everyone",
        frame,
        logged,
        pseudo,
        margin=np.full(logged.n, 400.0),
        point_value=1.0,
        single_arm=True,
    )
    effects = table.effects(frame[:10], list(ARMS))
    # half persuadable (+0.20 / +0.30), half put off (-0.15): average +0.025 / +0.075; at a
    # margin of 400 the small bonus earns more (-6 vs -35 per contact), so it is the one arm
    assert table.allowed(list(ARMS)).tolist() == [True, False]
    assert effects.uplift[:, 0] == pytest.approx(np.full(10, 0.025), abs=0.03)
    assert (effects.uplift[:, 1] == 0).all()
    s = fit_s_learner(encoder, x, logged, LGBM, rounds=80)
    assert s.effects(frame[:5], list(ARMS)).uplift.shape == (5, 2)
