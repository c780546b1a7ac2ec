"""84.51° / dunnhumby "The Complete Journey" (R package completejourney) -> the data contract.

Transactions come from the package's 5 % random sample of receipt lines; items are the
products seen in that sample (a price can only be observed there); customers are every
household seen anywhere, with demographics where known; offers are the coupon campaigns,
one row per (household, campaign) receipt.

Campaign targeting was NOT randomised and there is no hold-out group: the offers table records
who was sent what and who redeemed, which supports descriptive response models but not a
causal estimate of what a campaign (or a bonus amount) changed.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from features.adapters.base import (
    Adapter,
    Conversion,
    Sources,
    count_reasons,
    kept,
    with_exclusions,
)
from features.adapters.report import Flow
from features.columns import Col

NAME: Final = "dunnhumby_complete_journey"
TRANSACTIONS: Final = "transactions_sample.parquet"
PRODUCTS: Final = "products.parquet"
CAMPAIGNS: Final = "campaigns.parquet"
DESCRIPTIONS: Final = "campaign_descriptions.parquet"
COUPONS: Final = "coupons.parquet"
REDEMPTIONS: Final = "coupon_redemptions.parquet"
DEMOGRAPHICS: Final = "demographics.parquet"

_S = pl.String()
DEMOGRAPHIC_COLUMNS: Final = (
    "age",
    "income",
    "home_ownership",
    "marital_status",
    "household_size",
    "household_comp",
    "kids_count",
)
INPUTS: Final[dict[str, dict[str, pl.DataType]]] = {
    TRANSACTIONS: {
        "household_id": _S,
        "store_id": _S,
        "basket_id": _S,
        "product_id": _S,
        "quantity": pl.Float64(),
        "sales_value": pl.Float64(),
        "retail_disc": pl.Float64(),
        "coupon_disc": pl.Float64(),
        "coupon_match_disc": pl.Float64(),
        "transaction_timestamp": pl.Datetime("us"),
    },
    PRODUCTS: {
        "product_id": _S,
        "manufacturer_id": _S,
        "department": _S,
        "brand": _S,
        "product_category": _S,
        "product_type": _S,
        "package_size": _S,
    },
    CAMPAIGNS: {"campaign_id": _S, "household_id": _S},
    DESCRIPTIONS: {
        "campaign_id": _S,
        "campaign_type": _S,
        "start_date": pl.Date(),
        "end_date": pl.Date(),
    },
    COUPONS: {"coupon_upc": _S, "product_id": _S, "campaign_id": _S},
    REDEMPTIONS: {
        "household_id": _S,
        "coupon_upc": _S,
        "campaign_id": _S,
        "redemption_date": pl.Date(),
    },
    DEMOGRAPHICS: {"household_id": _S, **dict.fromkeys(DEMOGRAPHIC_COLUMNS, _S)},
}

# extra columns
RETAIL_DISC: Final = "retail_disc"
COUPON_DISC: Final = "coupon_disc"
COUPON_MATCH_DISC: Final = "coupon_match_disc"
DEPARTMENT: Final = "department"
MANUFACTURER: Final = "manufacturer_id"
PACKAGE_SIZE: Final = "package_size"
IN_CATALOGUE: Final = "__in_catalogue"
CAMPAIGN_END: Final = "campaign_end"
REDEEMED: Final = "coupons_redeemed"
BONUS_SOURCE: Final = "bonus_source"
BONUS_LINES: Final = "__bonus_lines"
LINES: Final = "__lines"

UNKNOWN_CATEGORY: Final = "unknown"
CHANNEL_COUPON: Final = "coupon"
BONUS_FROM_CAMPAIGN: Final = "campaign"
BONUS_FROM_ALL: Final = "all campaigns"
BONUS_NONE: Final = "none observed"

ZERO_QUANTITY: Final = "lines with zero quantity (coupon or adjustment entries, sales_value 0)"
OPPOSITE_SIGNS: Final = "lines whose quantity and sales_value have opposite signs"
NEGATIVE: Final = "returns (negative quantity): cannot be matched to a sale in a 5% line sample"
REASONS: Final = (ZERO_QUANTITY, OPPOSITE_SIGNS, NEGATIVE)
MERGED: Final = "duplicate lines of one (basket, product), summed into one row"
NO_DESCRIPTION: Final = "campaign receipts whose campaign has no description (no dates)"


def normalise_transactions(raw: pl.LazyFrame) -> pl.LazyFrame:
    """Receipt lines in contract columns; ts is the local (America/New_York) wall-clock time.

    amount = sales_value (what the retailer received); the three discount columns are kept.
    """
    return raw.select(
        pl.col("household_id").alias(Col.CUSTOMER),
        pl.col("basket_id").alias(Col.ORDER),
        pl.col("transaction_timestamp")
        .dt.replace_time_zone(None)
        .cast(pl.Datetime("us"))
        .alias(Col.TS),
        pl.col("product_id").alias(Col.ITEM),
        pl.col("quantity").alias(Col.QUANTITY),
        pl.col("sales_value").alias(Col.AMOUNT),
        pl.col("store_id").alias(Col.STORE),
        pl.col("retail_disc").alias(RETAIL_DISC),
        pl.col("coupon_disc").alias(COUPON_DISC),
        pl.col("coupon_match_disc").alias(COUPON_MATCH_DISC),
    )


def tag_line_exclusions(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Tag lines the contract cannot hold (`EXCLUDED` = first reason, null when kept)."""
    qty, amount = pl.col(Col.QUANTITY), pl.col(Col.AMOUNT)
    return with_exclusions(
        lines,
        [
            (qty == 0, ZERO_QUANTITY),
            (((qty > 0) & (amount < 0)) | ((qty < 0) & (amount > 0)), OPPOSITE_SIGNS),
            (qty < 0, NEGATIVE),
        ],
    )


def merge_duplicate_lines(lines: pl.LazyFrame) -> pl.LazyFrame:
    """One row per (basket, product), sums of quantity, amount and discounts; `LINES` counted."""
    sums = (Col.QUANTITY, Col.AMOUNT, RETAIL_DISC, COUPON_DISC, COUPON_MATCH_DISC)
    return (
        lines.group_by(Col.ORDER, Col.ITEM, maintain_order=True)
        .agg(
            pl.col(Col.CUSTOMER).first(),
            pl.col(Col.TS).min(),
            pl.col(Col.STORE).first(),
            *(pl.col(c).sum() for c in sums),
            pl.len().alias(LINES),
        )
        .select(
            Col.CUSTOMER,
            Col.ORDER,
            Col.TS,
            Col.ITEM,
            Col.QUANTITY,
            Col.AMOUNT,
            Col.STORE,
            RETAIL_DISC,
            COUPON_DISC,
            COUPON_MATCH_DISC,
            LINES,
        )
        .sort(Col.TS, Col.ORDER, Col.ITEM)
    )


def build_items(transactions: pl.LazyFrame, products: pl.LazyFrame) -> pl.LazyFrame:
    """The products sold in the sample, with the hierarchy and the median unit price paid.

    price = median of sales_value / quantity over lines with a positive value (0.0 when the
    product was only ever free); category = product_category, else department, else
    "unknown" (also for product ids missing from the products table, flagged `IN_CATALOGUE`).
    """
    prices = transactions.group_by(Col.ITEM).agg(
        (pl.col(Col.AMOUNT) / pl.col(Col.QUANTITY))
        .filter(pl.col(Col.AMOUNT) > 0)
        .median()
        .fill_null(0.0)
        .alias(Col.PRICE)
    )
    catalogue = products.select(
        pl.col("product_id").alias(Col.ITEM),
        pl.col("product_category"),
        pl.col("product_type").alias(Col.SUBCATEGORY),
        pl.col("brand").alias(Col.BRAND),
        pl.col("department").alias(DEPARTMENT),
        pl.col("manufacturer_id").alias(MANUFACTURER),
        pl.col("package_size").alias(PACKAGE_SIZE),
        pl.lit(True).alias(IN_CATALOGUE),
    )
    return (
        prices.join(catalogue, on=Col.ITEM, how="left")
        .with_columns(
            pl.coalesce("product_category", DEPARTMENT, pl.lit(UNKNOWN_CATEGORY)).alias(
                Col.CATEGORY
            ),
            pl.col(IN_CATALOGUE).fill_null(False),
        )
        .select(
            Col.ITEM,
            Col.CATEGORY,
            Col.PRICE,
            Col.SUBCATEGORY,
            Col.BRAND,
            DEPARTMENT,
            MANUFACTURER,
            PACKAGE_SIZE,
            IN_CATALOGUE,
        )
        .sort(Col.ITEM)
    )


def build_customers(household_ids: pl.LazyFrame, demographics: pl.LazyFrame) -> pl.LazyFrame:
    """Every household id given (column customer_id) with its demographics, null where unknown."""
    demo = demographics.select(pl.col("household_id").alias(Col.CUSTOMER), *DEMOGRAPHIC_COLUMNS)
    ids = pl.concat(
        [household_ids.select(Col.CUSTOMER), demo.select(Col.CUSTOMER)], how="vertical"
    ).unique()
    return ids.join(demo, on=Col.CUSTOMER, how="left").sort(Col.CUSTOMER)


def campaign_bonus(
    transactions: pl.LazyFrame,
    campaigns: pl.LazyFrame,
    descriptions: pl.LazyFrame,
    coupons: pl.LazyFrame,
) -> pl.LazyFrame:
    """Estimated coupon value per campaign, from coupon-discounted lines in the sample.

    A line counts for a campaign when its household received the campaign, its product is one
    the campaign's coupons cover, its date is within the campaign period and it carries a
    manufacturer coupon discount. bonus = median of coupon_disc + coupon_match_disc over those
    lines; campaigns without such a line get the median over all campaigns' lines
    (`BONUS_SOURCE` says which), or 0.0 when the sample has none at all.
    """
    lines = transactions.filter(pl.col(COUPON_DISC) > 0).select(
        Col.CUSTOMER,
        Col.ITEM,
        pl.col(Col.TS).dt.date().alias("__date"),
        (pl.col(COUPON_DISC) + pl.col(COUPON_MATCH_DISC)).alias("__disc"),
    )
    covered = coupons.select(
        pl.col("campaign_id").alias(Col.CAMPAIGN), pl.col("product_id").alias(Col.ITEM)
    ).unique()
    matched = (
        lines.join(
            campaigns.select(
                pl.col("household_id").alias(Col.CUSTOMER),
                pl.col("campaign_id").alias(Col.CAMPAIGN),
            ),
            on=Col.CUSTOMER,
        )
        .join(_periods(descriptions), on=Col.CAMPAIGN)
        .filter(pl.col("__date").is_between(pl.col("__start"), pl.col("__end")))
        .join(covered, on=[Col.CAMPAIGN, Col.ITEM])
    )
    per_campaign = matched.group_by(Col.CAMPAIGN).agg(
        pl.col("__disc").median().alias("__campaign"), pl.len().alias(BONUS_LINES)
    )
    overall = matched.select(pl.col("__disc").median().alias("__overall"))
    return (
        descriptions.select(pl.col("campaign_id").alias(Col.CAMPAIGN))
        .join(per_campaign, on=Col.CAMPAIGN, how="left")
        .join(overall, how="cross")
        .select(
            Col.CAMPAIGN,
            pl.coalesce("__campaign", "__overall", pl.lit(0.0)).alias(Col.BONUS),
            pl.when(pl.col("__campaign").is_not_null())
            .then(pl.lit(BONUS_FROM_CAMPAIGN))
            .when(pl.col("__overall").is_not_null())
            .then(pl.lit(BONUS_FROM_ALL))
            .otherwise(pl.lit(BONUS_NONE))
            .alias(BONUS_SOURCE),
            pl.col(BONUS_LINES).fill_null(0).cast(pl.Int64),
        )
    )


def _periods(descriptions: pl.LazyFrame) -> pl.LazyFrame:
    return descriptions.select(
        pl.col("campaign_id").alias(Col.CAMPAIGN),
        pl.col("campaign_type"),
        pl.col("start_date").alias("__start"),
        pl.col("end_date").alias("__end"),
    )


def offer_type(campaign_type: pl.Expr) -> pl.Expr:
    """'Type A' -> 'campaign_type_a' (unknown type -> 'campaign_unknown')."""
    slug = campaign_type.str.to_lowercase().str.strip_chars().str.replace_all(r"[^a-z0-9]+", "_")
    return pl.concat_str(pl.lit("campaign_"), slug.fill_null("unknown"))


def build_offers(
    campaigns: pl.LazyFrame,
    descriptions: pl.LazyFrame,
    redemptions: pl.LazyFrame,
    bonus: pl.LazyFrame,
) -> pl.LazyFrame:
    """One offer per (household, campaign) receipt; converted = a coupon of it redeemed in time.

    sent_at = campaign start (midnight); converted_at = the first redemption date within the
    campaign period; revenue is null (not derivable, see the docs). Receipts of a campaign
    without a description have no dates: their sent_at is null and the caller excludes them.
    """
    periods = _periods(descriptions)
    in_period = (
        redemptions.select(
            pl.col("household_id").alias(Col.CUSTOMER),
            pl.col("campaign_id").alias(Col.CAMPAIGN),
            pl.col("redemption_date"),
        )
        .join(periods, on=Col.CAMPAIGN)
        .filter(pl.col("redemption_date").is_between(pl.col("__start"), pl.col("__end")))
        .group_by(Col.CUSTOMER, Col.CAMPAIGN)
        .agg(
            pl.col("redemption_date").min().alias("__first"),
            pl.len().cast(pl.Int64).alias(REDEEMED),
        )
    )
    return (
        campaigns.select(
            pl.col("household_id").alias(Col.CUSTOMER),
            pl.col("campaign_id").alias(Col.CAMPAIGN),
        )
        .join(periods, on=Col.CAMPAIGN, how="left")
        .join(in_period, on=[Col.CUSTOMER, Col.CAMPAIGN], how="left")
        .join(bonus, on=Col.CAMPAIGN, how="left")
        .select(
            pl.concat_str(Col.CAMPAIGN, Col.CUSTOMER, separator="-").alias(Col.OFFER),
            Col.CUSTOMER,
            pl.col("__start").cast(pl.Datetime("us")).alias(Col.SENT_AT),
            offer_type(pl.col("campaign_type")).alias(Col.OFFER_TYPE),
            pl.col(Col.BONUS).fill_null(0.0),
            pl.lit(CHANNEL_COUPON).alias(Col.CHANNEL),
            pl.col("__first").is_not_null().alias(Col.CONVERTED),
            pl.col("__first").cast(pl.Datetime("us")).alias(Col.CONVERTED_AT),
            pl.lit(None, dtype=pl.Float64).alias(Col.REVENUE),
            Col.CAMPAIGN,
            pl.lit(False).alias(Col.CONTROL),
            pl.col("__end").cast(pl.Datetime("us")).alias(CAMPAIGN_END),
            pl.col(REDEEMED).fill_null(0),
            pl.col(BONUS_SOURCE).fill_null(BONUS_NONE),
        )
        .sort(Col.SENT_AT, Col.CAMPAIGN, Col.CUSTOMER)
    )


def convert(sources: Sources) -> Conversion:
    """Convert the Complete Journey tables; see the module docstring."""
    lines = sources[TRANSACTIONS].pipe(normalise_transactions).pipe(tag_line_exclusions).collect()
    excluded = count_reasons(lines, REASONS)
    merged = merge_duplicate_lines(kept(lines).lazy()).collect()
    transactions = merged.drop(LINES)

    products = sources[PRODUCTS]
    items_full = build_items(transactions.lazy(), products).collect()
    items = items_full.drop(IN_CATALOGUE)
    n_products = products.select(pl.len()).collect().item()
    missing_from_catalogue = int((~items_full[IN_CATALOGUE]).sum())

    campaigns, descriptions = sources[CAMPAIGNS], sources[DESCRIPTIONS]
    redemptions = sources[REDEMPTIONS]
    bonus = campaign_bonus(transactions.lazy(), campaigns, descriptions, sources[COUPONS])
    all_offers = build_offers(campaigns, descriptions, redemptions, bonus).collect()
    offers = all_offers.filter(pl.col(Col.SENT_AT).is_not_null())

    households = pl.concat(
        [
            lines.lazy().select(Col.CUSTOMER),  # households of excluded lines are still seen
            campaigns.select(pl.col("household_id").alias(Col.CUSTOMER)),
            redemptions.select(pl.col("household_id").alias(Col.CUSTOMER)),
        ]
    )
    demographics = sources[DEMOGRAPHICS]
    customers = build_customers(households, demographics).collect()
    n_demographics = demographics.select(pl.len()).collect().item()

    flows = (
        Flow(
            source=TRANSACTIONS,
            table="transactions",
            read=lines.height,
            written=transactions.height,
            excluded=excluded,
            merged={MERGED: int((merged[LINES] - 1).sum())},
        ),
        Flow(
            source=PRODUCTS,
            table="items",
            read=n_products,
            written=items.height,
            excluded={
                "products never sold in the 5% transactions sample (no observed price)": (
                    n_products - (items.height - missing_from_catalogue)
                )
            },
            added={
                "product ids sold but missing from products (category 'unknown')": (
                    missing_from_catalogue
                )
            },
        ),
        Flow(
            source=DEMOGRAPHICS,
            table="customers",
            read=n_demographics,
            written=customers.height,
            added={
                "households seen in transactions or campaigns without demographics "
                "(attributes null)": customers.height - n_demographics
            },
        ),
        Flow(
            source=CAMPAIGNS,
            table="offers",
            read=all_offers.height,
            written=offers.height,
            excluded={NO_DESCRIPTION: all_offers.height - offers.height},
        ),
    )
    bonus_df = bonus.collect()
    return Conversion(
        tables={
            "transactions": transactions,
            "items": items,
            "customers": customers,
            "offers": offers,
        },
        flows=flows,
        notes=_notes(transactions, offers, bonus_df, redemptions),
    )


def _notes(
    tx: pl.DataFrame,
    offers: pl.DataFrame,
    bonus: pl.DataFrame,
    redemptions: pl.LazyFrame,
) -> tuple[str, ...]:
    free = tx.filter((pl.col(Col.QUANTITY) > 0) & (pl.col(Col.AMOUNT) == 0)).height
    by_source = dict(bonus.group_by(BONUS_SOURCE).len().iter_rows())
    n_redemptions = redemptions.select(pl.len()).collect().item()
    counted = int(offers[REDEEMED].sum())
    converted = int(offers[Col.CONVERTED].sum())
    return (
        "NOT RANDOMISED: campaign targeting was chosen by the retailer and there is no hold-out "
        "group (offers.control is false everywhere). Redemption rates describe who redeemed; "
        "they do not estimate what a campaign or a coupon amount caused, and uplift cannot be "
        "measured from these offers.",
        "customer_id = household_id; order_id = basket_id; item_id = product_id; store_id kept; "
        "quantity = quantity; amount = sales_value (what the retailer received, >= 0); "
        "retail_disc, coupon_disc, coupon_match_disc kept as extra columns.",
        "ts = transaction_timestamp as local America/New_York wall-clock time (the package "
        "re-based dates: day 285 of the study = 2017-01-01; seconds are synthetic).",
        "The transactions are a 5% random sample of receipt LINES (not of households or "
        "baskets): baskets and customer histories are thin, and no return appears in it.",
        f"{free:,} kept lines have quantity > 0 and amount 0 (free items); quantities of FUEL "
        "and some MISCELLANEOUS products are not unit counts (e.g. 15,000).",
        "items = products sold in the sample (price = median sales_value/quantity over "
        "positive-value lines); category = product_category (else department), subcategory = "
        "product_type, brand = National/Private; department, manufacturer_id, package_size "
        "kept as extras. No product names exist.",
        "customers = every household seen in transaction lines, campaigns or redemptions; the 7 "
        "demographic columns (age, income, ...) are null for households without demographics.",
        f"offers: one per (household, campaign) receipt; offer_type = campaign_type_a/b/c; "
        f"sent_at = campaign start_date; campaign_end = end_date; channel = 'coupon' (the "
        f"delivery medium is not in the data); converted = the household redeemed a coupon of "
        f"that campaign between start and end date ({converted:,} offers), converted_at = "
        f"first such redemption date, coupons_redeemed = how many ({counted:,} of "
        f"{n_redemptions:,} redemptions fall in a campaign period).",
        f"offers.bonus is an ESTIMATE of the coupon value: median coupon_disc + "
        f"coupon_match_disc over sampled lines matching the campaign's households, coupon "
        f"products and period. Campaigns with such lines: {by_source.get(BONUS_FROM_CAMPAIGN, 0)}"
        f"; given the all-campaign median instead: {by_source.get(BONUS_FROM_ALL, 0)} "
        "(offers.bonus_source says which). Bonus amounts were not varied at random.",
        "offers.revenue is null: the 5% line sample cannot say what a redeeming household "
        "spent because of the coupon.",
    )


ADAPTER: Final = Adapter(
    name=NAME,
    summary="84.51°/dunnhumby The Complete Journey: grocery lines (5% sample), coupon campaigns",
    inputs=INPUTS,
    convert=convert,
)
