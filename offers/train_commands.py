"""`offers evaluate|train|promote`: the data scientist's loop around MLflow."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from offers.cli import consent_config
from offers.env import evaluation_cache_dir, tracking_config

if TYPE_CHECKING:
    from training.pipeline import TrainConfig


def _channels(text: str) -> tuple[str, ...]:
    """``email,push`` -> ("email", "push"); an unknown channel is an argument error."""
    from training.bonus.config import CONSENT_COLUMNS

    names = tuple(c.strip() for c in text.split(",") if c.strip())
    bad = [c for c in names if c not in CONSENT_COLUMNS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown channel {bad or text!r}; choose from {', '.join(CONSENT_COLUMNS)}"
        )
    return names


def _names(text: str) -> list[str]:
    """``a,b`` -> ["a", "b"]; an empty list is an argument error."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"expected model names like popularity,ease_500, got {text!r}"
        )
    return names


def _print_table(results: dict[str, object], k: int = 10) -> None:
    """NDCG@k of every model under each protocol present (new/repeats, or basket)."""
    models = results["models"]
    assert isinstance(models, dict)
    parts = [p for p in ("new", "repeats", "basket") if any(p in m for m in models.values())]
    heads = [f"{p} NDCG@{k}" for p in parts]
    print(f"{'model':<24}" + "".join(f" {h:>16}" for h in heads))
    for name, m in models.items():
        cells = []
        for p in parts:
            v = m.get(p, {}).get("ndcg", {}).get(str(k))
            cells.append(f" {v:>16.4f}" if isinstance(v, (int, float)) else f" {'-':>16}")
        print(f"{name:<24}" + "".join(cells))


def _eval_config(args: argparse.Namespace) -> TrainConfig:
    """The evaluation settings the arguments ask for: cutoff, test window, models."""
    from training.pipeline import OURS, TrainConfig

    config = TrainConfig()
    if getattr(args, "test_days", None):
        config = replace(config, split=replace(config.split, test_days=args.test_days))
    if getattr(args, "cutoff", None):
        config = replace(config, cutoff=args.cutoff)
    if getattr(args, "models", None):
        config = replace(config, models=tuple(args.models))
    if getattr(args, "skip_baselines", False):
        config = replace(config, models=(OURS,))
    return config


def _eval_cache(args: argparse.Namespace) -> Path | None:
    """The evaluation cache folder, or None with --no-eval-cache."""
    if args.no_eval_cache:
        return None
    return Path(args.eval_cache) if args.eval_cache else evaluation_cache_dir()


def _print_cache_use(results: dict[str, object]) -> None:
    use = results.get("evaluation_cache")
    if isinstance(use, dict) and use.get("reused"):
        print(
            f"evaluation cache {use['folder']}: reused {', '.join(use['reused'])} "
            "(same data, split and code); --no-eval-cache to refit them"
        )


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate ours and the baselines; write the report and metrics.json; log to MLflow."""
    from features.dataset import load_dataset
    from training.evaluation.cache import EvaluationCache
    from training.evaluation.report import dataset_fingerprint, metric_summary, render_report
    from training.pipeline import OURS, evaluate
    from training.registry import log_report_run

    config = _eval_config(args)
    ds = load_dataset(args.data, consent=consent_config(args))
    tx = ds.require("transactions", "evaluation")
    fingerprint = dataset_fingerprint(tx, tables={"items": ds.require("items", "evaluation")})
    folder = _eval_cache(args)
    cache = None if folder is None else EvaluationCache(folder, fingerprint)
    results = evaluate(ds, config, cache=cache)
    files = render_report(
        results,
        args.out,
        title=f"offer-engine evaluation: {ds.root.name}",
        fingerprint=fingerprint,
        ours=OURS,
    )
    _print_table(results)
    _print_cache_use(results)
    tracking = tracking_config()
    run_id = log_report_run(
        tracking,
        kind="evaluation",
        params={
            "data": str(ds.root),
            "cutoff": str(results.get("split", {}).get("cutoff", "")),
            "test_days": config.split.test_days,
            "models": ",".join(config.models) or "all",
        },
        metrics=metric_summary(results),
        report_files=files,
        run_name=f"evaluate {ds.root.name}",
    )
    print(f"report: {files[0]}\nmetrics: {files[1]}\nMLflow run: {run_id}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Evaluate, fit the production models, and register a new model version."""
    from features.dataset import load_dataset
    from training.pipeline import promote_metric, train
    from training.registry import promote

    ds = load_dataset(args.data, consent=consent_config(args))
    tracking = tracking_config()
    config = _eval_config(args)
    if args.assume_consent:
        config = replace(config, bonus=replace(config.bonus, assume_consent=args.assume_consent))
    from evaluation.oracle import oracle_judge

    outcome = train(
        ds,
        config,
        tracking,
        Path(args.out),
        eval_cache=_eval_cache(args),
        judge=oracle_judge(ds.root),  # only a synthetic world has a ground truth to judge by
    )
    _print_table(outcome.results)
    _print_cache_use(outcome.results)
    print(f"registered {tracking.model_name} version {outcome.version} (run {outcome.run.run_id})")
    print(f"report: {outcome.report_files[0]}")
    if args.promote:
        metric = promote_metric(outcome.results, config)
        decision = promote(tracking, outcome.version, metric=metric)
        print(decision.reason)
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """Move the champion alias to a version if it is not worse (or with --force)."""
    from training.pipeline import TrainConfig
    from training.registry import promote

    tracking = tracking_config()
    metric = args.metric or TrainConfig().promote_metric
    decision = promote(tracking, args.version, metric=metric, force=args.force)
    print(decision.reason)
    return 0 if decision.promoted else 1


def cmd_evaluate_uplift(args: argparse.Namespace) -> int:
    """Response models on the real experiments: Hillstrom uplift benchmark, dunnhumby report."""
    from evaluation.dunnhumby import dunnhumby_response_report
    from evaluation.hillstrom import uplift_benchmark
    from training.evaluation.report import render_report
    from training.registry import log_report_run

    work = Path(args.out) / "work"
    results: dict[str, object] = {}
    results.update(uplift_benchmark(Path(args.src), work, seeds=args.seeds))
    results.update(dunnhumby_response_report(Path(args.src), work))
    files = render_report(
        results, Path(args.out), title="offer-engine: response models on real data"
    )
    bench = results["uplift_benchmark"]
    assert isinstance(bench, dict)
    print(f"Hillstrom ({bench['target']}), Qini AUC mean +- sd over {args.seeds} seeds:")
    for name, m in bench["models"].items():
        q = m["qini_auc"]
        print(f"  {name:<12} {q['mean']:.4f} +- {q['sd']:.4f}")
    metrics = {
        f"hillstrom.{name}.qini_auc": float(m["qini_auc"]["mean"])
        for name, m in bench["models"].items()
    }
    run_id = log_report_run(
        tracking_config(),
        kind="uplift",
        params={"src": str(args.src), "seeds": args.seeds},
        metrics=metrics,
        report_files=files,
        run_name="uplift on real data",
    )
    print(f"report: {files[0]}\nMLflow run: {run_id}")
    return 0


def add_train_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `offers evaluate`, `offers train` and `offers promote`."""
    from offers.cli import add_consent_option, as_of_arg, positive_int

    def add_cache_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--eval-cache",
            type=Path,
            help="folder of cached baseline scores (default: OFFERS_HOME/cache/evaluation)",
        )
        p.add_argument(
            "--no-eval-cache",
            action="store_true",
            help="refit every baseline even when its scores on the same data are cached",
        )

    p = sub.add_parser("evaluate", help="offline evaluation of ours vs baselines (report)")
    p.add_argument("--data", required=True, type=Path, help="dataset folder")
    p.add_argument("--out", required=True, type=Path, help="report folder")
    p.add_argument(
        "--cutoff", type=as_of_arg, help="split date (default: --test-days before the end)"
    )
    p.add_argument("--test-days", type=positive_int, help="test window after the cutoff (30)")
    p.add_argument(
        "--models",
        type=_names,
        metavar="NAME[,NAME]",
        help="baselines to evaluate beside ours, e.g. popularity,ease_500 (default: all)",
    )
    add_cache_options(p)
    add_consent_option(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "evaluate-uplift", help="response models on Hillstrom (vs S/T-learner) and dunnhumby"
    )
    p.add_argument("--src", required=True, type=Path, help="the shared data folder")
    p.add_argument("--out", required=True, type=Path, help="report folder")
    p.add_argument("--seeds", type=positive_int, default=5)
    p.set_defaults(func=cmd_evaluate_uplift)

    p = sub.add_parser("train", help="train, evaluate and register a new model version")
    p.add_argument("--data", required=True, type=Path, help="dataset folder")
    p.add_argument("--out", required=True, type=Path, help="run folder (bundle and report)")
    p.add_argument("--promote", action="store_true", help="then promote it if not worse")
    p.add_argument(
        "--skip-baselines",
        action="store_true",
        help="evaluate ours only (the report then compares with no baseline)",
    )
    add_cache_options(p)
    add_consent_option(p)
    p.add_argument(
        "--assume-consent",
        type=_channels,
        default=(),
        metavar="CHANNEL[,CHANNEL]",
        help="channels (email, push, sms) on which every customer counts as consented when "
        "the customers table has no consent column for them (the shop exports only "
        "contactable customers)",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("promote", help="move the champion alias to a model version")
    p.add_argument("--version", required=True, type=positive_int)
    p.add_argument("--metric", help="metric to compare, e.g. hybrid.new.ndcg@10")
    p.add_argument("--force", action="store_true", help="promote even if worse")
    p.set_defaults(func=cmd_promote)
