"""`offers report campaign|kpi|plan`: what a campaign changed, and the programme's health."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from offers.env import tracking_config


def _log(kind: str, results: dict[str, object], files: list[Path]) -> str:
    from training.results.render import log_results

    return log_results(tracking_config(), kind, results, files)


def cmd_report_campaign(args: argparse.Namespace) -> int:
    """Treated vs control for one campaign, with confidence intervals and a verdict."""
    from features.dataset import load_dataset
    from training.results.campaign import campaign_report

    result = campaign_report(
        load_dataset(args.data), args.campaign_id, window_days=args.window_days, out=args.out
    )
    print(result.headline())
    run_id = _log("campaign", result.results, result.files)
    print(f"report: {result.files[0]}  (MLflow run {run_id})")
    return 0


def cmd_report_kpi(args: argparse.Namespace) -> int:
    """Monthly loyalty KPIs."""
    from features.dataset import load_dataset
    from training.results.kpi import kpi_report

    result = kpi_report(load_dataset(args.data), args.date_from, args.date_to, args.out)
    print(result.table())
    run_id = _log("kpi", result.results, result.files)
    print(f"report: {result.files[0]}  (MLflow run {run_id})")
    return 0


def cmd_report_plan(args: argparse.Namespace) -> int:
    """Minimum detectable effect for an audience at several control shares."""
    from training.results.planner import plan_table

    table = plan_table(args.audience, args.base_rate, targets=args.target_mde or ())
    print(json.dumps(table, indent=1))
    return 0


def add_report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `offers report ...` on the top-level subcommand set."""
    from offers.cli import as_of_arg, positive_int

    report = sub.add_parser("report", help="campaign results against control, KPIs, planner")
    kinds = report.add_subparsers(dest="report", required=True, metavar="REPORT")

    p = kinds.add_parser("campaign", help="treated vs control for one campaign")
    p.add_argument("--data", required=True, type=Path, help="dataset folder with offers")
    p.add_argument("--campaign-id", required=True)
    p.add_argument("--window-days", type=positive_int, default=14, help="attribution window")
    p.add_argument("--out", required=True, type=Path, help="report folder")
    p.set_defaults(func=cmd_report_campaign)

    p = kinds.add_parser("kpi", help="the loyalty programme's health by month")
    p.add_argument("--data", required=True, type=Path, help="dataset folder")
    p.add_argument("--from", dest="date_from", type=as_of_arg, help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", type=as_of_arg, help="last day (exclusive)")
    p.add_argument("--out", required=True, type=Path, help="report folder")
    p.set_defaults(func=cmd_report_kpi)

    p = kinds.add_parser("plan", help="minimum detectable effect before a campaign")
    p.add_argument("--audience", required=True, type=positive_int, help="customers targeted")
    p.add_argument("--base-rate", required=True, type=float, help="control conversion rate")
    p.add_argument("--target-mde", type=float, nargs="*", help="effects you need to detect")
    p.set_defaults(func=cmd_report_plan)
