"""The evaluation report: every model and value on the page, plots that decode, JSON beside it."""

from __future__ import annotations

import base64
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import polars as pl
import pytest

from features.columns import Col
from training.evaluation.report import (
    METRICS_JSON,
    REPORT_HTML,
    ReportError,
    dataset_fingerprint,
    metric_summary,
    render_report,
)

KS = ("5", "10", "20")


def part(base: float) -> dict[str, dict[str, float]]:
    """Distinct, recognisable values: base + metric offset + k offset."""
    metrics = ("precision", "recall", "ndcg", "map", "hit_rate")
    return {
        m: {k: round(base + 0.01 * i + 0.001 * j, 4) for j, k in enumerate(KS)}
        for i, m in enumerate(metrics)
    }


def results() -> dict[str, Any]:
    return {
        "split": {"cutoff": "2024-03-01T00:00:00", "test_days": 30, "warm_customers": 812},
        "models": {
            "popular": {
                "new": part(0.1),
                "repeats": part(0.3),
                "coverage": {k: 0.01 for k in KS},
                "fit_seconds": 0.01,
            },
            "als": {
                "new": part(0.2),
                "repeats": part(0.4),
                "coverage": {k: 0.2 for k in KS},
                "fit_seconds": 1.5,
            },
        },
        "segments": {
            "active": {
                "popular": {"ndcg@10": 0.1111, "customers": 40},
                "als": {"ndcg@10": 0.2222, "customers": 40},
            },
            "sleeping": {
                "popular": {"ndcg@10": 0.3333, "customers": 9},
                "als": {"ndcg@10": None, "customers": 9},
            },
        },
        "policies": {
            "uplift": {
                "1000": {"spend": 990.0, "profit": 4321.5, "ratio_to_oracle": 0.9},
                "2000": {"spend": 1980.0, "profit": 6100.25, "ratio_to_oracle": 0.92},
            },
            "random": {
                "1000": {"spend": 1000.0, "profit": 1234.5, "ratio_to_oracle": 0.25},
                "2000": {"spend": 2000.0, "profit": 1600.75, "ratio_to_oracle": 0.24},
            },
        },
    }


FINGERPRINT = {"scheme": "test", "transactions": {"rows": 3, "sha256": "cafe"}}


@dataclass(frozen=True)
class Rendered:
    page: str
    html_path: Path
    json_path: Path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """One rendering shared by the module (matplotlib takes about a second per report)."""
    out = tmp_path_factory.mktemp("report")
    html_path, json_path = render_report(
        results(), out / "report", title="Offline <evaluation>", fingerprint=FINGERPRINT, ours="als"
    )
    return Rendered(html_path.read_text(encoding="utf-8"), html_path, json_path)


def test_files_are_written_beside_each_other_without_temp_leftovers(rendered: Rendered) -> None:
    folder = rendered.html_path.parent

    assert (rendered.html_path.name, rendered.json_path.name) == (REPORT_HTML, METRICS_JSON)
    assert rendered.json_path.parent == folder
    assert sorted(p.name for p in folder.iterdir()) == [METRICS_JSON, REPORT_HTML]


def test_page_shows_every_model_and_metric_value(rendered: Rendered) -> None:
    page = rendered.page

    assert "<title>Offline &lt;evaluation&gt;</title>" in page
    for name, entry in results()["models"].items():
        assert f"<th>{name}" in page
        for part_name in ("new", "repeats"):
            for metric, by_k in entry[part_name].items():
                for k, value in by_k.items():
                    assert f"{metric}@{k}" in page
                    assert f"{value:.4f}" in page, (name, part_name, metric, k)
    assert "0.1111" in page and "0.3333" in page  # segments
    assert "—" in page  # the missing segment value
    assert "cafe" in page  # the fingerprint


def test_best_value_of_a_column_is_bold(rendered: Rendered) -> None:
    page = rendered.page

    assert "<b>0.2000</b>" in page  # als new precision@5 beats popular's 0.1000
    assert "<b>0.1000</b>" not in page
    assert "<b>0.2222</b>" in page  # segment active: als beats popular's 0.1111
    assert "<b>0.3333</b>" not in page  # segment sleeping: popular alone, nothing to rank


def test_ours_is_listed_first_with_its_lift_over_the_best_baseline(rendered: Rendered) -> None:
    first_row = re.search(r"<tbody>\s*<tr class='ours-row'><th>(\w+)", rendered.page)

    assert first_row is not None and first_row.group(1) == "als"
    assert "als vs best baseline" in rendered.page
    assert "<td>+100.0%</td>" in rendered.page  # new precision@5: 0.2 vs 0.1


def test_unknown_ours_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="ours='ease' is not among the models"):
        render_report(results(), tmp_path, title="t", ours="ease")


def test_optional_policy_section_gets_tables_and_a_profit_vs_budget_plot(
    rendered: Rendered,
) -> None:
    page = rendered.page

    assert "<h2>Policies</h2>" in page
    assert "profit by budget" in page
    assert "4,321.5" in page and "<b>6,100.2</b>" in page
    assert "alt='policies: profit vs budget'" in page
    assert "<b>1,000.0</b>" not in page  # spend is a fact, never ranked


def test_plots_are_inline_pngs_that_decode(rendered: Rendered) -> None:
    page = rendered.page

    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    # metric vs k (new, repeats, coverage), segment bars, policies x 3 fields
    assert len(images) == 7
    for data in images:
        pixels = mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert "http" not in page  # self-contained


def test_metrics_json_round_trips_with_the_fingerprint(rendered: Rendered) -> None:
    doc = json.loads(rendered.json_path.read_text(encoding="utf-8"))

    assert doc == {**results(), "dataset_fingerprint": FINGERPRINT}


def test_metrics_json_writes_non_finite_numbers_as_null(tmp_path: Path) -> None:
    res = {"models": {"als": {"fit_seconds": float("nan"), "recommend_seconds": 0.5}}}

    html_path, json_path = render_report(res, tmp_path, title="t")

    doc = json.loads(json_path.read_text(encoding="utf-8"))
    assert doc == {"models": {"als": {"fit_seconds": None, "recommend_seconds": 0.5}}}
    assert "<td>—</td><td>0.5000</td>" in html_path.read_text(encoding="utf-8")


def test_empty_results_and_malformed_models_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="nothing to report"):
        render_report({}, tmp_path, title="t")
    with pytest.raises(ReportError, match=r"results\['models'\]"):
        render_report({"models": [1, 2]}, tmp_path, title="t")


def test_a_report_of_other_sections_only_renders_them(tmp_path: Path) -> None:
    results = {"uplift_benchmark": {"models": {"ours": {"qini_auc": {"mean": 0.036}}}}}
    html_path, _ = render_report(results, tmp_path, title="uplift")
    html = html_path.read_text(encoding="utf-8")
    assert "Uplift benchmark" in html or "uplift_benchmark" in html
    assert "0.036" in html


def test_metric_summary_flattens_every_number() -> None:
    summary = metric_summary(results())

    assert summary["als.new.ndcg@10"] == 0.221
    assert summary["popular.repeats.hit_rate@20"] == 0.342
    assert summary["als.coverage@5"] == 0.2
    assert summary["als.fit_seconds"] == 1.5
    assert summary["segment.active.als.ndcg@10"] == 0.2222
    assert "segment.sleeping.als.ndcg@10" not in summary  # None is not a number
    assert len(summary) == 2 * (2 * 5 * 3 + 3 + 1) + 7


def transactions(rows: list[tuple[str, str, str, datetime, float, float]]) -> pl.LazyFrame:
    return pl.LazyFrame(
        rows,
        schema={
            Col.ORDER: pl.String,
            Col.ITEM: pl.String,
            Col.CUSTOMER: pl.String,
            Col.TS: pl.Datetime("us"),
            Col.QUANTITY: pl.Float64,
            Col.AMOUNT: pl.Float64,
        },
        orient="row",
    )


ROWS = [
    ("o1", "apple", "c1", datetime(2024, 1, 3, 10), 2.0, 3.0),
    ("o1", "pear", "c1", datetime(2024, 1, 3, 10), 1.0, 1.5),
    ("o2", "café", "c2", datetime(2024, 2, 9, 18), 1.0, 4.0),
]


def test_fingerprint_counts_rows_and_dates() -> None:
    fp = dataset_fingerprint(transactions(ROWS), tables={"items": pl.LazyFrame({"x": [1, 2]})})

    tx = fp["transactions"]
    assert (tx["rows"], tx["orders"], tx["items"], tx["customers"]) == (3, 2, 3, 2)
    assert (tx["first_ts"], tx["last_ts"]) == ("2024-01-03 10:00:00", "2024-02-09 18:00:00")
    assert fp["tables"] == {"items": {"rows": 2}}
    assert len(tx["sha256"]) == 64


def test_fingerprint_hash_ignores_row_order_but_not_content() -> None:
    base = dataset_fingerprint(transactions(ROWS))["transactions"]["sha256"]
    shuffled = dataset_fingerprint(transactions(ROWS[::-1]))["transactions"]["sha256"]
    changed = [*ROWS[:2], ("o2", "café", "c2", datetime(2024, 2, 9, 18), 1.0, 4.01)]
    moved = [("o1", "apple", "c1", datetime(2024, 1, 3, 10), 2.0, 3.0), *ROWS[1:]]
    renamed = [*ROWS[:2], ("o2", "cafe", "c2", datetime(2024, 2, 9, 18), 1.0, 4.0)]

    assert shuffled == base
    assert dataset_fingerprint(transactions(moved))["transactions"]["sha256"] == base
    assert dataset_fingerprint(transactions(changed))["transactions"]["sha256"] != base
    assert dataset_fingerprint(transactions(renamed))["transactions"]["sha256"] != base


def test_fingerprint_hash_is_pinned() -> None:
    """The encoding is a contract: a change of hash means every registered run's key changes."""
    got = dataset_fingerprint(transactions(ROWS))["transactions"]["sha256"]

    assert got == PINNED_SHA256


def test_fingerprint_of_absent_transactions_is_none() -> None:
    assert dataset_fingerprint(None)["transactions"] is None


PINNED_SHA256 = "0e797c3159fce44d4288663e0873cd01186ed8533dbed06c769480cfed6d1e4b"
