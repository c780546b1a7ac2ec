"""Tracking and registry against a real (temporary, embedded sqlite) MLflow store.

One store is shared by the module (MLflow's first database migration takes a second or
two); each test registers under its own model name, so tests do not see each other's versions.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow import MlflowClient

from training.bundle import BundleManifest, bundle_checksum, load_bundle, save_bundle
from training.config import ConfigError, TrackingConfig
from training.registry import (
    CHECKSUM_TAG,
    EVAL_KEY_TAG,
    PROMOTION_TAG,
    RUN_ID_TAG,
    RegistryError,
    champion_version,
    download_version,
    log_training_run,
    metric_key,
    promote,
    register_bundle,
    set_alias,
    version_tags,
)

FINGERPRINT = {"transactions": {"rows": 12, "sha256": "0f" * 32}}
SPLIT = {"cutoff": "2024-03-01T00:00:00", "test_days": 30}
METRIC = "fake.new.ndcg@10"
_names = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> TrackingConfig:
    return TrackingConfig.embedded(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture
def cfg(store: TrackingConfig) -> TrackingConfig:
    """The shared store under a model name of the test's own."""
    return dataclasses.replace(store, model_name=f"offers-test-{next(_names)}")


def fake_state(scale: float) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    return (
        {"factors": 2, "scale": scale},
        {
            "item_ids": np.array(["café", "ürün", "商品"]),
            "item_factors": np.arange(6, dtype=np.float32).reshape(3, 2) * scale,
        },
    )


def make_bundle(root: Path, scale: float = 1.0) -> Path:
    return save_bundle(
        root / f"bundle-{next(_names)}",
        BundleManifest(data_fingerprint=FINGERPRINT, config={"seed": 7}),
        {"fake": fake_state(scale)},
    )


def train(
    cfg: TrackingConfig,
    tmp_path: Path,
    ndcg: float,
    *,
    split: dict[str, Any] = SPLIT,
    bundle: Path | None = None,
) -> int:
    """Log a run with ``ndcg`` as its metric and register it; returns the version."""
    run = log_training_run(
        cfg,
        params={"als": {"factors": 2, "alpha": 1.5}, "ks": [5, 10]},
        metrics={METRIC: ndcg, "fake.new.recall@10": 0.5},
        fingerprint=FINGERPRINT,
        split=split,
        bundle_dir=bundle or make_bundle(tmp_path, ndcg),
        tags={"purpose": "test"},
    )
    return register_bundle(cfg, run.run_id)


def test_run_is_logged_with_params_metrics_and_artifacts(
    cfg: TrackingConfig, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    report.write_text("<html>report</html>", encoding="utf-8")

    run = log_training_run(
        cfg,
        params={"als": {"factors": 2, "alpha": 1.5}, "ks": [5, 10], "note": "x"},
        metrics={METRIC: 0.25},
        fingerprint=FINGERPRINT,
        split=SPLIT,
        bundle_dir=make_bundle(tmp_path),
        report_files=[report],
        tags={"purpose": "test"},
    )

    client = MlflowClient(cfg.tracking_uri)
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"als.factors": "2", "als.alpha": "1.5", "ks": "[5, 10]", "note": "x"}
    assert got.data.metrics == {"fake.new.ndcg_at_10": 0.25}
    assert got.data.tags["purpose"] == "test"
    assert got.data.tags[EVAL_KEY_TAG] == run.eval_key
    top = {a.path for a in client.list_artifacts(run.run_id)}
    assert top == {"bundle", "report", "fingerprint.json", "split.json"}
    bundle_files = {a.path for a in client.list_artifacts(run.run_id, "bundle")}
    assert bundle_files == {"bundle/manifest.json", "bundle/fake.npz"}
    assert [a.path for a in client.list_artifacts(run.run_id, "report")] == ["report/report.html"]


def test_experiment_artifacts_live_under_the_workdir(store: TrackingConfig) -> None:
    exp = MlflowClient(store.tracking_uri).get_experiment_by_name(store.experiment)

    assert exp is not None
    assert exp.artifact_location == store.artifact_location
    assert str(exp.artifact_location).startswith("file://")
    assert str(exp.artifact_location).endswith("/mlruns")


def test_a_folder_that_is_not_a_bundle_is_not_logged(cfg: TrackingConfig, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"cannot log run: .*not a bundle folder"):
        log_training_run(cfg, params={}, metrics={}, fingerprint={}, bundle_dir=tmp_path / "none")


def test_registering_numbers_versions_from_one(cfg: TrackingConfig, tmp_path: Path) -> None:
    assert train(cfg, tmp_path, 0.1) == 1
    assert train(cfg, tmp_path, 0.2) == 2
    assert version_tags(cfg, 2)["metric.fake.new.ndcg_at_10"] == "0.2"


def test_no_champion_until_one_is_set(cfg: TrackingConfig, tmp_path: Path) -> None:
    assert champion_version(cfg) is None
    version = train(cfg, tmp_path, 0.1)

    set_alias(cfg, version)

    assert champion_version(cfg) == version


def test_first_promotion_needs_no_comparison(cfg: TrackingConfig, tmp_path: Path) -> None:
    version = train(cfg, tmp_path, 0.1)

    decision = promote(cfg, version, metric=METRIC)

    assert decision.promoted
    assert decision.champion is None
    assert "no champion yet" in decision.reason
    assert champion_version(cfg) == version


def test_promote_refuses_a_worse_candidate_and_says_why(
    cfg: TrackingConfig, tmp_path: Path
) -> None:
    champion = train(cfg, tmp_path, 0.30)
    set_alias(cfg, champion)
    worse = train(cfg, tmp_path, 0.20)

    decision = promote(cfg, worse, metric=METRIC)

    assert not decision.promoted
    assert (decision.candidate_value, decision.champion_value) == (0.20, 0.30)
    assert "worse" in decision.reason
    assert champion_version(cfg) == champion
    assert decision.reason in version_tags(cfg, worse)[PROMOTION_TAG]


def test_promote_accepts_a_better_or_equal_candidate(cfg: TrackingConfig, tmp_path: Path) -> None:
    set_alias(cfg, train(cfg, tmp_path, 0.30))
    equal = train(cfg, tmp_path, 0.30)
    assert promote(cfg, equal, metric=METRIC).promoted
    better = train(cfg, tmp_path, 0.35)

    decision = promote(cfg, better, metric="fake.new.ndcg_at_10")  # either spelling

    assert decision.promoted
    assert decision.champion == equal
    assert champion_version(cfg) == better
    assert "promoted" in version_tags(cfg, better)[PROMOTION_TAG]


def test_promote_refuses_another_split_unless_forced(cfg: TrackingConfig, tmp_path: Path) -> None:
    champion = train(cfg, tmp_path, 0.30)
    set_alias(cfg, champion)
    other = train(cfg, tmp_path, 0.90, split={**SPLIT, "test_days": 14})

    refused = promote(cfg, other, metric=METRIC)
    assert not refused.promoted
    assert "other data or split" in refused.reason
    assert champion_version(cfg) == champion

    forced = promote(cfg, other, metric=METRIC, force=True)
    assert forced.promoted and forced.forced
    assert champion_version(cfg) == other


def test_force_promotes_a_worse_candidate(cfg: TrackingConfig, tmp_path: Path) -> None:
    set_alias(cfg, train(cfg, tmp_path, 0.30))
    worse = train(cfg, tmp_path, 0.10)

    assert promote(cfg, worse, metric=METRIC, force=True).promoted
    assert champion_version(cfg) == worse


def test_unknown_metric_is_an_error_listing_the_known_ones(
    cfg: TrackingConfig, tmp_path: Path
) -> None:
    version = train(cfg, tmp_path, 0.1)

    with pytest.raises(RegistryError, match=r"no metric 'map_at_10' \(has: fake.new.ndcg_at_10"):
        promote(cfg, version, metric="map@10")


def test_unknown_version_is_an_error(cfg: TrackingConfig, tmp_path: Path) -> None:
    train(cfg, tmp_path, 0.1)

    with pytest.raises(RegistryError, match="has no version 9"):
        promote(cfg, 9, metric=METRIC)
    with pytest.raises(RegistryError, match="has no alias 'champion'"):
        download_version(cfg, "champion", dest_dir=tmp_path / "cache")


def test_downloaded_version_loads_identically(cfg: TrackingConfig, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, 0.5)
    version = train(cfg, tmp_path, 0.5, bundle=bundle)
    set_alias(cfg, version)
    original = load_bundle(bundle)

    by_alias = download_version(cfg, "champion", dest_dir=tmp_path / "cache")
    by_number = download_version(cfg, version, dest_dir=tmp_path / "cache")

    run_id = version_tags(cfg, version)[RUN_ID_TAG]
    checksum = version_tags(cfg, version)[CHECKSUM_TAG]
    assert checksum == bundle_checksum(bundle)
    want = tmp_path / "cache" / f"{cfg.model_name}-v{version}-{run_id}-{checksum[:16]}"
    assert by_alias == by_number == want
    got = load_bundle(by_alias)
    assert got.manifest == original.manifest
    params, arrays = got.state("fake")
    want_params, want_arrays = original.state("fake")
    assert params == want_params
    assert arrays.keys() == want_arrays.keys()
    for key in arrays:
        assert arrays[key].dtype == want_arrays[key].dtype
        np.testing.assert_array_equal(arrays[key], want_arrays[key])
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [by_alias.name]


def test_another_stores_version_1_is_not_taken_from_the_cache(tmp_path: Path) -> None:
    """Regression: the cache was keyed by version number, so store B's v1 came from store A's."""
    cache = tmp_path / "cache"
    first = TrackingConfig.embedded(tmp_path / "store-a")
    second = TrackingConfig.embedded(tmp_path / "store-b")
    assert train(first, tmp_path, 0.1) == train(second, tmp_path, 0.9) == 1

    from_first = download_version(first, 1, dest_dir=cache)
    from_second = download_version(second, 1, dest_dir=cache)

    assert from_first != from_second
    assert load_bundle(from_first).state("fake")[0]["scale"] == 0.1
    assert load_bundle(from_second).state("fake")[0]["scale"] == 0.9


def test_a_changed_cached_bundle_is_downloaded_again(cfg: TrackingConfig, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, 0.5)
    version = train(cfg, tmp_path, 0.5, bundle=bundle)
    cached = download_version(cfg, version, dest_dir=tmp_path / "cache")
    (cached / "fake.npz").write_bytes(b"not the logged arrays")

    again = download_version(cfg, version, dest_dir=tmp_path / "cache")

    assert again == cached
    assert bundle_checksum(again) == bundle_checksum(bundle)
    load_bundle(again)  # the arrays' own checksums hold again


def test_a_version_without_a_checksum_is_never_reused(cfg: TrackingConfig, tmp_path: Path) -> None:
    version = train(cfg, tmp_path, 0.5)
    MlflowClient(cfg.tracking_uri).delete_model_version_tag(
        cfg.model_name, str(version), CHECKSUM_TAG
    )
    cached = download_version(cfg, version, dest_dir=tmp_path / "cache")
    (cached / "stale").write_text("left by an earlier download", encoding="utf-8")

    again = download_version(cfg, version, dest_dir=tmp_path / "cache")

    assert again.name.endswith("-unverified")
    assert not (again / "stale").exists()


def test_metric_keys_are_mlflow_safe() -> None:
    assert metric_key("als.new.ndcg@10") == "als.new.ndcg_at_10"
    assert metric_key("segment:vip/als ndcg@5") == "segment_vip/als ndcg_at_5"


def test_config_defaults_to_an_embedded_store_under_home(tmp_path: Path) -> None:
    cfg = TrackingConfig.from_env({}, home=tmp_path)

    assert cfg.tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert cfg.registry_uri == cfg.tracking_uri
    assert cfg.artifact_location == (tmp_path.resolve() / "mlruns").as_uri()
    assert cfg.champion_alias == "champion"


def test_config_takes_the_environment_first(tmp_path: Path) -> None:
    cfg = TrackingConfig.from_env(
        {
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "MLFLOW_EXPERIMENT_NAME": "exp",
            "OFFERS_MODEL_NAME": "recs",
        },
        home=tmp_path,
    )

    assert (cfg.tracking_uri, cfg.registry_uri) == ("http://mlflow:5000", "http://mlflow:5000")
    assert (cfg.experiment, cfg.model_name) == ("exp", "recs")
    assert cfg.artifact_location is None  # the server decides


def test_config_puts_artifacts_beside_an_sqlite_database(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "m.db"

    cfg = TrackingConfig.from_env({"MLFLOW_TRACKING_URI": f"sqlite:///{db}"}, home=tmp_path)

    assert cfg.artifact_location == (tmp_path / "elsewhere" / "mlruns").as_uri()


def test_config_rejects_empty_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model_name"):
        TrackingConfig.embedded(tmp_path, model_name=" ")
