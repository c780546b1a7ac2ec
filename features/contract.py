"""The data contract: which tables a dataset folder holds, their columns and types.

A dataset is a folder of Parquet files, one per table (``transactions.parquet`` or a folder
``transactions/`` of Parquet parts). This module is the single definition of that contract;
`features.dataset` reads it and `features.validate` checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import polars as pl

from features.columns import Col


class Kind(Enum):
    """Logical column kinds. The loader coerces each to one polars dtype."""

    ID = "id"  # String; integers are accepted and cast to their decimal text
    TEXT = "text"  # String
    TIME = "time"  # Datetime[us]; other time units, dates and ISO strings are converted
    DATE = "date"  # Date; datetimes and ISO strings are converted
    FLOAT = "float"  # Float64; integers are converted
    BOOL = "bool"  # Boolean


DTYPES: dict[Kind, pl.DataType] = {
    Kind.ID: pl.String(),
    Kind.TEXT: pl.String(),
    Kind.TIME: pl.Datetime("us"),
    Kind.DATE: pl.Date(),
    Kind.FLOAT: pl.Float64(),
    Kind.BOOL: pl.Boolean(),
}


@dataclass(frozen=True)
class Column:
    """One contract column: its name, kind, and whether it may hold nulls."""

    name: str
    kind: Kind
    nullable: bool = False


@dataclass(frozen=True)
class Table:
    """One contract table. Columns outside ``required`` and ``optional`` are kept as extras."""

    name: str
    required: tuple[Column, ...]
    optional: tuple[Column, ...] = ()
    key: tuple[str, ...] = ()
    doc: str = ""
    extra_columns_allowed: bool = field(default=True)

    @property
    def columns(self) -> tuple[Column, ...]:
        """Required then optional columns."""
        return self.required + self.optional

    def column(self, name: str) -> Column | None:
        """The contract column called ``name``, or None for an extra column."""
        return next((c for c in self.columns if c.name == name), None)


TRANSACTIONS = Table(
    name="transactions",
    doc=(
        "One row per (order, item). Returns are rows with negative quantity and amount, "
        "usually in an order of their own."
    ),
    required=(
        Column(Col.CUSTOMER, Kind.ID),
        Column(Col.ORDER, Kind.ID),
        Column(Col.TS, Kind.TIME),
        Column(Col.ITEM, Kind.ID),
        Column(Col.QUANTITY, Kind.FLOAT),
        Column(Col.AMOUNT, Kind.FLOAT),
    ),
    optional=(
        Column(Col.STORE, Kind.ID, nullable=True),
        Column(Col.CHANNEL, Kind.TEXT, nullable=True),
        Column(Col.BONUS_EARNED, Kind.FLOAT, nullable=True),
        Column(Col.BONUS_SPENT, Kind.FLOAT, nullable=True),
    ),
    key=(Col.ORDER, Col.ITEM),
)

ITEMS = Table(
    name="items",
    doc="The catalogue. margin is the fraction of price the shop keeps.",
    required=(
        Column(Col.ITEM, Kind.ID),
        Column(Col.CATEGORY, Kind.TEXT),
        Column(Col.PRICE, Kind.FLOAT),
    ),
    optional=(
        Column(Col.NAME, Kind.TEXT, nullable=True),
        Column(Col.BRAND, Kind.TEXT, nullable=True),
        Column(Col.SUBCATEGORY, Kind.TEXT, nullable=True),
        Column(Col.MARGIN, Kind.FLOAT, nullable=True),
        Column(Col.IS_ACTIVE, Kind.BOOL, nullable=True),
    ),
    key=(Col.ITEM,),
)

CUSTOMERS = Table(
    name="customers",
    doc="Optional. Extra columns are customer attributes and become model features.",
    required=(Column(Col.CUSTOMER, Kind.ID),),
    optional=(
        Column(Col.REGISTERED_AT, Kind.TIME, nullable=True),
        Column(Col.BIRTH_DATE, Kind.DATE, nullable=True),
        Column(Col.BONUS_BALANCE, Kind.FLOAT, nullable=True),
        Column(Col.CONSENT_EMAIL, Kind.BOOL, nullable=True),
        Column(Col.CONSENT_PUSH, Kind.BOOL, nullable=True),
        Column(Col.CONSENT_SMS, Kind.BOOL, nullable=True),
    ),
    key=(Col.CUSTOMER,),
)

OFFERS = Table(
    name="offers",
    doc=(
        "Optional history of offers sent and their outcome. offer_type 'none' (with control "
        "true) records a customer held out of a campaign."
    ),
    required=(
        Column(Col.OFFER, Kind.ID),
        Column(Col.CUSTOMER, Kind.ID),
        Column(Col.SENT_AT, Kind.TIME),
        Column(Col.OFFER_TYPE, Kind.TEXT),
        Column(Col.BONUS, Kind.FLOAT),
        Column(Col.CHANNEL, Kind.TEXT),
        Column(Col.CONVERTED, Kind.BOOL),
        Column(Col.CONVERTED_AT, Kind.TIME, nullable=True),
        Column(Col.REVENUE, Kind.FLOAT, nullable=True),
    ),
    optional=(
        Column(Col.CAMPAIGN, Kind.ID, nullable=True),
        Column(Col.CONTROL, Kind.BOOL, nullable=True),
        Column(Col.ITEM, Kind.ID, nullable=True),
        Column(Col.THRESHOLD, Kind.FLOAT, nullable=True),
    ),
    key=(Col.OFFER,),
)

BONUS_LEDGER = Table(
    name="bonus_ledger",
    doc="Optional points movements: + accrual, - redemption; expires_at for accruals.",
    required=(
        Column(Col.CUSTOMER, Kind.ID),
        Column(Col.TS, Kind.TIME),
        Column(Col.POINTS, Kind.FLOAT),
    ),
    optional=(Column(Col.EXPIRES_AT, Kind.TIME, nullable=True),),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (TRANSACTIONS, ITEMS, CUSTOMERS, OFFERS, BONUS_LEDGER)
}
