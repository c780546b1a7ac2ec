"""A tiny synthetic world shared by the bonus tests (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from synth.config import WorldConfig
from synth.world import generate


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 customers over 200 days with a randomised offer history and ground truth."""
    out = tmp_path_factory.mktemp("bonus_world")
    generate(WorldConfig(customers=400, items=60, days=200, seed=3, campaigns=5), out)
    return out
