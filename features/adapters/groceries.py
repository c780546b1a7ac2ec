"""Groceries (R package arules): 9,835 point-of-sale baskets of one month -> the data contract.

The source has baskets and item labels only: no customers, times, quantities or prices. Each
basket becomes one order of its own anonymous customer; its time is SYNTHETIC (baskets spread
evenly over a 30-day month in index order); every line is one unit at a price of 1.0. The
dataset is therefore good for co-occurrence (association, cross-sell) checks, not for anything
that needs repeat customers, real times or money.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import polars as pl

from features.adapters.base import (
    Adapter,
    Conversion,
    Sources,
    count_reasons,
    kept,
    with_exclusions,
)
from features.adapters.report import Flow
from features.columns import Col

NAME: Final = "groceries_arules"
BASKETS: Final = "groceries_baskets.parquet"
ITEMS: Final = "groceries_items.parquet"
INPUTS: Final[dict[str, dict[str, pl.DataType]]] = {
    BASKETS: {"basket_id": pl.Int64(), "item_id": pl.Int64()},
    ITEMS: {
        "item_id": pl.Int64(),
        "item": pl.String(),
        "level2": pl.String(),
        "level1": pl.String(),
    },
}

# the synthetic calendar: basket i (1-based) is at START + (i - 1) * MONTH / number of baskets
START: Final = datetime(2000, 1, 1)
MONTH: Final = timedelta(days=30)
PRICE: Final = 1.0
DEPARTMENT: Final = "department"
LINES: Final = "__lines"

UNKNOWN_ITEM: Final = "basket lines whose item_id is not in groceries_items"
REASONS: Final = (UNKNOWN_ITEM,)
MERGED: Final = "duplicate (basket, item) lines, summed into one row"


def customer_of_basket(basket_id: pl.Expr) -> pl.Expr:
    """The anonymous customer of a basket: one per basket, ``basket-<id>``."""
    return pl.concat_str(pl.lit("basket-"), basket_id.cast(pl.String))


def synthetic_time(basket_id: pl.Expr, n_baskets: int) -> pl.Expr:
    """Basket index spread evenly over `MONTH` from `START`, in whole seconds (not data).

    >>> pl.select(synthetic_time(pl.lit(2), 30).alias("ts"))["ts"][0]
    datetime.datetime(2000, 1, 2, 0, 0)
    """
    month_s = int(MONTH.total_seconds())
    seconds = (basket_id.cast(pl.Int64) - 1) * month_s // max(n_baskets, 1)
    return pl.lit(START, dtype=pl.Datetime("us")) + pl.duration(seconds=seconds)


def tag_line_exclusions(baskets: pl.LazyFrame, items: pl.LazyFrame) -> pl.LazyFrame:
    """Basket lines tagged when their item is missing from the catalogue."""
    known = items.select("item_id", pl.lit(True).alias("__known"))
    return with_exclusions(
        baskets.join(known, on="item_id", how="left"),
        [(pl.col("__known").is_null(), UNKNOWN_ITEM)],
    ).drop("__known")


def to_transactions(baskets: pl.LazyFrame, n_baskets: int) -> pl.LazyFrame:
    """One row per (basket, item): quantity = lines, amount = quantity * `PRICE`."""
    return (
        baskets.group_by("basket_id", "item_id")
        .agg(pl.len().alias(LINES))
        .select(
            customer_of_basket(pl.col("basket_id")).alias(Col.CUSTOMER),
            pl.col("basket_id").cast(pl.String).alias(Col.ORDER),
            synthetic_time(pl.col("basket_id"), n_baskets).alias(Col.TS),
            pl.col("item_id").cast(pl.String).alias(Col.ITEM),
            pl.col(LINES).cast(pl.Float64).alias(Col.QUANTITY),
            (pl.col(LINES) * PRICE).cast(pl.Float64).alias(Col.AMOUNT),
            pl.col(LINES),
        )
        .sort(Col.TS, Col.ITEM)
    )


def to_items(items: pl.LazyFrame) -> pl.LazyFrame:
    """The catalogue: category = level2 (55), department = level1 (10), price = `PRICE`."""
    return items.select(
        pl.col("item_id").cast(pl.String).alias(Col.ITEM),
        pl.col("level2").alias(Col.CATEGORY),
        pl.lit(PRICE).alias(Col.PRICE),
        pl.col("item").alias(Col.NAME),
        pl.col("level1").alias(DEPARTMENT),
    ).sort(Col.ITEM)


def convert(sources: Sources) -> Conversion:
    """Convert the Groceries baskets; see the module docstring."""
    raw_items = sources[ITEMS]
    lines = tag_line_exclusions(sources[BASKETS], raw_items).collect()
    excluded = count_reasons(lines, REASONS)
    basket_lines = kept(lines)
    n_baskets = int(basket_lines.select(pl.col("basket_id").max().fill_null(0)).item())
    merged = to_transactions(basket_lines.lazy(), n_baskets).collect()
    transactions = merged.drop(LINES)
    items = to_items(raw_items).collect()
    flows = (
        Flow(
            source=BASKETS,
            table="transactions",
            read=lines.height,
            written=transactions.height,
            excluded=excluded,
            merged={MERGED: int((merged[LINES] - 1).sum())},
        ),
        Flow(source=ITEMS, table="items", read=items.height, written=items.height),
    )
    notes = (
        "customer_id = 'basket-<basket_id>': one anonymous customer per basket (the source has "
        "no customers), so every customer has exactly one order.",
        f"ts is SYNTHETIC: basket i at {START:%Y-%m-%d} + (i - 1) x 30 days / {n_baskets:,}, "
        "taking the arules basket order as time order (not verifiable).",
        "quantity = 1 per (basket, item); no prices exist, so amount = quantity x 1.0 and "
        "items.price = 1.0 (amounts count items, not money).",
        "items: item_id = arules item index, name = label, category = level2 (55 groups), "
        "department = level1 (10 groups).",
        "No customers or offers tables: the data carries neither.",
    )
    return Conversion(
        tables={"transactions": transactions, "items": items}, flows=flows, notes=notes
    )


ADAPTER: Final = Adapter(
    name=NAME,
    summary="Groceries (arules): 9,835 one-month POS baskets over 169 item groups",
    inputs=INPUTS,
    convert=convert,
)
