"""Baseline scores kept between runs: a retrain on unchanged data does not refit every baseline.

An entry is one model's scores (its ``models`` entry and its ``segments`` entries as
`evaluate_models` returns them) under a key that hashes everything they depend on: the data
fingerprint (content hash of transactions, row counts), the split (cutoff, test window,
validation days), the cut-offs ``ks``, the model's name, and the source code of
`training.recs` and `training.evaluation` (so any change to a model or a metric starts
afresh). Entries are plain JSON files, written atomically; a corrupt one is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_CODE_PACKAGES = ("training.recs", "training.evaluation")


@cache
def code_fingerprint() -> str:
    """A sha256 over the source files of the packages that produce the scores."""
    digest = hashlib.sha256()
    for package in _CODE_PACKAGES:
        root = resources.files(package)
        for entry in sorted(root.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".py"):
                digest.update(f"{package}.{entry.name}\0".encode())
                digest.update(entry.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class EvaluationCache:
    """A folder of cached model scores, scoped to one dataset (its ``fingerprint``)."""

    folder: Path
    fingerprint: Mapping[str, Any]

    def key(self, model: str, split: Mapping[str, Any]) -> str:
        """The entry name of ``model``'s scores on ``split`` (cutoff, windows, ks)."""
        canonical = json.dumps(
            {
                "fingerprint": self.fingerprint,
                "split": split,
                "model": model,
                "code": code_fingerprint(),
            },
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]

    def load(self, model: str, split: Mapping[str, Any]) -> dict[str, Any] | None:
        """The cached scores, or None when there are none (or the entry is unreadable)."""
        file = self.folder / f"{self.key(model, split)}.json"
        if not file.is_file():
            return None
        try:
            entry = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("evaluation cache entry %s unreadable (%s): recomputing", file, exc)
            return None
        return entry if isinstance(entry, dict) and entry.get("model") == model else None

    def save(self, model: str, split: Mapping[str, Any], scores: Mapping[str, Any]) -> Path:
        """Store ``scores`` for ``model`` on ``split``; returns the entry's file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        file = self.folder / f"{self.key(model, split)}.json"
        text = json.dumps({"model": model, **scores}, sort_keys=True, default=str)
        fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, file)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return file
