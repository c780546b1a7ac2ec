"""`customer_features`: every customer feature as of a cutoff, in one frame keyed by customer.

Population (one row each, sorted by customer_id): customers with any transaction line before
``as_of``, customers in ``customers`` with ``registered_at < as_of`` (or no registration date:
a customer table without dates is taken as known at the cutoff), and customers with ledger
movements before ``as_of``. Customers registered at or after ``as_of`` are left out.

Columns, in this order, each group present when its tables are:

1. ``customer_id``
2. transactions: RFM (`features.rfm`), ``lifecycle_stage`` (`features.lifecycle`), activity
   (`features.activity`), checks (`features.checks`)
3. transactions + items: category preferences and ``price_tier`` (`features.preferences`)
4. bonus_ledger (else customers.bonus_balance): ``bonus_balance``, ``points_expiring_Nd``;
   customers.birth_date: ``days_to_birthday``, ``age_years`` (`features.loyalty`)
5. customers: ``tenure_days`` and pass-through attributes (`features.attributes`)

Customers of the population missing from a group get that module's ``NO_PURCHASE`` values
(e.g. frequency 0, stage ``registered``) and nulls elsewhere. Column order and dtypes depend
only on which tables (and customer columns) the dataset has, and on the config.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any

import polars as pl

from features.activity import NO_PURCHASE as ACTIVITY_FILL
from features.activity import activity
from features.attributes import customer_attributes
from features.checks import NO_PURCHASE as CHECKS_FILL
from features.checks import checks
from features.columns import Col
from features.config import FeatureConfig
from features.dataset import Dataset, DatasetError
from features.lifecycle import NO_PURCHASE as LIFECYCLE_FILL
from features.lifecycle import lifecycle
from features.loyalty import birthdays, bonus_state, snapshot_balance
from features.names import Feat
from features.orders import orders_before
from features.preferences import (
    category_preferences,
    category_sales,
    price_tier,
    top_categories,
)
from features.reductions import stable_sum
from features.rfm import NO_PURCHASE as RFM_FILL
from features.rfm import rfm

log = logging.getLogger("offers")


class FeatureError(Exception):
    """Features cannot be built from this dataset or with these arguments."""


def check_as_of(as_of: datetime) -> None:
    """Raise `FeatureError` unless ``as_of`` is a naive datetime (the contract's times are)."""
    if not isinstance(as_of, datetime):
        raise FeatureError(f"as_of must be a datetime, got {type(as_of).__name__} {as_of!r}")
    if as_of.tzinfo is not None:
        raise FeatureError(f"as_of must be a naive datetime (no time zone), got {as_of!r}")


def feature_notes(ds: Dataset) -> list[str]:
    """What the dataset's absent tables leave out of the features, one sentence each."""
    notes = []
    if ds.transactions is None:
        notes.append(
            "no transactions table: RFM, lifecycle, activity, checks and preferences are left "
            "out; the features are the customer attributes only"
        )
    elif ds.items is None:
        notes.append("no items table: category preferences and price_tier are left out")
    if ds.bonus_ledger is None:
        has_balance = (
            ds.customers is not None and Col.BONUS_BALANCE in ds.customers.collect_schema()
        )
        notes.append(
            "no bonus_ledger: bonus_balance is customers.bonus_balance (a snapshot, not point "
            "in time) and expiring points are left out"
            if has_balance
            else "no bonus_ledger and no customers.bonus_balance: loyalty balance left out"
        )
    return notes


def population(ds: Dataset, *, as_of: datetime) -> pl.LazyFrame:
    """Customer ids known before ``as_of`` (see the module docstring), sorted."""
    parts = []
    if ds.transactions is not None:
        parts.append(ds.transactions.filter(pl.col(Col.TS) < as_of).select(Col.CUSTOMER))
    if ds.customers is not None:
        customers = ds.customers
        if Col.REGISTERED_AT in customers.collect_schema():
            registered = pl.col(Col.REGISTERED_AT)
            customers = customers.filter(registered.is_null() | (registered < as_of))
        parts.append(customers.select(Col.CUSTOMER))
    if ds.bonus_ledger is not None:
        parts.append(ds.bonus_ledger.filter(pl.col(Col.TS) < as_of).select(Col.CUSTOMER))
    if not parts:
        raise FeatureError(
            f"{ds.root}: customer features need a transactions, customers or bonus_ledger table"
        )
    return pl.concat(parts).unique().sort(Col.CUSTOMER)


def share_categories(ds: Dataset, *, as_of: datetime, config: FeatureConfig) -> list[str]:
    """The categories of the wide share columns: configured, or the top ones before as_of.

    The top categories are computed eagerly (column names depend on them). To score with a
    model trained on features, pass the training run's list as
    ``FeatureConfig.share_categories`` so both frames have the same columns.
    """
    if config.share_categories is not None:
        return list(config.share_categories)
    if ds.transactions is None or ds.items is None or config.top_categories == 0:
        return []
    top = top_categories(ds.transactions, as_of=as_of, items=ds.items, k=config.top_categories)
    return top.collect().get_column(Col.CATEGORY).to_list()


def customer_features(ds: Dataset, *, as_of: datetime, config: FeatureConfig) -> pl.LazyFrame:
    """Every customer feature as of ``as_of``: one row per customer of the population.

    Logs (logger ``offers``) one warning per note of `feature_notes`.
    """
    check_as_of(as_of)
    for note in feature_notes(ds):
        log.warning("features: %s", note)
    groups: list[tuple[pl.LazyFrame, Mapping[str, Any]]] = []
    tx, customers = ds.transactions, ds.customers
    if tx is not None:
        # one pass over the lines each for the orders and the category sales, shared below
        orders = orders_before(tx, as_of=as_of).cache()
        groups += [
            (rfm(orders, as_of=as_of), RFM_FILL),
            (lifecycle(orders, as_of=as_of, config=config), LIFECYCLE_FILL),
            (activity(orders, as_of=as_of, config=config, customers=customers), ACTIVITY_FILL),
            (checks(orders, as_of=as_of, config=config), CHECKS_FILL),
        ]
        if ds.items is not None:
            categories = share_categories(ds, as_of=as_of, config=config)
            sales = category_sales(tx, as_of=as_of, items=ds.items).cache()
            groups += [
                (category_preferences(sales, categories=categories), {}),
                (price_tier(sales), {}),
            ]
    if ds.bonus_ledger is not None:
        groups.append((bonus_state(ds.bonus_ledger, as_of=as_of, config=config), {}))
    elif customers is not None and Col.BONUS_BALANCE in customers.collect_schema():
        groups.append((snapshot_balance(customers), {}))
    if customers is not None:
        if Col.BIRTH_DATE in customers.collect_schema():
            groups.append((birthdays(customers, as_of=as_of), {}))
        groups.append((customer_attributes(customers, as_of=as_of), {}))

    frame = population(ds, as_of=as_of)
    seen = {Col.CUSTOMER}
    fills: dict[str, Any] = {}
    for group, fill in groups:
        names = [c for c in group.collect_schema().names() if c != Col.CUSTOMER]
        clash = seen.intersection(names)
        if clash:
            raise FeatureError(
                f"{ds.root}: customers column(s) {sorted(clash)} clash with feature names; "
                "rename them in customers.parquet"
            )
        seen.update(names)
        # keep the population's order: sorting the wide frame instead makes the polars 2.1
        # streaming sort panic on nullable string columns
        frame = frame.join(
            group, on=Col.CUSTOMER, how="left", validate="1:1", maintain_order="left"
        )
        fills.update(fill)
    return frame.with_columns(pl.col(name).fill_null(value) for name, value in fills.items()).sort(
        Col.CUSTOMER
    )


def purchase_labels(
    tx: pl.LazyFrame,
    *,
    as_of: datetime,
    horizon_days: int,
    population: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Labels from ``[as_of, as_of + horizon_days)``: bought (a sale line) and net spend.

    Without ``population`` the rows are the customers with lines in the window; with it (any
    frame with customer_id, e.g. the features), one row per population customer, filled with
    bought False and spend 0.0.
    """
    check_as_of(as_of)
    if horizon_days <= 0:
        raise FeatureError(f"horizon_days must be positive, got {horizon_days}")
    ts = pl.col(Col.TS)
    end = as_of + timedelta(days=horizon_days)
    labels = (
        tx.filter((ts >= as_of) & (ts < end))
        .group_by(Col.CUSTOMER)
        .agg(
            (pl.col(Col.QUANTITY) > 0).any().alias(Feat.BOUGHT),
            stable_sum(pl.col(Col.AMOUNT)).alias(Feat.SPEND),
        )
    )
    if population is None:
        return labels.sort(Col.CUSTOMER)
    return (
        population.select(Col.CUSTOMER)
        .join(labels, on=Col.CUSTOMER, how="left", validate="1:1")
        .with_columns(pl.col(Feat.BOUGHT).fill_null(False), pl.col(Feat.SPEND).fill_null(0.0))
    )


def default_as_of(ds: Dataset) -> datetime:
    """Midnight of the day after the last transaction (the CLI's cutoff without --as-of)."""
    tx = ds.require("transactions", "the default --as-of (day after the last transaction)")
    last = tx.select(pl.col(Col.TS).max()).collect().item()
    if last is None:
        raise DatasetError(f"{ds.root}: transactions has no timestamps; pass --as-of")
    return datetime.combine(last.date() + timedelta(days=1), time())
