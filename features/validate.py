"""`offers validate DIR`: check a dataset folder against the contract.

Every problem names the file, the column and example rows (0-based row numbers in the file as
stored, with the offending values). Errors make the dataset unusable; warnings are facts a
user should know (for example how many return lines there are). Nothing is dropped here:
validation only reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from features.columns import Col
from features.consent import ConsentConfig, ConsentError, map_consent
from features.contract import DTYPES, TABLES, Kind, Table
from features.dataset import coerce_expr, scan_raw, table_path

ROW = "__row"
EXAMPLES = 5

_INTEGERS: tuple[type[pl.DataType], ...] = (
    pl.Int8,
    pl.Int16,
    pl.Int32,
    pl.Int64,
    pl.UInt8,
    pl.UInt16,
    pl.UInt32,
    pl.UInt64,
)
_FLOATS: tuple[type[pl.DataType], ...] = (pl.Float32, pl.Float64)
# stored dtypes the loader can convert to each kind; anything else is a "wrong type" error
_ACCEPTED: dict[Kind, tuple[type[pl.DataType], ...]] = {
    Kind.ID: (pl.String, pl.Categorical, pl.Enum, *_INTEGERS),
    Kind.TEXT: (pl.String, pl.Categorical, pl.Enum),
    Kind.TIME: (pl.Datetime, pl.Date, pl.String),
    Kind.DATE: (pl.Date, pl.Datetime, pl.String),
    Kind.FLOAT: (*_FLOATS, *_INTEGERS),
    Kind.BOOL: (pl.Boolean, pl.String),
}


@dataclass(frozen=True)
class Problem:
    """One finding: where (file, column), what, how many rows, and a few example rows."""

    severity: str  # "error" or "warning"
    file: str
    column: str
    message: str
    rows: int = 0
    examples: tuple[str, ...] = ()

    def format(self) -> str:
        """One line, plus indented example rows."""
        where = f"{self.file}" + (f" [{self.column}]" if self.column else "")
        count = f" ({self.rows:,} rows)" if self.rows else ""
        lines = [f"{self.severity.upper()}: {where}: {self.message}{count}"]
        lines += [f"    e.g. {example}" for example in self.examples]
        return "\n".join(lines)


@dataclass
class ValidationReport:
    """All findings for one dataset folder, plus row counts and what the dataset can be used for."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    facts: dict[str, int | float | str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)

    def file(self, table: str) -> str:
        """The file (or folder of parts) a table was read from, for messages."""
        return self.files.get(table, f"{table}.parquet")

    @property
    def errors(self) -> list[Problem]:
        """Problems that make the dataset unusable."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Problems worth knowing that do not block use."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error."""
        return not self.errors

    @property
    def capabilities(self) -> dict[str, bool]:
        """What the dataset supports, from the tables it has."""
        has = set(self.row_counts)
        return {
            "recommendations": {"transactions", "items"} <= has,
            "customer features": bool({"transactions", "customers"} & has),
            "response models": "offers" in has,
            "loyalty state": "bonus_ledger" in has
            or Col.BONUS_BALANCE in self.columns.get("customers", []),
        }

    def format(self) -> str:
        """The human-readable report printed by `offers validate`."""
        lines = [f"dataset {self.root}"]
        for name, n in self.row_counts.items():
            lines.append(f"  {name}: {n:,} rows")
        for key, value in self.facts.items():
            shown = f"{value:,}" if isinstance(value, int) else str(value)
            lines.append(f"  {key}: {shown}")
        usable = [k for k, v in self.capabilities.items() if v]
        missing = [k for k, v in self.capabilities.items() if not v]
        lines.append(f"  usable for: {', '.join(usable) or 'nothing'}")
        if missing:
            lines.append(f"  not usable for: {', '.join(missing)}")
        lines += [p.format() for p in self.problems]
        verdict = "OK" if self.ok else "INVALID"
        lines.append(f"{verdict}: {len(self.errors)} errors, {len(self.warnings)} warnings")
        return "\n".join(lines)


def validate_dataset(root: Path | str, *, consent: ConsentConfig | None = None) -> ValidationReport:
    """Check every contract table present in ``root``; see the module docstring.

    Consent columns of ``customers`` are mapped as loading maps them (`features.consent`).
    """
    root = Path(root)
    report = ValidationReport(root=root)
    if not root.is_dir():
        report.problems.append(Problem("error", str(root), "", "not a folder"))
        return report
    present: dict[str, pl.DataFrame] = {}
    for name, table in TABLES.items():
        raw = scan_raw(root, name)
        if raw is None:
            continue
        path = table_path(root, name)
        report.files[name] = path.name if path is not None else name
        if name == "customers":
            try:
                raw, mapped = map_consent(raw, consent)
            except ConsentError as exc:
                report.problems.append(Problem("error", report.file(name), exc.column, str(exc)))
            else:
                if mapped:
                    report.facts["consent columns"] = ", ".join(m.format() for m in mapped)
        checked = _check_table(raw, table, report.file(name), report)
        if checked is not None:
            present[name] = checked
    _check_dataset_level(root, present, report)
    return report


def _examples(df: pl.DataFrame, columns: list[str]) -> tuple[str, ...]:
    shown = [c for c in [ROW, *columns] if c in df.columns]
    out = []
    for row in df.head(EXAMPLES).select(shown).iter_rows(named=True):
        row_no = row.pop(ROW, None)
        values = ", ".join(f"{k.removeprefix('__raw_')}={v!r}" for k, v in row.items())
        out.append(f"row {row_no}: {values}" if row_no is not None else values)
    return tuple(out)


def _flag(
    report: ValidationReport,
    df: pl.DataFrame,
    mask: pl.Expr,
    *,
    file: str,
    column: str,
    message: str,
    show: list[str],
    severity: str = "error",
) -> int:
    bad = df.filter(mask)
    if bad.height:
        report.problems.append(
            Problem(severity, file, column, message, bad.height, _examples(bad, show))
        )
    return bad.height


def _check_table(
    raw: pl.LazyFrame, table: Table, file: str, report: ValidationReport
) -> pl.DataFrame | None:
    """Type, null, parse and key checks for one table; the coerced frame, or None if unusable."""
    schema = raw.collect_schema()
    report.columns[table.name] = list(schema)
    missing = [c.name for c in table.required if c.name not in schema]
    for name in missing:
        report.problems.append(
            Problem("error", file, name, f"required column is missing (has: {', '.join(schema)})")
        )
    usable: list[str] = []
    for column in table.columns:
        if column.name not in schema:
            continue
        stored = schema[column.name]
        if not isinstance(stored, _ACCEPTED[column.kind]):
            report.problems.append(
                Problem(
                    "error",
                    file,
                    column.name,
                    f"wrong type {stored}; expected {DTYPES[column.kind]} ({column.kind.value})",
                )
            )
            continue
        usable.append(column.name)
    if missing:
        return None
    coerced = [
        coerce_expr(c.name, c.kind, schema[c.name]).alias(c.name)
        for c in table.columns
        if c.name in usable
    ]
    originals = [pl.col(name).alias(f"__raw_{name}") for name in usable]
    df = raw.with_row_index(ROW).with_columns(*originals).with_columns(coerced).collect()
    report.row_counts[table.name] = df.height

    for column in table.columns:
        if column.name not in usable:
            continue
        raw_name = f"__raw_{column.name}"
        if column.kind in (Kind.ID, Kind.TEXT) and not column.nullable:
            _flag(
                report,
                df,
                pl.col(column.name).is_null() | (pl.col(column.name).str.strip_chars() == ""),
                file=file,
                column=column.name,
                message="null or empty values",
                show=[column.name],
            )
            continue
        unparsable = pl.col(column.name).is_null() & pl.col(raw_name).is_not_null()
        what = "unparsable time" if column.kind in (Kind.TIME, Kind.DATE) else "unparsable value"
        _flag(report, df, unparsable, file=file, column=column.name, message=what, show=[raw_name])
        if not column.nullable:
            _flag(
                report,
                df,
                pl.col(raw_name).is_null(),
                file=file,
                column=column.name,
                message="null values",
                show=[column.name],
            )
        if column.kind is Kind.FLOAT:
            _flag(
                report,
                df,
                ~pl.col(column.name).is_finite(),
                file=file,
                column=column.name,
                message="NaN or infinite values",
                show=[column.name],
            )

    if table.key and all(k in usable for k in table.key):
        dup = pl.struct(list(table.key)).is_duplicated()
        _flag(
            report,
            df,
            dup,
            file=file,
            column=",".join(table.key),
            message="duplicate keys",
            show=list(table.key),
        )
    return df.drop([c for c in df.columns if c.startswith("__raw_")])


def _check_dataset_level(
    root: Path, tables: dict[str, pl.DataFrame], report: ValidationReport
) -> None:
    """Cross-table rules: presence, signs, returns, referential integrity, offer logic."""
    found = set(report.files)
    if not found:
        report.problems.append(
            Problem(
                "error",
                str(root),
                "",
                "no contract table found (need transactions.parquet "
                "+ items.parquet, or customers.parquet + offers.parquet)",
            )
        )
        return
    if "transactions" in found and "items" not in found:
        report.problems.append(
            Problem("error", "items.parquet", "", "transactions need an items table (missing)")
        )
    if not ({"transactions", "offers"} & found):
        report.problems.append(
            Problem("error", str(root), "", "a dataset needs transactions or offers")
        )
    tx = tables.get("transactions")
    items = tables.get("items")
    if tx is not None:
        _check_transactions(tx, items, report)
    if items is not None:
        _check_items(items, report)
    offers = tables.get("offers")
    if offers is not None:
        _check_offers(offers, tables.get("customers"), report)
    ledger = tables.get("bonus_ledger")
    if ledger is not None and Col.EXPIRES_AT in ledger.columns:
        _flag(
            report,
            ledger,
            pl.col(Col.EXPIRES_AT) < pl.col(Col.TS),
            file=report.file("bonus_ledger"),
            column=Col.EXPIRES_AT,
            message="expires before it was accrued",
            show=[Col.CUSTOMER, Col.TS, Col.EXPIRES_AT],
        )


def _check_transactions(
    tx: pl.DataFrame, items: pl.DataFrame | None, report: ValidationReport
) -> None:
    file = report.file("transactions")
    qty, amount = pl.col(Col.QUANTITY), pl.col(Col.AMOUNT)
    _flag(
        report,
        tx,
        (qty > 0) & (amount < 0) | (qty < 0) & (amount > 0),
        file=file,
        column=f"{Col.QUANTITY},{Col.AMOUNT}",
        message="amount and quantity have opposite signs",
        show=[Col.ORDER, Col.ITEM, Col.QUANTITY, Col.AMOUNT],
    )
    _flag(
        report,
        tx,
        qty == 0,
        file=file,
        column=Col.QUANTITY,
        message="zero quantity",
        show=[Col.ORDER, Col.ITEM, Col.QUANTITY, Col.AMOUNT],
    )
    returns = tx.filter(qty < 0)
    report.facts["return lines (kept, netted out by features and models)"] = returns.height
    report.facts["returned amount"] = abs(round(float(returns[Col.AMOUNT].sum()), 2))
    if returns.height:
        first_sale = (
            tx.filter(qty > 0)
            .group_by(Col.CUSTOMER, Col.ITEM)
            .agg(pl.col(Col.TS).min().alias("__first_sale"))
        )
        matched = returns.join(first_sale, on=[Col.CUSTOMER, Col.ITEM], how="left")
        _flag(
            report,
            matched,
            pl.col("__first_sale").is_null() | (pl.col("__first_sale") > pl.col(Col.TS)),
            file=file,
            column=Col.QUANTITY,
            message="a return without an earlier sale of that item to that customer",
            show=[Col.CUSTOMER, Col.ORDER, Col.ITEM, Col.TS, Col.QUANTITY],
        )
    if tx.height:
        report.facts["first transaction"] = str(tx[Col.TS].min())
        report.facts["last transaction"] = str(tx[Col.TS].max())
        report.facts["customers with transactions"] = tx[Col.CUSTOMER].drop_nulls().n_unique()
    if items is not None:
        unknown = tx.join(items.select(Col.ITEM), on=Col.ITEM, how="anti")
        if unknown.height:
            n_ids = unknown[Col.ITEM].n_unique()
            report.problems.append(
                Problem(
                    "error",
                    file,
                    Col.ITEM,
                    f"{n_ids:,} item ids are missing from items",
                    unknown.height,
                    _examples(unknown, [Col.ORDER, Col.ITEM]),
                )
            )


def _check_items(items: pl.DataFrame, report: ValidationReport) -> None:
    _flag(
        report,
        items,
        pl.col(Col.PRICE) < 0,
        file=report.file("items"),
        column=Col.PRICE,
        message="negative price",
        show=[Col.ITEM, Col.PRICE],
    )
    if Col.MARGIN in items.columns:
        _flag(
            report,
            items,
            (pl.col(Col.MARGIN) < 0) | (pl.col(Col.MARGIN) > 1),
            file=report.file("items"),
            column=Col.MARGIN,
            message="margin must be a fraction of price in [0, 1]",
            show=[Col.ITEM, Col.MARGIN],
        )


def _check_offers(
    offers: pl.DataFrame, customers: pl.DataFrame | None, report: ValidationReport
) -> None:
    file = report.file("offers")
    _flag(
        report,
        offers,
        pl.col(Col.BONUS) < 0,
        file=file,
        column=Col.BONUS,
        message="negative bonus",
        show=[Col.OFFER, Col.BONUS],
    )
    _flag(
        report,
        offers,
        pl.col(Col.OFFER_TYPE).is_null() | (pl.col(Col.OFFER_TYPE) == ""),
        file=file,
        column=Col.OFFER_TYPE,
        message="null or empty offer type",
        show=[Col.OFFER],
    )
    _flag(
        report,
        offers,
        pl.col(Col.CONVERTED_AT) < pl.col(Col.SENT_AT),
        file=file,
        column=Col.CONVERTED_AT,
        message="converted before the offer was sent",
        show=[Col.OFFER, Col.SENT_AT, Col.CONVERTED_AT],
    )
    _flag(
        report,
        offers,
        ~pl.col(Col.CONVERTED) & pl.col(Col.CONVERTED_AT).is_not_null(),
        file=file,
        column=Col.CONVERTED_AT,
        message="converted_at set on an offer not converted",
        show=[Col.OFFER, Col.CONVERTED, Col.CONVERTED_AT],
    )
    report.facts["offers converted"] = int(offers[Col.CONVERTED].sum())
    if customers is not None:
        unknown = offers.join(customers.select(Col.CUSTOMER), on=Col.CUSTOMER, how="anti")
        if unknown.height:
            report.problems.append(
                Problem(
                    "warning",
                    file,
                    Col.CUSTOMER,
                    "customer ids missing from customers",
                    unknown.height,
                    _examples(unknown, [Col.OFFER, Col.CUSTOMER]),
                )
            )
