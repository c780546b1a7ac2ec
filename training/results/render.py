"""HTML pages (inline PNG plots) and ``metrics.json`` for the campaign and KPI reports.

A sibling of `training.evaluation.report`: the page shell, image embedding, cell formatting and
JSON sanitising are that module's; the tables and plots here are shaped for effects with
confidence intervals and monthly series. Both files are written atomically. `log_results`
logs a written report as an MLflow run through `training.registry`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from features.dataset import atomic_path
from training.bundle import json_safe
from training.config import TrackingConfig
from training.evaluation.report import _cell, _esc, _img, _kv_table, _page
from training.registry import log_report_run

REPORT_HTML = "report.html"
METRICS_JSON = "metrics.json"

_EFFECT_LABELS = {
    "conversion_uplift": "conversion rate (treated - control)",
    "revenue_per_customer": "revenue per customer",
    "margin_per_customer": "margin per customer",
    "net_margin_per_customer": "margin net of bonus per customer",
    "incremental_conversions": "incremental conversions (total)",
    "incremental_net_margin": "incremental margin net of bonus (total)",
    "roi": "ROI (incremental net margin / bonus paid)",
}
_VERDICT_COLOURS = {"paid off": "#1b7f3b", "lost money": "#b3261e"}


def render_campaign(results: Mapping[str, Any], out: Path) -> list[Path]:
    """Write the campaign report page and its metrics JSON into ``out``; return both paths."""
    camp = results["campaign"]
    title = f"Campaign {camp['campaign_id']}: what it changed"
    colour = _VERDICT_COLOURS.get(str(results["verdict"]), "#7a5b00")
    body = [
        f"<h1>{_esc(title)}</h1>",
        _meta(),
        f"<p class='verdict' style='border-color:{colour};color:{colour}'>"
        f"<b>{_esc(str(results['verdict']).upper())}</b>: {_esc(str(results['verdict_reason']))}"
        "</p>",
        "<h2>Campaign</h2>",
        _kv_table(dict(camp)),
        "<h2>Treated vs control</h2>",
        _arms_table(results["arms"]),
        "<h2>Effects (95% confidence intervals)</h2>",
        _effects_table(results["effects"]),
        _forest(
            ["conversion uplift"],
            [results["effects"]["conversion_uplift"]],
            "conversion uplift (treated - control)",
        ),
    ]
    for name, groups in results["breakdowns"].items():
        body.extend(_breakdown_section(name, groups))
    for predicted, deciles in results.get("calibration", {}).items():
        body.extend(_calibration_section(predicted, deciles))
    body.extend(_plan_section(results.get("plan", {})))
    body.extend(_notes(results.get("notes", []), results.get("counts", {})))
    return _write(out, title, body, results)


def render_kpi(results: Mapping[str, Any], out: Path) -> list[Path]:
    """Write the KPI report page and its metrics JSON into ``out``; return both paths."""
    period = results["period"]
    title = f"Loyalty programme KPIs {period['from']} to {period['to']}"
    months: Mapping[str, Mapping[str, Any]] = results["months"]
    names = list(results["definitions"])
    body = [f"<h1>{_esc(title)}</h1>", _meta(), "<h2>Period</h2>", _kv_table(dict(period))]
    body.append("<h2>KPIs by month</h2>")
    body.append(_grid(names, {m: [row.get(k) for k in names] for m, row in months.items()}))
    body.append(_kpi_plots(months, names))
    body.append("<h2>Definitions</h2>")
    body.append(_kv_table(dict(results["definitions"])))
    body.extend(_notes(results.get("notes", []), results.get("counts", {})))
    return _write(out, title, body, results)


def log_results(
    cfg: TrackingConfig,
    kind: str,
    results: Mapping[str, Any],
    files: Sequence[Path],
    *,
    params: Mapping[str, Any] | None = None,
) -> str:
    """Log a written report (``kind`` = "campaign" or "kpi") as an MLflow run; its run id."""
    return log_report_run(
        cfg,
        kind=kind,
        params=params or {},
        metrics=flat_metrics(results),
        report_files=files,
        run_name=f"report-{kind}",
    )


def flat_metrics(results: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Every finite number of the results as ``a.b.c`` -> value (bools and strings left out)."""
    out: dict[str, float] = {}
    for key, value in results.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flat_metrics(value, name))
        elif _is_finite_number(value):
            out[name] = float(value)
    return out


# --- campaign pieces ----------------------------------------------------------------------


def _arms_table(arms: Mapping[str, Mapping[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for arm in arms.values() for k in arm))
    rows = {k.replace("_", " "): [arm.get(k) for arm in arms.values()] for k in keys}
    return _grid(list(arms), rows)


def _effects_table(effects: Mapping[str, Mapping[str, Any]]) -> str:
    rows = {
        _EFFECT_LABELS.get(k, k): [e["value"], e["low"], e["high"], e["se"], e["method"]]
        for k, e in effects.items()
    }
    return _grid(["estimate", "95% low", "95% high", "std. error", "method"], rows)


def _breakdown_section(name: str, groups: Mapping[str, Mapping[str, Any]]) -> list[str]:
    if not groups:
        return []
    label = name.replace("_", " ")
    scope = (
        "treated of each arm vs the whole control group"
        if name in ("offer_type", "bonus")
        else "treated vs control within each group"
    )
    cols = list(dict.fromkeys(k for g in groups.values() for k in g))
    out = [
        f"<h2>By {_esc(label)}</h2>",
        f"<p class='note'>{_esc(scope)}.</p>",
        _grid(cols, {g: [row.get(c) for c in cols] for g, row in groups.items()}),
        _forest(
            list(groups),
            [
                {"value": r["uplift"], "low": r["uplift_low"], "high": r["uplift_high"]}
                for r in groups.values()
            ],
            f"conversion uplift by {label}",
        ),
    ]
    if all("net_margin_per_customer" in r for r in groups.values()):
        out.append(
            _forest(
                list(groups),
                [
                    {
                        "value": r["net_margin_per_customer"],
                        "low": r["net_margin_low"],
                        "high": r["net_margin_high"],
                    }
                    for r in groups.values()
                ],
                f"incremental margin net of bonus per treated customer by {label}",
            )
        )
    return out


def _calibration_section(predicted: str, deciles: Mapping[str, Mapping[str, Any]]) -> list[str]:
    cols = list(dict.fromkeys(k for d in deciles.values() for k in d))
    realised = "conversion uplift" if predicted == "expected_uplift" else "net margin difference"
    out = [
        f"<h2>Predicted vs realised: {_esc(predicted)}</h2>",
        f"<p class='note'>Customers (both arms) cut into deciles of {_esc(predicted)}; realised = "
        f"treated minus control {_esc(realised)} within the decile.</p>",
        _grid(cols, {f"decile {d}": [row.get(c) for c in cols] for d, row in deciles.items()}),
    ]
    fig = Figure(figsize=(5.2, 4.2))
    fig.subplots_adjust(left=0.16, right=0.96, bottom=0.13, top=0.9)
    ax = fig.add_subplot()
    xs = np.array([_num(d["predicted"]) for d in deciles.values()])
    ys = np.array([_num(d["realised"]) for d in deciles.values()])
    lo = np.array([_num(d["realised_low"]) for d in deciles.values()])
    hi = np.array([_num(d["realised_high"]) for d in deciles.values()])
    ok = np.isfinite(xs) & np.isfinite(ys)
    err_ok = ok & np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(
        xs[err_ok],
        ys[err_ok],
        yerr=[ys[err_ok] - lo[err_ok], hi[err_ok] - ys[err_ok]],
        fmt="o",
        capsize=3,
        color="#1f77b4",
        label="decile (95% CI)",
    )
    if (ok & ~err_ok).any():
        ax.plot(xs[ok & ~err_ok], ys[ok & ~err_ok], "o", color="#999999", label="no interval")
    finite = np.concatenate([xs[ok], ys[ok]])
    if finite.size:
        a, b = float(finite.min()), float(finite.max())
        ax.plot([a, b], [a, b], "--", color="#555555", label="perfect calibration")
    ax.set_xlabel(f"predicted ({predicted})")
    ax.set_ylabel("realised")
    ax.set_title(f"calibration of {predicted}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    out.append(_img(fig, f"calibration of {predicted}"))
    return out


def _plan_section(plan: Mapping[str, Any]) -> list[str]:
    if not plan:
        return []
    out = ["<h2>Control-share planner</h2>"]
    if "note" in plan:
        return [*out, f"<p>{_esc(str(plan['note']))}</p>"]
    out.append(
        "<p class='note'>Minimum detectable effect (absolute conversion uplift) for this "
        f"audience ({plan['audience']:,} customers) at base rate {plan['base_rate']:.4f} "
        f"({_esc(str(plan.get('base_rate_source', '')))}), two-sided alpha {plan['alpha']:g}, "
        f"power {plan['power']:g}. This campaign held out {plan['actual_control_share']:.1%}, "
        f"detecting {_cell(plan.get('mde_at_actual_share'))}.</p>"
    )
    mde = plan["mde_by_control_share"]
    out.append(_grid(["MDE"], {f"control share {s}": [v] for s, v in mde.items()}))
    need = plan["control_share_for_mde"]
    out.append(
        _grid(
            ["control share needed"],
            {
                f"MDE {m}": [v if v is not None else "not reachable (even 50/50)"]
                for m, v in need.items()
            },
        )
    )
    return out


# --- KPI pieces ---------------------------------------------------------------------------


def _kpi_plots(months: Mapping[str, Mapping[str, Any]], names: list[str]) -> str:
    plotted = [
        n
        for n in names
        if any(
            isinstance(r.get(n), int | float) and not isinstance(r.get(n), bool)
            for r in months.values()
        )
    ]
    if not plotted:
        return ""
    cols = 3
    rows = math.ceil(len(plotted) / cols)
    fig = Figure(figsize=(12.0, 2.6 * rows))
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.08, top=0.95, wspace=0.3, hspace=0.75)
    axes = fig.subplots(rows, cols, squeeze=False)
    labels = list(months)
    x = np.arange(len(labels))
    for i, name in enumerate(plotted):
        ax = axes[i // cols][i % cols]
        ys = np.array([_num(months[m].get(name)) for m in labels])
        ax.plot(x, ys, marker="o", color="#1f77b4")
        step = max(1, len(labels) // 6)
        ax.set_xticks(x[::step], labels[::step], fontsize="x-small")
        ax.set_title(name.replace("_", " "), fontsize="small")
        ax.grid(alpha=0.3)
    for j in range(len(plotted), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    return _img(fig, "KPIs by month")


# --- shared pieces ------------------------------------------------------------------------


def _forest(labels: list[str], estimates: Sequence[Mapping[str, Any]], title: str) -> str:
    if not labels:
        return ""
    height = 0.9 + 0.32 * len(labels)
    fig = Figure(figsize=(6.5, height))
    fig.subplots_adjust(left=0.3, right=0.96, bottom=0.55 / height, top=1 - 0.35 / height)
    ax = fig.add_subplot()
    y = np.arange(len(labels))[::-1]
    v = np.array([_num(e["value"]) for e in estimates])
    lo = np.array([_num(e["low"]) for e in estimates])
    hi = np.array([_num(e["high"]) for e in estimates])
    ok = np.isfinite(v) & np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(v[ok], y[ok], xerr=[v[ok] - lo[ok], hi[ok] - v[ok]], fmt="o", capsize=3)
    point_only = np.isfinite(v) & ~ok
    ax.plot(v[point_only], y[point_only], "o", color="#999999")
    ax.axvline(0.0, color="#555555", linewidth=1)
    ax.set_yticks(y, labels, fontsize="small")
    ax.set_title(title, fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    return _img(fig, title)


def _grid(columns: Sequence[str], rows: Mapping[str, Sequence[Any]]) -> str:
    head = "".join(f"<th>{_esc(str(c))}</th>" for c in columns)
    lines = [f"<table><thead><tr><th></th>{head}</tr></thead><tbody>"]
    for name, values in rows.items():
        cells = "".join(f"<td>{_cell(v)}</td>" for v in values)
        lines.append(f"<tr><th>{_esc(str(name))}</th>{cells}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _notes(notes: Sequence[str], counts: Mapping[str, Any]) -> list[str]:
    out = []
    if notes:
        out.append("<h2>Notes: what was excluded or assumed</h2>")
        out.append("<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>")
    if counts:
        out.append("<h2>Counts</h2>")
        out.append(_kv_table(dict(counts)))
    return out


def _meta() -> str:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return f"<p class='meta'>Generated {stamp}.</p>"


def _write(out: Path, title: str, body: list[str], results: Mapping[str, Any]) -> list[Path]:
    style = (
        "<style>.verdict { border: 2px solid; padding: 0.6rem 1rem; font-size: 1.05rem; }</style>"
    )
    page = _page(title, style + "\n".join(part for part in body if part))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out / REPORT_HTML, out / METRICS_JSON
    with atomic_path(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    with atomic_path(json_path) as tmp:
        tmp.write_text(
            json.dumps(json_safe(results), indent=2, allow_nan=False, ensure_ascii=False),
            encoding="utf-8",
        )
    return [html_path, json_path]


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return math.nan
