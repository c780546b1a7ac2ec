"""The written report logged as an MLflow run (real embedded store), and metric flattening."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from features.dataset import load_dataset
from training.config import TrackingConfig
from training.registry import REPORT_ARTIFACT, REPORT_KIND_TAG
from training.results.campaign import campaign_report
from training.results.render import flat_metrics, log_results


def test_flat_metrics_keeps_finite_numbers_only() -> None:
    doc = {"a": {"b": 1, "c": float("nan"), "d": "text", "e": True}, "f": 2.5}
    assert flat_metrics(doc) == {"a.b": 1.0, "f": 2.5}


@pytest.mark.slow
def test_campaign_report_logged_as_a_run(campaign_data: Path, tmp_path: Path) -> None:
    cfg = TrackingConfig.embedded(tmp_path / "mlflow")
    result = campaign_report(load_dataset(campaign_data), "C1", out=tmp_path / "out")
    run_id = log_results(cfg, "campaign", result.results, result.files, params={"window": 14})
    client = MlflowClient(tracking_uri=cfg.tracking_uri)
    run = client.get_run(run_id)
    assert run.data.tags[REPORT_KIND_TAG] == "campaign"
    assert run.data.metrics["effects.conversion_uplift.value"] == 0.25
    assert run.data.params["window"] == "14"
    logged = {a.path for a in client.list_artifacts(run_id, REPORT_ARTIFACT)}
    assert logged == {f"{REPORT_ARTIFACT}/report.html", f"{REPORT_ARTIFACT}/metrics.json"}
