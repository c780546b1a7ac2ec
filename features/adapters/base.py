"""What every adapter shares: its declaration, source checks, and exclusion tagging.

An adapter declares the source files it reads and the columns (with dtypes) it needs from each;
`read_sources` checks them where data enters. Its ``convert`` takes those sources as lazy
frames and returns the contract tables plus a `Flow` per table, so the conversion itself never
touches the file system and can be tested on frames built by hand.

Exclusions are tagged, not filtered: a rule set becomes one column (`EXCLUDED`) holding the
reason of the first rule a row breaks (null when kept). Counting that column is how every
left-out row ends up in the report with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from features.adapters.report import Flow
from features.dataset import DatasetError

EXCLUDED = "__excluded"


class AdapterError(DatasetError):
    """A dataset cannot be imported: unknown name, missing files or columns, bad values."""


@dataclass(frozen=True)
class Conversion:
    """The contract tables an adapter built, how each was derived, and notes on the mapping."""

    tables: Mapping[str, pl.DataFrame]
    flows: tuple[Flow, ...]
    notes: tuple[str, ...]


Sources = Mapping[str, pl.LazyFrame]


@dataclass(frozen=True)
class Adapter:
    """A named converter from one public dataset's files to the contract.

    ``read``, when set, replaces the default reading of ``inputs`` (fixed Parquet files): it
    takes ``--src`` (a folder or a file) and returns the sources, checked and typed as
    ``inputs`` declares, under their file names.
    """

    name: str
    summary: str
    inputs: Mapping[str, Mapping[str, pl.DataType]]  # file -> {column: dtype}
    convert: Callable[[Sources], Conversion]
    read: Callable[[Path], Sources] | None = None


def _compatible(stored: pl.DataType, expected: pl.DataType) -> bool:
    if isinstance(expected, pl.Datetime):
        return isinstance(stored, pl.Datetime)
    if expected.is_float():
        return stored.is_numeric()
    if expected.is_integer():
        return stored.is_integer()
    return stored == expected


def _entry_cast(name: str, stored: pl.DataType, expected: pl.DataType) -> pl.Expr:
    if isinstance(expected, pl.Datetime) or stored == expected:
        return pl.col(name)
    return pl.col(name).cast(expected)


def read_sources(adapter: Adapter, src: Path) -> dict[str, pl.LazyFrame]:
    """Scan each declared file of ``src``; an `AdapterError` names any missing file or column."""
    if adapter.read is not None:
        return dict(adapter.read(src))
    if not src.is_dir():
        raise AdapterError(f"{adapter.name}: source folder {src} does not exist")
    missing_files = [name for name in adapter.inputs if not (src / name).is_file()]
    if missing_files:
        raise AdapterError(
            f"{adapter.name}: {src} lacks {', '.join(missing_files)} "
            f"(expected files: {', '.join(adapter.inputs)})"
        )
    frames: dict[str, pl.LazyFrame] = {}
    for name, columns in adapter.inputs.items():
        lf = pl.scan_parquet(src / name)
        schema = lf.collect_schema()
        problems = []
        for column, expected in columns.items():
            if column not in schema:
                problems.append(f"column {column!r} is missing")
            elif not _compatible(schema[column], expected):
                problems.append(f"column {column!r} is {schema[column]}, expected {expected}")
        if problems:
            raise AdapterError(
                f"{adapter.name}: {src / name}: {'; '.join(problems)} (has: {', '.join(schema)})"
            )
        frames[name] = lf.with_columns(
            _entry_cast(c, schema[c], t).alias(c) for c, t in columns.items()
        )
    return frames


def tag_first(rules: Sequence[tuple[pl.Expr, str]]) -> pl.Expr:
    """The reason of the first rule whose condition holds, else null (as column `EXCLUDED`).

    A row already tagged keeps its reason: rules only fill rows still null.
    """
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for condition, reason in reversed(rules):
        expr = pl.when(condition.fill_null(False)).then(pl.lit(reason)).otherwise(expr)
    return pl.coalesce(pl.col(EXCLUDED), expr).alias(EXCLUDED)


def with_exclusions(lf: pl.LazyFrame, rules: Sequence[tuple[pl.Expr, str]]) -> pl.LazyFrame:
    """``lf`` with column `EXCLUDED` set by ``rules`` (existing reasons are kept)."""
    if EXCLUDED not in lf.collect_schema():
        lf = lf.with_columns(pl.lit(None, dtype=pl.String).alias(EXCLUDED))
    return lf.with_columns(tag_first(rules))


def count_reasons(df: pl.DataFrame, reasons: Sequence[str]) -> dict[str, int]:
    """Rows per exclusion reason, in the order given (zero when none); unknown reasons fail."""
    counts = dict.fromkeys(reasons, 0)
    for reason, n in df.group_by(EXCLUDED).len().iter_rows():
        if reason is None:
            continue
        if reason not in counts:
            raise AdapterError(f"internal: exclusion reason {reason!r} is not declared")
        counts[reason] = n
    return counts


def kept(df: pl.DataFrame) -> pl.DataFrame:
    """Rows with no exclusion reason, without the `EXCLUDED` column."""
    return df.filter(pl.col(EXCLUDED).is_null()).drop(EXCLUDED)
