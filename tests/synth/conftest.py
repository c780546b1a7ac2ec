"""Tiny generated worlds shared by the synth tests (generated once per session)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from synth.config import WorldConfig
from synth.world import generate

TINY = WorldConfig(customers=300, items=60, days=120, seed=11)
# big enough for sampling-error checks of the offer history, still about a second to build
MEDIUM = WorldConfig(customers=6000, items=200, days=180, seed=5)
# the archetypes response family: TINY's customers, and a world with a few thousand offers
ARCH_TINY = dataclasses.replace(TINY, response_family="archetypes")
ARCH = WorldConfig(customers=5000, items=120, days=300, seed=5, response_family="archetypes")


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-customer, 60-item, 120-day world."""
    out = tmp_path_factory.mktemp("tiny_world")
    generate(TINY, out)
    return out


@pytest.fixture(scope="session")
def medium_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6,000-customer world with a few thousand offers."""
    out = tmp_path_factory.mktemp("medium_world")
    generate(MEDIUM, out)
    return out


@pytest.fixture(scope="session")
def arch_tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TINY under the archetypes response family."""
    out = tmp_path_factory.mktemp("arch_tiny_world")
    generate(ARCH_TINY, out)
    return out


@pytest.fixture(scope="session")
def arch_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5,000-customer archetypes world with a few thousand randomised offers."""
    out = tmp_path_factory.mktemp("arch_world")
    generate(ARCH, out)
    return out
