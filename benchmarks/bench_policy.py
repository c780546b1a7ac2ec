"""Bonus policies on two synthetic world families, scored against each world's ground truth.

For each response family (``curve``: the response in the form of our curve model;
``archetypes``: log-odds effects, latent uplift archetypes, threshold dose-responses; see
`synth.response`) a 20,000-customer, two-year world is generated (cached under
``build/bench/``), then `training.bonus.fit.train_bonus` learns from its randomised offer
history, chooses the shipped policy by off-policy value, and plans at 0.2 / 0.4 / 0.8 of the
oracle's unconstrained spend (no control hold-out). Printed per family and budget: the true
profit of ours, of the best simple rule learnt from the same history, of the best uniform
offer, of the DR-learner, and of the feature ceiling (a model fitted on the TRUE profits from
the same features: what the features can reveal at all), as shares of the oracle's; planned
vs true spend; and, on the held-out history, the shipped plan's off-policy estimate (95%
interval) against its true value.

``python -m benchmarks.bench_policy [customers] [seed]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from evaluation.oracle import held_out_truth, oracle_judge
from features.build import default_as_of
from features.config import FeatureConfig
from features.dataset import load_dataset
from synth.config import WorldConfig
from synth.response import ResponseTruth
from synth.world import generate
from training.bonus.config import RULE_POLICIES, BonusConfig
from training.bonus.fit import train_bonus

FAMILIES = ("curve", "archetypes")
SHARES = ("0.2", "0.4", "0.8")
CACHE = Path("build/bench/policy")


def world(family: str, customers: int, seed: int) -> Path:
    """The cached world of ``family`` (generated on first use)."""
    root = CACHE / f"{family}-{customers}-{seed}"
    if not (root / "ground_truth" / "response.json").is_file():
        config = WorldConfig(
            customers=customers, items=400, days=730, seed=seed, response_family=family
        )
        started = time.perf_counter()
        generate(config, root)
        print(f"policy_{family}_world_seconds: {time.perf_counter() - started:.1f} s")
    return root


def main() -> None:
    """Run the benchmark and print ``name: value unit`` lines."""
    customers = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    families = sys.argv[3].split(",") if len(sys.argv) > 3 else FAMILIES
    for family in families:
        root = world(family, customers, seed)
        ds = load_dataset(root)
        started = time.perf_counter()
        trained = train_bonus(
            ds,
            as_of=default_as_of(ds),
            config=BonusConfig(),
            feature_config=FeatureConfig(),
            judge=oracle_judge(root, ceiling=True),
        )
        print(f"policy_{family}_bonus_training_seconds: {time.perf_counter() - started:.1f} s")
        assert trained.selection is not None
        print(f"policy_{family}_shipped: {trained.selection.shipped.name}")
        policies = trained.results["policies"]
        oracle = policies["oracle"]
        keys = sorted(oracle, key=float)
        top = trained.results["policy_comparison"]["oracle_unconstrained"]["spend"]
        for share in SHARES:
            key = min(keys, key=lambda k: abs(float(k) - float(share) * top))
            o = oracle[key]["profit"]
            ours = policies["ours"][key]
            rules = {n: policies[n][key]["profit"] for n in RULE_POLICIES if n in policies}
            best_rule = max(rules, key=lambda n: rules[n]) if rules else "none"
            uniform = policies.get("best_uniform", policies.get("uniform", {})).get(key, {})
            print(
                f"policy_{family}_b{share}: ours {ours['profit'] / o:.3f} | best rule "
                f"{best_rule} {rules.get(best_rule, float('nan')) / o:.3f} | best uniform "
                f"{uniform.get('profit', float('nan')) / o:.3f} | x_learner "
                f"{policies.get('x_learner', {}).get(key, {}).get('profit', float('nan')) / o:.3f}"
                f" | dr_learner "
                f"{policies.get('dr_learner', {}).get(key, {}).get('profit', float('nan')) / o:.3f}"
                f" | feature ceiling "
                f"{policies['feature_ceiling'][key]['profit'] / o:.3f} | oracle 1.000 of {o:,.0f}"
            )
            planned = ours.get("planned_spend", float("nan"))
            print(
                f"policy_{family}_b{share}_spend: planned {planned:,.0f} true "
                f"{ours['spend']:,.0f} ({ours['spend'] / max(planned, 1e-9) - 1:+.1%}) "
                f"budget {float(key):,.0f}"
            )
        truth = ResponseTruth.load(root)
        selection = trained.selection
        name = selection.shipped.name
        evidence = selection.evidence
        assert evidence is not None
        if name in evidence.values:
            truths = held_out_truth(selection, truth, name)
            for share, value, (true, _) in zip(
                (str(s) for s in BonusConfig().effects.budget_shares),
                evidence.values[name],
                truths,
                strict=True,
            ):
                inside = "inside" if value.dr.low <= true <= value.dr.high else "OUTSIDE"
                print(
                    f"policy_{family}_ope_b{share}: estimate {value.dr.value:,.0f} "
                    f"[{value.dr.low:,.0f}, {value.dr.high:,.0f}] true {true:,.0f} ({inside})"
                )


if __name__ == "__main__":
    main()
