"""`BonusConfig`: every knob of the bonus models, candidates and policy evaluation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from features.columns import Col, OfferType
from features.names import Segment


class BonusConfigError(ValueError):
    """A `BonusConfig` field has a value the bonus pipeline cannot work with."""


# offer types that carry no bonus: a reminder of points the customer already owns, and a
# non-monetary privilege (early access, free delivery); they are offered at bonus 0 only
ZERO_BONUS_TYPES: tuple[str, ...] = (OfferType.EXPIRING_POINTS, OfferType.PRIVILEGE)

DEFAULT_OFFER_TYPES: tuple[str, ...] = (
    OfferType.CASHBACK,
    OfferType.CROSS_SELL,
    OfferType.UP_SELL,
    OfferType.SPEND_THRESHOLD,
    OfferType.REACTIVATION,
    OfferType.EXPIRING_POINTS,
    OfferType.BIRTHDAY,
    OfferType.REPLENISHMENT,
    OfferType.PRIVILEGE,
    OfferType.WELCOME,
)

CONSENT_COLUMNS: dict[str, str] = {
    "email": Col.CONSENT_EMAIL,
    "push": Col.CONSENT_PUSH,
    "sms": Col.CONSENT_SMS,
}


@dataclass(frozen=True)
class LgbmParams:
    """LightGBM settings shared by the propensity and the response model."""

    num_leaves: int = 15
    learning_rate: float = 0.03
    num_boost_round: int = 300
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.9
    bagging_fraction: float = 0.9
    lambda_l2: float = 1.0
    # propensity only: the response model trains the full num_boost_round, since stopping on
    # the conversion log-loss stopped before the (small) offer effects were learnt: measured
    # on a 20k-customer world, 60 rounds gave 0.79 and 300 rounds 0.81 of the oracle's profit
    early_stopping_rounds: int = 30
    seed: int = 7
    # 1 by default: OpenMP threads spin-wait, and on a shared 2-core machine two threads ran
    # 20-30x slower than one (measured); raise it on a dedicated machine
    num_threads: int = 1

    def __post_init__(self) -> None:
        for name in ("num_leaves", "num_boost_round", "min_data_in_leaf", "num_threads"):
            if getattr(self, name) < 1:
                raise BonusConfigError(f"LgbmParams.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("learning_rate", "feature_fraction", "bagging_fraction"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise BonusConfigError(f"LgbmParams.{name} must be in (0, 1], got {value}")
        if self.lambda_l2 < 0 or self.early_stopping_rounds < 0:
            raise BonusConfigError("LgbmParams: lambda_l2 and early_stopping_rounds must be >= 0")


@dataclass(frozen=True)
class EffectParams:
    """The DR-learner and the off-policy choice of the shipped policy (`training.bonus.selection`).

    - ``folds``: customer folds of the cross-fitted nuisance model.
    - ``nuisance_rounds``: boosting rounds of the nuisance (S-learner) classifier.
    - ``rounds``, ``num_leaves``, ``learning_rate``, ``min_data_in_leaf``, ``feature_fraction``,
      ``lambda_l2``: the per-mechanic effect regressions on the DR pseudo-outcomes (noisy
      targets: small trees, large leaves, strong shrinkage).
    - ``clip``: pseudo-outcomes are clipped to +-clip (1 / smallest assignment probability
      bounds them anyway; this only tames designs with very rare arms).
    - ``evaluation_folds``: customer folds of the off-policy evaluation: every candidate is
      fitted without a fold and plans the fold's rows, so every row is held out once.
    - ``budget_shares``: the held-out budgets, as shares of the S-learner plan's unconstrained
      planned spend, at which the candidates are compared.
    - ``candidates``: the policies compared; the one with the best mean lower 95% bound ships.
    """

    folds: int = 2
    nuisance_rounds: int = 200
    rounds: int = 150
    num_leaves: int = 7
    learning_rate: float = 0.03
    min_data_in_leaf: int = 400
    # every tree sees the bonus and every feature: with a fraction, trees that miss the bonus
    # or the feature that carries the effect pull the dose-response flat (measured on a
    # two-feature history: the large arm's effect came out at half its size with 0.8)
    feature_fraction: float = 1.0
    lambda_l2: float = 10.0
    clip: float = 50.0
    evaluation_folds: int = 2
    budget_shares: tuple[float, ...] = (0.2, 0.4, 0.8)
    candidates: tuple[str, ...] = (
        "x_learner",
        "dr_learner",
        "s_learner",
        "curve",
        "best_uniform",
        "recency_frequency",
        "lifecycle",
    )

    def __post_init__(self) -> None:
        for name in ("folds", "nuisance_rounds", "rounds", "num_leaves", "min_data_in_leaf"):
            if getattr(self, name) < 1:
                raise BonusConfigError(
                    f"EffectParams.{name} must be >= 1, got {getattr(self, name)}"
                )
        if self.folds < 2:
            raise BonusConfigError(f"EffectParams.folds must be >= 2, got {self.folds}")
        for name in ("learning_rate", "feature_fraction"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise BonusConfigError(f"EffectParams.{name} must be in (0, 1]")
        if self.lambda_l2 < 0 or not self.clip > 0:
            raise BonusConfigError("EffectParams: lambda_l2 must be >= 0 and clip > 0")
        if self.evaluation_folds < 2:
            raise BonusConfigError(
                f"EffectParams.evaluation_folds must be >= 2, got {self.evaluation_folds}"
            )
        if not self.budget_shares or any(not 0 < s <= 1 for s in self.budget_shares):
            raise BonusConfigError("EffectParams.budget_shares: expected shares in (0, 1]")
        unknown = sorted(set(self.candidates) - set(POLICY_CANDIDATES))
        if unknown or not self.candidates:
            raise BonusConfigError(
                f"EffectParams.candidates: {unknown or 'empty'}; choose from {POLICY_CANDIDATES}"
            )


# learnt policies first, then the simple rules a shop would learn from the same history
LEARNT_POLICIES: tuple[str, ...] = ("x_learner", "dr_learner", "s_learner", "curve")
RULE_POLICIES: tuple[str, ...] = ("best_uniform", "recency_frequency", "lifecycle")
POLICY_CANDIDATES: tuple[str, ...] = (*LEARNT_POLICIES, *RULE_POLICIES)


@dataclass(frozen=True)
class BonusConfig:
    """Horizon, bonus grid, limits, enabled offers and contact rules, model settings.

    Money is in the currency of the transactions; one bonus point is worth ``point_value`` of
    it (the shop pays that face value when the point is redeemed).

    - ``horizon_days``: the propensity label window (buy within H days after the cutoff).
    - ``bonus_grid``: bonus levels offered (points); 0 means "message only".
    - ``min_roi``: an option whose expected incremental profit / expected cost is below this
      is never chosen (passed to the optimizer).
    - ``max_bonus_per_customer``: no option grants more points than this.
    - ``max_bonus_share_of_check``: no option grants more than this share of the customer's
      expected check (`training.bonus.value`).
    - ``channels``: contact channels in order of preference; a customer is reachable only
      through a channel with consent. Consent is never assumed by default: without a consent
      column for a channel nobody is reachable through it.
    - ``assume_consent``: channels whose consent the shop keeps outside this dataset (it only
      exports customers who may be contacted): when the customers table has *no* consent
      column for such a channel, every customer counts as consented on it. A consent column
      that is present always decides (empty = no consent).
    - ``max_contacts`` within ``contact_window_days`` before the decision: a customer who
      already received that many offers (control hold-outs do not count) is not contacted.
    """

    horizon_days: int = 30
    bonus_grid: tuple[float, ...] = (0.0, 50.0, 100.0, 200.0, 300.0, 500.0)
    point_value: float = 1.0
    min_roi: float = 0.0
    max_bonus_per_customer: float = 500.0
    max_bonus_share_of_check: float = 0.5
    offer_types: tuple[str, ...] = DEFAULT_OFFER_TYPES
    channels: tuple[str, ...] = ("email", "push", "sms")
    assume_consent: tuple[str, ...] = ()
    max_contacts: int = 2
    contact_window_days: int = 30
    # candidate rules
    birthday_lead_days: int = 21
    welcome_days: int = 30
    replenishment_overdue_ratio: float = 1.0
    reactivation_stages: tuple[str, ...] = ("at_risk", "sleeping", "lost")
    privilege_segments: tuple[str, ...] = (Segment.CHAMPIONS, Segment.LOYAL)
    expiring_window_days: int = 30
    spend_threshold_quantile: float = 0.75
    # models
    calibration: str = "platt"  # "platt" (logistic on the score's logit) or "isotonic"
    calibration_share: float = 0.2
    response_test_share: float = 0.25
    # response structure (`training.bonus.response`): "curve" = baseline booster + uplift
    # amplitude booster with a saturating bonus curve; "s_learner" = one booster on
    # (features, offer_type, bonus). The curve: half the saturation is reached at a bonus of
    # curve_half_share x the typical check x (customer check / typical check)^curve_check_power;
    # curve_message_share of the effect comes with the message alone (bonus 0). Chosen on a
    # 20k-customer synthetic world (seed 7), confirmed on another (seed 11): see response.py
    response_structure: str = "curve"
    curve_half_share: float = 0.033
    curve_check_power: float = 0.55
    curve_message_share: float = 0.05
    # feature_fraction of the response boosters (`training.bonus.response.response_lgbm`);
    # lgbm.feature_fraction stays for the propensity model
    response_feature_fraction: float = 0.5
    value_prior_orders: float = 2.0
    value_prior_conversions: float = 20.0
    # margin rate used when items.margin is absent or null for an item (None: an error)
    default_margin_rate: float | None = None
    lgbm: LgbmParams = field(default_factory=LgbmParams)
    effects: EffectParams = field(default_factory=EffectParams)
    seed: int = 7

    def __post_init__(self) -> None:
        if self.horizon_days < 1:
            raise BonusConfigError(f"horizon_days must be >= 1, got {self.horizon_days}")
        grid = list(self.bonus_grid)
        if not grid or any(not math.isfinite(b) or b < 0 for b in grid):
            raise BonusConfigError(f"bonus_grid: expected levels >= 0, got {self.bonus_grid!r}")
        if grid != sorted(set(grid)):
            raise BonusConfigError(
                f"bonus_grid: expected distinct increasing levels, got {self.bonus_grid!r}"
            )
        if not self.point_value > 0:
            raise BonusConfigError(f"point_value must be > 0, got {self.point_value}")
        if not math.isfinite(self.min_roi):
            raise BonusConfigError(f"min_roi must be finite, got {self.min_roi}")
        if self.max_bonus_per_customer < 0:
            raise BonusConfigError("max_bonus_per_customer must be >= 0")
        if not 0.0 < self.max_bonus_share_of_check <= 10.0:
            raise BonusConfigError(
                f"max_bonus_share_of_check must be in (0, 10], got {self.max_bonus_share_of_check}"
            )
        unknown = sorted(set(self.offer_types) - (set(OfferType.ALL) - {OfferType.NONE}))
        if unknown or not self.offer_types:
            raise BonusConfigError(
                f"offer_types: {unknown or 'empty'} not allowed; choose from {OfferType.ALL[1:]}"
            )
        if len(set(self.offer_types)) != len(self.offer_types):
            raise BonusConfigError("offer_types: duplicates")
        known_channels = set(CONSENT_COLUMNS)
        bad = [c for c in self.channels if c not in known_channels]
        if bad or not self.channels:
            raise BonusConfigError(
                f"channels: {bad or 'empty'} unknown; choose from {sorted(known_channels)}"
            )
        unused = [c for c in self.assume_consent if c not in self.channels]
        if unused:
            raise BonusConfigError(
                f"assume_consent: {unused} not among the channels {list(self.channels)}"
            )
        for name in (
            "max_contacts",
            "contact_window_days",
            "birthday_lead_days",
            "welcome_days",
            "expiring_window_days",
        ):
            if getattr(self, name) < 0:
                raise BonusConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.spend_threshold_quantile < 1.0:
            raise BonusConfigError("spend_threshold_quantile must be in (0, 1)")
        if not 0.0 < self.response_feature_fraction <= 1.0:
            raise BonusConfigError(
                f"response_feature_fraction must be in (0, 1], got {self.response_feature_fraction}"
            )
        for name in ("calibration_share", "response_test_share"):
            if not 0.0 < getattr(self, name) < 0.9:
                raise BonusConfigError(f"{name} must be in (0, 0.9), got {getattr(self, name)}")
        if self.calibration not in ("platt", "isotonic"):
            raise BonusConfigError(
                f"calibration must be 'platt' or 'isotonic', got {self.calibration!r}"
            )
        if self.response_structure not in ("curve", "s_learner"):
            raise BonusConfigError(
                f"response_structure must be 'curve' or 's_learner', "
                f"got {self.response_structure!r}"
            )
        if not self.curve_half_share > 0 or not math.isfinite(self.curve_half_share):
            raise BonusConfigError(f"curve_half_share must be > 0, got {self.curve_half_share}")
        if not 0.0 <= self.curve_check_power <= 2.0:
            raise BonusConfigError(
                f"curve_check_power must be in [0, 2], got {self.curve_check_power}"
            )
        if not 0.0 <= self.curve_message_share < 1.0:
            raise BonusConfigError(
                f"curve_message_share must be in [0, 1), got {self.curve_message_share}"
            )
        if self.value_prior_orders < 0 or self.value_prior_conversions < 0:
            raise BonusConfigError("value_prior_orders and value_prior_conversions must be >= 0")
        if self.default_margin_rate is not None and not 0 <= self.default_margin_rate <= 1:
            raise BonusConfigError(
                f"default_margin_rate must be in [0, 1], got {self.default_margin_rate}"
            )

    def levels(self, offer_type: str) -> tuple[float, ...]:
        """Bonus levels offered for ``offer_type`` (0 only for the zero-bonus types)."""
        if offer_type in ZERO_BONUS_TYPES:
            return (0.0,)
        return self.bonus_grid
