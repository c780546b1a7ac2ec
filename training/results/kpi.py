"""The loyalty programme's health by calendar month: purchases, churn, offers, points.

Periods are the calendar months intersecting ``[start, end)`` (the first and last may be
partial; each period's ``days`` says how long it is). For a period ``[a, b)``, with the
conventions of `features.orders` (a *purchase order* has at least one sale line; its time is
its earliest line; net amounts count returns) and the lifecycle stages of `features.lifecycle`
(thresholds from `FeatureConfig`):

- ``buyers``: customers with a purchase order in the period; ``purchase_orders``: their count;
  ``revenue``: net amount of every order in the period (returns included).
- ``average_check``: mean net amount of the period's purchase orders.
- ``purchase_frequency``: purchase orders / buyers.
- ``repeat_purchase_rate``: share of the period's buyers with at least two purchase orders
  before ``b`` (all history, so a first and second purchase in the same month count).
- ``customer_base``: customers known before ``b`` (`features.build.population`: registered,
  bought or had ledger movements before ``b``); ``activity_coefficient`` = buyers /
  customer_base.
- ``churn_rate``: of the customers *alive* at ``a`` (stage first_purchase, repeat, active or
  at_risk), the share whose stage at ``b`` is sleeping or lost.
- ``reactivation_rate``: of the customers *dormant* at ``a`` (sleeping or lost), the share
  with a purchase order in the period.
- offers (when the dataset has them; control rows excluded): ``offers_sent`` (sent_at in the
  period), ``offers_redeemed`` (of those, converted), ``redemption_rate``; ``offers_shown`` and
  ``shown_rate`` when offers carry a boolean ``shown`` column; ``held_out`` control rows.
- ``offer_revenue``: revenue of converted offers whose ``converted_at`` is in the period;
  ``offer_revenue_share`` = offer_revenue / revenue.
- points (when the dataset has a bonus_ledger; `features.loyalty` rules): ``points_outstanding``
  (sum of balances at ``b``), ``points_expiring_30d`` (expiring in ``(b, b + 30 days]`` unless
  spent first), ``points_accrued`` / ``points_redeemed`` (positive / minus negative ledger
  movements in the period).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

import polars as pl

from features.build import default_as_of, population
from features.columns import Col
from features.config import FeatureConfig
from features.dataset import Dataset
from features.lifecycle import stage_expr
from features.loyalty import bonus_state
from features.names import Feat, Stage
from features.orders import IS_PURCHASE, NET, customer_totals, orders_before

SHOWN: Final = "shown"
EXPIRY_WINDOW_DAYS = 30
ALIVE = (Stage.FIRST_PURCHASE, Stage.REPEAT, Stage.ACTIVE, Stage.AT_RISK)
DORMANT = (Stage.SLEEPING, Stage.LOST)

DEFINITIONS: dict[str, str] = {
    "days": "days of the month inside the report period",
    "buyers": "customers with a purchase order (an order with a sale line) in the month",
    "purchase_orders": "purchase orders in the month",
    "revenue": "net amount of every order in the month (sales minus returns)",
    "average_check": "mean net amount of the month's purchase orders",
    "purchase_frequency": "purchase orders / buyers",
    "repeat_purchase_rate": (
        "share of the month's buyers with at least two purchase orders before the month's end"
    ),
    "customer_base": "customers known before the month's end (registered, bought or had points)",
    "activity_coefficient": "buyers / customer_base",
    "churn_rate": (
        "of customers alive at the month's start (first_purchase, repeat, active, at_risk), "
        "the share sleeping or lost at its end"
    ),
    "reactivation_rate": (
        "of customers sleeping or lost at the month's start, the share who bought in the month"
    ),
    "offers_sent": "offers (not control hold-outs) sent in the month",
    "offers_shown": "of those, shown (only when offers has a boolean 'shown' column)",
    "shown_rate": "offers_shown / offers_sent",
    "offers_redeemed": "of the offers sent in the month, those converted (redeemed)",
    "redemption_rate": "offers_redeemed / offers_sent",
    "held_out": "control rows (customers held out of a campaign) sent in the month",
    "offer_revenue": "revenue of converted offers whose converted_at is in the month",
    "offer_revenue_share": "offer_revenue / revenue",
    "points_outstanding": "sum of customers' point balances at the month's end (bonus liability)",
    "points_expiring_30d": "points that expire in the 30 days after the month's end unless spent",
    "points_accrued": "positive ledger movements in the month",
    "points_redeemed": "minus the negative ledger movements in the month",
}


class KpiError(Exception):
    """The KPIs cannot be computed for this dataset or period (the message says why)."""


@dataclass(frozen=True)
class KpiResult:
    """The KPI results document and the files written."""

    results: dict[str, Any]
    files: list[Path]

    def table(self) -> str:
        """The monthly KPIs as a plain-text table (what the CLI prints)."""
        return format_table(self.results)


def months(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Calendar-month periods covering ``[start, end)``, cut to it.

    >>> [(a.day, b.month) for a, b in months(datetime(2024, 1, 15), datetime(2024, 3, 2))]
    [(15, 2), (1, 3), (1, 3)]
    """
    if not start < end:
        raise KpiError(f"period: 'from' ({start}) must be before 'to' ({end})")
    out = []
    a = start
    while a < end:
        first = date(a.year, a.month, 1)
        nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        b = min(end, datetime.combine(nxt, time()))
        out.append((a, b))
        a = b
    return out


def kpi_results(
    ds: Dataset,
    start: datetime | date | None = None,
    end: datetime | date | None = None,
    *,
    config: FeatureConfig | None = None,
) -> dict[str, Any]:
    """The JSON-able KPI document (no files written); see the module docstring."""
    config = config or FeatureConfig()
    tx = ds.require("transactions", "the KPI report")
    start_dt = _as_datetime(start, "from") if start is not None else _first_day(tx)
    end_dt = _as_datetime(end, "to") if end is not None else default_as_of(ds)
    periods = months(start_dt, end_dt)
    orders = orders_before(tx, as_of=end_dt).collect().lazy()
    purchases = orders.filter(pl.col(IS_PURCHASE))
    notes: list[str] = []
    stages: dict[datetime, pl.DataFrame] = {}

    def stage_at(t: datetime) -> pl.DataFrame:
        if t not in stages:
            stages[t] = (
                customer_totals(orders, as_of=t)
                .select(
                    Col.CUSTOMER,
                    stage_expr(pl.col(Feat.RECENCY_DAYS), pl.col(Feat.FREQUENCY), config)
                    .cast(pl.String)
                    .alias("_stage"),
                )
                .collect()
            )
        return stages[t]

    offers = ds.offers
    if offers is None:
        notes.append("no offers table: offer engagement and offer revenue are left out")
    elif SHOWN not in offers.collect_schema():
        notes.append(
            "offers has no 'shown' column: offers shown are not in the contract and are left out"
        )
    if offers is not None and offers.select(pl.col(Col.REVENUE).count()).collect().item() == 0:
        notes.append("offers.revenue is null everywhere: offer-driven revenue is unknown")
    ledger = ds.bonus_ledger
    if ledger is None:
        notes.append("no bonus_ledger: points outstanding and expiring are left out")
    elif Col.EXPIRES_AT not in ledger.collect_schema():
        notes.append("bonus_ledger has no expires_at: expiring points are left out")
    ledger_config = replace(config, expiry_windows_days=(EXPIRY_WINDOW_DAYS,))

    rows: dict[str, dict[str, Any]] = {}
    for a, b in periods:
        row: dict[str, Any] = {"days": round((b - a).total_seconds() / 86_400, 2)}
        in_period = (pl.col(Col.TS) >= a) & (pl.col(Col.TS) < b)
        month_orders = orders.filter(in_period)
        month_purchases = purchases.filter(in_period)
        agg = month_purchases.select(
            pl.col(Col.CUSTOMER).n_unique().alias("buyers"),
            pl.len().alias("purchase_orders"),
            pl.col(NET).mean().alias("average_check"),
        ).collect()
        buyers = int(agg["buyers"][0])
        n_orders = int(agg["purchase_orders"][0])
        revenue = float(month_orders.select(pl.col(NET).sum()).collect().item() or 0.0)
        row["buyers"] = buyers
        row["purchase_orders"] = n_orders
        row["revenue"] = revenue
        row["average_check"] = agg["average_check"][0]
        row["purchase_frequency"] = n_orders / buyers if buyers else None
        history = (
            purchases.filter(pl.col(Col.TS) < b).group_by(Col.CUSTOMER).agg(pl.len().alias("_n"))
        )
        repeaters = (
            month_purchases.select(Col.CUSTOMER)
            .unique()
            .join(history, on=Col.CUSTOMER)
            .filter(pl.col("_n") >= 2)
            .select(pl.len())
            .collect()
            .item()
        )
        row["repeat_purchase_rate"] = repeaters / buyers if buyers else None
        base = int(population(ds, as_of=b).select(pl.len()).collect().item())
        row["customer_base"] = base
        row["activity_coefficient"] = buyers / base if base else None
        before, after = stage_at(a), stage_at(b)
        alive = before.filter(pl.col("_stage").is_in(ALIVE))
        churned = alive.join(after, on=Col.CUSTOMER, suffix="_end").filter(
            pl.col("_stage_end").is_in(DORMANT)
        )
        row["alive_at_start"] = alive.height
        row["churned"] = churned.height
        row["churn_rate"] = churned.height / alive.height if alive.height else None
        dormant = before.filter(pl.col("_stage").is_in(DORMANT))
        month_buyers = month_purchases.select(Col.CUSTOMER).unique().collect()
        back = dormant.join(month_buyers, on=Col.CUSTOMER, how="semi").height
        row["dormant_at_start"] = dormant.height
        row["reactivated"] = back
        row["reactivation_rate"] = back / dormant.height if dormant.height else None
        if offers is not None:
            row.update(_offer_kpis(offers, a, b, revenue))
        if ledger is not None:
            row.update(_points_kpis(ledger, a, b, ledger_config))
        rows[a.strftime("%Y-%m")] = row
    partial = [m for (a, b), m in zip(periods, rows, strict=True) if not _whole_month(a, b)]
    if partial:
        notes.append(f"partial months (cut by the period): {', '.join(partial)}")
    defs = {k: v for k, v in DEFINITIONS.items() if any(k in r for r in rows.values())}
    return {
        "period": {
            "from": str(start_dt),
            "to": str(end_dt),
            "months": len(rows),
            "lifecycle_thresholds_days": {
                "at_risk": config.at_risk_after_days,
                "sleeping": config.sleeping_after_days,
                "lost_after": config.lost_after_days,
            },
        },
        "months": rows,
        "definitions": defs,
        "notes": notes,
    }


def kpi_report(
    ds: Dataset,
    start: datetime | date | None,
    end: datetime | date | None,
    out: Path,
    *,
    config: FeatureConfig | None = None,
) -> KpiResult:
    """Compute the monthly KPIs and write ``report.html`` and ``metrics.json`` into ``out``."""
    from training.results.render import render_kpi

    results = kpi_results(ds, start, end, config=config)
    return KpiResult(results=results, files=render_kpi(results, Path(out)))


def format_table(results: dict[str, Any]) -> str:
    """Months as rows, the main KPIs as columns, as plain text."""
    cols = [
        "buyers",
        "average_check",
        "purchase_frequency",
        "repeat_purchase_rate",
        "activity_coefficient",
        "churn_rate",
        "reactivation_rate",
        "redemption_rate",
        "offer_revenue",
        "points_outstanding",
    ]
    months_ = results["months"]
    shown = [c for c in cols if any(c in r for r in months_.values())]
    head = f"{'month':8}" + "".join(f"{c[:14]:>15}" for c in shown)
    lines = [head]
    for m, row in months_.items():
        lines.append(f"{m:8}" + "".join(f"{_fmt(row.get(c)):>15}" for c in shown))
    return "\n".join(lines)


def _offer_kpis(offers: pl.LazyFrame, a: datetime, b: datetime, revenue: float) -> dict[str, Any]:
    schema = offers.collect_schema()
    control = pl.col(Col.CONTROL).fill_null(False) if Col.CONTROL in schema else pl.lit(False)
    sent = offers.filter((pl.col(Col.SENT_AT) >= a) & (pl.col(Col.SENT_AT) < b))
    converted = pl.col(Col.CONVERTED).fill_null(False)
    aggs = [
        (~control).sum().alias("offers_sent"),
        (converted & ~control).sum().alias("offers_redeemed"),
        control.sum().alias("held_out"),
    ]
    if SHOWN in schema:
        aggs.append((pl.col(SHOWN).fill_null(False) & ~control).sum().alias("offers_shown"))
    got = sent.select(aggs).collect().row(0, named=True)
    out: dict[str, Any] = {k: int(v or 0) for k, v in got.items()}
    n = out["offers_sent"]
    if "offers_shown" in out:
        out["shown_rate"] = out["offers_shown"] / n if n else None
    out["redemption_rate"] = out["offers_redeemed"] / n if n else None
    at = pl.col(Col.CONVERTED_AT)
    got = (
        offers.filter(converted & ~control & (at >= a) & (at < b))
        .select(pl.len().alias("n"), pl.col(Col.REVENUE).count().alias("known"),
                pl.col(Col.REVENUE).sum().alias("sum"))
        .collect()
        .row(0, named=True)
    )  # fmt: skip
    if got["n"] and not got["known"]:  # converted offers, none with a revenue: unknown, not 0
        out["offer_revenue"] = out["offer_revenue_share"] = None
        return out
    out["offer_revenue"] = float(got["sum"] or 0.0)
    out["offer_revenue_share"] = out["offer_revenue"] / revenue if revenue > 0 else None
    return out


def _points_kpis(
    ledger: pl.LazyFrame, a: datetime, b: datetime, config: FeatureConfig
) -> dict[str, Any]:
    state = bonus_state(ledger, as_of=b, config=config)
    expiring = Feat.points_expiring(EXPIRY_WINDOW_DAYS)
    has_expiry = expiring in state.collect_schema()
    sums = state.select(
        pl.col(Feat.BONUS_BALANCE).sum(),
        *([pl.col(expiring).sum()] if has_expiry else []),
    ).collect()
    points = pl.col(Col.POINTS)
    moves = (
        ledger.filter((pl.col(Col.TS) >= a) & (pl.col(Col.TS) < b))
        .select(
            points.filter(points > 0).sum().alias("points_accrued"),
            (-points.filter(points < 0).sum()).alias("points_redeemed"),
        )
        .collect()
        .row(0, named=True)
    )
    out: dict[str, Any] = {"points_outstanding": float(sums[Feat.BONUS_BALANCE][0] or 0.0)}
    if has_expiry:
        out["points_expiring_30d"] = float(sums[expiring][0] or 0.0)
    out["points_accrued"] = float(moves["points_accrued"] or 0.0)
    out["points_redeemed"] = float(moves["points_redeemed"] or 0.0)
    return out


def _first_day(tx: pl.LazyFrame) -> datetime:
    first = tx.select(pl.col(Col.TS).min()).collect().item()
    if first is None:
        raise KpiError("transactions has no timestamps: pass --from and --to")
    return datetime.combine(first.date(), time())


def _as_datetime(value: datetime | date, name: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise KpiError(f"{name}: must be a naive datetime (no time zone), got {value!r}")
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    raise KpiError(f"{name}: must be a date or datetime, got {value!r}")


def _whole_month(a: datetime, b: datetime) -> bool:
    nxt = a + timedelta(days=32)
    return a.day == 1 and a.time() == time() and b == datetime(nxt.year, nxt.month, 1)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)
