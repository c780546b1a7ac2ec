"""Candidates respect rules, consents, contact caps and bonus limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np
import polars as pl
import pytest

from features.columns import Col, OfferType
from features.names import Feat
from training.bonus.candidates import CandidateError, build_candidates, option_columns
from training.bonus.config import BonusConfig, BonusConfigError
from training.bonus.value import Value

AS_OF = datetime(2025, 6, 1)
CONFIG = BonusConfig(
    offer_types=(OfferType.CASHBACK, OfferType.REACTIVATION, OfferType.EXPIRING_POINTS),
    bonus_grid=(0.0, 100.0, 300.0),
    max_bonus_per_customer=300.0,
    max_bonus_share_of_check=0.5,
    max_contacts=1,
    contact_window_days=30,
)


def _features() -> pl.DataFrame:
    return pl.DataFrame(
        {
            Col.CUSTOMER: ["ok", "sleepy", "no_consent", "capped", "small_check"],
            Feat.FREQUENCY: [5, 2, 5, 5, 5],
            Feat.LIFECYCLE_STAGE: ["active", "sleeping", "active", "active", "active"],
            Feat.points_expiring(30): [0.0, 40.0, 0.0, 0.0, 0.0],
            Col.CONSENT_EMAIL: [True, False, False, True, True],
            Col.CONSENT_PUSH: [False, True, None, False, False],
            Col.CONSENT_SMS: [False, False, False, False, False],
        }
    )


def _value() -> pl.DataFrame:
    return pl.DataFrame(
        {
            Col.CUSTOMER: ["ok", "sleepy", "no_consent", "capped", "small_check"],
            Value.EXPECTED_CHECK: [1000.0, 1000.0, 1000.0, 1000.0, 300.0],
        }
    )


def _offers() -> pl.DataFrame:
    return pl.DataFrame(
        {
            Col.CUSTOMER: ["capped", "ok"],
            Col.SENT_AT: [datetime(2025, 5, 20), datetime(2025, 5, 20)],
            Col.OFFER_TYPE: [OfferType.CASHBACK, OfferType.NONE],  # a hold-out is no contact
        }
    )


def _mask_of(cands: object, customer: str) -> dict[str, bool]:
    ids = cands.customer_ids.to_list()  # type: ignore[attr-defined]
    row = cands.mask[ids.index(customer)]  # type: ignore[attr-defined]
    return {o.label: bool(v) for o, v in zip(cands.options, row, strict=True)}  # type: ignore[attr-defined]


def test_option_columns_cross_types_with_levels_and_zero_bonus_types() -> None:
    labels = [o.label for o in option_columns(CONFIG)]
    assert labels == [
        "cashback@0",
        "cashback@100",
        "cashback@300",
        "reactivation@0",
        "reactivation@100",
        "reactivation@300",
        "expiring_points@0",
    ]


def test_rules_consents_caps_and_limits() -> None:
    cands = build_candidates(_features(), _value(), config=CONFIG, as_of=AS_OF, offers=_offers())
    ok = _mask_of(cands, "ok")
    assert ok["cashback@300"] and not ok["reactivation@100"] and not ok["expiring_points@0"]
    sleepy = _mask_of(cands, "sleepy")
    assert sleepy["reactivation@300"] and sleepy["expiring_points@0"]
    assert not any(_mask_of(cands, "no_consent").values())
    assert not any(_mask_of(cands, "capped").values())
    small = _mask_of(cands, "small_check")  # 0.5 x 300 = 150: 300 is over the limit
    assert small["cashback@100"] and not small["cashback@300"]
    assert cands.channel == ["email", "push", None, "email", "email"]
    assert cands.exclusions["customers_without_consent"] == 1
    assert cands.exclusions["customers_over_contact_cap"] == 1
    assert cands.exclusions["options_over_bonus_limit"] == 1
    assert cands.exclusions["not_eligible_reactivation"] == 4


def test_without_consent_columns_nobody_is_reachable_unless_consent_is_assumed() -> None:
    no_columns = _features().drop(Col.CONSENT_EMAIL, Col.CONSENT_PUSH, Col.CONSENT_SMS)
    cands = build_candidates(no_columns, _value(), config=CONFIG, as_of=AS_OF)
    assert not cands.mask.any()
    assert cands.channel == [None] * 5

    config = replace(CONFIG, assume_consent=("push",))
    cands = build_candidates(no_columns, _value(), config=config, as_of=AS_OF, offers=_offers())
    assert cands.channel == ["push"] * 5
    assert _mask_of(cands, "no_consent")["cashback@300"]  # no column: nobody is "no consent"
    assert not any(_mask_of(cands, "capped").values())  # the contact cap still applies
    assert any("consent assumed" in note and "push" in note for note in cands.notes)
    assert any("['email', 'sms']" in note and "not used" in note for note in cands.notes)


def test_a_consent_column_that_is_present_decides_even_when_consent_is_assumed() -> None:
    config = replace(CONFIG, assume_consent=("email", "push"))
    cands = build_candidates(_features(), _value(), config=config, as_of=AS_OF)
    assert cands.channel == ["email", "push", None, "email", "email"]  # push None: no consent
    assert not any("consent assumed" in note for note in cands.notes)


def test_consent_can_only_be_assumed_on_a_configured_channel() -> None:
    with pytest.raises(BonusConfigError, match=r"assume_consent: \['sms'\] not among"):
        BonusConfig(channels=("email",), assume_consent=("sms",))


def test_the_per_customer_cap_applies_to_every_customer() -> None:
    config = BonusConfig(
        offer_types=(OfferType.CASHBACK,),
        bonus_grid=(0.0, 100.0, 300.0),
        max_bonus_per_customer=100.0,
    )
    cands = build_candidates(_features(), _value(), config=config, as_of=AS_OF)
    assert not cands.mask[:, cands.bonus > 100].any()


def test_types_unknown_to_the_response_model_are_not_offered() -> None:
    cands = build_candidates(
        _features(), _value(), config=CONFIG, as_of=AS_OF, known_types={OfferType.CASHBACK}
    )
    assert {o.offer_type for o in cands.options} == {OfferType.CASHBACK}
    assert any("never appear" in note for note in cands.notes)


def test_an_absent_rule_feature_excludes_the_type_and_says_so() -> None:
    features = _features().drop(Feat.points_expiring(30))
    cands = build_candidates(features, _value(), config=CONFIG, as_of=AS_OF)
    assert not cands.mask[:, cands.columns_of(OfferType.EXPIRING_POINTS)].any()
    assert any("points_expiring_30d" in note for note in cands.notes)


def test_duplicate_customers_are_an_error() -> None:
    features = pl.concat([_features(), _features().head(1)])
    with pytest.raises(CandidateError, match="'ok' appears more than once"):
        build_candidates(features, _value(), config=CONFIG, as_of=AS_OF)


def test_spend_threshold_is_above_the_typical_check() -> None:
    features = _features().with_columns(pl.Series(Feat.check_quantile(0.75), [123.0] * 5))
    config = BonusConfig(offer_types=(OfferType.SPEND_THRESHOLD,))
    cands = build_candidates(features, _value(), config=config, as_of=AS_OF)
    assert np.all(cands.threshold == 130.0)
