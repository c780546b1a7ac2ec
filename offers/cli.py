"""The `offers` command line: thin commands that parse arguments and call the packages.

This is the composition root: it reads the environment and the arguments once, builds the
typed configuration, and hands it down. Heavy packages are imported inside each command so
that `offers --help` stays instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from features.progress import configure_logging
from offers.env import quiet_third_party

if TYPE_CHECKING:
    from features.consent import ConsentConfig

Command = Callable[[argparse.Namespace], int]


def as_of_arg(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2024-06-01, got {text!r}") from None


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _whole_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def consent_columns_arg(text: str) -> dict[str, str]:
    """``email=newsletter,sms=sms_ok`` -> {"consent_email": "newsletter", "consent_sms": ...}."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        flag, sep, column = (s.strip() for s in part.partition("="))
        flag = flag if flag.startswith("consent_") else f"consent_{flag}"
        if not sep or not column or flag not in ("consent_email", "consent_push", "consent_sms"):
            raise argparse.ArgumentTypeError(
                f"expected CHANNEL=COLUMN with CHANNEL email, push or sms, got {part!r}"
            )
        out[flag] = column
    return out


def add_consent_option(p: argparse.ArgumentParser) -> None:
    """``--consent-columns``: which customers columns hold consent, when not the usual names."""
    p.add_argument(
        "--consent-columns",
        type=consent_columns_arg,
        default={},
        metavar="CHANNEL=COLUMN[,...]",
        help="customers columns holding consent, e.g. email=newsletter,sms=sms_ok (default: "
        "consent_email, email_opt_in, email_consent, email, ... recognised by name)",
    )


def consent_config(args: argparse.Namespace) -> ConsentConfig:
    """The consent mapping the arguments ask for."""
    from features.consent import ConsentConfig

    return ConsentConfig(columns=getattr(args, "consent_columns", {}))


def cmd_synth(args: argparse.Namespace) -> int:
    """Generate the synthetic retail world with its ground truth."""
    from synth.config import WorldConfig
    from synth.world import generate

    config = WorldConfig(
        customers=args.customers,
        items=args.items,
        days=args.days,
        seed=args.seed,
        response_family=args.response,
    )
    if args.start:
        config = dataclasses.replace(config, start=date.fromisoformat(args.start))
    summary = generate(config, Path(args.out))
    print(summary)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Check a dataset folder against the contract; non-zero exit when invalid."""
    from features.validate import validate_dataset

    report = validate_dataset(Path(args.data), consent=consent_config(args))
    print(report.format())
    return 0 if report.ok else 1


def cmd_import(args: argparse.Namespace) -> int:
    """Convert a real public dataset into the contract, then validate the result."""
    from features.adapters import import_dataset
    from features.validate import validate_dataset

    report = import_dataset(args.name, Path(args.src), Path(args.out))
    print(report.format())
    validation = validate_dataset(Path(args.out))
    print(validation.format())
    return 0 if validation.ok else 1


def cmd_features(args: argparse.Namespace) -> int:
    """Customer features as of a cutoff (and labels after it when --horizon is given)."""

    from features.build import customer_features, default_as_of, purchase_labels
    from features.columns import Col
    from features.config import FeatureConfig
    from features.dataset import load_dataset, write_table_atomic
    from features.progress import stage

    ds = load_dataset(args.data, consent=consent_config(args))
    config = FeatureConfig()
    as_of = args.as_of or default_as_of(ds)
    with stage(f"features as of {as_of:%Y-%m-%d}") as s:
        df = customer_features(ds, as_of=as_of, config=config).collect()
        if args.horizon:
            tx = ds.require("transactions", "purchase labels")
            labels = purchase_labels(
                tx, as_of=as_of, horizon_days=args.horizon, population=df.lazy()
            ).collect()
            # joined eagerly: polars 2.1's streaming join panics on the lazy plan (upstream bug)
            df = df.join(labels, on=Col.CUSTOMER, how="left", maintain_order="left")
        s.rows = df.height
        s.detail = f"{df.width} columns"
    write_table_atomic(df, Path(args.out))
    print(f"wrote {df.height:,} customers x {df.width} columns to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="offers",
        description="Recommendations and budget-optimised bonus offers for loyalty programmes.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="generate the synthetic retail world (with ground truth)")
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.add_argument("--customers", type=positive_int, default=5000)
    p.add_argument("--items", type=positive_int, default=400)
    p.add_argument("--days", type=positive_int, default=365)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", help="first day of the history, YYYY-MM-DD")
    p.add_argument(
        "--response",
        choices=("curve", "archetypes"),
        default="curve",
        help="response family of the offer history and its ground truth (default: curve)",
    )
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("validate", help="check a dataset folder against the data contract")
    p.add_argument("data", help="dataset folder")
    add_consent_option(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("import", help="convert a public dataset into the data contract")
    p.add_argument(
        "name",
        help="uci_online_retail, dunnhumby_complete_journey, groceries_arules, hillstrom_email",
    )
    p.add_argument(
        "--src",
        required=True,
        help="the dataset's folder, e.g. ../shared/data/NAME (uci_online_retail: also the "
        "downloaded .xlsx/.csv/.parquet file)",
    )
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("features", help="customer features as of a cutoff date")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--as-of", type=as_of_arg, help="cutoff (default: day after the last purchase)")
    p.add_argument("--horizon", type=positive_int, help="also add purchase labels for N days")
    p.add_argument("--out", required=True, help="output file, .parquet or .csv")
    add_consent_option(p)
    p.set_defaults(func=cmd_features)

    from offers.campaign_commands import add_campaign_parser
    from offers.report_commands import add_report_parser
    from offers.serve_commands import add_serve_parsers
    from offers.train_commands import add_train_parsers

    add_train_parsers(sub)
    add_campaign_parser(sub)
    add_serve_parsers(sub)
    add_report_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `offers` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    quiet_third_party()
    from features.dataset import DatasetError

    try:
        code: int = args.func(args)
    except (DatasetError, ValueError, FileNotFoundError) as exc:
        print(f"offers {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
