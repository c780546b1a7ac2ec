"""The one place the command line reads the environment for MLflow settings.

Where MLflow keeps runs and models: ``MLFLOW_TRACKING_URI`` when set (a server, or any
``sqlite:///`` file), else the embedded store in the project's home folder,
``<home>/mlflow.db`` with artifacts in ``<home>/mlruns/``. The home is ``OFFERS_HOME`` when
set, else the root of the checkout the `offers` package runs from (the folder with its
``pyproject.toml``), else ``~/.offer-engine`` for an install outside a checkout. It never
depends on the directory a command is run from.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.config import TrackingConfig

HOME_VAR = "OFFERS_HOME"
_CHECKOUT = Path(__file__).resolve().parents[1]  # the folder holding offers/, features/, ...

log = logging.getLogger("offers")


def quiet_third_party() -> None:
    """No per-file download progress bars from MLflow in our logs (a user may override)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def offers_home(environ: Mapping[str, str] | None = None) -> Path:
    """The project's home folder: ``OFFERS_HOME``, else the checkout root, else ~/.offer-engine."""
    env = os.environ if environ is None else environ
    if text := env.get(HOME_VAR, "").strip():
        return Path(text).expanduser().resolve()
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "offers").is_dir():
        return _CHECKOUT
    return Path.home() / ".offer-engine"


def evaluation_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where baseline scores are cached between runs: ``<home>/cache/evaluation``."""
    return offers_home(environ) / "cache" / "evaluation"


def tracking_config(environ: Mapping[str, str] | None = None) -> TrackingConfig:
    """MLflow settings: MLFLOW_TRACKING_URI etc., else the embedded store in `offers_home`."""
    from training.config import TrackingConfig

    env = os.environ if environ is None else environ
    home = offers_home(env)
    cfg = TrackingConfig.from_env(env, home=home)
    if not env.get("MLFLOW_TRACKING_URI", "").strip():
        home.mkdir(parents=True, exist_ok=True)  # sqlite does not create the folder
    log.info("MLflow store %s (artifacts %s)", cfg.tracking_uri, cfg.artifact_location or "-")
    return cfg
