"""The generated world: valid, deterministic, and structured the way its ground truth says."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl

from features.columns import Col
from features.dataset import load_dataset
from features.validate import validate_dataset
from synth.world import generate
from tests.synth.conftest import TINY


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_config_gives_byte_identical_files(tiny_world: Path, tmp_path: Path) -> None:
    generate(TINY, tmp_path)
    assert _files(tmp_path) == _files(tiny_world)


def test_another_seed_gives_another_world(tiny_world: Path, tmp_path: Path) -> None:
    generate(dataclasses.replace(TINY, seed=TINY.seed + 1), tmp_path)
    a = pl.read_parquet(tiny_world / "transactions.parquet")
    b = pl.read_parquet(tmp_path / "transactions.parquet")
    assert not a.equals(b)


def test_world_passes_validation(tiny_world: Path) -> None:
    report = validate_dataset(tiny_world)
    assert report.ok, report.format()
    assert not report.warnings, report.format()
    assert report.row_counts["customers"] == TINY.customers
    assert report.row_counts["items"] == TINY.items


def test_chunked_world_writes_parts_and_stays_valid(tmp_path: Path) -> None:
    config = dataclasses.replace(TINY, chunk_customers=120)
    summary = generate(config, tmp_path)
    assert len(list((tmp_path / "transactions").glob("part-*.parquet"))) == 3
    report = validate_dataset(tmp_path)
    assert report.ok, report.format()
    ds = load_dataset(tmp_path)
    tx = ds.require("transactions", "test").collect()
    assert tx.height == summary.rows["transactions"]
    # order and offer ids stay unique across chunks
    assert tx.select(pl.struct(Col.ORDER, Col.ITEM).is_unique().all()).item()
    offers = ds.require("offers", "test").collect()
    assert offers[Col.OFFER].is_unique().all()


def test_every_return_matches_an_earlier_sale(tiny_world: Path) -> None:
    tx = pl.read_parquet(tiny_world / "transactions.parquet")
    returns = tx.filter(pl.col(Col.QUANTITY) < 0)
    sales = tx.filter(pl.col(Col.QUANTITY) > 0)
    assert returns.height > 0
    assert (returns[Col.AMOUNT] < 0).all()
    matched = returns.join(
        sales.select(
            Col.CUSTOMER,
            Col.ITEM,
            pl.col(Col.TS).alias("sold_at"),
            pl.col(Col.QUANTITY).alias("sold"),
        ),
        on=[Col.CUSTOMER, Col.ITEM],
    ).filter((pl.col("sold_at") < pl.col(Col.TS)) & (pl.col("sold") >= -pl.col(Col.QUANTITY)))
    assert matched[Col.ORDER].n_unique() == returns[Col.ORDER].n_unique()
    assert matched.unique([Col.ORDER, Col.ITEM]).height == returns.height
    # returns come in orders of their own
    mixed = tx.group_by(Col.ORDER).agg(
        (pl.col(Col.QUANTITY) < 0).any() & (pl.col(Col.QUANTITY) > 0).any()
    )
    assert not mixed[Col.QUANTITY].any()


def test_tiers_are_ordered_by_price_within_each_category(tiny_world: Path) -> None:
    items = pl.read_parquet(tiny_world / "items.parquet")
    bands = (
        items.group_by(Col.CATEGORY, "tier")
        .agg(pl.col(Col.PRICE).min().alias("lo"), pl.col(Col.PRICE).max().alias("hi"))
        .pivot(on="tier", index=Col.CATEGORY, values=["lo", "hi"])
    )
    assert bands.height == items[Col.CATEGORY].n_unique()
    assert (bands["hi_basic"] < bands["lo_better"]).all()
    assert (bands["hi_better"] < bands["lo_premium"]).all()
    assert items.filter(~pl.col(Col.IS_ACTIVE)).height >= 0
    assert ((items[Col.MARGIN] > 0) & (items[Col.MARGIN] < 1)).all()


def test_complements_share_baskets_far_more_than_chance(medium_world: Path) -> None:
    tx = pl.read_parquet(medium_world / "transactions.parquet").filter(pl.col(Col.QUANTITY) > 0)
    items = pl.read_parquet(medium_world / "items.parquet").select(Col.ITEM, Col.CATEGORY)
    pairs = pl.read_parquet(medium_world / "ground_truth" / "complements.parquet")
    baskets = tx.join(items, on=Col.ITEM).select(Col.ORDER, Col.CATEGORY).unique()
    n_orders = baskets[Col.ORDER].n_unique()
    lifts = []
    for anchor, complement in pairs.select("anchor", "complement").iter_rows():
        with_anchor = baskets.filter(pl.col(Col.CATEGORY) == anchor)[Col.ORDER]
        with_comp = baskets.filter(pl.col(Col.CATEGORY) == complement)[Col.ORDER]
        if with_anchor.len() < 30:
            continue
        both = with_anchor.is_in(with_comp.implode()).sum()
        lifts.append((both / with_anchor.len()) / (with_comp.len() / n_orders))
    assert len(lifts) >= 5
    assert min(lifts) > 1.2  # weak pairs (laptop -> monitor) too
    assert sorted(lifts)[len(lifts) // 2] > 3.0


def test_repeat_purchases_are_common_but_not_everything(medium_world: Path) -> None:
    tx = pl.read_parquet(medium_world / "transactions.parquet").filter(pl.col(Col.QUANTITY) > 0)
    ranked = tx.sort(Col.TS, Col.ORDER).with_columns(
        pl.col(Col.TS).rank("ordinal").over(Col.CUSTOMER, Col.ITEM).alias("nth")
    )
    share = (ranked["nth"] > 1).mean()
    assert isinstance(share, float)
    assert 0.3 < share < 0.65


def test_lifecycles_include_sleepers_and_registrations_without_purchase(tiny_world: Path) -> None:
    truth = pl.read_parquet(tiny_world / "ground_truth" / "customers.parquet")
    tx = pl.read_parquet(tiny_world / "transactions.parquet")
    buyers = tx[Col.CUSTOMER].unique()
    registered_only = truth.filter(pl.col("lifecycle") == "registered_only")[Col.CUSTOMER]
    assert registered_only.len() > 0
    assert registered_only.is_in(buyers.implode()).mean() < 0.2  # only offers convert them
    sleeping = truth.filter(pl.col("lifecycle") == "sleeping")
    assert sleeping.height > 0
    assert (sleeping["active_end"] <= TINY.days - 0.3 * TINY.days + 1).all()


def test_bonus_balance_is_the_sum_of_the_ledger(tiny_world: Path) -> None:
    ledger = pl.read_parquet(tiny_world / "bonus_ledger.parquet")
    customers = pl.read_parquet(tiny_world / "customers.parquet")
    sums = ledger.group_by(Col.CUSTOMER).agg(pl.col(Col.POINTS).sum().alias("sum"))
    joined = customers.join(sums, on=Col.CUSTOMER, how="left").with_columns(
        pl.col("sum").fill_null(0.0)
    )
    assert (joined[Col.BONUS_BALANCE] - joined["sum"]).abs().max() == 0.0
    assert (customers[Col.BONUS_BALANCE] >= 0).all()
    accruals = ledger.filter(pl.col(Col.POINTS) > 0)
    assert accruals[Col.EXPIRES_AT].null_count() == 0
    assert ledger.filter(pl.col(Col.POINTS) < 0)[Col.EXPIRES_AT].null_count() > 0
    end = pl.datetime(2025, 1, 1) + pl.duration(days=TINY.days)
    expiring = accruals.filter(pl.col(Col.EXPIRES_AT) > end)
    assert expiring.height > 0  # "points expiring soon" is meaningful


def test_points_spent_in_transactions_match_ledger_redemptions(tiny_world: Path) -> None:
    tx = pl.read_parquet(tiny_world / "transactions.parquet")
    ledger = pl.read_parquet(tiny_world / "bonus_ledger.parquet")
    spent = (
        tx.group_by(Col.ORDER)
        .agg(pl.col(Col.CUSTOMER).first(), pl.col(Col.TS).first(), pl.col(Col.BONUS_SPENT).sum())
        .filter(pl.col(Col.BONUS_SPENT) > 0)
    )
    assert spent.height > 0
    debits = ledger.filter(pl.col(Col.POINTS) < 0)
    joined = spent.join(debits, on=[Col.CUSTOMER, Col.TS], how="left")
    assert (joined[Col.POINTS] == -joined[Col.BONUS_SPENT]).all()
    # a purchase pays at most half its amount with points
    amounts = tx.group_by(Col.ORDER).agg(pl.col(Col.AMOUNT).sum())
    capped = spent.join(amounts, on=Col.ORDER)
    assert (capped[Col.BONUS_SPENT] <= 0.5 * capped[Col.AMOUNT]).all()


def test_conversions_are_real_orders(tiny_world: Path) -> None:
    offers = pl.read_parquet(tiny_world / "offers.parquet")
    truth = pl.read_parquet(tiny_world / "ground_truth" / "offers.parquet")
    tx = pl.read_parquet(tiny_world / "transactions.parquet")
    orders = tx.group_by(Col.ORDER).agg(
        pl.col(Col.AMOUNT).sum().alias("order_amount"),
        pl.col(Col.TS).first().alias("order_ts"),
        pl.col(Col.CUSTOMER).first().alias("buyer"),
    )
    converted = offers.filter(pl.col(Col.CONVERTED)).join(truth, on=Col.OFFER)
    assert converted.height > 0
    joined = converted.join(orders, on=Col.ORDER)
    assert joined.height == converted.height
    assert (joined[Col.REVENUE] == joined["order_amount"]).all()
    assert (joined[Col.CONVERTED_AT] == joined["order_ts"]).all()
    assert (joined["buyer"] == joined[Col.CUSTOMER]).all()
    window = pl.duration(days=TINY.offer_window_days)
    assert (joined[Col.CONVERTED_AT] < joined[Col.SENT_AT] + joined.select(window).item()).all()
    not_converted = offers.filter(~pl.col(Col.CONVERTED))
    assert not_converted[Col.REVENUE].null_count() == not_converted.height


def test_offer_history_is_randomised(medium_world: Path) -> None:
    offers = pl.read_parquet(medium_world / "offers.parquet")
    control = offers.filter(pl.col(Col.CONTROL))
    assert (control[Col.OFFER_TYPE] == "none").all()
    assert (control[Col.BONUS] == 0).all()
    treated = offers.filter(~pl.col(Col.CONTROL))
    assert treated[Col.OFFER_TYPE].n_unique() == 10
    assert sorted(treated[Col.BONUS].unique().to_list()) == [0.0, 50.0, 100.0, 200.0, 300.0, 500.0]
    threshold = offers.filter(pl.col(Col.OFFER_TYPE) == "spend_threshold")[Col.THRESHOLD]
    assert threshold.null_count() == 0
    assert offers.filter(pl.col(Col.OFFER_TYPE) != "spend_threshold")[
        Col.THRESHOLD
    ].null_count() == (offers.height - threshold.len())


def test_nobody_buys_or_is_contacted_before_registering(medium_world: Path) -> None:
    customers = pl.read_parquet(medium_world / "customers.parquet").select(
        Col.CUSTOMER, Col.REGISTERED_AT
    )
    tx = pl.read_parquet(medium_world / "transactions.parquet").join(customers, on=Col.CUSTOMER)
    offers = pl.read_parquet(medium_world / "offers.parquet").join(customers, on=Col.CUSTOMER)
    assert (tx[Col.TS] >= tx[Col.REGISTERED_AT]).all()
    assert (offers[Col.SENT_AT] >= offers[Col.REGISTERED_AT]).all()
