"""Consent flags as shops spell them, mapped onto the contract's three booleans.

Loyalty exports name their consent columns in many ways (``email``, ``email_opt_in``,
``email_consent``, ...) and store them as booleans, 0/1 or yes/no text. Where a dataset is
loaded, `map_consent` finds the column for each of ``consent_email``, ``consent_push`` and
``consent_sms`` (an explicit `ConsentConfig.columns` entry, else the first of
`DEFAULT_ALIASES` present), parses it to a boolean and renames it to the contract name. The
mapping applied is logged and returned, so a caller can report it.

Values: booleans; integers or floats 1/0; text true/false, t/f, yes/no, y/n, 1/0 in any case
(blank = null). Null means no consent. Any other value is a `ConsentError` naming the column
and the row. One exception keeps ordinary data loading: a column found by its alias only
(not configured) none of whose values reads as a flag (``email`` holding addresses, ``sms``
holding phone numbers) is not a consent column; it is left alone and logged as such.

>>> lf = pl.LazyFrame({"customer_id": ["a", "b"], "sms_opt_in": ["Yes", "n"]})
>>> out, mapped = map_consent(lf)
>>> out.collect().to_dicts()
[{'customer_id': 'a', 'consent_sms': True}, {'customer_id': 'b', 'consent_sms': False}]
>>> [m.format() for m in mapped]
['consent_sms <- sms_opt_in (String)']
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import polars as pl

from features.columns import Col

log = logging.getLogger(__name__)

CONSENT_FLAGS: Final = (Col.CONSENT_EMAIL, Col.CONSENT_PUSH, Col.CONSENT_SMS)


def _spellings(channel: str) -> tuple[str, ...]:
    return (
        f"consent_{channel}",
        f"{channel}_consent",
        f"{channel}_opt_in",
        f"{channel}_optin",
        f"opt_in_{channel}",
        f"allow_{channel}",
        channel,
    )


DEFAULT_ALIASES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        Col.CONSENT_EMAIL: _spellings("email"),
        Col.CONSENT_PUSH: _spellings("push"),
        Col.CONSENT_SMS: _spellings("sms"),
    }
)
"""Contract flag -> column names tried in order (case-insensitive) when none is configured."""

TRUE_TEXT: Final = ("true", "t", "yes", "y", "1", "1.0")
FALSE_TEXT: Final = ("false", "f", "no", "n", "0", "0.0")


class ConsentError(ValueError):
    """A consent column cannot be read as consent flags (the message names column and row)."""

    def __init__(self, message: str, column: str = "") -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class ConsentConfig:
    """Which ``customers`` column holds each consent flag.

    ``columns`` maps a contract flag (``consent_email``, ...) to the shop's column name and
    overrides the aliases for that flag; ``aliases`` are the spellings tried otherwise.
    """

    columns: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: DEFAULT_ALIASES)

    def __post_init__(self) -> None:
        for flag in (*self.columns, *self.aliases):
            if flag not in CONSENT_FLAGS:
                raise ConsentError(
                    f"consent mapping: {flag!r} is not a consent flag "
                    f"(choose from {', '.join(CONSENT_FLAGS)})"
                )
        sources = list(self.columns.values())
        if len(set(sources)) != len(sources):
            raise ConsentError(
                f"consent mapping: one column feeds two flags ({dict(self.columns)})"
            )


@dataclass(frozen=True)
class MappedConsent:
    """One consent flag as loaded: the contract name, the column it came from, its stored type."""

    flag: str
    source: str
    stored: str
    configured: bool = False

    def format(self) -> str:
        """E.g. ``consent_email <- email_opt_in (Int64)``."""
        how = ", configured" if self.configured else ""
        return f"{self.flag} <- {self.source} ({self.stored}{how})"


def parse_consent(column: str, stored: pl.DataType) -> pl.Expr:
    """Column ``column`` (stored as ``stored``) as booleans; unreadable values become null."""
    col = pl.col(column)
    if stored == pl.Boolean:
        return col
    if stored.is_numeric():
        number = col.cast(pl.Float64)
        if stored.is_float():
            number = number.fill_nan(None)
        return pl.when(number == 1).then(True).when(number == 0).then(False).otherwise(None)
    if stored == pl.String:
        text = col.str.strip_chars().str.to_lowercase()
        return (
            pl.when(text.is_in(TRUE_TEXT))
            .then(True)
            .when(text.is_in(FALSE_TEXT))
            .then(False)
            .otherwise(None)
        )
    raise ConsentError(f"customers column '{column}' has type {stored}, not consent flags", column)


def _missing(column: str, stored: pl.DataType) -> pl.Expr:
    """True where the stored value is absent (null, NaN or blank text): null consent."""
    col = pl.col(column)
    if stored.is_float():
        return col.is_null() | col.is_nan()
    if stored == pl.String:
        return col.is_null() | (col.str.strip_chars() == "")
    return col.is_null()


def map_consent(
    customers: pl.LazyFrame, config: ConsentConfig | None = None
) -> tuple[pl.LazyFrame, tuple[MappedConsent, ...]]:
    """``customers`` with each found consent column parsed and renamed to its contract flag.

    Returns the frame and what was mapped (flags already stored as contract booleans are not
    listed). The chosen columns are read once here to check every value; an unreadable one is a
    `ConsentError` naming the column, the row and the customer.
    """
    config = config or ConsentConfig()
    schema = customers.collect_schema()
    by_lower = {name.lower(): name for name in schema.names()}
    chosen: list[MappedConsent] = []
    for flag in CONSENT_FLAGS:
        if flag in config.columns:
            source = config.columns[flag]
            if source not in schema:
                raise ConsentError(
                    f"customers: no column '{source}' for {flag} "
                    f"(has: {', '.join(schema.names())})",
                    source,
                )
            chosen.append(MappedConsent(flag, source, str(schema[source]), True))
            continue
        tried = [by_lower[a.lower()] for a in config.aliases.get(flag, ()) if a.lower() in by_lower]
        taken = {m.source for m in chosen} | set(config.columns.values())
        for source in (s for s in tried if s not in taken):
            if source == flag or _looks_like_flags(customers, source, schema[source]):
                chosen.append(MappedConsent(flag, source, str(schema[source])))
                break
    _check_values(customers, chosen, schema)
    exprs = [parse_consent(m.source, schema[m.source]).alias(m.flag) for m in chosen]
    mapped = customers.with_columns(exprs) if exprs else customers
    renamed = [m.source for m in chosen if m.source != m.flag and m.source not in CONSENT_FLAGS]
    mapped = mapped.drop(renamed)
    applied = tuple(m for m in chosen if m.source != m.flag or schema[m.source] != pl.Boolean)
    _log(applied, schema.names(), config)
    return mapped, applied


def _looks_like_flags(customers: pl.LazyFrame, source: str, stored: pl.DataType) -> bool:
    """False for an alias column none of whose values reads as a flag (addresses, phones)."""
    if stored == pl.Boolean:
        return True
    if not (stored == pl.String or stored.is_numeric()):
        return False
    present = customers.select(pl.col(source)).filter(~_missing(source, stored))
    seen = present.select(
        pl.len().alias("n"), parse_consent(source, stored).is_not_null().any().alias("readable")
    ).collect()
    if seen["n"].item() == 0 or seen["readable"].item():
        return True
    example = present.head(1).collect().item()
    log.info(
        "customers column '%s' is not consent (values like %r are no flags): not used",
        source,
        example,
    )
    return False


def _check_values(
    customers: pl.LazyFrame, chosen: Sequence[MappedConsent], schema: pl.Schema
) -> None:
    """A `ConsentError` at the first value of a chosen column that is not a flag."""
    to_check = [m for m in chosen if schema[m.source] != pl.Boolean]
    if not to_check:
        return
    ident = [Col.CUSTOMER] if Col.CUSTOMER in schema else []
    bad_exprs = [
        (
            ~_missing(m.source, schema[m.source])
            & parse_consent(m.source, schema[m.source]).is_null()
        ).alias(f"__bad_{m.source}")
        for m in to_check
    ]
    sources = list(dict.fromkeys(m.source for m in to_check))
    bad = (
        customers.with_row_index("__row")
        .select("__row", *ident, *sources, *bad_exprs)
        .filter(pl.any_horizontal(pl.col(f"__bad_{m.source}") for m in to_check))
        .head(1)
        .collect()
    )
    if not bad.height:
        return
    row = bad.row(0, named=True)
    for m in to_check:
        if row[f"__bad_{m.source}"]:
            who = f" (customer_id {row[Col.CUSTOMER]!r})" if ident else ""
            raise ConsentError(
                f"customers column '{m.source}' ({m.flag}): row {row['__row']}{who} has "
                f"{row[m.source]!r}, not a consent flag (expected true/false, yes/no, y/n or 1/0)",
                m.source,
            )


def _log(applied: Sequence[MappedConsent], names: Sequence[str], config: ConsentConfig) -> None:
    if applied:
        log.info("consent columns: %s", ", ".join(m.format() for m in applied))
    found = {m.flag for m in applied} | {f for f in CONSENT_FLAGS if f in names}
    absent = [f for f in CONSENT_FLAGS if f not in found]
    if absent:
        looked = sorted({a for f in absent for a in config.aliases.get(f, ())})
        log.info(
            "customers: no consent column for %s (looked for %s)",
            ", ".join(absent),
            ", ".join(looked),
        )
