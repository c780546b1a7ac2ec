"""Offer response: P(convert | customer features at send time, offer type, bonus), LightGBM.

Training rows are the offer history: every offer joined with the customer's features as of
the midnight that starts its send day (point in time: nothing the customer did after that day leaks
in) and with their order value (`training.bonus.value`) as of the same cutoff. The label is
``converted``. Inputs are the customer features, ``offer_type`` (categorical; the control
hold-outs have type ``none`` and bonus 0 and teach the model the no-offer response) and
``bonus`` with a monotone increasing constraint (more bonus never lowers the predicted
response, for every customer). The incremental effect of an offer is
``predict(type, bonus) - predict(none, 0)``.

Evaluation is by time: the last campaigns (send days) holding at least
``BonusConfig.response_test_share`` of the rows are held out; the model is fitted on the
earlier ones and scored on the held-out randomised
offers (the booster trains ``num_boost_round`` rounds, no early stopping: see
`training.bonus.config.LgbmParams`): AUC and log-loss of conversion, and uplift metrics
(Qini, AUUC, uplift at top k%) with every held-out row ranked by its predicted uplift of the
held-out arms (the arm-frequency weighted mean over the offer types and bonuses sent in the
test campaigns; control rows are ranked the same way, which is what makes the Qini curve
valid on randomised data). The model used for decisions is refitted on all rows with the same
number of rounds.

Without an offer history (no offers table, no rows, or no control rows) there is no observed
response to learn from: `NoOfferHistoryError` says so, and the caller falls back to the
rule-based offers of `training.bonus.policies` (it never invents a response).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Final

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import polars as pl

from features.build import customer_features
from features.columns import Col, OfferType
from features.config import FeatureConfig
from features.dataset import Dataset
from features.progress import stage
from training.bonus.config import BonusConfig
from training.bonus.profit import Option
from training.bonus.propensity import (
    FeatureEncoder,
    classification_report,
    lgb_params,
    split_holdout,
    train_binary,
)
from training.bonus.uplift_metrics import uplift_report
from training.bonus.value import (
    RevenueRatios,
    Value,
    customer_value,
    fit_revenue_ratios,
)

FloatArray = npt.NDArray[np.float64]

OFFER_TYPE_INPUT = "offer_type"
BONUS_INPUT = "bonus"
SEND_DAY = "_send_day"
# offer-table columns that are outcomes or bookkeeping, never model inputs
_OFFER_COLUMNS = (
    Col.OFFER,
    Col.SENT_AT,
    Col.CHANNEL,
    Col.CONVERTED,
    Col.CONVERTED_AT,
    Col.REVENUE,
    Col.CAMPAIGN,
    Col.CONTROL,
    Col.ITEM,
    Col.THRESHOLD,
)


class ResponseModelError(Exception):
    """The response model cannot be trained or applied (the message says why)."""


class NoOfferHistoryError(ResponseModelError):
    """The dataset has no usable offer history: no response can be learned.

    Fall back to `training.bonus.policies.rule_based_offers`, which prices offers from the
    customer's own data without claiming any response.
    """


def offer_history(ds: Dataset) -> pl.DataFrame:
    """The offers table, or `NoOfferHistoryError` when it is absent, empty or has no control."""
    if ds.offers is None:
        raise NoOfferHistoryError(
            f"{ds.root}: no offers table (offers.parquet), so there is no offer history to "
            "learn a response from; use the rule-based offers instead"
        )
    offers = ds.offers.collect()
    if offers.height == 0:
        raise NoOfferHistoryError(f"{ds.root}: the offers table is empty; no response to learn")
    n_control = offers.filter(pl.col(Col.OFFER_TYPE) == OfferType.NONE).height
    if n_control == 0:
        raise NoOfferHistoryError(
            f"{ds.root}: the offer history has no control rows (offer_type 'none'), so the "
            "response without an offer, and hence any incremental effect, is unknown"
        )
    if n_control == offers.height:
        raise NoOfferHistoryError(f"{ds.root}: the offer history holds control rows only")
    return offers


class History:
    """Offer-history features (point in time: offers sent before the cutoff)."""

    OFFERS: Final = "hist_offers"
    CONVERTED: Final = "hist_offers_converted"
    HELD_OUT: Final = "hist_held_out"
    HELD_OUT_CONVERTED: Final = "hist_held_out_converted"
    DAYS_SINCE: Final = "hist_days_since_offer"


def offer_history_features(offers: pl.DataFrame, *, as_of: datetime) -> pl.DataFrame:
    """Per customer, from offers sent before ``as_of``: offers and conversions on them, hold-outs
    and their conversions, days since the last offer. Conversions count only when they happened
    before ``as_of``.
    """
    before = offers.filter(pl.col(Col.SENT_AT) < as_of)
    treated = pl.col(Col.OFFER_TYPE) != OfferType.NONE
    converted = pl.col(Col.CONVERTED) & (pl.col(Col.CONVERTED_AT) < as_of).fill_null(False)
    return before.group_by(Col.CUSTOMER).agg(
        treated.sum().cast(pl.Int32).alias(History.OFFERS),
        (treated & converted).sum().cast(pl.Int32).alias(History.CONVERTED),
        (~treated).sum().cast(pl.Int32).alias(History.HELD_OUT),
        (~treated & converted).sum().cast(pl.Int32).alias(History.HELD_OUT_CONVERTED),
        ((pl.lit(as_of) - pl.col(Col.SENT_AT).filter(treated).max()).dt.total_days())
        .cast(pl.Int32)
        .alias(History.DAYS_SINCE),
    )


def model_features(
    ds: Dataset,
    offers: pl.DataFrame | None,
    *,
    as_of: datetime,
    config: BonusConfig,
    feature_config: FeatureConfig,
    customers: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Everything the response model sees of a customer as of ``as_of``, one row per customer.

    Customer features (`features.build.customer_features`), order value
    (`training.bonus.value.customer_value`, without the margin) and offer-history features.
    With ``customers`` (a frame with customer_id) only those customers are kept.
    """
    features = customer_features(ds, as_of=as_of, config=feature_config).collect()
    if customers is not None:
        features = features.join(
            customers.select(Col.CUSTOMER).unique(),
            on=Col.CUSTOMER,
            how="semi",
            maintain_order="left",
        )
    value, _ = customer_value(
        ds, as_of=as_of, config=config, customers=features.get_column(Col.CUSTOMER)
    )
    features = features.join(
        value.drop(Value.EXPECTED_MARGIN),
        on=Col.CUSTOMER,
        how="left",
        validate="1:1",
        maintain_order="left",
    )
    history = (
        offer_history_features(offers, as_of=as_of)
        if offers is not None
        else pl.DataFrame(schema={Col.CUSTOMER: pl.String})
    )
    features = features.join(
        history, on=Col.CUSTOMER, how="left", validate="1:1", maintain_order="left"
    )
    counts = [History.OFFERS, History.CONVERTED, History.HELD_OUT, History.HELD_OUT_CONVERTED]
    return features.with_columns(
        pl.col(c).fill_null(0).cast(pl.Int32) for c in counts if c in features.columns
    )


@dataclass(frozen=True)
class OfferFrame:
    """Offer rows with point-in-time model features, and what was left out."""

    frame: pl.DataFrame
    feature_columns: tuple[str, ...]
    rows_without_features: int


def offer_training_frame(
    ds: Dataset, offers: pl.DataFrame, *, config: BonusConfig, feature_config: FeatureConfig
) -> OfferFrame:
    """Each offer joined with `model_features` as of the midnight of its send day."""
    offers = offers.with_columns(pl.col(Col.SENT_AT).dt.truncate("1d").alias(SEND_DAY))
    parts = []
    feature_columns: tuple[str, ...] = ()
    missing = 0
    days = offers.get_column(SEND_DAY).unique().sort().to_list()
    for day in days:
        as_of = datetime.combine(day.date(), time())
        sent = offers.filter(pl.col(SEND_DAY) == day)
        features = model_features(
            ds, offers, as_of=as_of, config=config, feature_config=feature_config, customers=sent
        )
        if not feature_columns:
            feature_columns = tuple(c for c in features.columns if c != Col.CUSTOMER)
        joined = sent.join(
            features, on=Col.CUSTOMER, how="left", validate="m:1", maintain_order="left"
        )
        missing += sent.join(features, on=Col.CUSTOMER, how="anti").height
        parts.append(joined)
    frame = pl.concat(parts, how="diagonal_relaxed")
    return OfferFrame(frame, feature_columns, missing)


@dataclass(frozen=True)
class ResponseModel:
    """Fitted response model: feature encoder, offer-type vocabulary, booster, revenue ratios."""

    encoder: FeatureEncoder
    offer_types: tuple[str, ...]  # code = position; "none" first
    booster: lgb.Booster
    ratios: RevenueRatios
    feature_config: FeatureConfig

    @property
    def known_types(self) -> frozenset[str]:
        """Offer types seen in the history (only these can be scored)."""
        return frozenset(self.offer_types)

    def _base_matrix(self, features: pl.DataFrame) -> FloatArray:
        return _base_matrix(self.encoder, features)

    def _predict(self, base: FloatArray, offer_type: str, bonus: float) -> FloatArray:
        if offer_type not in self.offer_types:
            raise ResponseModelError(
                f"offer_type {offer_type!r} never appears in the offer history; its response "
                f"is unknown (known: {sorted(self.offer_types)})"
            )
        base[:, -2] = float(self.offer_types.index(offer_type))
        base[:, -1] = float(bonus)
        return np.asarray(self.booster.predict(base), dtype=np.float64)

    def predict(self, features: pl.DataFrame, offer_type: str, bonus: float) -> FloatArray:
        """P(convert) of every row of ``features`` given ``offer_type`` with ``bonus`` points."""
        return self._predict(self._base_matrix(features), offer_type, bonus)

    def predict_options(
        self, features: pl.DataFrame, options: list[Option]
    ) -> tuple[FloatArray, FloatArray]:
        """``(p[n, m], p_none[n])``: P(convert) per option column and without an offer."""
        base = self._base_matrix(features)
        p = np.empty((features.height, len(options)))
        for j, option in enumerate(options):
            p[:, j] = self._predict(base, option.offer_type, option.bonus)
        return p, self._predict(base, OfferType.NONE, 0.0)

    def matrix(self, frame: pl.DataFrame) -> FloatArray:
        """Model inputs of offer rows (features + offer_type code + bonus)."""
        return _offer_matrix(self.encoder, self.offer_types, frame)


def _base_matrix(encoder: FeatureEncoder, features: pl.DataFrame) -> FloatArray:
    x = encoder.transform(features)
    return np.hstack([x, np.zeros((x.shape[0], 2))])


def _offer_matrix(
    encoder: FeatureEncoder, offer_types: tuple[str, ...], frame: pl.DataFrame
) -> FloatArray:
    x = _base_matrix(encoder, frame)
    types = frame.get_column(Col.OFFER_TYPE).to_list()
    unknown = sorted(set(types) - set(offer_types))
    if unknown:
        raise ResponseModelError(f"offer rows hold unknown offer types {unknown}")
    code = {t: i for i, t in enumerate(offer_types)}
    x[:, -2] = [code[t] for t in types]
    x[:, -1] = frame.get_column(Col.BONUS).to_numpy()
    return x


def _input_names(encoder: FeatureEncoder) -> list[str]:
    return [*encoder.names, OFFER_TYPE_INPUT, BONUS_INPUT]


def _fit(
    encoder: FeatureEncoder,
    offer_types: tuple[str, ...],
    ratios: RevenueRatios,
    frame: pl.DataFrame,
    config: BonusConfig,
    feature_config: FeatureConfig,
    rounds: int,
    early_stopping: int,
) -> tuple[ResponseModel, int]:
    x = _offer_matrix(encoder, offer_types, frame)
    y = frame.get_column(Col.CONVERTED).cast(pl.Float64).to_numpy()
    names = _input_names(encoder)
    monotone = [0] * (len(names) - 1) + [1]
    # "intermediate", not "advanced": with "advanced" LightGBM 4.7 produced predictions that
    # fell as the bonus rose (found by test_response on a 400-customer world)
    params = lgb_params(
        config.lgbm,
        monotone_constraints=monotone,
        monotone_constraints_method="intermediate",
    )
    categorical = [*encoder.categorical_indices, len(names) - 2]
    if early_stopping > 0:
        fit_rows, stop_rows = split_holdout(frame.height, config.calibration_share, config.seed)
        booster = train_binary(
            x[fit_rows],
            y[fit_rows],
            names=names,
            categorical=categorical,
            params=params,
            rounds=rounds,
            valid=(x[stop_rows], y[stop_rows]),
            early_stopping=early_stopping,
        )
    else:
        booster = train_binary(
            x, y, names=names, categorical=categorical, params=params, rounds=rounds
        )
    best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
    if best != booster.current_iteration():
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return ResponseModel(encoder, offer_types, booster, ratios, feature_config), best


def _time_split(frame: pl.DataFrame, share: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Earlier send days for training; the last days holding >= share of the rows for testing."""
    per_day = frame.group_by(SEND_DAY).agg(pl.len().alias("n")).sort(SEND_DAY, descending=True)
    need = share * frame.height
    taken = 0
    test_days = []
    for day, n in per_day.iter_rows():
        if taken >= need:
            break
        test_days.append(day)
        taken += n
    if len(test_days) == per_day.height:
        raise ResponseModelError(
            "response evaluation: the offer history has a single send day; a time split needs "
            "at least two campaigns"
        )
    is_test = pl.col(SEND_DAY).is_in(test_days)
    return frame.filter(~is_test), frame.filter(is_test)


def _arm_weights(test: pl.DataFrame) -> list[tuple[str, float, float]]:
    """(offer_type, bonus, share) of the treated arms of ``test``."""
    arms = (
        test.filter(pl.col(Col.OFFER_TYPE) != OfferType.NONE)
        .group_by(Col.OFFER_TYPE, Col.BONUS)
        .agg(pl.len().alias("n"))
        .sort(Col.OFFER_TYPE, Col.BONUS)
    )
    total = float(arms["n"].sum())
    return [(t, float(b), n / total) for t, b, n in arms.iter_rows()]


def uplift_scores(
    model: ResponseModel, frame: pl.DataFrame, arms: list[tuple[str, float, float]]
) -> FloatArray:
    """Arm-weighted mean predicted uplift of each row (the Qini ranking score)."""
    base = model._base_matrix(frame)
    none = model._predict(base, OfferType.NONE, 0.0)
    score = np.zeros(frame.height)
    for offer_type, bonus, weight in arms:
        if offer_type in model.offer_types:
            score += weight * (model._predict(base, offer_type, bonus) - none)
    return score


@dataclass(frozen=True)
class ResponseResult:
    """The decision-time model and its held-out evaluation report."""

    model: ResponseModel
    report: dict[str, Any]


def train_response(
    ds: Dataset, *, config: BonusConfig, feature_config: FeatureConfig
) -> ResponseResult:
    """Fit the offer response model on the offer history (see the module docstring).

    ``feature_config`` should have its share categories pinned
    (`training.bonus.propensity.fixed_feature_config`) so every send day has the same columns.
    """
    offers = offer_history(ds)
    with stage("response: point-in-time features") as s:
        data = offer_training_frame(ds, offers, config=config, feature_config=feature_config)
        s.rows = data.frame.height
    frame = data.frame
    offer_types = (
        OfferType.NONE,
        *sorted(set(frame.get_column(Col.OFFER_TYPE).to_list()) - {OfferType.NONE}),
    )
    bad_bonus = frame.filter(pl.col(Col.BONUS).is_null() | (pl.col(Col.BONUS) < 0))
    if bad_bonus.height:
        row = bad_bonus.row(0, named=True)
        raise ResponseModelError(
            f"offers: bonus must be >= 0; offer {row[Col.OFFER]} has {row[Col.BONUS]}"
        )
    train, test = _time_split(frame, config.response_test_share)
    encoder = FeatureEncoder.fit(frame.select(data.feature_columns))
    with stage("response: evaluation model") as s:
        ratios = fit_revenue_ratios(train, config)
        model, best = _fit(
            encoder,
            offer_types,
            ratios,
            train,
            config,
            feature_config,
            config.lgbm.num_boost_round,
            0,
        )
        s.rows = train.height
    y_test = test.get_column(Col.CONVERTED).cast(pl.Float64).to_numpy()
    p_test = np.asarray(model.booster.predict(model.matrix(test)), dtype=np.float64)
    treated = test.get_column(Col.OFFER_TYPE).to_numpy() != OfferType.NONE
    arms = _arm_weights(test)
    scores = uplift_scores(model, test, arms)
    per_type: dict[str, Any] = {}
    for offer_type in sorted({t for t, _, _ in arms}):
        rows = test.get_column(Col.OFFER_TYPE).is_in([offer_type, OfferType.NONE]).to_numpy()
        sub_arms = [a for a in arms if a[0] == offer_type]
        total = sum(w for _, _, w in sub_arms)
        sub = [(t, b, w / total) for t, b, w in sub_arms]
        sub_scores = uplift_scores(model, test.filter(pl.Series(rows)), sub)
        rep = uplift_report(sub_scores, treated[rows], y_test[rows])
        per_type[offer_type] = {k: v for k, v in rep.items() if k != "by_decile"}
    report = {
        "offers": frame.height,
        "rows_without_features": data.rows_without_features,
        "train_rows": train.height,
        "test_rows": test.height,
        "test_from": str(test.get_column(SEND_DAY).min()),
        "best_iteration": best,
        "offer_types": list(offer_types),
        "conversion": classification_report(p_test, y_test),
        "uplift": uplift_report(scores, treated, y_test),
        "uplift_by_type": per_type,
        "revenue_ratios": dict(ratios.ratio),
    }
    with stage("response: final model") as s:
        final_ratios = fit_revenue_ratios(frame, config)
        final, _ = _fit(
            encoder, offer_types, final_ratios, frame, config, feature_config, max(best, 1), 0
        )
        s.rows = frame.height
    return ResponseResult(model=final, report=report)
