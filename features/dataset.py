"""Reading and writing dataset folders of the contract.

`scan_table` is where data enters: it coerces each contract column to its contract dtype
(lazily) so every function downstream can rely on the types. `write_parquet_atomic` is how
every file leaves: a temp file in the same folder, then a rename, so a reader never sees a
half-written file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from features.consent import ConsentConfig, MappedConsent, map_consent
from features.contract import DTYPES, TABLES, Kind, Table


class DatasetError(Exception):
    """A dataset folder cannot be read as the contract says."""


def table_path(root: Path, table: str) -> Path | None:
    """The file (``NAME.parquet``) or folder of parts (``NAME/``) holding ``table``, if any."""
    single = root / f"{table}.parquet"
    if single.is_file():
        return single
    parts = root / table
    if parts.is_dir() and any(parts.glob("*.parquet")):
        return parts
    return None


def scan_raw(root: Path, table: str) -> pl.LazyFrame | None:
    """The table as stored, without any coercion, or None when the dataset lacks it."""
    path = table_path(root, table)
    if path is None:
        return None
    if path.is_dir():
        # parts may differ in optional columns: a column a part lacks reads as null
        return pl.scan_parquet(str(path / "*.parquet"), missing_columns="insert")
    return pl.scan_parquet(str(path))


def coerce_expr(name: str, kind: Kind, stored: pl.DataType) -> pl.Expr:
    """An expression turning a stored column into its contract dtype.

    Strings are parsed (ISO times and dates, 'true'/'false'); integers become decimal text for
    ids and floats for amounts. Values that cannot be parsed become null, which validation
    reports as unparsable; the loader itself never drops a row.
    """
    col = pl.col(name)
    target = DTYPES[kind]
    if stored == target:
        return col
    if kind in (Kind.ID, Kind.TEXT):
        return col.cast(pl.String)
    if kind is Kind.TIME:
        if stored == pl.String:
            return col.str.to_datetime(time_unit="us", strict=False)
        return col.cast(pl.Datetime("us"), strict=False)
    if kind is Kind.DATE:
        if stored == pl.String:
            return col.str.to_date(strict=False)
        return col.cast(pl.Date, strict=False)
    if kind is Kind.BOOL and stored == pl.String:
        lowered = col.str.to_lowercase()
        return (
            pl.when(lowered.is_in(["true", "1", "yes", "y", "t"]))
            .then(True)
            .when(lowered.is_in(["false", "0", "no", "n", "f"]))
            .then(False)
            .otherwise(None)
        )
    return col.cast(target, strict=False)


def coerce(lf: pl.LazyFrame, table: Table) -> pl.LazyFrame:
    """Cast the contract columns present in ``lf`` to their contract dtypes; keep extras."""
    schema = lf.collect_schema()
    exprs = []
    for column in table.columns:
        if column.name in schema:
            stored = schema[column.name]
            exprs.append(coerce_expr(column.name, column.kind, stored).alias(column.name))
    return lf.with_columns(exprs) if exprs else lf


@dataclass(frozen=True)
class Dataset:
    """A dataset folder with its tables as lazy frames in contract dtypes (None when absent).

    ``consent_mapping`` lists the consent columns of ``customers`` that were renamed or parsed
    to the contract's flags on loading (`features.consent`), for reports and metrics.
    """

    root: Path
    transactions: pl.LazyFrame | None
    items: pl.LazyFrame | None
    customers: pl.LazyFrame | None
    offers: pl.LazyFrame | None
    bonus_ledger: pl.LazyFrame | None
    consent_mapping: tuple[MappedConsent, ...] = ()

    def require(self, table: str, purpose: str) -> pl.LazyFrame:
        """The table, or a `DatasetError` saying that ``purpose`` needs it."""
        lf: pl.LazyFrame | None = getattr(self, table)
        if lf is None:
            raise DatasetError(
                f"{self.root}: {purpose} needs the '{table}' table "
                f"({table}.parquet), and this dataset has none"
            )
        return lf

    @property
    def present(self) -> list[str]:
        """Names of the tables this dataset has."""
        return [name for name in TABLES if getattr(self, name) is not None]


def load_dataset(root: Path | str, *, consent: ConsentConfig | None = None) -> Dataset:
    """Open a dataset folder lazily; each present table is coerced to the contract dtypes.

    The consent columns of ``customers`` are found and parsed as ``consent`` says (default:
    the usual spellings, see `features.consent`); an unreadable value is a `ConsentError`.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    frames: dict[str, pl.LazyFrame | None] = {}
    mapping: tuple[MappedConsent, ...] = ()
    for name, table in TABLES.items():
        raw = scan_raw(root, name)
        if raw is not None and name == "customers":
            raw, mapping = map_consent(raw, consent)
        frames[name] = None if raw is None else coerce(raw, table)
    if all(v is None for v in frames.values()):
        raise DatasetError(
            f"{root}: no contract table found (expected some of "
            f"{', '.join(n + '.parquet' for n in TABLES)})"
        )
    return Dataset(root=root, **frames, consent_mapping=mapping)


@contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temp path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o644)  # mkstemp makes 0600; outputs are ordinary readable files
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_parquet_atomic(df: pl.DataFrame, target: Path | str) -> Path:
    """Write ``df`` to ``target`` (zstd Parquet) through a temp file and a rename."""
    target = Path(target)
    with atomic_path(target) as tmp:
        df.write_parquet(tmp, compression="zstd")
    return target


def write_table_atomic(df: pl.DataFrame, target: Path | str) -> Path:
    """Write ``df`` as Parquet or CSV, chosen by the extension of ``target``, atomically."""
    target = Path(target)
    suffix = target.suffix.lower()
    if suffix == ".parquet":
        return write_parquet_atomic(df, target)
    if suffix == ".csv":
        with atomic_path(target) as tmp:
            df.write_csv(tmp)
        return target
    raise DatasetError(f"{target}: output must end in .parquet or .csv")
