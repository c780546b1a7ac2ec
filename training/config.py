"""Configuration of training, one frozen dataclass per concern, built once at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_EXPERIMENT = "offer-engine"
DEFAULT_MODEL_NAME = "offer-engine"
CHAMPION_ALIAS = "champion"


class ConfigError(Exception):
    """A configuration value is unusable (the message names the setting)."""


@dataclass(frozen=True)
class TrackingConfig:
    """Where MLflow tracks runs and registers bundles.

    ``artifact_location`` is the artifact root given to the experiment when it is created
    (a ``file://`` URI for the embedded store; None lets a remote tracking server decide).
    """

    tracking_uri: str
    registry_uri: str
    experiment: str = DEFAULT_EXPERIMENT
    model_name: str = DEFAULT_MODEL_NAME
    champion_alias: str = CHAMPION_ALIAS
    artifact_location: str | None = None

    def __post_init__(self) -> None:
        for name in ("tracking_uri", "registry_uri", "experiment", "model_name", "champion_alias"):
            if not getattr(self, name).strip():
                raise ConfigError(f"TrackingConfig.{name} must not be empty")

    @classmethod
    def embedded(cls, workdir: Path | str, **overrides: str) -> TrackingConfig:
        """A local store: ``sqlite:///<workdir>/mlflow.db``, artifacts in ``<workdir>/mlruns``."""
        root = Path(workdir).resolve()
        uri = f"sqlite:///{root / 'mlflow.db'}"
        fields: dict[str, str] = {
            "tracking_uri": uri,
            "registry_uri": uri,
            "artifact_location": (root / "mlruns").as_uri(),
        }
        fields.update(overrides)
        return cls(**fields)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, home: Path | str) -> TrackingConfig:
        """Settings from the environment, else the embedded store under ``home``.

        ``home`` is the project's one default location (the command line passes
        ``OFFERS_HOME``, else the repository root; never the current directory).
        Reads ``MLFLOW_TRACKING_URI`` (default: the embedded sqlite store in ``home``),
        ``MLFLOW_REGISTRY_URI`` (default: the tracking URI), ``MLFLOW_EXPERIMENT_NAME``,
        ``OFFERS_MODEL_NAME`` and ``OFFERS_ARTIFACT_LOCATION``. With a ``sqlite:///`` tracking
        URI and no artifact location, artifacts go to ``mlruns/`` beside the database file
        (MLflow's own default would be ``./mlruns`` under the current directory).
        """
        names: dict[str, str] = {}
        if experiment := environ.get("MLFLOW_EXPERIMENT_NAME", "").strip():
            names["experiment"] = experiment
        if model := environ.get("OFFERS_MODEL_NAME", "").strip():
            names["model_name"] = model
        location: str | None = environ.get("OFFERS_ARTIFACT_LOCATION", "").strip() or None
        tracking = environ.get("MLFLOW_TRACKING_URI", "").strip()
        if tracking:
            if location is None and tracking.startswith("sqlite:///"):
                db = Path(tracking.removeprefix("sqlite:///"))
                location = (db.resolve().parent / "mlruns").as_uri()
        else:
            embedded = cls.embedded(home)
            tracking = embedded.tracking_uri
            location = location or embedded.artifact_location
        registry = environ.get("MLFLOW_REGISTRY_URI", "").strip() or tracking
        return cls(
            tracking_uri=tracking, registry_uri=registry, artifact_location=location, **names
        )
