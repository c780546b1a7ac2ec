"""The artifact bundle: a save/load round trip keeps every array, param and id exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from training.bundle import (
    FORMAT_VERSION,
    MANIFEST,
    BundleError,
    BundleManifest,
    feature_schema,
    load_bundle,
    read_manifest,
    save_bundle,
)


class FakeFactors:
    """A hand-written stand-in for a factor model: ids, factors and a few params."""

    name = "fake_als"

    def __init__(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.params = params
        self.arrays = arrays

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return self.params, self.arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> FakeFactors:
        return cls(params, arrays)


def fake_model() -> FakeFactors:
    rng = np.random.default_rng(3)
    return FakeFactors(
        {
            "factors": 4,
            "regularization": 0.01,
            "alpha": 2.0,
            "tags": ["a", "b"],
            "nested": {"k": 1},
        },
        {
            "user_ids": np.array(["c-1", "Ünal", "顧客-3"]),
            "item_ids": np.array(["café crème", "item/2"]),
            "user_factors": rng.standard_normal((3, 4)).astype(np.float32),
            "item_factors": rng.standard_normal((2, 4)).astype(np.float32),
            "file": np.arange(5, dtype=np.int64),  # a name np.savez's keywords would clash with
        },
    )


def popular() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    return {"window_days": 28}, {"item_ids": np.array(["b", "a"]), "scores": np.array([3.0, 1.0])}


def manifest() -> BundleManifest:
    return BundleManifest(
        data_fingerprint={"transactions": {"rows": 10, "sha256": "ab"}},
        feature_schema=feature_schema({"customer_id": "String", "recency_days": "Int32"}),
        config={"seed": 7, "k": [5, 10, 20]},
        metrics={"fake_als.new.ndcg@10": 0.25, "popular.new.ndcg@10": float("nan")},
    )


def write(tmp_path: Path) -> Path:
    return save_bundle(
        tmp_path / "bundle", manifest(), {"fake_als": fake_model().state(), "popular": popular()}
    )


def test_round_trip_keeps_arrays_params_and_unicode_ids_identical(tmp_path: Path) -> None:
    model = fake_model()
    path = write(tmp_path)

    bundle = load_bundle(path)
    restored = FakeFactors.from_state(*bundle.state("fake_als"))

    assert restored.params == model.params
    assert set(restored.arrays) == set(model.arrays)
    for key, array in model.arrays.items():
        got = restored.arrays[key]
        assert got.dtype == array.dtype, key
        np.testing.assert_array_equal(got, array)
    assert list(restored.arrays["user_ids"]) == ["c-1", "Ünal", "顧客-3"]
    assert bundle.state("popular")[0] == {"window_days": 28}


def test_manifest_records_models_schema_config_and_metrics(tmp_path: Path) -> None:
    got = load_bundle(write(tmp_path)).manifest

    assert got.format_version == FORMAT_VERSION
    assert got.created_at  # filled in at save time
    assert sorted(got.models) == ["fake_als", "popular"]
    assert got.models["fake_als"]["file"] == "fake_als.npz"
    assert got.models["fake_als"]["arrays"]["user_factors"] == {"dtype": "<f4", "shape": [3, 4]}
    assert got.feature_schema == {"customer_id": "String", "recency_days": "Int32"}
    assert got.config == {"seed": 7, "k": [5, 10, 20]}
    # strict JSON: NaN is stored as null
    assert got.metrics == {"fake_als.new.ndcg@10": 0.25, "popular.new.ndcg@10": None}


def test_folder_is_written_without_leftover_temp_folders(tmp_path: Path) -> None:
    write(tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == [
        "fake_als.npz",
        MANIFEST,
        "popular.npz",
    ]


def test_existing_bundle_is_kept_unless_overwrite(tmp_path: Path) -> None:
    path = write(tmp_path)
    with pytest.raises(BundleError, match="already exists"):
        write(tmp_path)

    save_bundle(path, manifest(), {"popular": popular()}, overwrite=True)

    assert sorted(load_bundle(path).models) == ["popular"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path)
    (path / MANIFEST).unlink()

    with pytest.raises(BundleError, match=r"manifest\.json: missing"):
        load_bundle(path)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a bundle folder"):
        load_bundle(tmp_path / "nowhere")


def test_corrupt_manifest_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path)
    (path / MANIFEST).write_text("{not json", encoding="utf-8")

    with pytest.raises(BundleError, match="corrupt manifest"):
        load_bundle(path)


def test_corrupt_array_file_names_the_file_and_model(tmp_path: Path) -> None:
    path = write(tmp_path)
    npz = path / "fake_als.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))

    with pytest.raises(BundleError, match=r"fake_als\.npz: corrupt .*'fake_als'"):
        load_bundle(path)


def test_missing_array_file_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path)
    (path / "popular.npz").unlink()

    with pytest.raises(BundleError, match=r"popular\.npz: missing array file of model 'popular'"):
        read_manifest(path)


def test_other_format_version_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path)
    raw = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    raw["format_version"] = FORMAT_VERSION + 1
    (path / MANIFEST).write_text(json.dumps(raw), encoding="utf-8")

    with pytest.raises(BundleError, match=f"format_version {FORMAT_VERSION + 1}"):
        load_bundle(path)


def test_object_arrays_are_refused_rather_than_pickled(tmp_path: Path) -> None:
    ids = np.array(["a", "b"], dtype=object)

    with pytest.raises(BundleError, match="'ids' has dtype object"):
        save_bundle(tmp_path / "b", manifest(), {"m": ({}, {"ids": ids})})
    assert list(tmp_path.iterdir()) == []


def test_params_that_would_not_round_trip_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="params of model 'm' do not survive JSON"):
        save_bundle(tmp_path / "b", manifest(), {"m": ({"ks": (5, 10)}, {})})
    with pytest.raises(BundleError, match="params of model 'm': not plain JSON"):
        save_bundle(tmp_path / "b", manifest(), {"m": ({"alpha": np.float32(1.0)}, {})})


def test_unknown_manifest_field_is_named(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"unknown manifest field\(s\) \['colour'\]"):
        save_bundle(tmp_path / "b", {"colour": "red"}, {"popular": popular()})


def test_manifest_may_be_given_as_a_dict(tmp_path: Path) -> None:
    path = save_bundle(tmp_path / "b", {"config": {"seed": 1}}, {"popular": popular()})

    assert load_bundle(path).manifest.config == {"seed": 1}
