"""The one place the command line reads the environment for MLflow settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.config import TrackingConfig


def quiet_third_party() -> None:
    """No per-file download progress bars from MLflow in our logs (a user may override)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def tracking_config() -> TrackingConfig:
    """MLflow settings: MLFLOW_TRACKING_URI etc., else the embedded store in the working dir."""
    from training.config import TrackingConfig

    return TrackingConfig.from_env(os.environ, workdir=Path.cwd())
