"""Preferences: what categories a customer buys and at which price tier.

Category features use the sold amount of sale lines (``quantity > 0``) before ``as_of``, with
each line's category from ``items``; lines whose item is not in ``items`` are left out here
(`features.validate` reports such lines). With thousands of categories the output stays
narrow: ``top_category`` (most sold amount; ties go to the alphabetically first),
``top_category_share``, ``n_categories`` (distinct categories bought), ``category_entropy``
(Shannon entropy of the shares, natural log; 0 for a single category), and one wide share
column ``cat_share__<slug>`` for each of a bounded list of categories (see `top_categories`).
Shares are null when the customer's sold amount is not positive.

``price_tier``: for each sale line, the percentile of the paid unit price (amount / quantity)
among the catalogue prices (``items.price``) of the item's category, as a mid-rank:
``(#cheaper + 0.5 * #equal) / #items in category``; the customer's value is the mean over
their sale lines, in [0, 1] (0.5 = middle of the range).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import polars as pl

from features.columns import Col
from features.names import Feat
from features.orders import lines_before
from features.reductions import FINE, ordered_sum, stable_sum

_SOLD = "_sold"
_UNIT = "_unit_price"
_PCT = "_price_pct"
_PCT_SUM = "_price_pct_sum"
_LINES = "_lines"
_SLNS = "_s_ln_s"


def _sale_lines(tx: pl.LazyFrame, as_of: datetime) -> pl.LazyFrame:
    return lines_before(tx, as_of=as_of).filter(pl.col(Col.QUANTITY) > 0)


def _price_ladder(items: pl.LazyFrame) -> pl.LazyFrame:
    """Per (category, catalogue price): items at that price, at or below it, in the category."""
    return (
        items.filter(pl.col(Col.PRICE).is_not_null())
        .group_by(Col.CATEGORY, Col.PRICE)
        .agg(pl.len().alias("_n_eq"))
        .sort(Col.CATEGORY, Col.PRICE)
        .with_columns(
            pl.col("_n_eq").cum_sum().over(Col.CATEGORY).alias("_n_le"),
            pl.col("_n_eq").sum().over(Col.CATEGORY).alias("_n_cat"),
        )
        .sort(Col.PRICE)
    )


def category_sales(tx: pl.LazyFrame, *, as_of: datetime, items: pl.LazyFrame) -> pl.LazyFrame:
    """Per (customer, category): sold amount, sale lines and their summed price percentiles.

    The shared input of `category_preferences` and `price_tier` (one pass over the lines).
    """
    lines = _sale_lines(tx, as_of).select(
        Col.CUSTOMER,
        Col.ITEM,
        Col.AMOUNT,
        (pl.col(Col.AMOUNT) / pl.col(Col.QUANTITY)).alias(_UNIT),
    )
    price, unit = pl.col(Col.PRICE), pl.col(_UNIT)
    n_le, n_eq, n_cat = pl.col("_n_le"), pl.col("_n_eq"), pl.col("_n_cat")
    # percentiles per distinct (item, paid unit price): far fewer than lines
    pairs = (
        lines.select(Col.ITEM, _UNIT)
        .unique()
        .join(items.select(Col.ITEM, Col.CATEGORY), on=Col.ITEM, how="inner", validate="m:1")
        .sort(_UNIT)
        .join_asof(
            _price_ladder(items),
            left_on=_UNIT,
            right_on=Col.PRICE,
            by=Col.CATEGORY,
            coalesce=False,
            check_sortedness=False,
        )
        .select(
            Col.ITEM,
            _UNIT,
            Col.CATEGORY,
            pl.when(price.is_null())
            .then(0.0)
            .when(price == unit)
            .then((n_le - 0.5 * n_eq) / n_cat)
            .otherwise(n_le / n_cat)
            .alias(_PCT),
        )
    )
    return (
        lines.join(pairs, on=[Col.ITEM, _UNIT], how="inner")
        .group_by(Col.CUSTOMER, Col.CATEGORY)
        .agg(
            stable_sum(pl.col(Col.AMOUNT)).alias(_SOLD),
            stable_sum(pl.col(_PCT), FINE).alias(_PCT_SUM),
            pl.len().alias(_LINES),
        )
    )


def top_categories(
    tx: pl.LazyFrame, *, as_of: datetime, items: pl.LazyFrame, k: int
) -> pl.LazyFrame:
    """The ``k`` categories with the most sold amount before ``as_of`` (category, sold)."""
    return (
        _sale_lines(tx, as_of)
        .group_by(Col.ITEM)
        .agg(pl.col(Col.AMOUNT).sum().alias(_SOLD))
        .join(items.select(Col.ITEM, Col.CATEGORY), on=Col.ITEM, how="inner", validate="1:1")
        .group_by(Col.CATEGORY)
        .agg(pl.col(_SOLD).sum())
        .sort([_SOLD, Col.CATEGORY], descending=[True, False])
        .head(k)
    )


def category_preferences(sales: pl.LazyFrame, *, categories: Sequence[str]) -> pl.LazyFrame:
    """Top category, its share, distinct categories, entropy and shares of ``categories``.

    ``sales`` is the frame of `category_sales` (already cut at ``as_of``).
    """
    sold, category = pl.col(_SOLD), pl.col(Col.CATEGORY)
    names = Feat.category_shares(categories)
    total = pl.col("_total")
    positive = total > 0
    return (
        sales.with_columns(
            pl.when(sold > 0).then(sold * sold.log()).otherwise(0.0).alias(_SLNS),
            *(
                pl.when(category == c).then(sold).otherwise(0.0).alias(name)
                for c, name in zip(categories, names, strict=True)
            ),
        )
        .group_by(Col.CUSTOMER)
        .agg(
            # ties for the top go to the alphabetically first category
            category.filter(sold == sold.max()).min().alias(Feat.TOP_CATEGORY),
            sold.max().alias("_top"),
            stable_sum(sold).alias("_total"),
            pl.len().cast(pl.Int32).alias(Feat.N_CATEGORIES),
            ordered_sum(pl.col(_SLNS)),
            pl.col(names).sum(),  # one non-zero term per customer: exact in any order
        )
        .select(
            Col.CUSTOMER,
            Feat.TOP_CATEGORY,
            pl.when(positive).then(pl.col("_top") / total).alias(Feat.TOP_CATEGORY_SHARE),
            Feat.N_CATEGORIES,
            # H = -sum(p ln p) = ln T - sum(s ln s) / T with p = s / T
            pl.when(positive)
            .then((total.log() - pl.col(_SLNS) / total).clip(lower_bound=0.0))
            .alias(Feat.CATEGORY_ENTROPY),
            *(pl.when(positive).then(pl.col(name) / total).alias(name) for name in names),
        )
    )


def price_tier(sales: pl.LazyFrame) -> pl.LazyFrame:
    """Mean mid-rank percentile of paid unit prices within their category, per buyer.

    ``sales`` is the frame of `category_sales` (already cut at ``as_of``).
    """
    return sales.group_by(Col.CUSTOMER).agg(
        (stable_sum(pl.col(_PCT_SUM), FINE) / pl.col(_LINES).sum()).alias(Feat.PRICE_TIER)
    )
