"""Offer response: P(convert | customer features at send time, offer type, bonus), LightGBM.

Training rows are the offer history: every offer joined with the customer's features as of
the midnight that starts its send day (point in time: nothing the customer did after that day leaks
in) and with their order value (`training.bonus.value`) as of the same cutoff. The label is
``converted``. Two structures (`BonusConfig.response_structure`), both never lowering the
predicted response as the bonus rises, for every customer:

- ``s_learner``: one booster on the customer features, ``offer_type`` (categorical; the
  control hold-outs have type ``none`` and bonus 0 and teach it the no-offer response) and
  ``bonus`` with a monotone increasing constraint.
- ``curve`` (default): that booster gives only the no-offer response ``p0``; a second booster
  (customer features and ``offer_type``, fitted on the treated rows with a custom log-loss
  objective) gives the uplift amplitude ``a`` in (0, 1), and the bonus enters through a fixed
  saturating curve (`BonusCurve`)::

      p = p0 + (1 - p0) * a(x, type) * (m + (1 - m) * (1 - exp(-bonus / h(check))))

  with ``h`` growing with the customer's expected check. Why: the single booster learnt the
  bonus as a few steps shared by all customers (most customers got 300, few 500), and the
  uplift came out shrunk; pooling every bonus level into one amplitude per customer and type,
  with the shape fixed, is what a few thousand randomised offers can estimate. Measured on
  20k-customer synthetic worlds (policy profit / oracle profit, worst budget): seed 7 (where
  the curve settings were chosen) 0.765 -> 0.791, seed 11 (confirmation) 0.789 -> 0.810.
  The price: the curve cannot express a contact that lowers the response (do-not-disturb).

The incremental effect of an offer is ``predict(type, bonus) - predict(none, 0)``. Every tree
of both boosters sees a random half of the features (`response_lgbm`).

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

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Final

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.special import expit, logit

from features.build import customer_features
from features.columns import Col, OfferType
from features.config import FeatureConfig
from features.dataset import Dataset
from features.progress import stage
from training.bonus.config import BonusConfig, LgbmParams
from training.bonus.profit import Option
from training.bonus.propensity import (
    FeatureEncoder,
    booster_from_array,
    booster_to_array,
    classification_report,
    feature_config_from_state,
    lgb_params,
    split_holdout,
    train_binary,
)
from training.bonus.uplift_metrics import uplift_report
from training.bonus.value import (
    RevenueRatios,
    Value,
    ValuePriors,
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


STATE_KIND = "bonus_response"
STATE_VERSION = 1
_EPS = 1e-6


@dataclass(frozen=True)
class BonusCurve:
    """The saturating shape of the response to a bonus, 0 at no contact and 1 at saturation.

    ``shape(b) = message + (1 - message) * (1 - exp(-b / h))`` with the half-saturation bonus
    ``h = half_share * reference_check * (check / reference_check) ** check_power`` (``h`` is
    reached at ``shape = message + (1 - message) * 0.63``): a bigger spender needs a bigger
    bonus to be moved as much. ``reference_check`` is the mean expected check of the rows
    the model was fitted on; ``check`` below 5% of it counts as 5%.
    """

    half_share: float
    check_power: float
    message: float
    reference_check: float

    def half(self, check: npt.ArrayLike) -> FloatArray:
        """Half-saturation bonus (points) of each customer's expected check."""
        ref = self.reference_check
        c = np.maximum(np.nan_to_num(np.asarray(check, dtype=np.float64), nan=ref), 0.05 * ref)
        return np.asarray(self.half_share * ref * (c / ref) ** self.check_power, dtype=np.float64)

    def shape(self, bonus: npt.ArrayLike, check: npt.ArrayLike) -> FloatArray:
        """The curve at ``bonus`` points for each customer (non-decreasing in ``bonus``)."""
        b = np.asarray(bonus, dtype=np.float64)
        saturation = -np.expm1(-b / self.half(check))
        return np.asarray(self.message + (1.0 - self.message) * saturation, dtype=np.float64)

    def state(self) -> dict[str, float]:
        """JSON-able form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BonusCurve:
        """Inverse of `state`."""
        return cls(
            half_share=float(state["half_share"]),
            check_power=float(state["check_power"]),
            message=float(state["message"]),
            reference_check=float(state["reference_check"]),
        )


@dataclass(frozen=True)
class ResponseModel:
    """Fitted response model: feature encoder, offer-type vocabulary, booster, revenue ratios.

    Two structures (`BonusConfig.response_structure`):

    - S-learner (``uplift`` is None): ``booster`` scores (features, offer_type, bonus).
    - curve (default): ``booster`` gives the no-offer response ``p0`` (its offer type ``none``
      at bonus 0) and ``uplift`` the amplitude ``a`` in (0, 1) from (features, offer_type);
      ``p = p0 + (1 - p0) * a * curve.shape(bonus, expected_check)``.

    ``value_priors`` are the population order value figures over the whole history (what
    customers without orders are valued at); a served decision may pass them to
    `training.bonus.value.customer_value` when it cannot recompute them.
    """

    encoder: FeatureEncoder
    offer_types: tuple[str, ...]  # code = position; "none" first
    booster: lgb.Booster
    ratios: RevenueRatios
    feature_config: FeatureConfig
    value_priors: ValuePriors | None = None
    uplift: lgb.Booster | None = None
    uplift_init: float = 0.0  # the uplift booster's starting raw score (not in its text)
    curve: BonusCurve | None = None

    @property
    def structure(self) -> str:
        """``"curve"`` or ``"s_learner"``."""
        return "s_learner" if self.uplift is None else "curve"

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(params, arrays)`` for the artifact bundle: JSON-able params, booster as text."""
        params: dict[str, Any] = {
            "kind": STATE_KIND,
            "version": STATE_VERSION,
            "encoder": self.encoder.state(),
            "offer_types": list(self.offer_types),
            "ratios": self.ratios.state(),
            "feature_config": dataclasses.asdict(self.feature_config),
            "value_priors": None if self.value_priors is None else self.value_priors.state(),
            "structure": self.structure,
            "uplift_init": self.uplift_init,
            "curve": None if self.curve is None else self.curve.state(),
        }
        arrays = {"booster": booster_to_array(self.booster)}
        if self.uplift is not None:
            arrays["uplift"] = booster_to_array(self.uplift)
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> ResponseModel:
        """Inverse of `state`; a state of another kind or version is a `ResponseModelError`."""
        kind, version = params.get("kind"), params.get("version")
        if kind != STATE_KIND or version != STATE_VERSION:
            raise ResponseModelError(
                f"response model state: expected kind {STATE_KIND!r} version {STATE_VERSION}, "
                f"got kind {kind!r} version {version!r}"
            )
        if "booster" not in arrays:
            raise ResponseModelError("response model state: the arrays lack 'booster'")
        offer_types = tuple(str(t) for t in params["offer_types"])
        if not offer_types or offer_types[0] != OfferType.NONE:
            raise ResponseModelError(
                f"response model state: offer_types must start with {OfferType.NONE!r}, "
                f"got {list(offer_types)}"
            )
        priors = params.get("value_priors")
        structure = params.get("structure", "s_learner")
        if structure == "curve" and ("uplift" not in arrays or params.get("curve") is None):
            raise ResponseModelError(
                "response model state: structure 'curve' needs the 'uplift' array and 'curve'"
            )
        curve = params.get("curve")
        return cls(
            encoder=FeatureEncoder.from_state(params["encoder"]),
            offer_types=offer_types,
            booster=booster_from_array(arrays["booster"]),
            ratios=RevenueRatios.from_state(params["ratios"]),
            feature_config=feature_config_from_state(params["feature_config"]),
            value_priors=None if priors is None else ValuePriors.from_state(priors),
            uplift=booster_from_array(arrays["uplift"]) if structure == "curve" else None,
            uplift_init=float(params.get("uplift_init", 0.0)),
            curve=BonusCurve.from_state(curve) if structure == "curve" and curve else None,
        )

    @property
    def known_types(self) -> frozenset[str]:
        """Offer types seen in the history (only these can be scored)."""
        return frozenset(self.offer_types)

    def _base_matrix(self, features: pl.DataFrame) -> FloatArray:
        return _base_matrix(self.encoder, features)

    def _code(self, offer_type: str) -> float:
        if offer_type not in self.offer_types:
            raise ResponseModelError(
                f"offer_type {offer_type!r} never appears in the offer history; its response "
                f"is unknown (known: {sorted(self.offer_types)})"
            )
        return float(self.offer_types.index(offer_type))

    def _p_none(self, base: FloatArray) -> FloatArray:
        base[:, -2] = 0.0
        base[:, -1] = 0.0
        return np.asarray(self.booster.predict(base), dtype=np.float64)

    def _amplitude(self, base: FloatArray, code: float | FloatArray) -> FloatArray:
        """The uplift amplitude ``a`` in (0, 1) of the curve structure."""
        assert self.uplift is not None
        base[:, -2] = code
        raw = self.uplift.predict(base[:, :-1], raw_score=True)
        return np.asarray(expit(np.asarray(raw) + self.uplift_init), dtype=np.float64)

    def _check(self, base: FloatArray) -> FloatArray:
        return base[:, self.encoder.names.index(Value.EXPECTED_CHECK)]

    def _predict(self, base: FloatArray, offer_type: str, bonus: float) -> FloatArray:
        code = self._code(offer_type)
        if self.uplift is None:
            base[:, -2] = code
            base[:, -1] = float(bonus)
            return np.asarray(self.booster.predict(base), dtype=np.float64)
        p0 = self._p_none(base)
        if offer_type == OfferType.NONE:
            return p0
        return self._curve_p(p0, self._amplitude(base, code), bonus, self._check(base))

    def _curve_p(
        self, p0: FloatArray, amplitude: FloatArray, bonus: float | FloatArray, check: FloatArray
    ) -> FloatArray:
        assert self.curve is not None
        shape = self.curve.shape(bonus, check)
        return np.asarray(p0 + (1.0 - p0) * amplitude * shape, dtype=np.float64)

    def predict(self, features: pl.DataFrame, offer_type: str, bonus: float) -> FloatArray:
        """P(convert) of every row of ``features`` given ``offer_type`` with ``bonus`` points."""
        return self._predict(self._base_matrix(features), offer_type, bonus)

    def predict_options(
        self, features: pl.DataFrame, options: list[Option]
    ) -> tuple[FloatArray, FloatArray]:
        """``(p[n, m], p_none[n])``: P(convert) per option column and without an offer."""
        base = self._base_matrix(features)
        p = np.empty((features.height, len(options)))
        if self.uplift is None:
            for j, option in enumerate(options):
                p[:, j] = self._predict(base, option.offer_type, option.bonus)
            return p, self._predict(base, OfferType.NONE, 0.0)
        p0 = self._p_none(base)
        check = self._check(base)
        amplitude: dict[str, FloatArray] = {}
        for j, option in enumerate(options):
            if option.offer_type == OfferType.NONE:
                p[:, j] = p0
                continue
            if option.offer_type not in amplitude:
                amplitude[option.offer_type] = self._amplitude(base, self._code(option.offer_type))
            p[:, j] = self._curve_p(p0, amplitude[option.offer_type], option.bonus, check)
        return p, p0

    def predict_rows(self, frame: pl.DataFrame) -> FloatArray:
        """P(convert) of offer rows, each under its own offer_type and bonus."""
        x = self.matrix(frame)
        if self.uplift is None:
            return np.asarray(self.booster.predict(x), dtype=np.float64)
        code = x[:, -2].copy()
        bonus = x[:, -1].copy()
        p0 = self._p_none(x.copy())
        p = self._curve_p(p0, self._amplitude(x, code), bonus, self._check(x))
        return np.where(code == 0.0, p0, p)

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
        response_lgbm(config),
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
    model = ResponseModel(encoder, offer_types, booster, ratios, feature_config)
    if config.response_structure == "curve":
        uplift, init, curve = _fit_curve(encoder, x, y, booster, config, best)
        model = dataclasses.replace(model, uplift=uplift, uplift_init=init, curve=curve)
    return model, best


def fit_response_model(
    frame: pl.DataFrame,
    encoder: FeatureEncoder,
    ratios: RevenueRatios,
    config: BonusConfig,
    feature_config: FeatureConfig,
) -> ResponseModel:
    """The response model (``config.response_structure``) on offer rows, full rounds."""
    offer_types = (
        OfferType.NONE,
        *sorted(set(frame.get_column(Col.OFFER_TYPE).to_list()) - {OfferType.NONE}),
    )
    model, _ = _fit(
        encoder,
        offer_types,
        ratios,
        frame,
        config,
        feature_config,
        config.lgbm.num_boost_round,
        0,
    )
    return model


def response_lgbm(config: BonusConfig) -> LgbmParams:
    """`BonusConfig.lgbm` with the response model's own ``feature_fraction``.

    `BonusConfig.response_feature_fraction` (default 0.5): each tree of the response boosters
    sees half the features. Measured (policy profit / oracle profit at the same true spend,
    every budget): 20k-customer world seed 7 +0.004 to +0.008, 5k demo world 0.000 to +0.005,
    confirmation world seed 23 +0.003 to +0.006, against 0.9 (the propensity model keeps
    `LgbmParams.feature_fraction`).
    """
    return dataclasses.replace(config.lgbm, feature_fraction=config.response_feature_fraction)


def _curve_objective(
    p0: FloatArray, shape: FloatArray
) -> Callable[[FloatArray, lgb.Dataset], tuple[FloatArray, FloatArray]]:
    """Log-loss gradient and Fisher hessian of ``p = p0 + (1 - p0) * sigmoid(raw) * shape``."""

    def objective(raw: FloatArray, data: lgb.Dataset) -> tuple[FloatArray, FloatArray]:
        y = np.asarray(data.get_label(), dtype=np.float64)
        s = expit(raw)
        p = np.clip(p0 + (1.0 - p0) * s * shape, _EPS, 1.0 - _EPS)
        dp = (1.0 - p0) * shape * s * (1.0 - s)
        w = 1.0 / (p * (1.0 - p))
        return (p - y) * w * dp, np.maximum(dp * dp * w, 1e-9)

    return objective


def _fit_curve(
    encoder: FeatureEncoder,
    x: FloatArray,
    y: FloatArray,
    booster: lgb.Booster,
    config: BonusConfig,
    rounds: int,
) -> tuple[lgb.Booster, float, BonusCurve]:
    """The uplift amplitude booster on the treated rows, given ``p0`` from ``booster``."""
    names = encoder.names
    if Value.EXPECTED_CHECK not in names:
        raise ResponseModelError(
            f"the curve response needs the {Value.EXPECTED_CHECK!r} feature; use "
            "response_structure='s_learner' without it"
        )
    check_col = names.index(Value.EXPECTED_CHECK)
    treated = x[:, -2] != 0.0
    if not treated.any():
        raise ResponseModelError("the offer history has no treated rows to learn an uplift from")
    xt = x[treated]
    none = xt.copy()
    none[:, -2:] = 0.0
    p0 = np.asarray(booster.predict(none), dtype=np.float64)
    checks = x[:, check_col]
    reference = float(np.nanmean(checks)) if np.isfinite(checks).any() else 1.0
    curve = BonusCurve(
        half_share=config.curve_half_share,
        check_power=config.curve_check_power,
        message=config.curve_message_share,
        reference_check=max(reference, 1e-9),
    )
    shape = curve.shape(xt[:, -1], xt[:, check_col])
    yt = y[treated]
    # start from the mean amplitude: mean(y - p0) = a * mean((1 - p0) * shape)
    start = float(np.mean(yt - p0)) / max(float(np.mean((1.0 - p0) * shape)), _EPS)
    init = float(logit(min(max(start, 0.01), 0.9)))
    params = lgb_params(response_lgbm(config), objective=_curve_objective(p0, shape))
    train = lgb.Dataset(
        xt[:, :-1],
        label=yt,
        init_score=np.full(xt.shape[0], init),
        feature_name=[*names, OFFER_TYPE_INPUT],
        categorical_feature=[*encoder.categorical_indices, len(names)],
        free_raw_data=True,
    )
    uplift = lgb.train(params, train, num_boost_round=rounds)
    return uplift, init, curve


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
    known = [(t, b, w) for t, b, w in arms if t in model.offer_types]
    if not known:
        return np.zeros(frame.height)
    p, none = model.predict_options(frame, [Option(t, b) for t, b, _ in known])
    weights = np.array([w for _, _, w in known], dtype=np.float64)
    return np.asarray((p - none[:, None]) @ weights, dtype=np.float64)


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
    p_test = model.predict_rows(test)
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
        "structure": model.structure,
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
    final = dataclasses.replace(final, value_priors=_latest_priors(ds, config))
    report["value_priors"] = None if final.value_priors is None else final.value_priors.state()
    return ResponseResult(model=final, report=report)


def _latest_priors(ds: Dataset, config: BonusConfig) -> ValuePriors:
    """Population order value figures over every sale before the midnight after the last one."""
    tx = ds.require("transactions", "order values (expected check and margin)")
    last = tx.select(pl.col(Col.TS).max()).collect().item()
    as_of = datetime.combine(last.date(), time()) + timedelta(days=1)
    _, priors = customer_value(
        ds, as_of=as_of, config=config, customers=pl.Series(Col.CUSTOMER, [], dtype=pl.String)
    )
    return priors
