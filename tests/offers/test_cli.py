"""The `offers` command line: exit codes and messages a user sees."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from offers.cli import main


def _dataset(root: Path, *, quantity: float = 1.0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {
            "customer_id": ["c1"],
            "order_id": ["o1"],
            "ts": [datetime(2024, 1, 1)],
            "item_id": ["i1"],
            "quantity": [quantity],
            "amount": [10.0],
        }
    ).write_parquet(root / "transactions.parquet")
    pl.DataFrame({"item_id": ["i1"], "category": ["mug"], "price": [10.0]}).write_parquet(
        root / "items.parquet"
    )
    return root


def test_validate_exits_zero_on_a_valid_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(_dataset(tmp_path))]) == 0
    assert "OK: 0 errors" in capsys.readouterr().out


def test_validate_exits_non_zero_and_names_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(_dataset(tmp_path, quantity=-1.0))]) == 1
    out = capsys.readouterr().out
    assert "transactions.parquet [quantity,amount]: amount and quantity have opposite signs" in out


def test_bad_arguments_are_rejected_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--out", "x", "--customers", "-3"])
    assert exc.value.code == 2
    assert "--customers" in capsys.readouterr().err


def test_synth_validate_features_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "world"
    args = ["--customers", "300", "--items", "60", "--days", "120", "--seed", "3"]
    assert main(["synth", "--out", str(data), *args]) == 0
    assert main(["validate", str(data)]) == 0
    out = tmp_path / "features.csv"
    # --horizon joins labels: a regression test for the polars 2.1 streaming-join panic
    assert (
        main(
            [
                "features",
                "--data",
                str(data),
                "--as-of",
                "2025-03-01",
                "--horizon",
                "30",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    features = pl.read_csv(out)
    assert features["customer_id"].is_unique().all()
    assert {"rfm_code", "lifecycle_stage", "activity_coef", "bought", "spend"} <= set(
        features.columns
    )
    assert features["bought"].null_count() == 0
    assert "wrote" in capsys.readouterr().out


def test_consent_can_be_assumed_only_on_a_known_channel(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "d", "--out", "o", "--assume-consent", "email,fax"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--assume-consent" in err and "fax" in err


@pytest.mark.slow
def test_train_and_campaign_without_an_offer_history_plan_rule_based_offers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "world"
    args = ["--customers", "300", "--items", "50", "--days", "150", "--seed", "3"]
    assert main(["synth", "--out", str(data), *args]) == 0
    (data / "offers.parquet").unlink()
    # like UCI Online Retail: no consent recorded; the shop says its e-mail list may be used
    customers = pl.read_parquet(data / "customers.parquet")
    customers.drop("consent_email", "consent_push", "consent_sms").write_parquet(
        data / "customers.parquet"
    )
    train = ["train", "--data", str(data), "--out", str(tmp_path / "run")]
    assert main([*train, "--assume-consent", "email"]) == 0
    plan_file = tmp_path / "plan.csv"
    campaign = ["campaign", "--budget", "5000", "--segment", "all", "--campaign-id", "rb"]
    cache = ["--model-version", "1", "--model-cache", str(tmp_path / "models")]
    assert main([*campaign, *cache, "--out", str(plan_file)]) == 0
    out = capsys.readouterr().out
    assert "rule-based plan" in out and "worst-case bonus cost" in out
    plan = pl.read_csv(plan_file, schema_overrides={"customer_id": pl.String})
    assert plan.filter(pl.col("offer_type") != "none", ~pl.col("control")).height > 0
    assert plan["expected_uplift"].null_count() == plan.height
    assert plan["expected_cost"].sum() <= 5000
    assert plan.filter(pl.col("offer_type") != "none")["rule"].null_count() == 0
    # the service answers from the same rule book, claiming no predicted response
    from offers.env import tracking_config
    from service.bundle_engine import BundleEngine
    from service.convert import answer_to_proto
    from service.engine import Channel, OfferRequest
    from training.registry import download_version

    engine = BundleEngine.from_bundle(
        download_version(tracking_config(), 1, dest_dir=tmp_path / "models"), version="1"
    )
    offered = plan.filter(pl.col("offer_type") != "none", ~pl.col("control"))
    answers = [
        engine.get_offers(OfferRequest(customer_id=c, channel=Channel.WEB))
        for c in offered["customer_id"].head(20)
    ]
    bonus = [b for a in answers for b in a.bonus_offers]
    assert bonus and all(b.expected_uplift is None and b.expected_profit is None for b in bonus)
    reply = answer_to_proto(answers[0], ["id"] * len(answers[0].bonus_offers), {"v": "1"})
    assert all(not m.HasField("expected_uplift") for m in reply.bonus_offers)
