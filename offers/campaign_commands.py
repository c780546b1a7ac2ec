"""`offers campaign`: a budgeted offer plan for a customer list or a segment."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from offers.env import tracking_config

if TYPE_CHECKING:
    from training.bonus.rule_book import RuleAllocation


def _read_customers(path: Path) -> list[str]:
    """Customer ids from a .parquet/.csv with a customer_id column, or a text file, one a line."""
    from features.columns import Col

    if path.suffix.lower() in (".parquet", ".csv"):
        df = pl.read_parquet(path) if path.suffix.lower() == ".parquet" else pl.read_csv(path)
        if Col.CUSTOMER not in df.columns:
            raise ValueError(f"--customers {path}: no {Col.CUSTOMER} column (has {df.columns})")
        ids = df.get_column(Col.CUSTOMER).cast(pl.String)
        if ids.null_count():
            row = int(ids.is_null().arg_max() or 0)
            raise ValueError(f"--customers {path}: null {Col.CUSTOMER} at row {row}")
        return ids.to_list()
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


def _print_rule_based(alloc: RuleAllocation, contacted: pl.DataFrame, *, budget: float) -> None:
    """The summary of a rule-based plan: worst-case cost, what was left out, offers per rule."""
    print(
        "rule-based plan: the model's dataset had no offer history, so no response is predicted "
        "(expected uplift and profit are empty) and the budget is counted at worst-case cost "
        "(every contacted customer redeems the full bonus)"
    )
    print(
        f"worst-case bonus cost {alloc.total_cost:,.0f} of budget {budget:,.0f}; "
        f"{alloc.over_budget:,} customers with a matching rule left out by the budget, "
        f"{alloc.without_rule:,} with no matching rule (or no eligible offer), "
        f"{alloc.without_channel:,} without a consented channel"
    )
    by_rule = contacted.group_by("rule", "offer_type").agg(
        pl.len().alias("offers"),
        pl.col("bonus").mean().alias("mean_bonus"),
        pl.col("expected_cost").sum().alias("cost"),
    )
    for r in by_rule.sort(["offers", "rule"], descending=[True, False]).iter_rows(named=True):
        print(
            f"  {r['rule']:<18} {r['offer_type']:<18} {r['offers']:>8,} offers  "
            f"mean bonus {r['mean_bonus']:>7.1f}  worst-case cost {r['cost']:>12,.0f}"
        )


def cmd_campaign(args: argparse.Namespace) -> int:
    """Plan a campaign over the champion (or a given) model version and write it."""
    from features.dataset import write_table_atomic
    from training.bonus.rule_book import RuleAllocation
    from training.campaign import load_campaign_inputs, plan_campaign
    from training.registry import champion_version, download_version

    tracking = tracking_config()
    version = args.model_version or champion_version(tracking)
    if version is None:
        raise ValueError("no champion model: run `offers train --promote` or pass --model-version")
    bundle = download_version(tracking, version, dest_dir=Path(args.model_cache))
    book, segments = load_campaign_inputs(bundle)
    if book is None:
        raise ValueError(
            f"model version {version} has no offer book: its dataset had neither an offer "
            "history nor transactions to price rule-based offers from"
        )
    plan = plan_campaign(
        book,
        segments,
        campaign_id=args.campaign_id,
        budget=args.budget,
        control_share=args.control_share,
        customer_ids=_read_customers(args.customers) if args.customers else None,
        segment=args.segment,
    )
    rows = plan.rows.with_columns(
        pl.lit(args.campaign_id).alias("campaign_id"), pl.lit(str(version)).alias("model_version")
    )
    write_table_atomic(rows, args.out)
    contacted = rows.filter(pl.col("offer_type") != "none", ~pl.col("control"))
    with_bonus = contacted.filter(pl.col("bonus") > 0)
    held_out = int(rows["control"].sum())
    print(
        f"campaign {args.campaign_id} (model v{version}): {rows.height:,} customers; "
        f"{contacted.height:,} contacted ({with_bonus.height:,} with a bonus, "
        f"{contacted.height - with_bonus.height:,} message-only), "
        f"{held_out:,} held out as control, "
        f"{rows.height - contacted.height - held_out:,} "
        + ("not contacted" if plan.rule_based else "not worth contacting")
    )
    alloc = plan.allocation
    if isinstance(alloc, RuleAllocation):
        _print_rule_based(alloc, contacted, budget=args.budget)
    else:
        print(
            f"expected bonus cost {alloc.total_cost:,.0f} of budget {args.budget:,.0f}; "
            f"expected incremental profit {alloc.total_profit:,.0f} "
            f"(within {alloc.gap:,.2f} of the optimum)"
        )
        by_type = contacted.group_by("offer_type").agg(
            pl.len().alias("offers"),
            pl.col("bonus").mean().alias("mean_bonus"),
            pl.col("expected_profit").sum().alias("expected_profit"),
        )
        for r in by_type.sort("offers", descending=True).iter_rows(named=True):
            print(
                f"  {r['offer_type']:<18} {r['offers']:>8,} offers  "
                f"mean bonus {r['mean_bonus']:>7.1f}  "
                f"expected profit {r['expected_profit']:>14,.0f}"
            )
    if plan.not_in_book:
        print(
            f"{len(plan.not_in_book):,} requested customers are unknown to the model and "
            f"got no offer, e.g. {', '.join(plan.not_in_book[:5])}"
        )
    print(f"wrote {args.out}")
    return 0


def cmd_playout(args: argparse.Namespace) -> int:
    """Play a campaign plan out under the synthetic world's ground truth."""
    from datetime import datetime

    from features.build import default_as_of
    from features.dataset import load_dataset
    from synth.playout import played_out_dataset

    plan = (
        pl.read_parquet(args.campaign)
        if args.campaign.suffix == ".parquet"
        else (pl.read_csv(args.campaign, schema_overrides={"customer_id": pl.String}))
    )
    start = (
        datetime.fromisoformat(args.start) if args.start else default_as_of(load_dataset(args.data))
    )
    offers, lines = played_out_dataset(
        Path(args.data),
        plan,
        Path(args.out),
        start=start,
        seed=args.seed,
        campaign_id=args.campaign_id,
    )
    print(
        f"played out campaign {args.campaign_id} from {start:%Y-%m-%d}: {offers:,} offers, "
        f"{lines:,} purchase lines; world with the campaign in {args.out}"
    )
    return 0


def add_campaign_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `offers campaign`."""
    p = sub.add_parser("campaign", help="budgeted bonus offers for a customer list or segment")
    p.add_argument("--budget", required=True, type=float, help="total expected bonus cost")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--customers", type=Path, help="file of customer ids (.csv/.parquet/.txt)")
    who.add_argument("--segment", help="RFM group or lifecycle stage, or 'all'")
    p.add_argument("--campaign-id", required=True, help="same id + inputs = same plan")
    p.add_argument("--control-share", type=float, default=0.1, help="held-out share [0, 1)")
    p.add_argument("--model-version", type=int, help="default: the champion")
    p.add_argument("--model-cache", default="build/service/models")
    p.add_argument("--out", required=True, type=Path, help=".parquet or .csv")
    p.set_defaults(func=cmd_campaign)

    p = sub.add_parser(
        "playout", help="synthetic world only: play a campaign plan out under the ground truth"
    )
    p.add_argument("--data", required=True, type=Path, help="a world made by `offers synth`")
    p.add_argument("--campaign", required=True, type=Path, help="plan from `offers campaign`")
    p.add_argument("--campaign-id", required=True)
    p.add_argument("--start", help="campaign start (default: day after the last purchase)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True, type=Path, help="folder for the world + campaign")
    p.set_defaults(func=cmd_playout)
