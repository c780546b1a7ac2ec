"""Kevin Hillstrom's MineThatData e-mail experiment (2008) -> customers + offers.

64,000 customers were randomised to a men's e-mail, a women's e-mail or no e-mail; visits,
conversions and spend were tracked for two weeks. There are no line items, so the import has
no transactions or items: it serves response and uplift models only. The send date is not in
the data; `SENT_AT` is a fixed stand-in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import polars as pl

from features.adapters.base import Adapter, AdapterError, Conversion, Sources
from features.adapters.report import Flow
from features.columns import Col, OfferType

NAME: Final = "hillstrom_email"
FILE: Final = "hillstrom.parquet"
ATTRIBUTES: Final = (
    "recency",
    "history_segment",
    "history",
    "mens",
    "womens",
    "zip_code",
    "newbie",
    "channel",
)
INPUTS: Final[dict[str, dict[str, pl.DataType]]] = {
    FILE: {
        "row_id": pl.Int64(),
        "recency": pl.Int64(),
        "history_segment": pl.String(),
        "history": pl.Float64(),
        "mens": pl.Int64(),
        "womens": pl.Int64(),
        "zip_code": pl.String(),
        "newbie": pl.Int64(),
        "channel": pl.String(),
        "segment": pl.String(),
        "visit": pl.Int64(),
        "conversion": pl.Int64(),
        "spend": pl.Float64(),
    }
}

SENT_AT: Final = datetime(2008, 3, 1)  # stand-in: the challenge was published 2008-03-20
CAMPAIGN: Final = "hillstrom"
CHANNEL_EMAIL: Final = "email"
VISIT: Final = "visit"
ARMS: Final[dict[str, str]] = {
    "Mens E-Mail": "email_mens",
    "Womens E-Mail": "email_womens",
    "No E-Mail": OfferType.NONE,
}
CONTROL_ARM: Final = "No E-Mail"


def customer_id(row_id: pl.Expr) -> pl.Expr:
    """The customer of a source row: its row_id as text (the data has no customer ids)."""
    return row_id.cast(pl.String)


def to_customers(raw: pl.LazyFrame) -> pl.LazyFrame:
    """One customer per row, with the pre-experiment attributes as extra columns."""
    return raw.select(customer_id(pl.col("row_id")).alias(Col.CUSTOMER), *ATTRIBUTES)


def to_offers(raw: pl.LazyFrame) -> pl.LazyFrame:
    """One offer per row: the arm as offer_type, conversion and spend as the outcome."""
    return raw.select(
        pl.concat_str(pl.lit(f"{CAMPAIGN}-"), pl.col("row_id").cast(pl.String)).alias(Col.OFFER),
        customer_id(pl.col("row_id")).alias(Col.CUSTOMER),
        pl.lit(SENT_AT, dtype=pl.Datetime("us")).alias(Col.SENT_AT),
        pl.col("segment").replace_strict(ARMS, default=None).alias(Col.OFFER_TYPE),
        pl.lit(0.0).alias(Col.BONUS),
        pl.lit(CHANNEL_EMAIL).alias(Col.CHANNEL),
        (pl.col("conversion") == 1).alias(Col.CONVERTED),
        pl.lit(None, dtype=pl.Datetime("us")).alias(Col.CONVERTED_AT),
        pl.col("spend").alias(Col.REVENUE),
        pl.lit(CAMPAIGN).alias(Col.CAMPAIGN),
        (pl.col("segment") == CONTROL_ARM).alias(Col.CONTROL),
        (pl.col(VISIT) == 1).alias(VISIT),
    )


def check_arms(raw: pl.LazyFrame) -> None:
    """Raise `AdapterError` naming the rows whose segment is not one of the three arms."""
    bad = raw.filter(~pl.col("segment").is_in(list(ARMS)) | pl.col("segment").is_null())
    found = bad.select("row_id", "segment").head(5).collect()
    if found.height:
        n = bad.select(pl.len()).collect().item()
        examples = ", ".join(f"row_id {r}: {s!r}" for r, s in found.iter_rows())
        raise AdapterError(
            f"{FILE} [segment]: {n:,} rows are not one of {', '.join(ARMS)} (e.g. {examples})"
        )


def convert(sources: Sources) -> Conversion:
    """Convert the Hillstrom table; see the module docstring."""
    raw = sources[FILE]
    check_arms(raw)
    customers = to_customers(raw).collect()
    offers = to_offers(raw).collect()
    arms = dict(offers.group_by(Col.OFFER_TYPE).len().sort(Col.OFFER_TYPE).iter_rows())
    n = customers.height
    flows = (
        Flow(source=FILE, table="customers", read=n, written=customers.height),
        Flow(source=FILE, table="offers", read=n, written=offers.height),
    )
    notes = (
        "RANDOMISED: segment was assigned at random, so arm comparisons (and uplift models) "
        "are causal. The treatment is which e-mail, not an incentive amount (bonus = 0).",
        "customer_id = row_id (no customer ids in the data). customers keep recency, "
        "history_segment, history, mens, womens, zip_code, newbie, channel (the channels the "
        "customer bought from: an attribute, not the offer channel) as extra columns.",
        "offers: one per customer; offer_type email_mens / email_womens / none (No E-Mail, "
        f"control = true); arms: {', '.join(f'{k} {v:,}' for k, v in arms.items())}; "
        "channel = 'email'; campaign_id = 'hillstrom'; converted = conversion; revenue = spend "
        "(0 without a purchase); visit kept as an extra column (the usual uplift target).",
        f"sent_at = {SENT_AT:%Y-%m-%d} for all (a stand-in: the send date is not published); "
        "converted_at is null (outcomes are only known to fall within two weeks).",
        "No transactions or items: usable for response / uplift models only.",
    )
    return Conversion(tables={"customers": customers, "offers": offers}, flows=flows, notes=notes)


ADAPTER: Final = Adapter(
    name=NAME,
    summary="Hillstrom MineThatData e-mail experiment: 64,000 customers randomised to 3 arms",
    inputs=INPUTS,
    convert=convert,
)
