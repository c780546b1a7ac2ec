"""Resolve the MLflow ``champion`` alias and load its bundle; notice when it moves.

The service never fits a model: it asks the registry which version is champion, downloads
that version's bundle (plain files) and builds a `BundleEngine` from it. `ChampionLoader.check`
is what the hot-swap poller calls: a new engine when the alias moved, else None.
"""

from __future__ import annotations

import logging
from pathlib import Path

from service.bundle_engine import BundleEngine, EngineConfig
from service.engine import EngineUnavailableError
from training.config import TrackingConfig
from training.registry import champion_version, download_version

log = logging.getLogger(__name__)


class ChampionLoader:
    """Loads the registry's champion and reloads when the alias points elsewhere."""

    def __init__(
        self, tracking: TrackingConfig, cache_dir: Path, config: EngineConfig | None = None
    ) -> None:
        self.tracking = tracking
        self.cache_dir = cache_dir
        self.config = config
        self.loaded_version: int | None = None

    def load(self) -> BundleEngine:
        """The champion's engine; `EngineUnavailableError` when no version is champion."""
        version = champion_version(self.tracking)
        if version is None:
            raise EngineUnavailableError(
                f"no model version of {self.tracking.model_name!r} has the alias "
                f"{self.tracking.champion_alias!r}: run `offers train --promote` first"
            )
        return self._load(version)

    def check(self) -> BundleEngine | None:
        """A new engine if the champion alias moved since the last load, else None."""
        version = champion_version(self.tracking)
        if version is None or version == self.loaded_version:
            return None
        log.info("champion moved from v%s to v%s: loading", self.loaded_version, version)
        return self._load(version)

    def _load(self, version: int) -> BundleEngine:
        path = download_version(self.tracking, version, dest_dir=self.cache_dir)
        engine = BundleEngine.from_bundle(path, version=str(version), config=self.config)
        self.loaded_version = version
        return engine
