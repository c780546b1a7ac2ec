"""The artifact bundle: what training writes and the service reads, defined once.

A bundle is a folder::

    manifest.json     format version, created_at, models (params, array file, array specs,
                      sha256), data fingerprint, feature schema, config, metrics summary
    <model>.npz       one per model: its plain arrays (factors, id maps as unicode arrays, ...)

Everything is a plain, inspectable file: JSON for the manifest, ``.npz`` (read with
``allow_pickle=False``) for arrays. A model enters the bundle through its ``state()``
``(params, arrays)`` pair and comes back through ``from_state(params, arrays)``; the model's
``name`` is the key, and it names its file.

The folder is written atomically: into a temp folder beside the target, then renamed, so a
reader never sees half a bundle.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
MANIFEST = "manifest.json"

ModelState = tuple[dict[str, Any], dict[str, np.ndarray]]
"""A model's ``state()``: JSON-able params and plain arrays."""

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class BundleError(Exception):
    """A bundle cannot be written or read as this module defines it."""


@dataclass(frozen=True)
class BundleManifest:
    """What a bundle says about itself besides the model arrays.

    ``models`` is filled by `save_bundle` (name -> params, file, array specs, sha256); pass the
    rest. Non-finite floats in ``metrics``, ``data_fingerprint`` and ``config`` are stored as
    JSON ``null`` (strict JSON has no NaN).
    """

    data_fingerprint: dict[str, Any] = field(default_factory=dict)
    feature_schema: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "manifest") -> BundleManifest:
        """Build from a parsed ``manifest.json`` (or a caller's dict), naming unknown keys."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise BundleError(
                f"{source}: unknown manifest field(s) {unknown}; known: {sorted(known)}"
            )
        for key in ("data_fingerprint", "config", "metrics", "models", "feature_schema"):
            if key in raw and not isinstance(raw[key], Mapping):
                raise BundleError(f"{source}: field '{key}' must be an object, got {raw[key]!r}")
        fields: dict[str, Any] = {
            k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items()
        }
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as written to ``manifest.json``."""
        return {
            "format_version": self.format_version,
            "created_at": self.created_at,
            "models": self.models,
            "data_fingerprint": self.data_fingerprint,
            "feature_schema": self.feature_schema,
            "config": self.config,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class Bundle:
    """A bundle read back: its folder, manifest and each model's ``(params, arrays)``."""

    path: Path
    manifest: BundleManifest
    models: dict[str, ModelState]

    def state(self, name: str) -> ModelState:
        """The ``(params, arrays)`` of model ``name``, for ``ModelClass.from_state(*...)``."""
        try:
            return self.models[name]
        except KeyError:
            raise BundleError(
                f"{self.path}: no model '{name}' in bundle (has {sorted(self.models)})"
            ) from None


def feature_schema(schema: Mapping[str, Any]) -> dict[str, str]:
    """Column name -> dtype text, e.g. from ``lf.collect_schema()``, for the manifest."""
    return {str(name): str(dtype) for name, dtype in schema.items()}


def save_bundle(
    path: Path | str,
    manifest: BundleManifest | Mapping[str, Any],
    models: Mapping[str, ModelState],
    *,
    overwrite: bool = False,
) -> Path:
    """Write a bundle folder at ``path`` atomically and return ``path``.

    ``models`` maps a model's name to its ``state()``. The manifest's ``models`` section and
    ``created_at`` (when empty) are filled in here. With ``overwrite`` an existing bundle is
    swapped out (renamed aside, the new one renamed in, the old one removed).
    """
    target = Path(path)
    base = manifest if isinstance(manifest, BundleManifest) else BundleManifest.from_dict(manifest)
    if base.format_version != FORMAT_VERSION:
        raise BundleError(
            f"{target}: cannot write format_version {base.format_version}; "
            f"this code writes {FORMAT_VERSION}"
        )
    if not models:
        raise BundleError(f"{target}: a bundle needs at least one model")
    if target.exists() and not overwrite:
        raise BundleError(f"{target}: already exists (pass overwrite=True to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        entries = {
            name: _write_model(tmp, name, params, arrays)
            for name, (params, arrays) in models.items()
        }
        created = base.created_at or datetime.now(UTC).isoformat(timespec="seconds")
        doc = BundleManifest(
            data_fingerprint=json_safe(base.data_fingerprint),
            feature_schema=dict(base.feature_schema),
            config=json_safe(base.config),
            metrics=json_safe(base.metrics),
            created_at=created,
            models=entries,
        ).to_dict()
        text = _dumps(doc, what=f"{target}: manifest")
        (tmp / MANIFEST).write_text(text, encoding="utf-8")
        _swap_in(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def read_manifest(path: Path | str) -> BundleManifest:
    """Read and check ``manifest.json`` of the bundle at ``path`` (format version, model files)."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"{root}: not a bundle folder (missing)")
    file = root / MANIFEST
    if not file.is_file():
        raise BundleError(f"{file}: missing; {root} is not a bundle")
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{file}: corrupt manifest ({exc})") from exc
    if not isinstance(raw, dict):
        raise BundleError(f"{file}: corrupt manifest (not a JSON object)")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{file}: bundle format_version {version!r}, this code reads {FORMAT_VERSION}; "
            "retrain or use a matching release"
        )
    manifest = BundleManifest.from_dict(raw, source=str(file))
    for name, entry in manifest.models.items():
        for key in ("params", "file", "arrays", "sha256"):
            if key not in entry:
                raise BundleError(f"{file}: model '{name}' lacks '{key}'")
        if not (root / entry["file"]).is_file():
            raise BundleError(f"{root / entry['file']}: missing array file of model '{name}'")
    return manifest


def load_bundle(path: Path | str) -> Bundle:
    """Read a bundle folder; a missing or corrupt file or another format version is a
    `BundleError` naming the file."""
    root = Path(path)
    manifest = read_manifest(root)
    models: dict[str, ModelState] = {}
    for name, entry in manifest.models.items():
        models[name] = (entry["params"], _read_arrays(root / entry["file"], name, entry))
    return Bundle(path=root, manifest=manifest, models=models)


def bundle_checksum(path: Path | str) -> str:
    """A sha256 over every file of the bundle folder (relative paths and contents).

    Equal checksums mean byte-identical bundles; the registry tags each logged bundle with it
    and checks a downloaded or cached copy against the tag.
    """
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"{root}: not a bundle folder (missing)")
    digest = hashlib.sha256()
    for file in sorted(f for f in root.rglob("*") if f.is_file()):
        digest.update(f"{file.relative_to(root).as_posix()}\0{_sha256(file)}\n".encode())
    return digest.hexdigest()


def _write_model(
    folder: Path, name: str, params: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    if not _NAME.match(name):
        raise BundleError(f"model name {name!r}: use letters, digits, '_', '.', '-' only")
    text = _dumps(params, what=f"params of model '{name}'")
    if json.loads(text) != params:
        raise BundleError(
            f"params of model '{name}' do not survive JSON unchanged "
            "(tuples, numpy scalars or non-string keys?); use plain lists, str, int, float, bool"
        )
    specs: dict[str, dict[str, Any]] = {}
    for key, value in arrays.items():
        if not _NAME.match(key):
            raise BundleError(f"model '{name}': array name {key!r} must be letters, digits, '_.-'")
        if not isinstance(value, np.ndarray):
            raise BundleError(
                f"model '{name}': array '{key}' is {type(value).__name__}, not ndarray"
            )
        if value.dtype.hasobject:
            raise BundleError(
                f"model '{name}': array '{key}' has dtype object; store ids as a unicode "
                "array (e.g. .astype(str)), bundles never pickle"
            )
        specs[key] = {"dtype": value.dtype.str, "shape": list(value.shape)}
    file = folder / f"{name}.npz"
    # The .npz layout np.savez writes (one .npy per array in a zip), without its keyword
    # clash on array names such as "file", and never pickling.
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in arrays.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, value, allow_pickle=False)
    return {
        "params": json.loads(text),
        "file": file.name,
        "arrays": specs,
        "sha256": _sha256(file),
    }


def _read_arrays(file: Path, name: str, entry: Mapping[str, Any]) -> dict[str, np.ndarray]:
    if _sha256(file) != entry["sha256"]:
        raise BundleError(
            f"{file}: corrupt (checksum differs from the manifest) for model '{name}'"
        )
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{file}: corrupt array file of model '{name}' ({exc})") from exc
    specs: Mapping[str, Mapping[str, Any]] = entry["arrays"]
    if set(arrays) != set(specs):
        raise BundleError(
            f"{file}: arrays {sorted(arrays)} differ from the manifest's {sorted(specs)}"
        )
    for key, spec in specs.items():
        got = arrays[key]
        if got.dtype.str != spec["dtype"] or list(got.shape) != list(spec["shape"]):
            raise BundleError(
                f"{file}: array '{key}' is {got.dtype.str}{list(got.shape)}, "
                f"manifest says {spec['dtype']}{spec['shape']}"
            )
    return arrays


def _swap_in(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.replace(tmp, target)
        return
    if not (target / MANIFEST).is_file():
        raise BundleError(f"{target}: exists and is not a bundle; refusing to replace it")
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rmdir(old)
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old)


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _dumps(value: Any, *, what: str) -> str:
    try:
        return json.dumps(value, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{what}: not plain JSON ({exc})") from exc


def json_safe(value: Any) -> Any:
    """A copy fit for strict JSON: non-finite floats become None, numpy scalars plain Python,
    mappings and sequences are copied recursively."""
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
