"""UCI Online Retail and Online Retail II (a UK online gift shop) -> the data contract.

The files as downloaded are read (`read_downloaded`): the UCI workbooks (Online Retail,
2010-2011, one sheet; Online Retail II, 2009-2011, sheets "Year 2009-2010" and "Year
2010-2011", all read), CSV exports or Parquet copies, under either edition's column names
(Invoice/InvoiceNo, Price/UnitPrice, Customer ID/CustomerID). Customer ids stored as floats
(12345.0), invoice numbers mixing numbers and text, and dates as text ("2010-12-01 08:26:00"
or "12/1/2010 8:26") are parsed; a value that cannot be is an error naming sheet, column and
row. An invoice met in an earlier sheet or file is read from there only (excluded, counted).

One source line is one (invoice, stock code) line. Lines are tagged with the first exclusion
rule they break (`LINE_RULES`, then unmatched returns), the rest are merged per (invoice,
stock code) into transactions. Cancellation invoices ("C...") become returns: negative quantity
and amount, matched to the latest earlier sale of the same stock code to the same customer
(column `RETURN_OF`); a return with no such sale (the goods were bought before the data starts)
would break the contract's return rule, so it is excluded and counted.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Final

import polars as pl

from features.adapters.base import (
    EXCLUDED,
    Adapter,
    AdapterError,
    Conversion,
    Sources,
    count_reasons,
    kept,
    with_exclusions,
)
from features.adapters.files import find_data_file, read_parts
from features.adapters.report import Flow
from features.adapters.uci_categories import OTHER, category_from_description
from features.columns import Col

NAME: Final = "uci_online_retail"
FILE: Final = "online_retail.parquet"
INPUTS: Final[dict[str, dict[str, pl.DataType]]] = {
    FILE: {
        "InvoiceNo": pl.String(),
        "StockCode": pl.String(),
        "Description": pl.String(),
        "Quantity": pl.Int64(),
        "InvoiceDate": pl.Datetime("us"),
        "UnitPrice": pl.Float64(),
        "CustomerID": pl.Int64(),
        "Country": pl.String(),
    }
}

# header (lower case, letters and digits only) -> the Online Retail name used below
HEADERS: Final[dict[str, str]] = {
    "invoiceno": "InvoiceNo",
    "invoice": "InvoiceNo",
    "stockcode": "StockCode",
    "description": "Description",
    "quantity": "Quantity",
    "invoicedate": "InvoiceDate",
    "unitprice": "UnitPrice",
    "price": "UnitPrice",
    "customerid": "CustomerID",
    "country": "Country",
}
ISO_TIMES: Final = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")
MONTH_FIRST: Final = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%y %H:%M", "%m/%d/%Y")
DAY_FIRST: Final = ("%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%y %H:%M", "%d/%m/%Y")
EXPECTED: Final = {
    "Quantity": "a whole number",
    "UnitPrice": "a number",
    "CustomerID": "a whole customer number",
    "InvoiceDate": "a date and time like 2010-12-01 08:26:00 or 12/1/2010 8:26",
}

log = logging.getLogger(__name__)

# extra columns
PART: Final = "__part"  # which sheet or file (0, 1, ...) a source line came from
UNIT_PRICE: Final = "unit_price"
COUNTRY: Final = "country"
CANCELLATION: Final = "is_cancellation"
RETURN_OF: Final = "return_of_order_id"  # transactions extra: the sale a return is matched to
LINES: Final = "__lines"
CHANNEL_ONLINE: Final = "online"

# a product stock code is five digits plus an optional one- or two-letter variant (85123A, 15056BL)
PRODUCT_CODE: Final = r"^\d{5}[A-Za-z]{0,2}$"

REPEATED: Final = "lines of invoices already read from an earlier sheet or file (sheets overlap)"
NO_CUSTOMER: Final = "lines without customer_id (guest or unknown customer, cannot be attributed)"
NON_PRODUCT: Final = (
    "non-product stock codes (POST, DOT, M, C2, D, BANK CHARGES, AMAZONFEE, CRUK, PADS, S, B, "
    "gift vouchers, DCGS...)"
)
NON_POSITIVE_PRICE: Final = "lines with zero or negative unit price (adjustments, free lines)"
ZERO_QUANTITY: Final = "lines with zero quantity"
WRONG_SIGN: Final = "negative quantity outside a cancellation, or positive inside one"
UNMATCHED_RETURN: Final = (
    "returns with no earlier sale of that stock code to that customer (bought before the data "
    "starts)"
)
REASONS: Final = (
    NO_CUSTOMER,
    NON_PRODUCT,
    NON_POSITIVE_PRICE,
    ZERO_QUANTITY,
    WRONG_SIGN,
    UNMATCHED_RETURN,
)
MERGED: Final = "duplicate lines of one (invoice, stock code), summed into one row"


def read_downloaded(src: Path) -> dict[str, pl.LazyFrame]:
    """The file ``src`` (or the one data file in folder ``src``), all sheets, as `INPUTS` says.

    Keyed by the file name; column `PART` numbers the sheets in workbook order.
    """
    file = find_data_file(src, NAME)
    parts = read_parts(file)
    if not parts:
        raise AdapterError(f"{NAME}: {file} has no sheet with data")
    log.info(
        "%s: reading %s", NAME, ", ".join(f"{p.label} ({p.frame.height:,} rows)" for p in parts)
    )
    frames = [
        canonical_lines(p.frame, p.label).with_columns(pl.lit(i, pl.Int32).alias(PART))
        for i, p in enumerate(parts)
    ]
    return {file.name: pl.concat(frames).lazy()}


def canonical_lines(df: pl.DataFrame, label: str) -> pl.DataFrame:
    """One sheet's lines under the Online Retail names and types (`INPUTS`), either edition.

    An unparsable value is an `AdapterError` naming ``label``, the column and the row
    (0-based, header excluded).
    """
    wanted = INPUTS[FILE]
    found: dict[str, str] = {}  # Online Retail name -> header in the file
    for header in df.columns:
        name = HEADERS.get(re.sub(r"[^a-z0-9]", "", header.lower()))
        if name is None:
            continue
        if name in found:
            raise AdapterError(
                f"{NAME}: {label}: columns {found[name]!r} and {header!r} both mean {name}"
            )
        found[name] = header
    missing = [name for name in wanted if name not in found]
    if missing:
        raise AdapterError(
            f"{NAME}: {label}: no column for {', '.join(missing)} (has: {', '.join(df.columns)}; "
            "expected Online Retail or Online Retail II column names)"
        )
    out: dict[str, pl.Series] = {}
    for name, dtype in wanted.items():
        raw = df.get_column(found[name])
        parsed = _parse(name, raw).cast(dtype)
        absent = raw.is_null()
        if raw.dtype == pl.String:
            absent = absent | (raw.str.strip_chars() == "")
        bad = ~absent & parsed.is_null()
        if bad.any():
            row = int(bad.arg_max() or 0)
            raise AdapterError(
                f"{NAME}: {label} [{found[name]}]: row {row} has {raw[row]!r}, not "
                f"{EXPECTED.get(name, 'text')} ({int(bad.sum()):,} such rows)"
            )
        out[name] = parsed.alias(name)
    return pl.DataFrame(out)


def _parse(name: str, raw: pl.Series) -> pl.Series:
    """A source column as its `INPUTS` type; unreadable values become null."""
    text = raw.str.strip_chars() if raw.dtype == pl.String else None
    if name == "InvoiceDate":
        if text is None:
            return raw.cast(pl.Datetime("us"), strict=False)
        return _parse_times(text)
    if name in ("Quantity", "CustomerID", "UnitPrice"):
        number = (text if text is not None else raw).cast(pl.Float64, strict=False)
        if name == "UnitPrice":
            return number
        whole = number.filter(number.is_not_null())
        if whole.len() and (whole != whole.round()).any():
            number = pl.select(
                pl.when(number == number.round()).then(number).otherwise(None)
            ).to_series()
        return number.cast(pl.Int64, strict=False)
    if raw.dtype.is_float():  # codes stored as numbers: 85048.0 -> "85048"
        return raw.cast(pl.Int64, strict=False).cast(pl.String)
    return text if text is not None else raw.cast(pl.String)


def _parse_times(text: pl.Series) -> pl.Series:
    """ISO times, else slashed dates month-first (UCI's CSV) or, if that reads fewer, day-first."""

    def first_of(formats: tuple[str, ...]) -> pl.Series:
        tries = [text.str.strptime(pl.Datetime("us"), f, strict=False) for f in formats]
        return pl.select(pl.coalesce(tries)).to_series()

    slashed = first_of(MONTH_FIRST)
    day_first = first_of(DAY_FIRST)
    if day_first.null_count() < slashed.null_count():
        slashed = day_first
    return pl.select(pl.coalesce(first_of(ISO_TIMES), slashed)).to_series().alias(text.name)


def normalise_lines(raw: pl.LazyFrame) -> pl.LazyFrame:
    """Source lines renamed to contract columns; ts is the invoice's first line time.

    amount = Quantity * UnitPrice (negative on cancellations, whose Quantity is negative).
    """
    part = pl.col(PART) if PART in raw.collect_schema() else pl.lit(0, pl.Int32)
    return raw.select(
        pl.col("CustomerID").cast(pl.String).alias(Col.CUSTOMER),
        pl.col("InvoiceNo").alias(Col.ORDER),
        pl.col("InvoiceDate").min().over("InvoiceNo").cast(pl.Datetime("us")).alias(Col.TS),
        pl.col("StockCode").alias(Col.ITEM),
        pl.col("Quantity").cast(pl.Float64).alias(Col.QUANTITY),
        (pl.col("Quantity") * pl.col("UnitPrice")).alias(Col.AMOUNT),
        pl.col("UnitPrice").alias(UNIT_PRICE),
        pl.col("Description").str.strip_chars().alias(Col.NAME),
        pl.col("Country").alias(COUNTRY),
        pl.col("InvoiceNo").str.starts_with("C").alias(CANCELLATION),
        part.alias(PART),
    )


def is_product_code(code: pl.Expr) -> pl.Expr:
    """True for stock codes of products (five digits plus an optional variant letter or two)."""
    return code.str.contains(PRODUCT_CODE)


def tag_line_exclusions(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Tag each normalised line with the first line rule it breaks (`EXCLUDED`, null if none)."""
    qty = pl.col(Col.QUANTITY)
    cancel = pl.col(CANCELLATION)
    return with_exclusions(
        lines,
        [
            (pl.col(PART) > pl.col(PART).min().over(Col.ORDER), REPEATED),
            (pl.col(Col.CUSTOMER).is_null(), NO_CUSTOMER),
            (~is_product_code(pl.col(Col.ITEM)), NON_PRODUCT),
            (pl.col(UNIT_PRICE) <= 0, NON_POSITIVE_PRICE),
            (qty == 0, ZERO_QUANTITY),
            (((qty < 0) & ~cancel) | ((qty > 0) & cancel), WRONG_SIGN),
        ],
    )


def match_returns(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Give each kept return the order id of the latest kept sale of that item to that customer.

    A sale at the same time as the return counts as earlier. Returns left without a sale are
    tagged `UNMATCHED_RETURN`. Rows come back sorted by time.
    """
    is_kept = pl.col(EXCLUDED).is_null()
    sales = (
        lines.filter(is_kept & (pl.col(Col.QUANTITY) > 0))
        .group_by(Col.CUSTOMER, Col.ITEM, Col.TS)
        .agg(pl.col(Col.ORDER).max().alias(RETURN_OF))
        .rename({Col.TS: "__sale_ts"})
        .sort("__sale_ts")
    )
    matched = (
        lines.sort(Col.TS, maintain_order=True)
        .join_asof(
            sales,
            left_on=Col.TS,
            right_on="__sale_ts",
            by=[Col.CUSTOMER, Col.ITEM],
            strategy="backward",
            check_sortedness=False,  # both sides are sorted by time just above
        )
        .drop("__sale_ts")
        .with_columns(
            pl.when(is_kept & (pl.col(Col.QUANTITY) < 0)).then(pl.col(RETURN_OF)).alias(RETURN_OF)
        )
    )
    return with_exclusions(
        matched, [((pl.col(Col.QUANTITY) < 0) & pl.col(RETURN_OF).is_null(), UNMATCHED_RETURN)]
    )


def merge_duplicate_lines(lines: pl.LazyFrame) -> pl.LazyFrame:
    """One row per (order, item): quantities and amounts summed; `LINES` counts source lines."""
    return lines.group_by(Col.ORDER, Col.ITEM, maintain_order=True).agg(
        pl.col(Col.CUSTOMER).first(),
        pl.col(Col.TS).first(),
        pl.col(Col.QUANTITY).sum(),
        pl.col(Col.AMOUNT).sum(),
        pl.col(RETURN_OF).first(),
        pl.len().alias(LINES),
    )


def to_transactions(merged: pl.LazyFrame) -> pl.LazyFrame:
    """Contract transactions (plus `RETURN_OF`) from merged rows, sorted by time and order."""
    return merged.select(
        Col.CUSTOMER,
        Col.ORDER,
        Col.TS,
        Col.ITEM,
        Col.QUANTITY,
        Col.AMOUNT,
        pl.lit(CHANNEL_ONLINE).alias(Col.CHANNEL),
        RETURN_OF,
    ).sort(Col.TS, Col.ORDER, Col.ITEM)


def build_items(lines: pl.LazyFrame) -> pl.LazyFrame:
    """The catalogue from kept lines: most frequent description, median sale unit price.

    Price is the median UnitPrice over the item's sale lines (over all its lines when it was
    only ever returned); category comes from the description (`category_from_description`).
    """
    names = (
        lines.filter(pl.col(Col.NAME).is_not_null() & (pl.col(Col.NAME) != ""))
        .group_by(Col.ITEM, Col.NAME)
        .len()
        .sort([Col.ITEM, "len", Col.NAME], descending=[False, True, False])
        .group_by(Col.ITEM, maintain_order=True)
        .agg(pl.col(Col.NAME).first())
    )
    prices = lines.group_by(Col.ITEM).agg(
        pl.coalesce(
            pl.col(UNIT_PRICE).filter(pl.col(Col.QUANTITY) > 0).median(),
            pl.col(UNIT_PRICE).median(),
        ).alias(Col.PRICE)
    )
    return (
        prices.join(names, on=Col.ITEM, how="left")
        .with_columns(category_from_description(pl.col(Col.NAME)))
        .select(Col.ITEM, Col.CATEGORY, Col.PRICE, Col.NAME)
        .sort(Col.ITEM)
    )


def build_customers(lines: pl.LazyFrame) -> pl.LazyFrame:
    """One row per customer with kept lines; country = the country on their latest line."""
    return (
        lines.sort(Col.TS, maintain_order=True)
        .group_by(Col.CUSTOMER)
        .agg(pl.col(COUNTRY).last())
        .sort(Col.CUSTOMER)
    )


def convert(sources: Sources) -> Conversion:
    """Convert the one source table (any edition, see `read_downloaded`); see the module doc."""
    if len(sources) != 1:
        raise AdapterError(f"{NAME}: expected one source table, got {', '.join(sources)}")
    source, raw = next(iter(sources.items()))
    lines = raw.pipe(normalise_lines).pipe(tag_line_exclusions).pipe(match_returns).collect()
    parts = lines[PART].n_unique()
    excluded = count_reasons(lines, (REPEATED, *REASONS) if parts > 1 else REASONS)
    kept_lines = kept(lines)

    merged = merge_duplicate_lines(kept_lines.lazy()).collect()
    transactions = to_transactions(merged.lazy()).collect()
    items = build_items(kept_lines.lazy()).collect()
    customers = build_customers(kept_lines.lazy()).collect()

    raw_counts = raw.select(
        pl.len().alias("lines"),
        pl.col("CustomerID").drop_nulls().n_unique().alias("customers"),
        pl.col("StockCode").n_unique().alias("codes"),
        pl.col("StockCode").filter(~is_product_code(pl.col("StockCode"))).n_unique().alias("np"),
    ).collect()
    n_lines, n_customers, n_codes, n_non_product = raw_counts.row(0)

    flows = (
        Flow(
            source=source,
            table="transactions",
            read=n_lines,
            written=transactions.height,
            excluded=excluded,
            merged={MERGED: int((merged[LINES] - 1).sum())},
        ),
        Flow(
            source=f"{source} (distinct StockCode)",
            table="items",
            read=n_codes,
            written=items.height,
            excluded={
                "non-product stock codes": n_non_product,
                "product codes whose every line was excluded": n_codes
                - n_non_product
                - items.height,
            },
        ),
        Flow(
            source=f"{source} (distinct CustomerID)",
            table="customers",
            read=n_customers,
            written=customers.height,
            excluded={"customers whose every line was excluded": n_customers - customers.height},
        ),
    )
    return Conversion(
        tables={"transactions": transactions, "items": items, "customers": customers},
        flows=flows,
        notes=_notes(source, lines, transactions, items),
    )


def _notes(
    source: str, lines: pl.DataFrame, tx: pl.DataFrame, items: pl.DataFrame
) -> tuple[str, ...]:
    first, last = lines.select(
        pl.col(Col.TS).min().alias("a"), pl.col(Col.TS).max().alias("b")
    ).row(0)
    start = f"{first:%Y-%m-%d}" if first is not None else "the first invoice"
    span = f"{start} to {last:%Y-%m-%d}" if last is not None else "no dates"
    returns = tx.filter(pl.col(Col.QUANTITY) < 0)
    by_pair = tx.group_by(Col.CUSTOMER, Col.ITEM).agg(
        pl.col(Col.QUANTITY).filter(pl.col(Col.QUANTITY) > 0).sum().alias("bought"),
        (-pl.col(Col.QUANTITY).filter(pl.col(Col.QUANTITY) < 0)).sum().alias("returned"),
    )
    over_returned = by_pair.filter(pl.col("returned") > pl.col("bought")).height
    codes = (
        lines.filter(pl.col(EXCLUDED) == NON_PRODUCT)
        .group_by(Col.ITEM)
        .len()
        .sort(["len", Col.ITEM], descending=[True, False])
    )
    top = ", ".join(f"{code} {n:,}" for code, n in codes.head(12).iter_rows())
    priced = tx.join(items.select(Col.ITEM, Col.CATEGORY), on=Col.ITEM)
    other_share = float(priced.select((pl.col(Col.CATEGORY) == OTHER).mean()).item() or 0.0)
    return (
        f"{source}: invoices from {span} in {lines[PART].n_unique()} sheet(s) or file(s).",
        "customer_id = CustomerID (Customer ID); order_id = InvoiceNo (Invoice); "
        "item_id = StockCode; quantity = Quantity; amount = Quantity * UnitPrice (Price, GBP); "
        "channel = 'online'.",
        "ts = the first InvoiceDate of the invoice (a few invoices span two minutes), "
        "naive UK local time.",
        f"Cancellation invoices ('C...') become returns with negative quantity and amount: "
        f"{returns.height:,} return rows kept, each matched to the latest earlier sale of that "
        f"stock code to that customer (transactions.{RETURN_OF}; null on sales).",
        f"{over_returned:,} (customer, item) pairs return more units than they bought within "
        f"the data (the rest was bought before {start}); kept.",
        f"Non-product stock codes excluded, by code (lines with a customer id): {top}.",
        "items.price = median UnitPrice of the item's kept sale lines; items.name = its most "
        "frequent description; items.category = product noun of the description via the "
        f"keyword table in features/adapters/uci_categories.py ({other_share:.1%} of "
        "transaction rows fall in 'other').",
        "customers.country = Country on the customer's latest kept line (a handful of "
        "customers have two countries).",
        "No offers: the shop's campaigns are not in the data.",
    )


ADAPTER: Final = Adapter(
    name=NAME,
    summary="UCI Online Retail (2010-2011) or Online Retail II (2009-2011): UK online gift "
    "shop line items, as downloaded (xlsx, csv or parquet)",
    inputs=INPUTS,
    convert=convert,
    read=read_downloaded,
)
