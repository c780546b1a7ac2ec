"""The recommendation training job behind `offers evaluate` and `offers train`.

`evaluate` fits every model (ours and the baselines) on a temporal split and scores it;
`train` does that, then fits the production models on the whole history, writes the artifact
bundle (models, id maps, customer segments), renders the report, logs the run to MLflow and
registers the bundle as a new model version. Promotion is a separate, explicit step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from features.build import customer_features, default_as_of
from features.columns import Col
from features.config import FeatureConfig
from features.dataset import Dataset
from features.names import Feat
from features.progress import stage
from training.bonus.book import OfferBook
from training.bonus.config import BonusConfig
from training.bonus.fit import BonusTraining, Judge, train_bonus
from training.bonus.rule_book import RuleBook
from training.bundle import BundleManifest, save_bundle
from training.config import TrackingConfig
from training.evaluation.baskets import evaluate_basket_completion
from training.evaluation.cache import EvaluationCache
from training.evaluation.metrics import DEFAULT_KS
from training.evaluation.offline import NoWarmCustomersError, evaluate_models
from training.evaluation.report import dataset_fingerprint, metric_summary, render_report
from training.evaluation.split import SplitConfig
from training.recs.als import ALS, CF_PREFIX, TUNED_ALS, ALSConfig
from training.recs.base import Interactions, Recommender, RecsError, build_interactions
from training.recs.crosssell import TUNED_CROSS_SELL, CrossSell
from training.recs.ease import EASE
from training.recs.filters import FilterConfig, FilteredRecommender
from training.recs.hybrid import Hybrid
from training.recs.itemknn import ItemKNN, ItemKNNConfig
from training.recs.popularity import CategoryPopularity, OwnHistory, Popularity
from training.recs.upsell import TUNED_UP_SELL, UpSell
from training.registry import RunInfo, log_training_run, register_bundle

OURS = "hybrid"
log = logging.getLogger("offers")

# bundle entries (the service reads the same names through `service.bundle_engine`)
RECOMMENDER = "recommender"
RECOMMENDED = "recommended"
CROSS_SELL = "cross_sell"
UP_SELL = "up_sell"
CF_FROM = "cf_from"  # up-sell params: its CF model is the one stored with this model
POPULAR = "popular"
IDS = "ids"
SEGMENTS = "segments"
OFFER_BOOK = "offer_book"  # an OfferBook or a RuleBook: `training.bonus.rule_book.load_book`


@dataclass(frozen=True)
class TrainConfig:
    """What `offers train` fits and how it is judged."""

    split: SplitConfig = field(default_factory=SplitConfig)
    ks: tuple[int, ...] = DEFAULT_KS
    filters: FilterConfig = field(default_factory=lambda: FilterConfig(max_per_category=3))
    features: FeatureConfig = field(default_factory=FeatureConfig)
    bonus: BonusConfig = field(default_factory=BonusConfig)
    promote_metric: str = f"{OURS}.new.ndcg@10"
    serve_top_k: int = 100  # recommendations precomputed per customer for the service
    # evaluation: the split's cutoff (None: test_days before the last purchase day) and the
    # models of `model_zoo` to evaluate (empty: all of them; ours is always evaluated)
    cutoff: datetime | None = None
    models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        known = model_zoo()
        unknown = [m for m in self.models if m not in known]
        if unknown:
            raise ValueError(f"unknown model {', '.join(unknown)}; choose from {', '.join(known)}")


def model_zoo() -> dict[str, Callable[[], Recommender]]:
    """Ours and every baseline, by report name (ours first)."""
    return {
        OURS: Hybrid,
        "als_bm25_tuned": lambda: ALS(TUNED_ALS, name="als_bm25_tuned"),
        "popularity": Popularity,
        "category_popularity": CategoryPopularity,
        "own_history": OwnHistory,
        "item_knn_bm25": lambda: ItemKNN(ItemKNNConfig("bm25", neighbours=200, binary=True)),
        "als_defaults": lambda: ALS(ALSConfig(binary=True), name="als_defaults"),
        "ease_500": EASE,
    }


def selected_models(config: TrainConfig) -> dict[str, Callable[[], Recommender]]:
    """The models of `model_zoo` that ``config.models`` names (all when empty), ours first."""
    zoo = model_zoo()
    if not config.models:
        return zoo
    return {name: f for name, f in zoo.items() if name == OURS or name in config.models}


def evaluate(
    ds: Dataset, config: TrainConfig, *, cache: EvaluationCache | None = None
) -> dict[str, Any]:
    """The selected models of `model_zoo` on the temporal split, with cross-sell and up-sell
    hit rates.

    With ``cache``, baselines already scored on the same data, split and code are not refitted
    (ours always is). Data without returning customers (every basket its own anonymous
    customer: no warm customer around the cutoff) gets the basket-completion protocol
    instead: the cross-sell model against the basket baselines (`evaluate_basket_completion`),
    marked ``split["protocol"] == "basket_completion"``.
    """
    tx = ds.require("transactions", "recommendation evaluation")
    items = ds.require("items", "recommendation evaluation")
    try:
        return evaluate_models(
            tx,
            items,
            cutoff=config.cutoff,
            models=selected_models(config),
            ks=config.ks,
            config=config.split,
            cross_sell=lambda: CrossSell(TUNED_CROSS_SELL),
            up_sell=lambda: UpSell(TUNED_UP_SELL),
            cache=cache,
            fresh=(OURS,),
        )
    except NoWarmCustomersError as err:
        if config.models or config.cutoff is not None:
            log.warning(
                "basket completion has its own models and split: the chosen models and "
                "cutoff apply to the per-customer protocols only"
            )
        with stage("no warm customers: basket completion instead"):
            results = evaluate_basket_completion(tx, items, ks=config.ks)
        results["split"]["per_customer_skipped"] = str(err)
        return results


def customer_segments(ds: Dataset, *, as_of: datetime, config: FeatureConfig) -> pl.DataFrame:
    """customer_id, RFM code and group, lifecycle stage as of ``as_of`` (all as text)."""
    cols = [Col.CUSTOMER, Feat.RFM_CODE, Feat.RFM_SEGMENT, Feat.LIFECYCLE_STAGE]
    df = customer_features(ds, as_of=as_of, config=config).select(cols).collect()
    # cast after collecting: polars 2.1 drops a lazy Enum -> String cast on this plan
    return df.with_columns(pl.col(c).cast(pl.String) for c in cols[1:]).fill_null("")


@dataclass(frozen=True)
class Production:
    """The models the service answers with, fitted on the whole history."""

    data: Interactions
    recommender: FilteredRecommender
    cross_sell: CrossSell
    up_sell: UpSell
    popular: CategoryPopularity
    segments: pl.DataFrame
    as_of: datetime


def fit_production(ds: Dataset, config: TrainConfig, *, as_of: datetime) -> Production:
    """Fit the serving models on every purchase before ``as_of``."""
    tx = ds.require("transactions", "recommendation training")
    items = ds.require("items", "recommendation training")
    with stage("interactions (all history)") as s:
        data = build_interactions(tx, items, until=as_of)
        s.rows = int(data.matrix.nnz)
    recommender = FilteredRecommender(Hybrid(), config.filters)
    with stage("fit recommender"):
        try:
            recommender.fit(data)
        except RecsError as exc:
            # basket-only data (no customer buys twice): nothing personal to re-rank
            log.warning("hybrid cannot train here (%s); serving category popularity", exc)
            recommender = FilteredRecommender(CategoryPopularity(), config.filters)
            recommender.fit(data)
    cross_sell, up_sell, popular = (
        CrossSell(TUNED_CROSS_SELL),
        UpSell(TUNED_UP_SELL),
        CategoryPopularity(),
    )
    with stage("fit cross-sell"):
        cross_sell.fit(data)
    with stage("fit up-sell"):
        up_sell.fit(data, cf=cross_sell.cf)  # the same ALS when the configurations agree
    with stage("fit popularity"):
        popular.fit(data)
    with stage("customer segments") as s:
        segments = customer_segments(ds, as_of=as_of, config=config.features)
        s.rows = segments.height
    return Production(data, recommender, cross_sell, up_sell, popular, segments, as_of)


def precompute_recommendations(
    production: Production, k: int, *, batch: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Every known customer's top ``k`` items (filtered), and the cold-start list."""
    n = production.data.n_customers
    top = np.full((n, k), -1, dtype=np.int32)
    with stage(f"precompute top {k} recommendations") as s:
        for start in range(0, n, batch):
            idx = np.arange(start, min(start + batch, n))
            top[idx] = production.recommender.recommend(idx, k)
        s.rows = n
    cold = production.recommender.recommend(np.array([-1]), k)[0]
    return top, cold


def up_sell_state(
    up_sell: UpSell, cross_sell: CrossSell
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Up-sell's state; when it shares cross-sell's ALS (`fit_production` fits one), the factors
    are stored once, with cross-sell, and up-sell names it in ``cf_from``."""
    params, arrays = up_sell.state()
    if up_sell.cf is None or up_sell.cf is not cross_sell.cf:
        return params, arrays
    params = {k: v for k, v in params.items() if k != "cf"} | {CF_FROM: CROSS_SELL}
    return params, {k: v for k, v in arrays.items() if not k.startswith(CF_PREFIX)}


def up_sell_from_state(
    params: dict[str, Any], arrays: dict[str, np.ndarray], cross_sell: CrossSell
) -> UpSell:
    """Inverse of `up_sell_state`: up-sell, sharing cross-sell's ALS when it was stored so."""
    up_sell = UpSell.from_state(params, arrays)
    if params.get(CF_FROM) == CROSS_SELL:
        up_sell.cf = cross_sell.cf
    return up_sell


def save_production_bundle(
    production: Production,
    path: Path,
    *,
    fingerprint: dict[str, Any],
    config: TrainConfig,
    metrics: dict[str, float],
    book: OfferBook | RuleBook | None = None,
) -> Path:
    """Write the artifact bundle the service loads (one ALS when up-sell shares cross-sell's)."""
    seg = production.segments
    top, cold = precompute_recommendations(production, config.serve_top_k)
    models: dict[str, tuple[dict[str, Any], dict[str, np.ndarray]]] = {
        RECOMMENDED: ({"k": config.serve_top_k}, {"items": top, "popular": cold}),
        RECOMMENDER: production.recommender.state(),
        CROSS_SELL: production.cross_sell.state(),
        UP_SELL: up_sell_state(production.up_sell, production.cross_sell),
        POPULAR: production.popular.state(),
        IDS: (
            {"as_of": production.data.as_of, "as_of_iso": production.as_of.isoformat()},
            {
                "customers": production.data.customers.to_array(),
                "items": production.data.items.to_array(),
            },
        ),
        SEGMENTS: (
            {},
            {c: seg[c].to_numpy().astype(str) for c in seg.columns},
        ),
    }
    if book is not None:
        models[OFFER_BOOK] = book.state()
    manifest = BundleManifest(
        data_fingerprint=fingerprint,
        feature_schema={c: str(t) for c, t in seg.schema.items()},
        config=_json_config(config),
        metrics=metrics,
    )
    return save_bundle(path, manifest, models, overwrite=True)


@dataclass(frozen=True)
class TrainOutcome:
    """What one `offers train` produced."""

    results: dict[str, Any]
    report_files: list[Path]
    bundle: Path
    run: RunInfo
    version: int


def featured_items(production: Production) -> tuple[dict[str, str], dict[str, str]]:
    """Per customer, the item a cross-sell and an up-sell offer would feature (top pick)."""
    n = production.data.n_customers
    idx = np.arange(n)
    ids = production.data.customers.ids
    items = production.data.items.ids
    cross = production.cross_sell.recommend(idx, 1)[:, 0]
    up = production.up_sell.recommend(idx, 1)[:, 0]
    return (
        {str(ids[c]): str(items[i]) for c, i in enumerate(cross) if i >= 0},
        {str(ids[c]): str(items[i]) for c, i in enumerate(up) if i >= 0},
    )


def train(
    ds: Dataset,
    config: TrainConfig,
    tracking: TrackingConfig,
    out: Path,
    *,
    eval_cache: Path | None = None,
    judge: Judge | None = None,
) -> TrainOutcome:
    """Evaluate, fit the production and bonus models, bundle, report, log and register.

    ``eval_cache`` is the folder of the evaluation cache (`training.evaluation.cache`): the
    baselines' scores on unchanged data are reused from it; None evaluates every model.
    ``judge`` scores the bonus decisions (`training.bonus.fit.train_bonus`), e.g. against a
    synthetic world's truth; its sections join the report.
    """
    tx = ds.require("transactions", "recommendation training")
    fingerprint = dataset_fingerprint(tx, tables={"items": ds.require("items", "training")})
    cache = None if eval_cache is None else EvaluationCache(eval_cache, fingerprint)
    results = evaluate(ds, config, cache=cache)
    as_of = default_as_of(ds)
    production = fit_production(ds, config, as_of=as_of)
    cross_item, up_item = featured_items(production)
    bonus: BonusTraining = train_bonus(
        ds,
        as_of=as_of,
        config=config.bonus,
        feature_config=config.features,
        cross_sell_item=cross_item,
        up_sell_item=up_item,
        judge=judge,
    )
    results.update(bonus.results)
    if ds.consent_mapping:  # consent columns renamed or parsed on loading (features.consent)
        results["consent_mapping"] = {m.flag: m.format() for m in ds.consent_mapping}
    if bonus.notes:
        results["notes"] = list(bonus.notes)
    files = render_report(
        results,
        out / "report",
        title=f"offer-engine training: {ds.root.name}",
        fingerprint=fingerprint,
        ours=OURS,
    )
    metrics = metric_summary(results)
    bundle = save_production_bundle(
        production,
        out / "bundle",
        fingerprint=fingerprint,
        config=config,
        metrics=metrics,
        book=bonus.book,
    )
    with stage("MLflow: log and register"):
        run = log_training_run(
            tracking,
            params=_json_config(config),
            metrics=metrics,
            fingerprint=fingerprint,
            split=results["split"],
            bundle_dir=bundle,
            report_files=files,
            run_name=f"train {ds.root.name}",
        )
        version = register_bundle(tracking, run.run_id)
    return TrainOutcome(results, files, bundle, run, version)


def promote_metric(results: dict[str, Any], config: TrainConfig) -> str:
    """The metric promotion compares: ours on the protocol this dataset was evaluated with."""
    split = results.get("split", {})
    if split.get("protocol") == "basket_completion":
        return f"{split.get('ours', 'cross_sell')}.basket.ndcg@10"
    return config.promote_metric


def _json_config(config: TrainConfig) -> dict[str, Any]:
    raw = asdict(config)
    raw["ks"] = list(config.ks)
    out: dict[str, Any] = _jsonable(raw)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
