"""What a campaign measurably changed: its treated customers against its held-out control group.

Unit of analysis: the customer. A campaign's customers are the ``offers`` rows with its
``campaign_id``. A row is *control* when ``control`` is true, or (``control`` absent or null)
when ``offer_type`` is ``none``; a customer is control when all their rows are, treated when
none are; customers with rows in both arms are left out and counted. A customer with several
rows takes the offer type and bonus of the earliest one (``sent_at``) and counts once.

Outcomes, from the transactions in the customer's attribution window
``[sent_at, sent_at + window_days)`` (``sent_at`` = the customer's earliest row, so a control
customer's window starts when they were held out):

- converted: at least one purchase order (an order with a sale line) in the window;
- revenue: net amount of all lines in the window (sales minus returns);
- margin: sum of ``amount * items.margin`` over those lines (``items.margin`` is the fraction
  of price the shop keeps). Lines whose item has no margin get the catalogue's mean margin
  (counted). Without any margin (no ``items`` table, or no ``margin`` column) the margin
  figures need ``margin_rate``; otherwise they are left out and the verdict cannot be made;
- bonus paid: the bonus of the customer's converted (redeemed) offer rows.

Effects (treated minus control, per customer, `training.results.stats.diff_means`, Welch 95%
intervals): conversion rate, revenue, margin and margin net of bonus; incremental conversions
and incremental net margin are those per-customer effects times the number treated; ROI is
incremental net margin divided by bonus paid (delta-method interval). The verdict: "paid off"
when the interval of incremental margin net of bonus lies above zero, "lost money" when it lies
below, else "not enough data to tell" (always so when either arm has fewer than `MIN_GROUP`
customers: the normal approximation needs both groups to be of some size).

Breakdowns: by offer type and bonus level the treated customers of that arm are compared with
the whole control group (arms are randomised within one control group); by RFM segment and
lifecycle stage (features as of the campaign start) both arms are restricted to the group.

Predicted vs realised: when the offers rows carry ``expected_uplift`` (and/or
``expected_profit``), customers (both arms: control customers carry predictions too) are cut
into deciles of the prediction; per decile the realised uplift is treated conversion minus
control conversion (and realised profit is the net-margin difference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from features.build import customer_features
from features.columns import Col, OfferType
from features.config import FeatureConfig
from features.dataset import Dataset, DatasetError
from features.names import Feat
from training.results import planner
from training.results.stats import (
    NOT_ENOUGH,
    Estimate,
    diff_means,
    ratio_of_effect,
    verdict,
)

EXPECTED_UPLIFT: Final = "expected_uplift"
EXPECTED_PROFIT: Final = "expected_profit"

# per-customer outcome columns
CONVERTED: Final = "converted"
REVENUE: Final = "revenue"
MARGIN: Final = "margin"
BONUS_PAID: Final = "bonus_paid"
NET_MARGIN: Final = "net_margin"
REDEEMED: Final = "redeemed"
ROWS: Final = "rows"
BONUS_LEVEL: Final = "bonus_level"
UNKNOWN_GROUP: Final = "unknown"
_MARGIN_RATE: Final = "_margin_rate"

DECILES = 10
# fewest customers per arm for a verdict: below it the normal approximation (and a sample
# variance that may well be 0) cannot be trusted, whatever the interval says
MIN_GROUP = 30
PLAN_TARGETS = (0.01, 0.02, 0.05)


class CampaignError(Exception):
    """The campaign cannot be measured from this dataset (the message says why)."""


@dataclass(frozen=True)
class Outcomes:
    """One row per campaign customer with arm, offer and window outcomes; what was left out."""

    frame: pl.DataFrame
    has_margin: bool
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CampaignResult:
    """The measured campaign: the verdict, the full results document and the files written."""

    campaign_id: str
    verdict: str
    results: dict[str, Any]
    files: list[Path]

    def headline(self) -> str:
        """The headline table as text (what the CLI prints)."""
        return format_headline(self.results)


def campaign_rows(offers: pl.LazyFrame, campaign_id: str) -> pl.DataFrame:
    """The offers rows of ``campaign_id`` with a boolean ``control`` (see the module rules)."""
    schema = offers.collect_schema()
    if Col.CAMPAIGN not in schema:
        raise CampaignError("offers has no campaign_id column: campaigns cannot be told apart")
    rows = offers.filter(pl.col(Col.CAMPAIGN) == campaign_id).collect()
    if rows.height == 0:
        known = (
            offers.select(pl.col(Col.CAMPAIGN).drop_nulls().unique().sort())
            .collect()
            .to_series()
            .head(20)
            .to_list()
        )
        raise CampaignError(
            f"campaign_id {campaign_id!r}: no offers rows (campaigns present: {known})"
        )
    is_none = pl.col(Col.OFFER_TYPE) == OfferType.NONE
    control = pl.col(Col.CONTROL).fill_null(is_none) if Col.CONTROL in schema else is_none
    return rows.with_columns(control.alias(Col.CONTROL))


def customer_outcomes(
    rows: pl.DataFrame,
    tx: pl.LazyFrame,
    items: pl.LazyFrame | None,
    *,
    window_days: int,
    margin_rate: float | None = None,
) -> Outcomes:
    """Per-customer arm, offer and attribution-window outcomes (see the module docstring)."""
    if window_days <= 0:
        raise CampaignError(f"window_days: must be positive, got {window_days}")
    notes: list[str] = []
    counts: dict[str, int] = {"offers_rows": rows.height}
    flagged = rows.filter(pl.col(Col.CONTROL) & (pl.col(Col.OFFER_TYPE) != OfferType.NONE))
    if flagged.height:
        notes.append(
            f"{flagged.height} control rows carry an offer type other than 'none'; "
            "they count as control (the control flag wins)"
        )
    extras = [c for c in (EXPECTED_UPLIFT, EXPECTED_PROFIT) if c in rows.columns]
    converted_offer = pl.col(Col.CONVERTED).fill_null(False)
    per = (
        rows.sort(Col.SENT_AT, Col.OFFER)
        .group_by(Col.CUSTOMER, maintain_order=True)
        .agg(
            pl.col(Col.CONTROL).all().alias("_all_control"),
            pl.col(Col.CONTROL).any().alias("_any_control"),
            pl.col(Col.SENT_AT).first(),
            pl.col(Col.OFFER_TYPE).first(),
            pl.col(Col.BONUS).first(),
            pl.len().alias(ROWS),
            pl.col(Col.BONUS).filter(converted_offer).sum().alias(BONUS_PAID),
            converted_offer.any().alias(REDEEMED),
            *(pl.col(c).cast(pl.Float64).first() for c in extras),
        )
    )
    mixed = per.filter(~pl.col("_all_control") & pl.col("_any_control"))
    if mixed.height:
        notes.append(
            f"{mixed.height} customers have rows in both arms (control and treated) and are "
            "left out"
        )
    counts["customers_in_both_arms"] = mixed.height
    per = per.filter(pl.col("_all_control") | ~pl.col("_any_control")).select(
        Col.CUSTOMER,
        pl.col("_all_control").alias(Col.CONTROL),
        Col.SENT_AT,
        Col.OFFER_TYPE,
        Col.BONUS,
        ROWS,
        BONUS_PAID,
        REDEEMED,
        *extras,
    )
    multi = int((per[ROWS] > 1).sum())
    if multi:
        notes.append(
            f"{multi} customers have several rows in the campaign; each counts once, with the "
            "offer type and bonus of their earliest row and the bonus of every redeemed row"
        )
    counts["customers_with_several_rows"] = multi

    has_margin, margin_expr, joins_items = _margin_expr(items, margin_rate, notes)
    windows = per.lazy().select(
        Col.CUSTOMER,
        pl.col(Col.SENT_AT).alias("_from"),
        (pl.col(Col.SENT_AT) + timedelta(days=window_days)).alias("_to"),
    )
    lines = tx.join(windows, on=Col.CUSTOMER, how="inner").filter(
        (pl.col(Col.TS) >= pl.col("_from")) & (pl.col(Col.TS) < pl.col("_to"))
    )
    if items is not None and joins_items:
        lines = lines.join(
            items.select(Col.ITEM, pl.col(Col.MARGIN).alias(_MARGIN_RATE)),
            on=Col.ITEM,
            how="left",
        )
        missing = int(
            lines.filter(pl.col(_MARGIN_RATE).is_null()).select(pl.len()).collect().item()
        )
        counts["window_lines_without_margin"] = missing
        if missing:
            notes.append(
                f"{missing} lines in the attribution windows have an item without a margin; "
                "they get the catalogue's mean margin"
            )
    window_lines = lines.with_columns(margin_expr.alias("_line_margin"))
    per_order = window_lines.group_by(Col.CUSTOMER, Col.ORDER).agg(
        (pl.col(Col.QUANTITY) > 0).any().alias("_purchase"),
        pl.col(Col.AMOUNT).sum().alias("_amount"),
        pl.col("_line_margin").sum().alias("_margin"),
    )
    per_customer = per_order.group_by(Col.CUSTOMER).agg(
        pl.col("_purchase").any().alias(CONVERTED),
        pl.col("_amount").sum().alias(REVENUE),
        pl.col("_margin").sum().alias(MARGIN),
    )
    frame = (
        per.lazy()
        .join(per_customer, on=Col.CUSTOMER, how="left")
        .with_columns(
            pl.col(CONVERTED).fill_null(False),
            pl.col(REVENUE).fill_null(0.0),
            pl.col(MARGIN).fill_null(0.0),
        )
        .with_columns((pl.col(MARGIN) - pl.col(BONUS_PAID)).alias(NET_MARGIN))
        .collect()
    )
    if not has_margin:
        frame = frame.with_columns(
            pl.lit(None, pl.Float64).alias(MARGIN), pl.lit(None, pl.Float64).alias(NET_MARGIN)
        )
    counts["window_lines"] = int(window_lines.select(pl.len()).collect().item())
    last = tx.select(pl.col(Col.TS).max()).collect().item()
    window_end = frame[Col.SENT_AT].max()
    if last is not None and isinstance(window_end, datetime):
        window_end = window_end + timedelta(days=window_days)
        if last < window_end:
            notes.append(
                f"the transactions end at {last}, before the last attribution window closes "
                f"({window_end}): outcomes of late windows are incomplete"
            )
    return Outcomes(frame=frame, has_margin=has_margin, notes=notes, counts=counts)


def measure(
    outcomes: pl.DataFrame, *, has_margin: bool, confidence: float = 0.95
) -> dict[str, Any]:
    """Arms, effects with intervals, and the verdict for treated vs control customers."""
    t = outcomes.filter(~pl.col(Col.CONTROL))
    c = outcomes.filter(pl.col(Col.CONTROL))
    n_t, n_c = t.height, c.height

    def arr(df: pl.DataFrame, col: str) -> np.ndarray:
        return df[col].cast(pl.Float64).to_numpy()

    def diff(col: str) -> Estimate:
        return diff_means(arr(t, col), arr(c, col), confidence=confidence)

    arms = {
        "treated": _arm(t, has_margin),
        "control": _arm(c, has_margin),
    }
    conversion = diff(CONVERTED)
    effects: dict[str, Estimate] = {
        "conversion_uplift": conversion,
        "revenue_per_customer": diff(REVENUE),
        "incremental_conversions": conversion.scaled(n_t),
    }
    if has_margin:
        net = diff(NET_MARGIN)
        effects["margin_per_customer"] = diff(MARGIN)
        effects["net_margin_per_customer"] = net
        effects["incremental_net_margin"] = net.scaled(n_t)
        effects["roi"] = ratio_of_effect(
            arr(t, NET_MARGIN), arr(t, BONUS_PAID), arr(c, NET_MARGIN), confidence=confidence
        )
        decision = verdict(net) if min(n_t, n_c) >= MIN_GROUP else NOT_ENOUGH
        reason = _reason(net, n_t, n_c)
    else:
        decision = NOT_ENOUGH
        reason = "no margin data: incremental margin net of bonus cannot be measured"
    return {
        "treated_customers": n_t,
        "control_customers": n_c,
        "bonus_paid_total": float(t[BONUS_PAID].sum()) if n_t else 0.0,
        "arms": arms,
        "effects": {k: v.as_dict() for k, v in effects.items()},
        "verdict": decision,
        "verdict_reason": reason,
    }


def campaign_report(
    ds: Dataset,
    campaign_id: str,
    *,
    window_days: int = 14,
    out: Path,
    margin_rate: float | None = None,
    config: FeatureConfig | None = None,
) -> CampaignResult:
    """Measure one campaign and write ``report.html`` and ``metrics.json`` into ``out``."""
    from training.results.render import render_campaign  # render imports this module

    results = campaign_results(
        ds, campaign_id, window_days=window_days, margin_rate=margin_rate, config=config
    )
    files = render_campaign(results, Path(out))
    return CampaignResult(
        campaign_id=campaign_id, verdict=str(results["verdict"]), results=results, files=files
    )


def campaign_results(
    ds: Dataset,
    campaign_id: str,
    *,
    window_days: int = 14,
    margin_rate: float | None = None,
    config: FeatureConfig | None = None,
) -> dict[str, Any]:
    """The JSON-able results document of `campaign_report` (no files written)."""
    offers = ds.require("offers", "a campaign report")
    tx = ds.require("transactions", "a campaign report (purchases in the attribution window)")
    rows = campaign_rows(offers, campaign_id)
    outcomes = customer_outcomes(
        rows, tx, ds.items, window_days=window_days, margin_rate=margin_rate
    )
    frame = outcomes.frame
    start = rows[Col.SENT_AT].min()
    if not isinstance(start, datetime):
        raise CampaignError(f"campaign {campaign_id!r}: sent_at is null on every row")
    notes = list(outcomes.notes)
    frame = _with_groups(ds, frame, start, config or FeatureConfig(), notes)
    head = measure(frame, has_margin=outcomes.has_margin)
    if head["control_customers"] == 0:
        notes.append(
            "no control group: no customer of this campaign was held out, so nothing it caused "
            "can be measured (treated figures are descriptive only)"
        )
    results: dict[str, Any] = {
        "campaign": {
            "campaign_id": campaign_id,
            "start": str(start),
            "last_sent_at": str(rows[Col.SENT_AT].max()),
            "window_days": window_days,
            "offers_rows": rows.height,
            "margin": _margin_source(ds, outcomes.has_margin, margin_rate),
            "interval_method": (
                "analytic: Welch (unequal variances, t quantile with Welch-Satterthwaite df) "
                "for differences of proportions and means; delta method for ROI; 95%"
            ),
        },
        **head,
        "breakdowns": {
            "offer_type": _breakdown(frame, Col.OFFER_TYPE, outcomes.has_margin, same=False),
            "bonus": _breakdown(frame, BONUS_LEVEL, outcomes.has_margin, same=False),
            "rfm_segment": _breakdown(frame, Feat.RFM_SEGMENT, outcomes.has_margin, same=True),
            "lifecycle_stage": _breakdown(
                frame, Feat.LIFECYCLE_STAGE, outcomes.has_margin, same=True
            ),
        },
        "calibration": _calibrations(frame, outcomes.has_margin, notes),
        "plan": _plan(head),
        "counts": outcomes.counts,
        "notes": notes,
    }
    return results


def format_headline(results: dict[str, Any]) -> str:
    """A plain-text headline: arms, main effects with intervals, the verdict."""
    arms = results["arms"]
    lines = [
        f"campaign {results['campaign']['campaign_id']}: {results['verdict'].upper()} "
        f"({results['verdict_reason']})",
        f"{'':28}{'treated':>14}{'control':>14}",
    ]
    for key, label in (
        ("customers", "customers"),
        ("conversion_rate", "conversion rate"),
        ("revenue_per_customer", "revenue / customer"),
        ("margin_per_customer", "margin / customer"),
        ("bonus_paid_per_customer", "bonus paid / customer"),
    ):
        lines.append(
            f"{label:28}{_fmt(arms['treated'].get(key)):>14}{_fmt(arms['control'].get(key)):>14}"
        )
    lines.append("effect (treated - control), 95% CI:")
    for key, est in results["effects"].items():
        lines.append(
            f"  {key:26}{_fmt(est['value']):>14}  [{_fmt(est['low'])}, {_fmt(est['high'])}]"
        )
    return "\n".join(lines)


# --- pieces -------------------------------------------------------------------------------


def _margin_expr(
    items: pl.LazyFrame | None, margin_rate: float | None, notes: list[str]
) -> tuple[bool, pl.Expr, bool]:
    """(margin known, the line margin expression, whether lines must join items.margin)."""
    amount = pl.col(Col.AMOUNT)
    if margin_rate is not None:
        if not 0.0 <= margin_rate <= 1.0:
            raise CampaignError(f"margin_rate: must be a fraction in [0, 1], got {margin_rate!r}")
        notes.append(f"margin = amount x {margin_rate:g} (the given margin_rate), for every line")
        return True, amount * margin_rate, False
    if items is None or Col.MARGIN not in items.collect_schema():
        notes.append(
            "no items.margin: margin, margin net of bonus, ROI and the verdict are left out "
            "(pass margin_rate to assume one margin fraction for every line)"
        )
        return False, pl.lit(0.0), False
    mean = items.select(pl.col(Col.MARGIN).mean()).collect().item()
    if mean is None:
        notes.append("items.margin is null for every item: margin figures are left out")
        return False, pl.lit(0.0), False
    return True, amount * pl.col(_MARGIN_RATE).fill_null(float(mean)), True


def _margin_source(ds: Dataset, has_margin: bool, margin_rate: float | None) -> str:
    if margin_rate is not None:
        return f"assumed margin_rate {margin_rate:g}"
    return "items.margin" if has_margin else "none (no items.margin)"


def _with_groups(
    ds: Dataset, frame: pl.DataFrame, start: datetime, config: FeatureConfig, notes: list[str]
) -> pl.DataFrame:
    bonus = pl.col(Col.BONUS)
    label = (
        pl.when(bonus.is_null())
        .then(pl.lit("null"))
        .when(bonus == bonus.round(0))
        .then(bonus.round(0).cast(pl.Int64).cast(pl.String))
        .otherwise(bonus.cast(pl.String))
    )
    frame = frame.with_columns(label.alias(BONUS_LEVEL))
    try:
        # cast after collecting: polars 2.1 drops a lazy Enum -> String cast on this plan
        feats = (
            customer_features(ds, as_of=start, config=config)
            .select(Col.CUSTOMER, Feat.RFM_SEGMENT, Feat.LIFECYCLE_STAGE)
            .collect()
            .with_columns(pl.col(Feat.RFM_SEGMENT, Feat.LIFECYCLE_STAGE).cast(pl.String))
        )
    except (DatasetError, pl.exceptions.ColumnNotFoundError) as exc:
        notes.append(f"customer features unavailable ({exc}): no RFM / lifecycle breakdown")
        return frame.with_columns(
            pl.lit(UNKNOWN_GROUP).alias(Feat.RFM_SEGMENT),
            pl.lit(UNKNOWN_GROUP).alias(Feat.LIFECYCLE_STAGE),
        )
    out = frame.join(feats, on=Col.CUSTOMER, how="left").with_columns(
        pl.col(Feat.RFM_SEGMENT).fill_null(UNKNOWN_GROUP),
        pl.col(Feat.LIFECYCLE_STAGE).fill_null(UNKNOWN_GROUP),
    )
    absent = int((out[Feat.RFM_SEGMENT] == UNKNOWN_GROUP).sum())
    if absent:
        notes.append(
            f"{absent} campaign customers are unknown to the features as of {start} "
            f"(no history, not registered yet): RFM / lifecycle group '{UNKNOWN_GROUP}'"
        )
    return out


def _arm(df: pl.DataFrame, has_margin: bool) -> dict[str, Any]:
    n = df.height

    def mean(col: str) -> float | None:
        return float(df[col].cast(pl.Float64).mean()) if n else None  # type: ignore[arg-type]

    out: dict[str, Any] = {
        "customers": n,
        "conversion_rate": mean(CONVERTED),
        "conversions": int(df[CONVERTED].sum()),
        "revenue_per_customer": mean(REVENUE),
        "revenue_total": float(df[REVENUE].sum()),
        "bonus_paid_per_customer": mean(BONUS_PAID),
        "bonus_paid_total": float(df[BONUS_PAID].sum()),
        "offers_redeemed_share": mean(REDEEMED),
    }
    if has_margin:
        out["margin_per_customer"] = mean(MARGIN)
        out["margin_total"] = float(df[MARGIN].sum())
        out["net_margin_per_customer"] = mean(NET_MARGIN)
    return out


def _reason(net: Estimate, n_treated: int, n_control: int) -> str:
    if min(n_treated, n_control) < MIN_GROUP:
        return (
            f"{n_treated} treated and {n_control} control customers: a verdict needs at least "
            f"{MIN_GROUP} in each group"
        )
    side = "excludes" if net.excludes_zero() else "includes"
    return (
        f"the 95% CI of incremental margin net of bonus per treated customer, "
        f"[{net.low:,.2f}, {net.high:,.2f}], {side} zero"
    )


def _breakdown(
    frame: pl.DataFrame, column: str, has_margin: bool, *, same: bool
) -> dict[str, dict[str, Any]]:
    treated = frame.filter(~pl.col(Col.CONTROL))
    control = frame.filter(pl.col(Col.CONTROL))
    groups = frame[column] if same else treated[column]
    out: dict[str, dict[str, Any]] = {}
    for value in sorted(groups.unique().to_list(), key=_group_order):
        t = treated.filter(pl.col(column) == value)
        c = control.filter(pl.col(column) == value) if same else control
        row: dict[str, Any] = {"treated": t.height, "control": c.height}
        row["conversion_treated"] = float(t[CONVERTED].mean()) if t.height else None  # type: ignore[arg-type]
        row["conversion_control"] = float(c[CONVERTED].mean()) if c.height else None  # type: ignore[arg-type]
        uplift = diff_means(t[CONVERTED].cast(pl.Float64), c[CONVERTED].cast(pl.Float64))
        row["uplift"] = uplift.value
        row["uplift_low"], row["uplift_high"] = uplift.low, uplift.high
        row["bonus_paid"] = float(t[BONUS_PAID].sum())
        if has_margin:
            net = diff_means(t[NET_MARGIN].to_numpy(), c[NET_MARGIN].to_numpy())
            row["net_margin_per_customer"] = net.value
            row["net_margin_low"], row["net_margin_high"] = net.low, net.high
            row["incremental_net_margin"] = net.value * t.height
            big_enough = min(t.height, c.height) >= MIN_GROUP
            row["verdict"] = verdict(net) if big_enough else NOT_ENOUGH
        out[str(value)] = row
    return out


def _group_order(value: Any) -> tuple[int, float, str]:
    """Numbers (bonus levels) in numeric order before other labels, each group in order."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def _calibrations(
    frame: pl.DataFrame, has_margin: bool, notes: list[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    targets = [(EXPECTED_UPLIFT, CONVERTED)]
    if has_margin:
        targets.append((EXPECTED_PROFIT, NET_MARGIN))
    elif EXPECTED_PROFIT in frame.columns:
        notes.append("expected_profit present but no margin: its calibration is left out")
    for predicted, realised in targets:
        if predicted not in frame.columns:
            continue
        known = frame.filter(pl.col(predicted).is_not_null() & pl.col(predicted).is_finite())
        dropped = frame.height - known.height
        if dropped:
            notes.append(
                f"{dropped} customers without a finite {predicted} are left out of its calibration"
            )
        if known.height == 0:
            continue
        out[predicted] = _deciles(known, predicted, realised)
    return out


def _deciles(frame: pl.DataFrame, predicted: str, realised: str) -> dict[str, dict[str, Any]]:
    n = frame.height
    order = np.argsort(frame[predicted].to_numpy(), kind="stable")
    decile = np.empty(n, dtype=np.int64)
    decile[order] = np.arange(n) * DECILES // n + 1
    df = frame.with_columns(pl.Series("_decile", decile))
    out: dict[str, dict[str, Any]] = {}
    for d in range(1, DECILES + 1):
        part = df.filter(pl.col("_decile") == d)
        if part.height == 0:
            continue
        t = part.filter(~pl.col(Col.CONTROL))
        c = part.filter(pl.col(Col.CONTROL))
        est = diff_means(t[realised].cast(pl.Float64), c[realised].cast(pl.Float64))
        out[str(d)] = {
            "customers": part.height,
            "treated": t.height,
            "control": c.height,
            "predicted": float(part[predicted].mean()),  # type: ignore[arg-type]
            "realised": est.value,
            "realised_low": est.low,
            "realised_high": est.high,
        }
    return out


def _plan(head: dict[str, Any]) -> dict[str, Any]:
    n_t, n_c = head["treated_customers"], head["control_customers"]
    audience = n_t + n_c
    base = head["arms"]["control"]["conversion_rate"]
    if base is None or not 0.0 < base < 1.0 or audience < 2:
        base = head["arms"]["treated"]["conversion_rate"]
        source = "treated conversion (no usable control rate)"
    else:
        source = "control conversion"
    if base is None or not 0.0 < base < 1.0 or audience < 2:
        return {"note": "no base conversion rate strictly between 0 and 1: nothing to plan"}
    observed = abs(float(head["effects"]["conversion_uplift"]["value"]))
    targets = [*PLAN_TARGETS]
    if math.isfinite(observed) and observed > 0:
        targets.append(round(observed, 4))
    table = planner.plan_table(audience, float(base), targets=targets)
    table["base_rate_source"] = source
    share = n_c / audience
    table["actual_control_share"] = share
    table["mde_at_actual_share"] = (
        planner.minimum_detectable_effect(audience, float(base), share) if 0 < share < 1 else None
    )
    return table


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


__all__ = [
    "CampaignError",
    "CampaignResult",
    "Outcomes",
    "campaign_report",
    "campaign_results",
    "campaign_rows",
    "customer_outcomes",
    "format_headline",
    "measure",
]
