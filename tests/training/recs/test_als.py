"""The CF model shared by cross-sell and up-sell: fitted once when the configurations agree."""

from __future__ import annotations

from training.recs.als import ALSConfig, fit_cf
from training.recs.base import Interactions


def test_fit_cf_shares_an_als_fitted_with_the_same_configuration(world: Interactions) -> None:
    config = ALSConfig(factors=4, iterations=2)
    first = fit_cf(config, world)
    assert first is not None
    assert fit_cf(config, world, first) is first
    other = fit_cf(ALSConfig(factors=8, iterations=2), world, first)
    assert other is not None and other is not first and other.user_factors.shape[1] == 8
    assert fit_cf(None, world, first) is None
