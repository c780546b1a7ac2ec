"""Offer candidates: which (offer type, bonus) options each customer may receive.

The option columns are every enabled offer type crossed with its bonus levels
(`BonusConfig.levels`: the bonus grid, or 0 only for the expiring-points reminder and the
non-monetary privilege). A customer may receive an option when all of these hold:

- the offer type's rule (features as of the decision cutoff, names from `features.names`):

  ================  ==========================================================================
  cashback          everybody (a cashback on any purchase)
  cross_sell        has bought before (the cross-sell item complements a past purchase)
  up_sell           has bought before
  spend_threshold   has a check quantile: "spend X, get Y" with X = the customer's check at
                    ``spend_threshold_quantile`` (above their typical check), rounded up to 10
  reactivation      lifecycle_stage in ``reactivation_stages`` (at risk, sleeping, lost)
  expiring_points   points expiring within ``expiring_window_days`` > 0
  birthday          days_to_birthday <= ``birthday_lead_days``
  replenishment     overdue on their own purchase cycle: overdue_ratio >= the threshold
  privilege         rfm_segment in ``privilege_segments`` (top segments)
  welcome           tenure_days <= ``welcome_days``
  ================  ==========================================================================

- the response model knows the offer type (it appears in the offer history; a type never
  tried has no measured response and is not offered);
- bonus <= ``max_bonus_per_customer`` and bonus <= ``max_bonus_share_of_check`` x the
  customer's expected check (bonus 0 always passes);
- the customer consented to at least one of ``channels`` (the first consented one is used);
  a channel in ``assume_consent`` without a consent column counts as consented by everyone;
- the customer received fewer than ``max_contacts`` offers (control hold-outs excluded) in the
  ``contact_window_days`` before the cutoff.

Every exclusion is counted in `Candidates.exclusions`; a rule whose feature column is absent
from the dataset excludes its offer type and says so in `Candidates.notes`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import polars as pl

from features.columns import Col, OfferType
from features.names import Feat
from training.bonus.config import CONSENT_COLUMNS, BonusConfig
from training.bonus.profit import Option
from training.bonus.value import Value

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
THRESHOLD_STEP = 10.0


class CandidateError(ValueError):
    """Candidates cannot be built from these inputs (the message names the field)."""


@dataclass(frozen=True)
class Candidates:
    """The option columns, the (customers, options) eligibility mask and what it excluded."""

    customer_ids: pl.Series
    options: tuple[Option, ...]
    mask: BoolArray
    channel: list[str | None]
    threshold: FloatArray  # spend X of "spend X get Y" (NaN when not eligible)
    exclusions: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def bonus(self) -> FloatArray:
        """Bonus points of each option column."""
        return np.array([o.bonus for o in self.options], dtype=np.float64)

    def columns_of(self, offer_type: str) -> list[int]:
        """Option columns of ``offer_type``."""
        return [j for j, o in enumerate(self.options) if o.offer_type == offer_type]


def option_columns(config: BonusConfig, offer_types: Collection[str] | None = None) -> list[Option]:
    """Every enabled offer type (restricted to ``offer_types`` if given) x its bonus levels."""
    types = [t for t in config.offer_types if offer_types is None or t in offer_types]
    return [Option(t, float(b)) for t in types for b in config.levels(t)]


def _rule(features: pl.DataFrame, offer_type: str, config: BonusConfig) -> tuple[pl.Expr, str]:
    """The eligibility expression of one offer type and the feature columns it needs."""
    bought = pl.col(Feat.FREQUENCY).fill_null(0) > 0
    rules: dict[str, tuple[pl.Expr, str]] = {
        OfferType.CASHBACK: (pl.lit(True), ""),
        OfferType.CROSS_SELL: (bought, Feat.FREQUENCY),
        OfferType.UP_SELL: (bought, Feat.FREQUENCY),
        OfferType.SPEND_THRESHOLD: (
            pl.col(Feat.check_quantile(config.spend_threshold_quantile)).is_not_null(),
            Feat.check_quantile(config.spend_threshold_quantile),
        ),
        OfferType.REACTIVATION: (
            pl.col(Feat.LIFECYCLE_STAGE).cast(pl.String).is_in(list(config.reactivation_stages)),
            Feat.LIFECYCLE_STAGE,
        ),
        OfferType.EXPIRING_POINTS: (
            pl.col(Feat.points_expiring(config.expiring_window_days)).fill_null(0.0) > 0,
            Feat.points_expiring(config.expiring_window_days),
        ),
        OfferType.BIRTHDAY: (
            pl.col(Feat.DAYS_TO_BIRTHDAY) <= config.birthday_lead_days,
            Feat.DAYS_TO_BIRTHDAY,
        ),
        OfferType.REPLENISHMENT: (
            pl.col(Feat.OVERDUE_RATIO) >= config.replenishment_overdue_ratio,
            Feat.OVERDUE_RATIO,
        ),
        OfferType.PRIVILEGE: (
            pl.col(Feat.RFM_SEGMENT).cast(pl.String).is_in(list(config.privilege_segments)),
            Feat.RFM_SEGMENT,
        ),
        OfferType.WELCOME: (pl.col(Feat.TENURE_DAYS) <= config.welcome_days, Feat.TENURE_DAYS),
    }
    if offer_type not in rules:
        raise CandidateError(f"offer_type {offer_type!r} has no candidate rule")
    expr, needs = rules[offer_type]
    return expr.fill_null(False), needs


def recent_contacts(
    offers: pl.DataFrame | None, *, as_of: datetime, window_days: int
) -> pl.DataFrame:
    """Offers (not control hold-outs) per customer sent in ``[as_of - window, as_of)``."""
    if offers is None:
        return pl.DataFrame(schema={Col.CUSTOMER: pl.String, "contacts": pl.UInt32})
    start = as_of - timedelta(days=window_days)
    return (
        offers.filter(
            (pl.col(Col.SENT_AT) >= start)
            & (pl.col(Col.SENT_AT) < as_of)
            & (pl.col(Col.OFFER_TYPE) != OfferType.NONE)
        )
        .group_by(Col.CUSTOMER)
        .agg(pl.len().alias("contacts"))
    )


def build_candidates(
    features: pl.DataFrame,
    value: pl.DataFrame,
    *,
    config: BonusConfig,
    as_of: datetime,
    offers: pl.DataFrame | None = None,
    known_types: Collection[str] | None = None,
) -> Candidates:
    """The eligibility mask of every customer of ``features`` (rows in that order).

    ``value`` holds `Value.EXPECTED_CHECK` per customer (`training.bonus.value`); ``offers`` is
    the offer history (for the contact cap); ``known_types`` are the offer types the response
    model can score (None: all enabled types, e.g. for the rule-based fallback).
    """
    if Col.CUSTOMER not in features.columns:
        raise CandidateError("features: no customer_id column")
    dupes = features.get_column(Col.CUSTOMER).is_duplicated()
    if dupes.any():
        first = features.get_column(Col.CUSTOMER).filter(dupes)[0]
        raise CandidateError(f"features: customer_id {first!r} appears more than once")
    notes: list[str] = []
    exclusions: dict[str, int] = {}
    enabled = list(config.offer_types)
    if known_types is not None:
        unknown = [t for t in enabled if t not in known_types]
        if unknown:
            notes.append(
                f"offer types {unknown} never appear in the offer history: not offered "
                "(their response is unknown)"
            )
            exclusions["offer_types_without_history"] = len(unknown)
        enabled = [t for t in enabled if t in known_types]
    options = option_columns(config, enabled)
    frame = features.join(
        value.select(Col.CUSTOMER, Value.EXPECTED_CHECK),
        on=Col.CUSTOMER,
        how="left",
        maintain_order="left",
    )
    no_value = int(frame.get_column(Value.EXPECTED_CHECK).is_null().sum())
    if no_value:
        exclusions["customers_without_value"] = no_value
    n, m = frame.height, len(options)

    # offer-type rules
    type_ok: dict[str, pl.Series] = {}
    for offer_type in enabled:
        expr, needs = _rule(frame, offer_type, config)
        if needs and needs not in frame.columns:
            notes.append(f"{offer_type}: feature {needs!r} is absent, so nobody qualifies")
            type_ok[offer_type] = pl.Series([False] * n)
        else:
            # with_columns, not select: a bare literal selects one row per chunk, not per row
            type_ok[offer_type] = frame.with_columns(expr.alias("_ok")).get_column("_ok")
        exclusions[f"not_eligible_{offer_type}"] = int((~type_ok[offer_type]).sum())
    mask = np.zeros((n, m), dtype=np.bool_)
    for j, option in enumerate(options):
        mask[:, j] = type_ok[option.offer_type].to_numpy()

    # bonus limits
    bonus = np.array([o.bonus for o in options], dtype=np.float64)
    check = frame.get_column(Value.EXPECTED_CHECK).fill_null(0.0).to_numpy()
    cap = np.minimum(config.max_bonus_per_customer, config.max_bonus_share_of_check * check)
    over = (bonus[None, :] > cap[:, None]) & (bonus[None, :] > 0)
    exclusions["options_over_bonus_limit"] = int((mask & over).sum())
    mask &= ~over

    # consent and channel
    channel: list[str | None] = [None] * n
    present = [c for c in config.channels if CONSENT_COLUMNS[c] in frame.columns]
    assumed = [c for c in config.assume_consent if c not in present]
    absent = [c for c in config.channels if c not in present and c not in assumed]
    if absent:
        notes.append(f"no consent column for channels {absent}: they are not used")
    if assumed:
        notes.append(
            f"no consent column for channels {assumed}: consent assumed for every customer "
            "(BonusConfig.assume_consent)"
        )
    for ch in reversed(config.channels):  # first consented channel in preference order wins
        if ch in present:
            ok = frame.get_column(CONSENT_COLUMNS[ch]).fill_null(False).to_numpy()
        elif ch in assumed:
            ok = np.ones(n, dtype=np.bool_)
        else:
            continue
        channel = [ch if o else c for c, o in zip(channel, ok, strict=True)]
    reachable = np.array([c is not None for c in channel], dtype=np.bool_)
    exclusions["customers_without_consent"] = int((~reachable).sum())
    mask &= reachable[:, None]

    # contact frequency cap
    contacts = frame.select(Col.CUSTOMER).join(
        recent_contacts(offers, as_of=as_of, window_days=config.contact_window_days),
        on=Col.CUSTOMER,
        how="left",
        maintain_order="left",
    )
    n_contacts = contacts.get_column("contacts").fill_null(0).to_numpy()
    capped = n_contacts >= config.max_contacts
    exclusions["customers_over_contact_cap"] = int(capped.sum())
    mask &= ~capped[:, None]
    exclusions["customers_without_option"] = int((~mask.any(axis=1)).sum()) if m else n

    threshold = np.full(n, np.nan)
    q_col = Feat.check_quantile(config.spend_threshold_quantile)
    if q_col in frame.columns:
        q = frame.get_column(q_col).cast(pl.Float64).fill_null(np.nan).to_numpy()
        threshold = np.ceil(q / THRESHOLD_STEP) * THRESHOLD_STEP
    return Candidates(
        customer_ids=frame.get_column(Col.CUSTOMER),
        options=tuple(options),
        mask=mask,
        channel=channel,
        threshold=threshold,
        exclusions=exclusions,
        notes=notes,
    )
