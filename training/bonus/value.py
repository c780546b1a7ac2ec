"""Expected value of a conversion: the revenue and margin of the order a customer places.

Per customer (as of a cutoff, sale lines only), with ``k = BonusConfig.value_prior_orders``:

- ``expected_check`` = ``(n * mean_check + k * prior_check) / (n + k)``: the customer's mean
  order value shrunk toward the mean order value of everybody (``n`` = the customer's purchase
  orders; a customer without orders gets the prior).
- ``margin_rate`` = ``(margin money + k * prior_check * prior_rate) / (sales + k *
  prior_check)``: the share of their spend the shop keeps (items.margin per line), shrunk the
  same way.
- ``expected_margin`` = ``expected_check * margin_rate``.

Why a per-customer estimate and not a LightGBM regressor: what a customer buys when they
convert follows their own tastes and price tier, which their own past orders measure directly;
with a handful of orders per customer, shrinkage toward the population handles the noisy ones,
and the mean (not the median) is what an expected profit needs. A regressor would mostly
relearn the customer's own mean from the same numbers.

Offer types change the order (a spend-threshold offer asks for a bigger basket). From the offer
history, `fit_revenue_ratios` learns per offer type ``ratio_t = revenue of converted offers /
their customers' expected check``, shrunk toward the control ratio (offer type ``none``) with
``BonusConfig.value_prior_conversions`` pseudo-conversions; the control ratio is shrunk toward
1. The expected order under type ``t`` is then ``expected_check * ratio_t`` and its margin
``expected_check * ratio_t * margin_rate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from features.columns import Col, OfferType
from features.dataset import Dataset
from features.reductions import stable_sum
from training.bonus.config import BonusConfig

FloatArray = npt.NDArray[np.float64]


class ValueModelError(Exception):
    """Order values cannot be estimated from this dataset (the message says why)."""


class Value:
    """Output columns of `customer_value`."""

    ORDERS: Final = "value_orders"
    EXPECTED_CHECK: Final = "expected_check"
    MARGIN_RATE: Final = "margin_rate"
    EXPECTED_MARGIN: Final = "expected_margin"


@dataclass(frozen=True)
class ValuePriors:
    """Population figures the per-customer estimates shrink toward."""

    check: float
    margin_rate: float
    orders: int
    lines_without_margin: int

    def state(self) -> dict[str, float | int]:
        """JSON-able form (for the artifact bundle)."""
        return {
            "check": self.check,
            "margin_rate": self.margin_rate,
            "orders": self.orders,
            "lines_without_margin": self.lines_without_margin,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ValuePriors:
        """Inverse of `state`."""
        return cls(
            check=float(state["check"]),
            margin_rate=float(state["margin_rate"]),
            orders=int(state["orders"]),
            lines_without_margin=int(state["lines_without_margin"]),
        )


def _sale_lines(ds: Dataset, as_of: datetime, config: BonusConfig) -> tuple[pl.LazyFrame, int]:
    tx = ds.require("transactions", "order values (expected check and margin)")
    lines = tx.filter((pl.col(Col.TS) < as_of) & (pl.col(Col.QUANTITY) > 0))
    items = ds.items
    has_margin = items is not None and Col.MARGIN in items.collect_schema()
    if has_margin and items is not None:
        lines = lines.join(items.select(Col.ITEM, Col.MARGIN), on=Col.ITEM, how="left")
    else:
        lines = lines.with_columns(pl.lit(None, dtype=pl.Float64).alias(Col.MARGIN))
    missing = int(lines.select(pl.col(Col.MARGIN).is_null().sum()).collect().item())
    if missing and config.default_margin_rate is None:
        why = "items.margin is absent" if not has_margin else "their item has no margin"
        raise ValueModelError(
            f"{ds.root}: {missing:,} sale lines before {as_of} have no margin ({why}); "
            "set BonusConfig.default_margin_rate to value them"
        )
    rate = pl.col(Col.MARGIN).fill_null(config.default_margin_rate or 0.0)
    return lines.with_columns((pl.col(Col.AMOUNT) * rate).alias("_margin")), missing


def customer_value(
    ds: Dataset,
    *,
    as_of: datetime,
    config: BonusConfig,
    customers: pl.Series | None = None,
    priors: ValuePriors | None = None,
) -> tuple[pl.DataFrame, ValuePriors]:
    """Expected check, margin rate and expected margin per customer (see the module doc).

    Rows: the given ``customers`` (in that order; customers without orders get the priors), or
    every customer with a sale line before ``as_of``. With ``priors`` (e.g. the ones a trained
    model saved) the customers shrink toward those instead of the population of ``ds``.
    """
    lines, missing = _sale_lines(ds, as_of, config)
    orders = (
        lines.group_by(Col.CUSTOMER, Col.ORDER)
        .agg(stable_sum(pl.col(Col.AMOUNT)).alias("_check"), stable_sum(pl.col("_margin")))
        .sort(Col.CUSTOMER, Col.ORDER)
        .collect()
    )
    if orders.height == 0:
        raise ValueModelError(f"{ds.root}: no sale lines before {as_of}; order values unknown")
    if priors is None:
        checks = np.sort(orders["_check"].to_numpy())
        total_sales = math.fsum(checks.tolist())
        prior_check = total_sales / checks.size
        margins = math.fsum(np.sort(orders["_margin"].to_numpy()).tolist())
        prior_rate = margins / total_sales if total_sales > 0 else 0.0
    else:
        prior_check, prior_rate = priors.check, priors.margin_rate
    k = config.value_prior_orders
    per = orders.group_by(Col.CUSTOMER).agg(
        pl.len().alias(Value.ORDERS),
        stable_sum(pl.col("_check")).alias("_sales"),
        stable_sum(pl.col("_margin")).alias("_margin"),
    )
    if customers is not None:
        per = (
            customers.to_frame(Col.CUSTOMER)
            .join(per, on=Col.CUSTOMER, how="left", maintain_order="left")
            .with_columns(
                pl.col(Value.ORDERS).fill_null(0),
                pl.col("_sales").fill_null(0.0),
                pl.col("_margin").fill_null(0.0),
            )
        )
    else:
        per = per.sort(Col.CUSTOMER)
    n = pl.col(Value.ORDERS).cast(pl.Float64)
    check = (pl.col("_sales") + k * prior_check) / (n + k)
    denom = pl.col("_sales") + k * prior_check
    rate = pl.when(denom > 0).then((pl.col("_margin") + k * prior_check * prior_rate) / denom)
    out = per.select(
        Col.CUSTOMER,
        pl.col(Value.ORDERS).cast(pl.Int64),
        check.alias(Value.EXPECTED_CHECK),
        rate.otherwise(prior_rate).alias(Value.MARGIN_RATE),
    ).with_columns(
        (pl.col(Value.EXPECTED_CHECK) * pl.col(Value.MARGIN_RATE)).alias(Value.EXPECTED_MARGIN)
    )
    if k == 0 and out.get_column(Value.EXPECTED_CHECK).is_nan().any():
        raise ValueModelError("value_prior_orders = 0 leaves customers without orders unvalued")
    return out, ValuePriors(prior_check, prior_rate, orders.height, missing)


@dataclass(frozen=True)
class RevenueRatios:
    """Revenue of a converted offer relative to the customer's expected check, per offer type."""

    ratio: dict[str, float]
    conversions: dict[str, int]

    def of(self, offer_type: str) -> float:
        """The ratio of ``offer_type`` (the control ratio for a type never converted)."""
        return self.ratio.get(offer_type, self.ratio[OfferType.NONE])

    def state(self) -> dict[str, dict[str, float] | dict[str, int]]:
        """JSON-able form (for the artifact bundle)."""
        return {"ratio": dict(self.ratio), "conversions": dict(self.conversions)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RevenueRatios:
        """Inverse of `state`."""
        ratio = {str(k): float(v) for k, v in state["ratio"].items()}
        if OfferType.NONE not in ratio:
            raise ValueModelError(f"revenue ratios: state lacks the {OfferType.NONE!r} ratio")
        return cls(
            ratio=ratio, conversions={str(k): int(v) for k, v in state["conversions"].items()}
        )


def fit_revenue_ratios(frame: pl.DataFrame, config: BonusConfig) -> RevenueRatios:
    """Per offer type revenue ratios from offer rows with ``expected_check`` as of sending.

    ``frame`` needs offer_type, converted, revenue and `Value.EXPECTED_CHECK`; converted rows
    without a revenue are left out of the sums (and counted).
    """
    need = [Col.OFFER_TYPE, Col.CONVERTED, Col.REVENUE, Value.EXPECTED_CHECK]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ValueModelError(f"revenue ratios: offer rows lack columns {missing}")
    conv = frame.filter(
        pl.col(Col.CONVERTED)
        & pl.col(Col.REVENUE).is_not_null()
        & pl.col(Value.EXPECTED_CHECK).is_not_null()
    )
    sums = (
        conv.group_by(Col.OFFER_TYPE)
        .agg(
            stable_sum(pl.col(Col.REVENUE)).alias("r"),
            stable_sum(pl.col(Value.EXPECTED_CHECK)).alias("c"),
            pl.len().alias("n"),
        )
        .sort(Col.OFFER_TYPE)
    )
    table = {row[Col.OFFER_TYPE]: row for row in sums.iter_rows(named=True)}
    k = config.value_prior_conversions
    scale = float(conv[Value.EXPECTED_CHECK].mean()) if conv.height else 1.0  # type: ignore[arg-type]
    prior_mass = k * scale
    base = table.get(OfferType.NONE)
    r_none = 1.0 if base is None else (base["r"] + prior_mass) / (base["c"] + prior_mass)
    ratio = {OfferType.NONE: r_none}
    counts = {OfferType.NONE: 0 if base is None else int(base["n"])}
    for offer_type, row in table.items():
        if offer_type == OfferType.NONE:
            continue
        ratio[offer_type] = (row["r"] + prior_mass * r_none) / (row["c"] + prior_mass)
        counts[offer_type] = int(row["n"])
    return RevenueRatios(ratio=ratio, conversions=counts)
