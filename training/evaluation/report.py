"""The evaluation report: one self-contained HTML page plus ``metrics.json`` beside it.

`render_report` reads the JSON-able results of the offline evaluation::

    {"split": {...},
     "models": {name: {"new": {metric: {k: v}}, "repeats": {...}, "coverage": {k: v},
                       "fit_seconds": s, ...}},
     "segments": {segment: {name: {"ndcg@10": v, "customers": n, ...}}},
     ...optional sections...}

and writes tables (every metric at every k, one row per model, the best value of each column
in bold) and plots (metric against k, per-segment bars) as inline base64 PNGs. Any other
top-level section is rendered by shape: a mapping of numbers becomes a two-column table,
``{row: {column: number}}`` a table (plus a line plot when the columns are numbers, e.g. k or
a budget), ``{row: {x: {field: number}}}`` (e.g. ``{"policies": {policy: {budget: {"spend",
"profit", "ratio_to_oracle"}}}}``) one table and one line plot per field, e.g. profit against
budget. Deeper or irregular sections become a table of key paths.

`dataset_fingerprint` identifies the data a run saw (row counts, dates, a content hash), for
the report, the bundle manifest and the registry's "same evaluation data" check.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from features.columns import Col
from features.dataset import atomic_path
from training.bundle import json_safe

REPORT_HTML = "report.html"
METRICS_JSON = "metrics.json"
FINGERPRINT_SCHEME = "offers-fingerprint-1"

_CORE_SECTIONS = ("split", "models", "segments")
_PART_TITLES = {
    "new": "New items: test purchases of items the customer never bought before",
    "repeats": "All test purchases (repeat purchases included)",
    "basket": "Basket completion: one held-out item of each test basket, from the rest",
}
# Columns that are facts rather than scores: shown, never ranked.
_UNRANKED = {"customers", "users", "rows", "n", "count", "spend", "budget", "cost"}
_AXIS_LABELS = {"policies": "budget"}
_HASH_COLUMNS = (Col.ORDER, Col.ITEM, Col.CUSTOMER, Col.TS, Col.QUANTITY, Col.AMOUNT)


class ReportError(Exception):
    """The results cannot be rendered (the message names the section)."""


def render_report(
    results: Mapping[str, Any],
    out_dir: Path | str,
    *,
    title: str,
    fingerprint: Mapping[str, Any] | None = None,
    ours: str | None = None,
) -> list[Path]:
    """Write ``report.html`` and ``metrics.json`` into ``out_dir``; return their paths.

    ``metrics.json`` holds ``results`` as given plus ``dataset_fingerprint`` (when given);
    non-finite numbers are written as ``null``. ``ours`` names the model to list first and
    mark as ours; every other model is a baseline beside it. When ``ours`` is not among the
    models but ``results["split"]["ours"]`` is, that one is ours.
    """
    models = results.get("models", {})
    if not isinstance(models, Mapping):
        raise ReportError("results['models']: expected a mapping of model results")
    if not results:
        raise ReportError("results: nothing to report")
    split = results.get("split")
    if ours not in models and isinstance(split, Mapping) and split.get("ours") in models:
        ours = split["ours"]  # a protocol scored by its own model (e.g. basket completion)
    if ours is not None and ours not in models:
        raise ReportError(f"ours={ours!r} is not among the models {sorted(models)}")
    order = [ours] if ours else []
    order += [m for m in models if m != ours]
    colours = _colours(order)

    body: list[str] = [f"<h1>{_esc(title)}</h1>"]
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    marks = f"; ours: <b>{_esc(ours)}</b>" if ours else ""
    body.append(f"<p class='meta'>Generated {stamp}; models: {len(order)}{marks}.</p>")
    if isinstance(results.get("split"), Mapping):
        body.append("<h2>Evaluation split</h2>")
        body.append(_kv_table(_flatten(results["split"])))
    if fingerprint:
        body.append("<h2>Data fingerprint</h2>")
        body.append(_kv_table(_flatten(fingerprint)))
    if models:
        body.extend(_model_sections(models, order, colours, ours))
    if isinstance(results.get("segments"), Mapping) and results["segments"]:
        body.extend(_segment_section(results["segments"], order, colours, ours))
    for name, value in results.items():
        if name not in _CORE_SECTIONS:
            body.extend(_generic_section(name, value))

    page = _page(title, "\n".join(body))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path = out / REPORT_HTML
    with atomic_path(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    doc = dict(results)
    if fingerprint is not None:
        doc["dataset_fingerprint"] = dict(fingerprint)
    json_path = out / METRICS_JSON
    with atomic_path(json_path) as tmp:
        tmp.write_text(
            json.dumps(json_safe(doc), indent=2, allow_nan=False, ensure_ascii=False),
            encoding="utf-8",
        )
    return [html_path, json_path]


def metric_summary(results: Mapping[str, Any]) -> dict[str, float]:
    """Every model metric flattened to ``{"<model>.<part>.<metric>@<k>": value}``.

    Also ``<model>.<key>`` for per-k curves such as coverage (``<model>.coverage@<k>``) and
    scalars (``<model>.fit_seconds``), and ``segment.<segment>.<model>.<metric>`` for
    segments. Non-numbers and non-finite values are left out. This is what a run logs as its
    metrics and what `promote` compares.
    """
    out: dict[str, float] = {}
    for model, entry in _mapping(results.get("models")).items():
        for key, value in _mapping(entry).items():
            if _is_number(value):
                out[f"{model}.{key}"] = float(value)
            elif _depth(value) == 1:
                for k, v in value.items():
                    if _is_number(v):
                        out[f"{model}.{key}@{k}"] = float(v)
            elif _depth(value) == 2:
                for metric, by_k in value.items():
                    for k, v in _mapping(by_k).items():
                        if _is_number(v):
                            out[f"{model}.{key}.{metric}@{k}"] = float(v)
    for segment, by_model in _mapping(results.get("segments")).items():
        for model, values in _mapping(by_model).items():
            for metric, v in _mapping(values).items():
                if _is_number(v):
                    out[f"segment.{segment}.{model}.{metric}"] = float(v)
    # the off-policy table of the bonus policies (training.bonus.selection)
    selection = _mapping(results.get("policy_selection"))
    for policy, by_share in _mapping(selection.get("off_policy")).items():
        for share, values in _mapping(by_share).items():
            for metric in ("profit_dr", "profit_dr_low", "profit_dr_high", "spend_dr"):
                number = _mapping(values).get(metric)
                if isinstance(number, int | float) and not isinstance(number, bool):
                    out[f"policy.{policy}.{metric}@{share}"] = float(number)
    return {k: v for k, v in out.items() if math.isfinite(v)}


def dataset_fingerprint(
    tx: pl.LazyFrame | None, *, tables: Mapping[str, pl.LazyFrame | None] | None = None
) -> dict[str, Any]:
    """Row counts, date range and a content hash of the transactions; row counts of ``tables``.

    The hash is SHA-256 over the key columns present (order, item, customer, ts, quantity,
    amount) after sorting the rows by all of them, each column encoded explicitly: a null
    mask, then strings as little-endian u32 byte lengths plus their UTF-8 bytes, times as
    epoch microseconds (``<i8``), numbers as ``<f8``. It therefore depends on the content only:
    not on row order, file layout, Parquet writer or polars version (``hash_rows`` is not
    stable across versions, Parquet bytes carry writer metadata). Cost: one sort of six
    columns.
    """
    out: dict[str, Any] = {"scheme": FINGERPRINT_SCHEME, "transactions": None}
    if tx is not None:
        schema = tx.collect_schema()
        cols = [c for c in _HASH_COLUMNS if c in schema]
        if not cols:
            raise ReportError(f"transactions: none of the key columns {list(_HASH_COLUMNS)}")
        df = tx.select(cols).sort(cols, nulls_last=True).collect()
        digest = hashlib.sha256()
        header = {"columns": cols, "dtypes": [str(df.schema[c]) for c in cols], "rows": df.height}
        digest.update(json.dumps(header, sort_keys=True).encode("utf-8"))
        for c in cols:
            for chunk in _column_bytes(df[c]):
                digest.update(chunk)
        info: dict[str, Any] = {"rows": df.height, "hashed_columns": cols}
        for name, col in (("orders", Col.ORDER), ("items", Col.ITEM), ("customers", Col.CUSTOMER)):
            if col in df.columns:
                info[name] = df[col].n_unique()
        if Col.TS in df.columns:
            ts = df[Col.TS]
            first, last = ts.min(), ts.max()
            info["first_ts"] = None if first is None else str(first)
            info["last_ts"] = None if last is None else str(last)
        info["sha256"] = digest.hexdigest()
        out["transactions"] = info
    if tables:
        out["tables"] = {
            name: None if lf is None else {"rows": int(lf.select(pl.len()).collect().item())}
            for name, lf in tables.items()
        }
    return out


# --- model tables and plots -------------------------------------------------------------


def _model_sections(
    models: Mapping[str, Any], order: list[str], colours: dict[str, str], ours: str | None
) -> list[str]:
    parts: dict[str, None] = {}
    curves: dict[str, None] = {}
    scalars: dict[str, None] = {}
    for name in order:
        entry = models[name]
        if not isinstance(entry, Mapping):
            raise ReportError(f"results['models'][{name!r}]: expected a mapping, got {entry!r}")
        for key, value in entry.items():
            depth = _depth(value)
            if depth == 2:
                parts[key] = None
            elif depth == 1:
                curves[key] = None
            elif depth == 0:
                scalars[key] = None
    out: list[str] = []
    for part in parts:
        grid = {
            name: _mapping(_mapping(models[name]).get(part)) for name in order
        }  # model -> metric -> k -> v
        metrics = _keys(m for g in grid.values() for m in g)
        out.append(f"<h2>{_esc(_PART_TITLES.get(part, part))}</h2>")
        columns = [
            (m, k) for m in metrics for k in _keys(_mapping(g.get(m)) for g in grid.values())
        ]
        rows = {name: [_mapping(grid[name].get(m)).get(k) for m, k in columns] for name in order}
        out.append(_table([f"{m}@{k}" for m, k in columns], rows, ours=ours))
        out.append(_metric_vs_k_plot(part, grid, metrics, order, colours))
    if curves:
        out.append("<h2>Other metrics by k</h2>")
        for key in curves:
            grid = {name: {key: _mapping(_mapping(models[name]).get(key))} for name in order}
            ks = _keys(grid[name][key] for name in order)
            rows = {name: [grid[name][key].get(k) for k in ks] for name in order}
            out.append(f"<h3>{_esc(key)}</h3>")
            out.append(_table([f"{key}@{k}" for k in ks], rows, ours=ours))
            out.append(_metric_vs_k_plot(key, grid, [key], order, colours))
    if scalars:
        out.append("<h2>Run facts</h2>")
        cols = list(scalars)
        rows = {name: [_mapping(models[name]).get(c) for c in cols] for name in order}
        out.append(_table(cols, rows, ours=ours, ranked=False))
    return out


def _metric_vs_k_plot(
    part: str,
    grid: Mapping[str, Mapping[str, Any]],
    metrics: list[str],
    order: list[str],
    colours: dict[str, str],
) -> str:
    n = len(metrics)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    width, height = 3.6 * cols + 1.4, 2.7 * rows
    fig = Figure(figsize=(width, height))
    # Fixed margins (in inches) rather than constrained layout: it doubles the drawing time.
    fig.subplots_adjust(
        left=0.55 / width,
        right=1 - 1.45 / width,
        bottom=0.5 / height,
        top=1 - 0.35 / height,
        wspace=0.28,
        hspace=0.5,
    )
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, metric in enumerate(metrics):
        ax = axes[i // cols][i % cols]
        for name in order:
            points = [
                (float(k), float(v))
                for k, v in _mapping(grid[name].get(metric)).items()
                if _is_float_key(k) and _is_number(v) and math.isfinite(float(v))
            ]
            if points:
                points.sort()
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o", label=name, color=colours[name])
        ks = sorted(
            {float(k) for g in grid.values() for k in _mapping(g.get(metric)) if _is_float_key(k)}
        )
        if ks:
            ax.set_xticks(ks, [f"{k:g}" for k in ks])
        ax.set_title(metric)
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize="small")
    return _img(fig, f"{part}: metric against k")


def _segment_section(
    segments: Mapping[str, Any], order: list[str], colours: dict[str, str], ours: str | None
) -> list[str]:
    names = list(segments)
    metrics = _keys(
        _mapping(v) for by_model in segments.values() for v in _mapping(by_model).values()
    )
    out = ["<h2>Segments</h2>"]
    for metric in metrics:
        rows = {
            name: [_mapping(_mapping(segments[s]).get(name)).get(metric) for s in names]
            for name in order
        }
        ranked = metric not in _UNRANKED
        out.append(f"<h3>{_esc(metric)} by segment</h3>")
        out.append(_table(names, rows, ours=ours, ranked=ranked))
        if ranked:
            out.append(_bar_plot(metric, names, rows, order, colours))
    return out


def _bar_plot(
    metric: str,
    groups: list[str],
    rows: Mapping[str, list[Any]],
    order: list[str],
    colours: dict[str, str],
) -> str:
    width = max(5.0, 0.55 * len(groups) * max(1, len(order)))
    fig = Figure(figsize=(width, 3.0))
    fig.subplots_adjust(left=0.7 / width, right=1 - 0.15 / width, bottom=0.12, top=0.95)
    ax = fig.add_subplot()
    bar = 0.8 / max(1, len(order))
    x = np.arange(len(groups))
    for i, name in enumerate(order):
        ys = [float(v) if _is_number(v) else np.nan for v in rows[name]]
        ax.bar(x + (i - (len(order) - 1) / 2) * bar, ys, bar, label=name, color=colours[name])
    ax.set_xticks(x, groups)
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", ncols=min(len(order), 4))
    return _img(fig, f"{metric} by segment")


# --- generic sections ---------------------------------------------------------------------


def _generic_section(name: str, value: Any) -> list[str]:
    heading = name.replace("_", " ")
    out = [f"<h2>{_esc(heading[:1].upper() + heading[1:])}</h2>"]
    depth = _depth(value)
    if depth == 0:
        out.append(f"<p>{_cell(value)}</p>")
    elif depth == 1:
        out.append(_kv_table(dict(value)))
    elif depth == 2:
        cols = _keys(_mapping(v) for v in value.values())
        rows = {str(r): [_mapping(v).get(c) for c in cols] for r, v in value.items()}
        out.append(_table(cols, rows))
        if len(cols) > 1 and all(_is_float_key(c) for c in cols):
            out.append(_line_plot(name, "value", cols, rows, _AXIS_LABELS.get(name, "key")))
    elif depth == 3:
        middles = _keys(_mapping(v) for v in value.values())
        fields = _keys(_mapping(m) for v in value.values() for m in _mapping(v).values())
        axis = _AXIS_LABELS.get(name, "key")
        for field in fields:
            rows = {
                str(r): [_mapping(_mapping(v).get(m)).get(field) for m in middles]
                for r, v in value.items()
            }
            out.append(f"<h3>{_esc(field)} by {_esc(axis)}</h3>")
            out.append(_table(middles, rows, ranked=field not in _UNRANKED))
            out.append(_line_plot(name, field, middles, rows, axis))
    else:
        out.append(_kv_table(_flatten(value)))
    return out


def _line_plot(
    section: str, field: str, xs: list[str], rows: Mapping[str, list[Any]], axis: str
) -> str:
    numeric = all(_is_float_key(x) for x in xs)
    positions = [float(x) for x in xs] if numeric else list(range(len(xs)))
    fig = Figure(figsize=(6.5, 3.2))
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.15, top=0.9)
    ax = fig.add_subplot()
    colours = _colours(list(rows))
    for name, values in rows.items():
        pts = [
            (p, float(v))
            for p, v in zip(positions, values, strict=True)
            if _is_number(v) and math.isfinite(float(v))
        ]
        if pts:
            pts.sort()
            px, py = zip(*pts, strict=True)
            ax.plot(px, py, marker="o", label=name, color=colours[name])
    if not numeric:
        ax.set_xticks(positions, xs)
    ax.set_xlabel(axis)
    ax.set_ylabel(field)
    ax.set_title(f"{field} vs {axis}")
    ax.grid(alpha=0.3)
    if rows:
        ax.legend(fontsize="small")
    return _img(fig, f"{section}: {field} vs {axis}")


# --- HTML pieces --------------------------------------------------------------------------


def _table(
    columns: Sequence[str],
    rows: Mapping[str, Sequence[Any]],
    *,
    ours: str | None = None,
    ranked: bool = True,
) -> str:
    best: list[float | None] = []
    for j, col in enumerate(columns):
        finite = [float(r[j]) for r in rows.values() if _is_number(r[j])]
        finite = [v for v in finite if math.isfinite(v)]
        rank = ranked and col not in _UNRANKED and len(finite) > 1
        best.append(max(finite) if rank else None)
    head = "".join(f"<th>{_esc(str(c))}</th>" for c in columns)
    lines = [f"<table><thead><tr><th></th>{head}</tr></thead><tbody>"]
    for name, values in rows.items():
        label = _esc(name) + (" <span class='ours'>(ours)</span>" if name == ours else "")
        cells = []
        for j, v in enumerate(values):
            text = _cell(v)
            top = best[j]
            if top is not None and _is_number(v) and float(v) == top:
                text = f"<b>{text}</b>"
            cells.append(f"<td>{text}</td>")
        cls = " class='ours-row'" if name == ours else ""
        lines.append(f"<tr{cls}><th>{label}</th>{''.join(cells)}</tr>")
    if ours is not None and ours in rows and len(rows) > 1 and any(b is not None for b in best):
        lines.append(_lift_row(columns, rows, ours, best))
    lines.append("</tbody></table>")
    if any(b is not None for b in best):
        lines.append("<p class='note'>Best value of each column in bold.</p>")
    return "\n".join(lines)


def _lift_row(
    columns: Sequence[str],
    rows: Mapping[str, Sequence[Any]],
    ours: str,
    best: Sequence[float | None],
) -> str:
    """Ours relative to the best baseline of each ranked column, e.g. ``+12.0%``."""
    cells = []
    for j in range(len(columns)):
        mine = rows[ours][j]
        others = [
            float(r[j])
            for name, r in rows.items()
            if name != ours and _is_number(r[j]) and math.isfinite(float(r[j]))
        ]
        if best[j] is None or not _is_number(mine) or not others or max(others) == 0:
            cells.append("<td>—</td>")
            continue
        lift = float(mine) / max(others) - 1.0
        cells.append(f"<td>{lift:+.1%}</td>")
    return f"<tr class='lift'><th>{_esc(ours)} vs best baseline</th>{''.join(cells)}</tr>"


def _kv_table(values: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{_esc(str(k))}</th><td>{_cell(v)}</td></tr>" for k, v in values.items()
    )
    return f"<table class='kv'><tbody>{rows}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, list | tuple):
        return _esc(", ".join(str(v) for v in value))
    return _esc(str(value))


def _img(fig: Figure, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"<figure><img alt='{_esc(alt)}' src='data:image/png;base64,{data}'></figure>"


def _page(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
        color: #222; padding: 0 1rem; }}
h1 {{ font-size: 1.6rem; }} h2 {{ font-size: 1.25rem; margin-top: 2rem;
        border-bottom: 1px solid #ddd; }} h3 {{ font-size: 1.05rem; }}
table {{ border-collapse: collapse; margin: 0.6rem 0; font-size: 0.85rem; }}
th, td {{ border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; }}
thead th {{ background: #f4f4f4; }} tbody th {{ text-align: left; font-weight: 600; }}
table.kv td {{ text-align: left; }}
tr.lift {{ color: #555; font-style: italic; }}
tr.ours-row {{ background: #eef6ff; }} .ours {{ color: #1f5fa8; font-weight: normal; }}
.meta, .note {{ color: #666; font-size: 0.85rem; }}
figure {{ margin: 0.5rem 0 1.5rem; }} img {{ max-width: 100%; }}
</style></head>
<body>
{body}
</body></html>
"""


# --- helpers ------------------------------------------------------------------------------


def _colours(names: list[str]) -> dict[str, str]:
    palette = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    ]  # fmt: skip
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def _depth(value: Any) -> int:
    """0 for a scalar, 1 for a mapping of scalars, 2 for a mapping of those, ...; -1 if mixed."""
    if not isinstance(value, Mapping):
        return 0 if value is None or isinstance(value, str | int | float | bool) else -1
    if not value:
        return 1
    depths = {_depth(v) for v in value.values()}
    if len(depths) != 1 or -1 in depths:
        return -1
    return depths.pop() + 1


def _keys(mappings: Iterable[Any]) -> list[str]:
    """Union of keys in first-seen order."""
    seen: dict[str, None] = {}
    for m in mappings:
        if isinstance(m, Mapping):
            for k in m:
                seen[k] = None
        elif isinstance(m, str):
            seen[m] = None
    return list(seen)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_float_key(key: Any) -> bool:
    try:
        float(key)
    except (TypeError, ValueError):
        return False
    return True


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {prefix or "value": value}
    out: dict[str, Any] = {}
    for k, v in value.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _column_bytes(s: pl.Series) -> Iterable[bytes]:
    yield s.is_null().to_numpy().astype(np.uint8).tobytes()
    dtype = s.dtype
    if dtype == pl.String:
        filled = s.fill_null("")
        yield filled.str.len_bytes().cast(pl.UInt32).to_numpy().astype("<u4").tobytes()
        yield str(filled.str.join("").item()).encode("utf-8")
    elif dtype == pl.Date:
        yield s.cast(pl.Int32).fill_null(0).to_numpy().astype("<i4").tobytes()
    elif isinstance(dtype, pl.Datetime):
        us = s.dt.convert_time_zone("UTC").dt.replace_time_zone(None) if dtype.time_zone else s
        yield (
            us.cast(pl.Datetime("us"))
            .cast(pl.Int64)
            .fill_null(0)
            .to_numpy()
            .astype("<i8")
            .tobytes()
        )
    elif dtype == pl.Boolean:
        yield s.fill_null(False).to_numpy().astype(np.uint8).tobytes()
    elif dtype.is_numeric():
        arr = s.cast(pl.Float64).fill_null(0.0).to_numpy().astype("<f8")
        yield np.where(np.isnan(arr), np.nan, arr).astype("<f8").tobytes()
    else:
        yield str(s.cast(pl.String).fill_null("").str.join("\x1f").item()).encode("utf-8")
