"""Coupon response on dunnhumby's Complete Journey: what a response model learns (descriptive).

The retailer's 27 coupon campaigns record who received which campaign and who redeemed one of
its coupons. Targeting was NOT randomised and there is no hold-out group, so nothing here is a
causal uplift: the model predicts *who redeems among the households the retailer chose*, not
what the coupon changed.

Rows are the offers of the adapter (`features.adapters.dunnhumby`): one per (household,
campaign), ``converted`` = redeemed in the campaign period. Each row gets the household's
features as of the campaign start (`features.build.customer_features` on the 5 % line sample,
plus the household's earlier campaigns and redemptions, `training.bonus.response.
offer_history_features`, and its coupon-discounted lines before the start), and the offer's own
inputs (campaign type, estimated coupon value ``bonus`` with a monotone increasing constraint,
campaign length). Campaigns starting fewer than ``WARMUP_DAYS`` after the first transaction
have no history to describe a household and are left out (counted in the report).

Evaluation is by time: the latest campaigns holding at least ``test_share`` of the rows are held
out; the LightGBM response model is fitted on the earlier ones. Reported: held-out AUC and
log-loss next to two simple baselines, feature importances, and redemption rates by campaign
type, by estimated bonus and by earlier redemption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import polars as pl

from evaluation.uplift_learners import TreeParams
from features.adapters import import_dataset
from features.adapters.dunnhumby import CAMPAIGN_END, COUPON_DISC, NAME
from features.build import customer_features
from features.columns import Col
from features.config import FeatureConfig
from features.dataset import Dataset, load_dataset
from features.progress import stage
from training.bonus.propensity import FeatureEncoder, fixed_feature_config, log_loss, roc_auc
from training.bonus.response import History, offer_history_features

FloatArray = npt.NDArray[np.float64]

WARMUP_DAYS: Final = 28
COUPON_LINES: Final = "coupon_lines_before"
CAMPAIGN_DAYS: Final = "campaign_days"
OFFER_TYPE_INPUT: Final = "offer_type"
BONUS_INPUT: Final = "bonus"
PARAMS: Final = TreeParams(num_leaves=7, learning_rate=0.05, min_data_in_leaf=40, rounds=200)

CONCLUSIONS: Final = {
    "can_conclude": [
        "which households, among those the retailer chose to target, redeem a coupon "
        "(ranking quality: the held-out AUC)",
        "which household traits go with redemption (feature importances): above all earlier "
        "redemptions and coupon use",
        "how redemption rates differ between campaign types and estimated coupon values, "
        "as observed",
    ],
    "cannot_conclude": [
        "any causal uplift: targeting was not randomised and there is no control group, so "
        "nobody's behaviour without the coupon is observed",
        "that a campaign type or a larger coupon value CAUSES more redemptions: types and "
        "values went to different, self-selected audiences (confounded)",
        "the incremental revenue of a coupon: revenue is unknown and the transactions are a "
        "5 % line sample",
        "the response of households the retailer never targeted",
    ],
}


class DunnhumbyError(ValueError):
    """The imported dunnhumby data is unusable for the response report (the message says why)."""


@dataclass(frozen=True)
class ResponseFrame:
    """Offer rows with features as of their campaign start, and what was left out."""

    frame: pl.DataFrame
    feature_columns: tuple[str, ...]
    excluded_offers: int
    excluded_campaigns: tuple[str, ...]


def coupon_lines(tx: pl.LazyFrame, *, as_of: datetime) -> pl.LazyFrame:
    """Per customer: sampled lines with a manufacturer coupon discount before ``as_of``."""
    return (
        tx.filter((pl.col(Col.TS) < as_of) & (pl.col(COUPON_DISC) > 0))
        .group_by(Col.CUSTOMER)
        .agg(pl.len().cast(pl.Int32).alias(COUPON_LINES))
    )


def response_frame(ds: Dataset, *, warmup_days: int = WARMUP_DAYS) -> ResponseFrame:
    """Every offer with its household's features as of the campaign start (see module doc)."""
    offers = ds.require("offers", "the coupon response report").collect()
    tx = ds.require("transactions", "the coupon response report")
    if offers.height == 0:
        raise DunnhumbyError(f"{ds.root}: the offers table is empty")
    first_tx = tx.select(pl.col(Col.TS).min()).collect().item()
    if first_tx is None:
        raise DunnhumbyError(f"{ds.root}: no transactions; no household features")
    start = first_tx + timedelta(days=warmup_days)
    early = offers.filter(pl.col(Col.SENT_AT) < start)
    kept = offers.filter(pl.col(Col.SENT_AT) >= start)
    if kept.height == 0:
        raise DunnhumbyError(f"{ds.root}: every campaign starts before {start}; no history")
    first_sent = kept.get_column(Col.SENT_AT).min()
    assert isinstance(first_sent, datetime)
    feature_config = fixed_feature_config(ds, as_of=first_sent, config=FeatureConfig())
    parts = []
    for (sent_at,), sent in kept.group_by(Col.SENT_AT, maintain_order=True):
        assert isinstance(sent_at, datetime)
        features = (
            customer_features(ds, as_of=sent_at, config=feature_config)
            .join(sent.lazy().select(Col.CUSTOMER), on=Col.CUSTOMER, how="semi")
            .collect()
        )
        history = offer_history_features(offers, as_of=sent_at)
        joined = (
            sent.join(features, on=Col.CUSTOMER, how="left", validate="m:1")
            .join(history, on=Col.CUSTOMER, how="left", validate="m:1")
            .join(
                coupon_lines(tx, as_of=sent_at).collect(),
                on=Col.CUSTOMER,
                how="left",
                validate="m:1",
            )
        )
        parts.append(joined)
    frame = pl.concat(parts, how="diagonal_relaxed").with_columns(
        pl.col(History.OFFERS, History.CONVERTED, COUPON_LINES).fill_null(0),
        ((pl.col(CAMPAIGN_END) - pl.col(Col.SENT_AT)).dt.total_days())
        .cast(pl.Int32)
        .alias(CAMPAIGN_DAYS),
    )
    customer_columns = [
        c
        for c in features.columns
        if c != Col.CUSTOMER and c in frame.columns  # features of the last send day
    ]
    feature_columns = (
        *customer_columns,
        History.OFFERS,
        History.CONVERTED,
        History.DAYS_SINCE,
        COUPON_LINES,
        CAMPAIGN_DAYS,
    )
    return ResponseFrame(
        frame.sort(Col.SENT_AT, Col.CAMPAIGN, Col.CUSTOMER),
        feature_columns,
        early.height,
        tuple(sorted(early.get_column(Col.CAMPAIGN).unique().to_list())),
    )


def time_split(frame: pl.DataFrame, share: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Earlier campaigns to train on; the latest holding >= ``share`` of the rows held out."""
    per = (
        frame.group_by(Col.CAMPAIGN)
        .agg(pl.col(Col.SENT_AT).first(), pl.len().alias("n"))
        .sort(Col.SENT_AT, Col.CAMPAIGN, descending=True)
    )
    need, taken, test = share * frame.height, 0, []
    for campaign, _, n in per.iter_rows():
        if taken >= need:
            break
        test.append(campaign)
        taken += n
    if len(test) == per.height:
        raise DunnhumbyError("time split: need at least two campaigns")
    held = pl.col(Col.CAMPAIGN).is_in(test)
    return frame.filter(~held), frame.filter(held)


def _matrix(encoder: FeatureEncoder, types: tuple[str, ...], frame: pl.DataFrame) -> FloatArray:
    x = encoder.transform(frame)
    code = {t: float(i) for i, t in enumerate(types)}
    offer_type = np.array([code.get(t, np.nan) for t in frame.get_column(Col.OFFER_TYPE)])
    return np.column_stack([x, offer_type, frame.get_column(Col.BONUS).to_numpy()])


def _rates(frame: pl.DataFrame, by: pl.Expr, name: str) -> list[dict[str, Any]]:
    return (
        frame.group_by(by.alias(name))
        .agg(
            pl.len().alias("offers"),
            pl.col(Col.CONVERTED).sum().alias("redeemed"),
            pl.col(Col.CONVERTED).mean().alias("redemption_rate"),
            pl.col(Col.BONUS).mean().alias("mean_bonus_estimate"),
        )
        .sort(name)
        .to_dicts()
    )


def dunnhumby_response_report(
    shared_data: Path,
    work: Path,
    *,
    test_share: float = 0.3,
    params: TreeParams = PARAMS,
    warmup_days: int = WARMUP_DAYS,
) -> dict[str, Any]:
    """Import Complete Journey into ``work``, fit the response model, return a JSON-able report."""
    if not 0.0 < test_share < 1.0:
        raise DunnhumbyError(f"test_share: must be in (0, 1), got {test_share}")
    root = Path(work) / NAME
    import_dataset(NAME, Path(shared_data) / NAME, root)
    ds = load_dataset(root)
    with stage("dunnhumby: features as of campaign start") as s:
        data = response_frame(ds, warmup_days=warmup_days)
        s.rows = data.frame.height
    frame = data.frame
    train, test = time_split(frame, test_share)
    encoder = FeatureEncoder.fit(frame.select(data.feature_columns))
    types = tuple(sorted(frame.get_column(Col.OFFER_TYPE).unique().to_list()))
    names = [*encoder.names, OFFER_TYPE_INPUT, BONUS_INPUT]
    y_train = train.get_column(Col.CONVERTED).cast(pl.Float64).to_numpy()
    y_test = test.get_column(Col.CONVERTED).cast(pl.Float64).to_numpy()
    lgb_params = {
        **params.lgb(),
        "monotone_constraints": [0] * (len(names) - 1) + [1],
        "monotone_constraints_method": "intermediate",
    }
    with stage("dunnhumby: response model") as s:
        booster = lgb.train(
            lgb_params,
            lgb.Dataset(
                _matrix(encoder, types, train),
                label=y_train,
                feature_name=names,
                categorical_feature=[*encoder.categorical_indices, len(names) - 2],
            ),
            num_boost_round=params.rounds,
        )
        s.rows = train.height
    p_test = np.asarray(booster.predict(_matrix(encoder, types, test)), dtype=np.float64)
    train_rate = {
        t: float(r)
        for t, r in train.group_by(Col.OFFER_TYPE).agg(pl.col(Col.CONVERTED).mean()).iter_rows()
    }
    type_rate = np.array([train_rate.get(t, math.nan) for t in test.get_column(Col.OFFER_TYPE)])
    prior = test.get_column(History.CONVERTED).cast(pl.Float64).to_numpy()
    gain = booster.feature_importance(importance_type="gain")
    total = float(gain.sum()) or 1.0
    shares = {n: float(g) / total for n, g in zip(names, gain, strict=True)}
    importance = [
        {"feature": n, "gain_share": v} for n, v in sorted(shares.items(), key=lambda kv: -kv[1])
    ]
    redeemed_before = (
        pl.when(pl.col(History.CONVERTED) > 0).then(pl.lit("yes")).otherwise(pl.lit("no"))
    )
    report = {
        "dataset": NAME,
        "randomised": False,
        "target": "redeemed (converted: a coupon of the campaign redeemed in its period)",
        "offers": frame.height + data.excluded_offers,
        "offers_used": frame.height,
        "excluded": {
            f"offers of campaigns starting < {warmup_days} days after the first transaction "
            "(no history)": data.excluded_offers,
            "campaigns": list(data.excluded_campaigns),
        },
        "households": frame.get_column(Col.CUSTOMER).n_unique(),
        "campaigns": frame.get_column(Col.CAMPAIGN).n_unique(),
        "split": {
            "train_offers": train.height,
            "test_offers": test.height,
            "test_campaigns": sorted(test.get_column(Col.CAMPAIGN).unique().to_list()),
            "test_from": str(test.get_column(Col.SENT_AT).min()),
            "train_redemption_rate": float(y_train.mean()),
            "test_redemption_rate": float(y_test.mean()),
        },
        "model": {
            "params": {k: v for k, v in lgb_params.items() if k != "monotone_constraints"},
            "inputs": names,
        },
        "held_out": {
            "auc": roc_auc(p_test, y_test),
            "log_loss": log_loss(p_test, y_test),
            "mean_predicted": float(p_test.mean()),
            "base_rate_log_loss": log_loss(np.full(y_test.size, y_train.mean()), y_test),
            "baseline_auc_campaign_type_rate": roc_auc(np.nan_to_num(type_rate), y_test),
            "baseline_auc_earlier_redemptions": roc_auc(prior, y_test),
        },
        "feature_importance": importance[:15],
        "redemption_rate_by_campaign_type": _rates(frame, pl.col(Col.OFFER_TYPE), "offer_type"),
        "redemption_rate_by_bonus_estimate": _rates(frame, pl.col(Col.BONUS), "bonus_estimate"),
        "redemption_rate_by_earlier_redemption": _rates(frame, redeemed_before, "redeemed_before"),
        "bonus_estimate_note": (
            "bonus = the adapter's estimate of the coupon value (median coupon discount of "
            "matching sampled lines; campaigns without one get the all-campaign median)"
        ),
        **CONCLUSIONS,
    }
    return {"dunnhumby_response": report}
