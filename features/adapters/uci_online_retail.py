"""UCI Online Retail (2010-12 to 2011-12, a UK online gift shop) -> the data contract.

One source line is one (invoice, stock code) line. Lines are tagged with the first exclusion
rule they break (`LINE_RULES`, then unmatched returns), the rest are merged per (invoice,
stock code) into transactions. Cancellation invoices ("C...") become returns: negative quantity
and amount, matched to the latest earlier sale of the same stock code to the same customer
(column `RETURN_OF`); a return with no such sale (the goods were bought before the data starts)
would break the contract's return rule, so it is excluded and counted.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from features.adapters.base import (
    EXCLUDED,
    Adapter,
    Conversion,
    Sources,
    count_reasons,
    kept,
    with_exclusions,
)
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

# extra columns
UNIT_PRICE: Final = "unit_price"
COUNTRY: Final = "country"
CANCELLATION: Final = "is_cancellation"
RETURN_OF: Final = "return_of_order_id"  # transactions extra: the sale a return is matched to
LINES: Final = "__lines"
CHANNEL_ONLINE: Final = "online"

# a product stock code is five digits plus an optional one- or two-letter variant (85123A, 15056BL)
PRODUCT_CODE: Final = r"^\d{5}[A-Za-z]{0,2}$"

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


def normalise_lines(raw: pl.LazyFrame) -> pl.LazyFrame:
    """Source lines renamed to contract columns; ts is the invoice's first line time.

    amount = Quantity * UnitPrice (negative on cancellations, whose Quantity is negative).
    """
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
    """Convert the online_retail table; see the module docstring."""
    raw = sources[FILE]
    lines = raw.pipe(normalise_lines).pipe(tag_line_exclusions).pipe(match_returns).collect()
    excluded = count_reasons(lines, REASONS)
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
            source=FILE,
            table="transactions",
            read=n_lines,
            written=transactions.height,
            excluded=excluded,
            merged={MERGED: int((merged[LINES] - 1).sum())},
        ),
        Flow(
            source=f"{FILE} (distinct StockCode)",
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
            source=f"{FILE} (distinct CustomerID)",
            table="customers",
            read=n_customers,
            written=customers.height,
            excluded={"customers whose every line was excluded": n_customers - customers.height},
        ),
    )
    return Conversion(
        tables={"transactions": transactions, "items": items, "customers": customers},
        flows=flows,
        notes=_notes(lines, transactions, items),
    )


def _notes(lines: pl.DataFrame, tx: pl.DataFrame, items: pl.DataFrame) -> tuple[str, ...]:
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
        "customer_id = CustomerID; order_id = InvoiceNo; item_id = StockCode; "
        "quantity = Quantity; amount = Quantity * UnitPrice (GBP); channel = 'online'.",
        "ts = the first InvoiceDate of the invoice (a few invoices span two minutes), "
        "naive UK local time.",
        f"Cancellation invoices ('C...') become returns with negative quantity and amount: "
        f"{returns.height:,} return rows kept, each matched to the latest earlier sale of that "
        f"stock code to that customer (transactions.{RETURN_OF}; null on sales).",
        f"{over_returned:,} (customer, item) pairs return more units than they bought within "
        "the data (the rest was bought before 2010-12-01); kept.",
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
    summary="UCI Online Retail: UK online gift shop line items, 2010-12-01..2011-12-09",
    inputs=INPUTS,
    convert=convert,
)
