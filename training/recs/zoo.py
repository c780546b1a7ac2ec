"""Every model kind by name, and saving / loading a model as ``.json`` + ``.npz`` (no pickle)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from features.dataset import atomic_path
from training.recs.als import ALS
from training.recs.base import Recommender, RecsError
from training.recs.crosssell import CrossSell
from training.recs.ease import EASE
from training.recs.filters import FilteredRecommender
from training.recs.hybrid import Hybrid
from training.recs.itemknn import ItemKNN
from training.recs.popularity import CategoryPopularity, OwnHistory, Popularity
from training.recs.upsell import UpSell

MODEL_KINDS: dict[str, Any] = {
    cls.kind: cls
    for cls in (
        Popularity,
        CategoryPopularity,
        OwnHistory,
        ALS,
        ItemKNN,
        EASE,
        Hybrid,
        CrossSell,
        UpSell,
        FilteredRecommender,
    )
}


def model_from_state(params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Recommender:
    """The fitted model described by ``params['kind']`` and its arrays."""
    kind = params.get("kind")
    if kind not in MODEL_KINDS:
        raise RecsError(f"model state kind {kind!r} is unknown (known: {sorted(MODEL_KINDS)})")
    model: Recommender = MODEL_KINDS[kind].from_state(params, arrays)
    return model


def save_model(model: Recommender, folder: Path | str, stem: str = "model") -> tuple[Path, Path]:
    """Write ``stem.json`` (params) and ``stem.npz`` (arrays) into ``folder``, atomically."""
    folder = Path(folder)
    params, arrays = model.state()
    json_path, npz_path = folder / f"{stem}.json", folder / f"{stem}.npz"
    with atomic_path(npz_path) as tmp, tmp.open("wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(params, indent=1, sort_keys=True))
    return json_path, npz_path


def load_model(folder: Path | str, stem: str = "model") -> Recommender:
    """Read a model written by `save_model` (arrays loaded without pickle)."""
    folder = Path(folder)
    json_path, npz_path = folder / f"{stem}.json", folder / f"{stem}.npz"
    for p in (json_path, npz_path):
        if not p.is_file():
            raise RecsError(f"{p}: model file not found")
    params = json.loads(json_path.read_text())
    with np.load(npz_path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return model_from_state(params, arrays)
