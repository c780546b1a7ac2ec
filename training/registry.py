"""Tracking and registry: the only module that talks to MLflow.

A training run logs its params, metrics, data fingerprint, the bundle folder (as run
artifacts under ``bundle/``) and the report files (under ``report/``). Registering the run
creates a model version whose source is ``runs:/<run_id>/bundle``; the version carries copies
of the run's metrics as ``metric.<name>`` tags and the evaluation key (a hash of the data
fingerprint and the split) as the ``offers.eval_key`` tag, so promotion compares versions
without opening runs. Each run and version also carries the bundle's content checksum
(``offers.bundle_sha256``): `download_version` caches a version's bundle under its run id and
that checksum, never under the version number alone, and checks the copy at every load. The
champion is the version behind the ``champion`` alias; `promote`
moves it only to a candidate that is not worse on the chosen metric over the same evaluation
data, and records why on the candidate (tag ``offers.promotion``).

Metric names are made MLflow-safe by `metric_key` (``als.new.ndcg@10`` becomes
``als.new.ndcg_at_10``); callers may use either spelling.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from training.bundle import BundleError, bundle_checksum, read_manifest
from training.config import TrackingConfig

BUNDLE_ARTIFACT = "bundle"
REPORT_ARTIFACT = "report"
METRIC_TAG = "metric."
EVAL_KEY_TAG = "offers.eval_key"
PROMOTION_TAG = "offers.promotion"
RUN_ID_TAG = "offers.run_id"
CHECKSUM_TAG = "offers.bundle_sha256"
REPORT_KIND_TAG = "offers.report"

_BATCH_PARAMS = 100  # MLflow's per-request limits
_BATCH_METRICS = 1000
_T = TypeVar("_T")
_BAD_KEY_CHARS = re.compile(r"[^\w./\- ]")

log = logging.getLogger(__name__)


class RegistryError(Exception):
    """Tracking or registry state does not allow the operation (the message says why)."""


@dataclass(frozen=True)
class RunInfo:
    """A logged training run."""

    run_id: str
    experiment_id: str
    artifact_uri: str
    eval_key: str


@dataclass(frozen=True)
class PromotionDecision:
    """What `promote` decided and why (``reason`` is also tagged on the candidate version)."""

    promoted: bool
    candidate: int
    champion: int | None  # the champion before the decision
    metric: str
    candidate_value: float | None
    champion_value: float | None
    forced: bool
    reason: str


def metric_key(name: str) -> str:
    """The MLflow-safe spelling of a metric name: ``@`` -> ``_at_``, other odd chars -> ``_``."""
    return _BAD_KEY_CHARS.sub("_", name.replace("@", "_at_"))


def evaluation_key(fingerprint: Mapping[str, Any], split: Mapping[str, Any] | None) -> str:
    """A short stable hash of the data fingerprint and the split: equal means same test data."""
    canonical = json.dumps(
        {"fingerprint": fingerprint, "split": split or {}},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def log_training_run(
    cfg: TrackingConfig,
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    fingerprint: Mapping[str, Any],
    bundle_dir: Path,
    report_files: Sequence[Path] = (),
    split: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
) -> RunInfo:
    """Log one training run: params, metrics, fingerprint, the bundle and the report files.

    ``params`` may nest (keys are joined with ``.``); ``split`` describes the evaluation split
    and, with ``fingerprint``, makes the run's evaluation key. The bundle is checked
    (`read_manifest`) before anything is logged. A failure while logging marks the run FAILED.
    """
    bundle_dir = Path(bundle_dir)
    try:
        manifest = read_manifest(bundle_dir)
    except BundleError as exc:
        raise RegistryError(f"cannot log run: {exc}") from exc
    for file in report_files:
        if not Path(file).is_file():
            raise RegistryError(f"cannot log run: report file {file} does not exist")
    metric_values = _metric_values(metrics)
    eval_key = evaluation_key(fingerprint, split)
    checksum = bundle_checksum(bundle_dir)

    client = _client(cfg)
    experiment_id = _ensure_experiment(client, cfg)
    run_tags = {
        **(tags or {}),
        EVAL_KEY_TAG: eval_key,
        CHECKSUM_TAG: checksum,
        "offers.bundle_format": str(manifest.format_version),
        "offers.models": ",".join(sorted(manifest.models)),
    }
    run = client.create_run(experiment_id, tags=run_tags, run_name=run_name)
    run_id = run.info.run_id
    try:
        _log_values(client, run_id, params, metric_values)
        client.log_dict(run_id, dict(fingerprint), "fingerprint.json")
        client.log_dict(run_id, dict(split or {}), "split.json")
        client.log_artifacts(run_id, str(bundle_dir), BUNDLE_ARTIFACT)
        for file in report_files:
            client.log_artifact(run_id, str(file), REPORT_ARTIFACT)
    except BaseException:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    return RunInfo(
        run_id=run_id,
        experiment_id=experiment_id,
        artifact_uri=str(run.info.artifact_uri),
        eval_key=eval_key,
    )


def log_report_run(
    cfg: TrackingConfig,
    *,
    kind: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    report_files: Sequence[Path],
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
) -> str:
    """Log a report run (no bundle): params, metrics and the report files; its run id.

    ``kind`` (e.g. ``campaign`` or ``kpi``) is tagged as ``offers.report``. Such runs are never
    registered as model versions. A failure while logging marks the run FAILED.
    """
    for file in report_files:
        if not Path(file).is_file():
            raise RegistryError(f"cannot log report run: file {file} does not exist")
    metric_values = _metric_values(metrics)
    client = _client(cfg)
    experiment_id = _ensure_experiment(client, cfg)
    run = client.create_run(
        experiment_id, tags={**(tags or {}), REPORT_KIND_TAG: kind}, run_name=run_name
    )
    run_id = str(run.info.run_id)
    try:
        _log_values(client, run_id, params, metric_values)
        for file in report_files:
            client.log_artifact(run_id, str(file), REPORT_ARTIFACT)
    except BaseException:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    return run_id


def register_bundle(cfg: TrackingConfig, run_id: str) -> int:
    """Register the bundle logged by run ``run_id`` as a new version; returns its number."""
    client = _client(cfg)
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise RegistryError(f"run {run_id!r} not found in {cfg.tracking_uri}") from exc
    logged = {a.path for a in client.list_artifacts(run_id, BUNDLE_ARTIFACT)}
    if f"{BUNDLE_ARTIFACT}/manifest.json" not in logged:
        raise RegistryError(f"run {run_id} has no bundle (no {BUNDLE_ARTIFACT}/manifest.json)")
    if run.info.status != RunStatus.to_string(RunStatus.FINISHED):
        raise RegistryError(f"run {run_id} is {run.info.status}, only FINISHED runs register")
    _ensure_registered_model(client, cfg)
    version_tags = {METRIC_TAG + k: repr(float(v)) for k, v in run.data.metrics.items()}
    version_tags[EVAL_KEY_TAG] = run.data.tags.get(EVAL_KEY_TAG, "")
    version_tags[RUN_ID_TAG] = run_id
    if checksum := run.data.tags.get(CHECKSUM_TAG, ""):
        version_tags[CHECKSUM_TAG] = checksum
    version = client.create_model_version(
        cfg.model_name,
        source=f"runs:/{run_id}/{BUNDLE_ARTIFACT}",
        run_id=run_id,
        tags=version_tags,
    )
    return int(version.version)


def set_alias(cfg: TrackingConfig, version: int, alias: str | None = None) -> None:
    """Point ``alias`` (default: the champion alias) at ``version``."""
    client = _client(cfg)
    _get_version(client, cfg, version)
    client.set_registered_model_alias(cfg.model_name, alias or cfg.champion_alias, str(version))


def champion_version(cfg: TrackingConfig) -> int | None:
    """The version behind the champion alias, or None when there is none yet."""
    mv = _by_alias(_client(cfg), cfg, cfg.champion_alias)
    return None if mv is None else int(mv.version)


def version_tags(cfg: TrackingConfig, version: int | str) -> dict[str, str]:
    """The tags of a version (or alias): metrics, evaluation key, promotion notes."""
    client = _client(cfg)
    return dict(_resolve(client, cfg, version).tags)


def download_version(cfg: TrackingConfig, version_or_alias: int | str, *, dest_dir: Path) -> Path:
    """The bundle of a version (a number or an alias) as a local folder under ``dest_dir``.

    The cache is keyed by content: ``<dest_dir>/<model_name>-v<version>-<run id>-<checksum>``,
    so another store's version of the same number never matches. A cached copy is used only
    when its files still hash to the version's ``offers.bundle_sha256`` tag; a mismatch is
    logged and downloaded again, and a download that does not match is an error. A version
    registered without the tag (before checksums) is downloaded afresh every time. Downloads
    land in a temp folder and are renamed into place once checked.
    """
    client = _client(cfg)
    mv = _resolve(client, cfg, version_or_alias)
    prefix = f"runs:/{mv.run_id}/"
    source = str(mv.source)
    if not mv.run_id or not source.startswith(prefix):
        raise RegistryError(
            f"version {mv.version} of {cfg.model_name!r} has source {source!r}, "
            "not a bundle logged by log_training_run"
        )
    expected = str(mv.tags.get(CHECKSUM_TAG, ""))
    key = expected[:16] if expected else "unverified"
    target = Path(dest_dir) / f"{cfg.model_name}-v{mv.version}-{mv.run_id}-{key}"
    if target.is_dir():
        if expected and _cached_checksum(target) == expected:
            return target
        if expected:
            log.warning(
                "cached bundle %s does not match version %s's checksum: downloading it again",
                target,
                mv.version,
            )
        else:
            log.info("version %s has no %s tag: downloading it afresh", mv.version, CHECKSUM_TAG)
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        local = Path(client.download_artifacts(mv.run_id, source[len(prefix) :], str(tmp)))
        try:
            read_manifest(local)
        except BundleError as exc:
            raise RegistryError(f"version {mv.version}: downloaded bundle unusable: {exc}") from exc
        if expected and (got := bundle_checksum(local)) != expected:
            raise RegistryError(
                f"version {mv.version} (run {mv.run_id}): downloaded bundle has checksum "
                f"{got[:16]}, the version's {CHECKSUM_TAG} tag says {expected[:16]}"
            )
        try:
            local.rename(target)
        except OSError:
            if not target.is_dir():  # not another process winning the same download
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _cached_checksum(path: Path) -> str | None:
    """The checksum of a cached bundle folder, or None when it is not a readable bundle."""
    try:
        read_manifest(path)
        return bundle_checksum(path)
    except (BundleError, OSError):
        return None


def promote(
    cfg: TrackingConfig,
    candidate_version: int,
    *,
    metric: str,
    force: bool = False,
    higher_is_better: bool = True,
) -> PromotionDecision:
    """Move the champion alias to ``candidate_version`` unless it is worse on ``metric``.

    Versions are comparable only when evaluated on the same data and split (equal
    ``offers.eval_key`` tags); otherwise the promotion is refused unless ``force``. A tie
    promotes ("not worse"). The decision text is tagged on the candidate either way.
    """
    client = _client(cfg)
    key = metric_key(metric)
    candidate = _get_version(client, cfg, candidate_version)
    cand_value = _tag_metric(candidate, key)
    if cand_value is None and not force:
        known = sorted(
            t.removeprefix(METRIC_TAG) for t in candidate.tags if t.startswith(METRIC_TAG)
        )
        raise RegistryError(
            f"version {candidate_version} has no metric {key!r} (has: {', '.join(known) or 'none'})"
        )
    current = _by_alias(client, cfg, cfg.champion_alias)
    champ = None if current is None else int(current.version)
    champ_value = None if current is None else _tag_metric(current, key)

    def decide(promoted: bool, reason: str) -> PromotionDecision:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        client.set_model_version_tag(
            cfg.model_name, str(candidate_version), PROMOTION_TAG, f"{stamp} {reason}"
        )
        if promoted:
            client.set_registered_model_alias(
                cfg.model_name, cfg.champion_alias, str(candidate_version)
            )
        return PromotionDecision(
            promoted=promoted,
            candidate=candidate_version,
            champion=champ,
            metric=key,
            candidate_value=cand_value,
            champion_value=champ_value,
            forced=force,
            reason=reason,
        )

    shown = f"{key}={_fmt(cand_value)}"
    if champ == candidate_version:
        return decide(False, f"v{candidate_version} is already {cfg.champion_alias} ({shown})")
    if current is None:
        return decide(True, f"promoted v{candidate_version} ({shown}): no {cfg.champion_alias} yet")
    if force:
        return decide(
            True,
            f"promoted v{candidate_version} ({shown}) over v{champ} "
            f"({key}={_fmt(champ_value)}) by force, without comparing",
        )
    cand_eval = candidate.tags.get(EVAL_KEY_TAG, "")
    champ_eval = current.tags.get(EVAL_KEY_TAG, "")
    if not cand_eval or cand_eval != champ_eval:
        return decide(
            False,
            f"refused v{candidate_version}: evaluated on other data or split than "
            f"{cfg.champion_alias} v{champ} (eval key {cand_eval or '?'} vs {champ_eval or '?'}); "
            "re-evaluate both on one split, or force",
        )
    if champ_value is None:
        return decide(
            False,
            f"refused v{candidate_version} ({shown}): {cfg.champion_alias} v{champ} has no "
            f"{key!r} to compare with; force to promote anyway",
        )
    assert cand_value is not None  # checked above unless forced
    better_or_equal = cand_value >= champ_value if higher_is_better else cand_value <= champ_value
    direction = "higher" if higher_is_better else "lower"
    versus = f"{shown} vs v{champ} {key}={_fmt(champ_value)}, {direction} is better"
    if math.isfinite(cand_value) and better_or_equal:
        return decide(True, f"promoted v{candidate_version}: {versus}")
    return decide(False, f"refused v{candidate_version}: worse, {versus}")


def _client(cfg: TrackingConfig) -> MlflowClient:
    return MlflowClient(tracking_uri=cfg.tracking_uri, registry_uri=cfg.registry_uri)


def _ensure_experiment(client: MlflowClient, cfg: TrackingConfig) -> str:
    exp = client.get_experiment_by_name(cfg.experiment)
    if exp is None:
        try:
            return str(client.create_experiment(cfg.experiment, cfg.artifact_location))
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            exp = client.get_experiment_by_name(cfg.experiment)
            if exp is None:
                raise
    if exp.lifecycle_stage != "active":
        raise RegistryError(
            f"experiment {cfg.experiment!r} is {exp.lifecycle_stage}; restore it or set "
            "MLFLOW_EXPERIMENT_NAME to another name"
        )
    return str(exp.experiment_id)


def _ensure_registered_model(client: MlflowClient, cfg: TrackingConfig) -> None:
    try:
        client.create_registered_model(cfg.model_name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def _get_version(client: MlflowClient, cfg: TrackingConfig, version: int) -> ModelVersion:
    try:
        return client.get_model_version(cfg.model_name, str(version))
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(f"model {cfg.model_name!r} has no version {version}") from exc
        raise


def _by_alias(client: MlflowClient, cfg: TrackingConfig, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(cfg.model_name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _resolve(client: MlflowClient, cfg: TrackingConfig, ref: int | str) -> ModelVersion:
    text = str(ref).strip()
    if text.isdigit():
        return _get_version(client, cfg, int(text))
    mv = _by_alias(client, cfg, text)
    if mv is None:
        raise RegistryError(f"model {cfg.model_name!r} has no alias {text!r}")
    return mv


def _tag_metric(mv: ModelVersion, key: str) -> float | None:
    raw = mv.tags.get(METRIC_TAG + key)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise RegistryError(f"version {mv.version}: tag {METRIC_TAG + key}={raw!r}") from exc


def _metric_values(metrics: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in metrics.items():
        key = metric_key(name)
        if key in out:
            raise RegistryError(f"metrics {name!r} and another name both map to {key!r}")
        try:
            out[key] = float(value)
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"metric {name!r}: {value!r} is not a number") from exc
    return out


def _flatten_params(params: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, str]]:
    for name, value in params.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            yield from _flatten_params(value, key + ".")
        elif isinstance(value, str):
            yield key, value
        else:
            yield key, json.dumps(value, default=str)


def _log_values(
    client: MlflowClient, run_id: str, params: Mapping[str, Any], metric_values: Mapping[str, float]
) -> None:
    """Log flattened params and metrics in batches (MLflow caps a batch)."""
    now = int(time.time() * 1000)
    flat = [Param(k, v) for k, v in _flatten_params(params)]
    for chunk in _chunks(flat, _BATCH_PARAMS):
        client.log_batch(run_id, params=chunk)
    ms = [Metric(k, v, now, 0) for k, v in metric_values.items()]
    for metric_chunk in _chunks(ms, _BATCH_METRICS):
        client.log_batch(run_id, metrics=metric_chunk)


def _chunks(items: list[_T], size: int) -> Iterable[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"
