"""Choosing the shipped bonus policy by its off-policy value on held-out history."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from features.config import FeatureConfig
from tests.training.bonus.logged_world import history
from training.bonus.config import LEARNT_POLICIES, BonusConfig, EffectParams, LgbmParams
from training.bonus.logged import logged_data
from training.bonus.off_policy import Estimate, PolicyValue
from training.bonus.propensity import FeatureEncoder
from training.bonus.selection import NOBODY, choose, select_policy
from training.bonus.value import Value

CONFIG = BonusConfig(
    lgbm=LgbmParams(num_boost_round=80, min_data_in_leaf=50),
    effects=EffectParams(rounds=80, min_data_in_leaf=100, nuisance_rounds=80),
)


def _select(seed: int = 2) -> object:
    frame = history(12000, seed=seed)
    encoder = FeatureEncoder.fit(frame.select("f", "noise", Value.EXPECTED_CHECK))
    return select_policy(frame, encoder, config=CONFIG, feature_config=FeatureConfig())


def test_a_learnt_policy_that_finds_the_persuadables_ships_over_the_simple_rules() -> None:
    selection = _select()
    report = selection.report  # type: ignore[attr-defined]
    assert set(report["off_policy"]) == {*CONFIG.effects.candidates, NOBODY}
    assert report["shipped"] in LEARNT_POLICIES
    low = report["score_mean_low"]
    assert low[report["shipped"]] > max(low[n] for n in ("best_uniform", "recency_frequency"))
    assert report["assignment_probabilities"].startswith("inferred")
    cal = report["cost_calibration"]
    assert cal["observed_over_predicted"] == pytest.approx(1.0, abs=0.15)
    dr = report["uplift_by_learner"]["dr_learner"]["cashback"]
    assert dr["qini"] > 0.05


def test_the_choice_is_reproducible() -> None:
    a, b = _select(seed=4), _select(seed=4)
    assert json.dumps(a.report) == json.dumps(b.report)  # type: ignore[attr-defined]


def _value(contributions: np.ndarray) -> PolicyValue:
    total = float(contributions.sum())
    se = float(contributions.std() * np.sqrt(contributions.size))
    est = Estimate(total, se)
    return PolicyValue(est, est, Estimate(0, 0), Estimate(0, 0), 1, 1, contributions)


def _logged(n: int) -> object:
    frame = history(n)
    return logged_data(frame, point_value=1.0)


def test_the_best_lower_bound_ships_and_nobody_when_no_estimate_is_above_zero() -> None:
    logged = _logged(2000)
    rng = np.random.default_rng(0)
    steady = np.full(2000, 1.0) + rng.normal(0, 0.1, 2000)
    risky = np.full(2000, 1.2) + rng.normal(0, 30, 2000)
    best, _, score = choose(
        {"dr_learner": [_value(steady)], "best_uniform": [_value(risky)]},
        logged,  # type: ignore[arg-type]
    )
    assert best == "dr_learner" and score["dr_learner"] > score["best_uniform"]
    best, reason, _ = choose(
        {"dr_learner": [_value(steady - 2)], "best_uniform": [_value(steady - 3)]},
        logged,  # type: ignore[arg-type]
    )
    assert best == NOBODY and "nobody" in reason


def test_a_learnt_policy_beaten_by_a_rule_beyond_the_noise_at_any_budget_gives_way() -> None:
    logged = _logged(2000)
    rng = np.random.default_rng(1)
    learnt = [rng.normal(5, 1, 2000), rng.normal(5, 1, 2000)]
    rule = [learnt[0] + 0.5 + rng.normal(0, 0.5, 2000), learnt[1] - 4]
    values = {
        "dr_learner": [_value(c) for c in learnt],
        "recency_frequency": [_value(c) for c in rule],
    }
    best, reason, score = choose(values, logged)  # type: ignore[arg-type]
    assert score["dr_learner"] > score["recency_frequency"]  # the learnt one has the better mean
    assert best == "recency_frequency" and "beat the learnt policy" in reason
    values["recency_frequency"] = [
        _value(learnt[0] + rng.normal(0, 0.5, 2000)),
        _value(learnt[1] - 4),
    ]
    assert choose(values, logged)[0] == "dr_learner"  # a difference within the noise: no


def test_the_candidates_are_configurable() -> None:
    config = dataclasses.replace(
        CONFIG, effects=dataclasses.replace(CONFIG.effects, candidates=("best_uniform",))
    )
    frame = history(3000)
    encoder = FeatureEncoder.fit(frame.select("f", "noise"))
    selection = select_policy(frame, encoder, config=config, feature_config=FeatureConfig())
    assert selection.shipped.name in ("best_uniform", NOBODY)
    assert set(selection.report["off_policy"]) == {"best_uniform", NOBODY}
