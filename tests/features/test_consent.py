"""Consent columns as shops spell them become the contract's three booleans on loading."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl
import pytest

from features.consent import ConsentConfig, ConsentError, MappedConsent, map_consent
from features.dataset import load_dataset
from features.validate import validate_dataset
from offers.cli import main


def _shop(root: Path) -> Path:
    """One purchase by customer c0: enough for `offers validate` to judge the customers."""
    root.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {"customer_id": ["c0"], "order_id": ["o1"], "ts": ["2024-01-01 10:00:00"]}
        | {"item_id": ["i1"], "quantity": [1.0], "amount": [10.0]}
    ).write_parquet(root / "transactions.parquet")
    pl.DataFrame({"item_id": ["i1"], "category": ["mug"], "price": [10.0]}).write_parquet(
        root / "items.parquet"
    )
    return root


def _customers(root: Path, **columns: list[object]) -> Path:
    n = len(next(iter(columns.values())))
    pl.DataFrame({"customer_id": [f"c{i}" for i in range(n)], **columns}).write_parquet(
        root / "customers.parquet"
    )
    return root


def test_common_spellings_and_value_styles_become_contract_flags(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _customers(
        tmp_path,
        email=["yes", "No", " Y ", "n", None],
        push_opt_in=[1, 0, 0, 1, None],
        SMS_Consent=[True, False, None, True, False],
        segment=["a", "b", "c", "d", "e"],
    )

    with caplog.at_level(logging.INFO):
        ds = load_dataset(tmp_path)
    got = ds.require("customers", "a test").collect()

    assert got.columns == ["customer_id", "segment", "consent_email", "consent_push", "consent_sms"]
    assert got["consent_email"].to_list() == [True, False, True, False, None]
    assert got["consent_push"].to_list() == [True, False, False, True, None]
    assert got["consent_sms"].to_list() == [True, False, None, True, False]
    assert ds.consent_mapping == (
        MappedConsent("consent_email", "email", "String"),
        MappedConsent("consent_push", "push_opt_in", "Int64"),
        MappedConsent("consent_sms", "SMS_Consent", "Boolean"),
    )
    assert (
        "consent columns: consent_email <- email (String), consent_push <- push_opt_in (Int64), "
        "consent_sms <- SMS_Consent (Boolean)" in caplog.messages
    )


def test_contract_flags_stored_as_booleans_need_no_mapping(tmp_path: Path) -> None:
    _customers(tmp_path, consent_email=[True, None], consent_sms=[False, True])

    ds = load_dataset(tmp_path)

    assert ds.consent_mapping == ()
    assert ds.require("customers", "a test").collect()["consent_email"].to_list() == [True, None]


def test_floats_with_nan_read_as_flags_and_missing(tmp_path: Path) -> None:
    _customers(tmp_path, email_consent=[1.0, float("nan"), 0.0])

    got = load_dataset(tmp_path).require("customers", "a test").collect()

    assert got["consent_email"].to_list() == [True, None, False]


def test_a_configured_column_overrides_the_usual_names(tmp_path: Path) -> None:
    _customers(tmp_path, newsletter=["true", "false"], email=["no", "no"])

    ds = load_dataset(tmp_path, consent=ConsentConfig(columns={"consent_email": "newsletter"}))
    got = ds.require("customers", "a test").collect()

    assert got["consent_email"].to_list() == [True, False]
    assert got["email"].to_list() == ["no", "no"]  # not consent under this mapping
    assert ds.consent_mapping == (
        MappedConsent("consent_email", "newsletter", "String", configured=True),
    )


def test_a_configured_column_that_is_missing_is_an_error(tmp_path: Path) -> None:
    _customers(tmp_path, email=["y"])

    with pytest.raises(ConsentError, match="no column 'newsletter' for consent_email"):
        load_dataset(tmp_path, consent=ConsentConfig(columns={"consent_email": "newsletter"}))


def test_an_unreadable_value_names_the_column_the_row_and_the_customer(tmp_path: Path) -> None:
    _customers(tmp_path, email_opt_in=["yes", "no", "maybe"])

    with pytest.raises(ConsentError) as exc:
        load_dataset(tmp_path)

    assert exc.value.column == "email_opt_in"
    assert "'email_opt_in' (consent_email): row 2 (customer_id 'c2') has 'maybe'" in str(exc.value)


def test_an_integer_other_than_0_or_1_is_unreadable(tmp_path: Path) -> None:
    _customers(tmp_path, sms=[1, 2])

    with pytest.raises(ConsentError, match=r"'sms' \(consent_sms\): row 1 .* has 2"):
        load_dataset(tmp_path)


def test_an_email_column_of_addresses_is_not_consent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _customers(tmp_path, email=["a@example.com", "b@example.com"])

    with caplog.at_level(logging.INFO):
        ds = load_dataset(tmp_path)

    assert ds.consent_mapping == ()
    assert ds.require("customers", "a test").collect_schema().names() == ["customer_id", "email"]
    assert any("'email' is not consent" in m for m in caplog.messages)
    no_consent = "customers: no consent column for consent_email, consent_push, consent_sms ("
    assert any(m.startswith(no_consent) for m in caplog.messages)


def test_an_sms_column_of_phone_numbers_is_not_consent(tmp_path: Path) -> None:
    _customers(tmp_path, sms=[447700900123, 447700900456])

    ds = load_dataset(tmp_path)

    assert ds.consent_mapping == ()
    assert "sms" in ds.require("customers", "a test").collect_schema().names()


def test_a_mapping_naming_an_unknown_flag_is_rejected() -> None:
    with pytest.raises(ConsentError, match="'consent_fax' is not a consent flag"):
        ConsentConfig(columns={"consent_fax": "fax"})


def test_map_consent_works_on_a_frame_without_customer_ids() -> None:
    out, mapped = map_consent(pl.LazyFrame({"push": ["t", "f"]}))

    assert out.collect()["consent_push"].to_list() == [True, False]
    assert [m.source for m in mapped] == ["push"]


def test_validate_reports_the_mapping_and_an_unreadable_value(tmp_path: Path) -> None:
    good = _shop(tmp_path / "good")
    report = validate_dataset(_customers(good, email=["y", "n"]))
    assert report.ok
    assert report.facts["consent columns"] == "consent_email <- email (String)"

    bad = _shop(tmp_path / "bad")
    _customers(bad, email=["y", "perhaps"])
    report = validate_dataset(bad)
    assert not report.ok
    assert report.errors[0].column == "email"
    assert "row 1 (customer_id 'c1') has 'perhaps'" in report.errors[0].message


def test_cli_takes_a_consent_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _customers(_shop(tmp_path), newsletter=["1", "0"])

    assert main(["validate", str(tmp_path), "--consent-columns", "email=newsletter"]) == 0
    assert "consent columns: consent_email <- newsletter (String, configured)" in (
        capsys.readouterr().out
    )
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(tmp_path), "--consent-columns", "fax=newsletter"])
    assert exc.value.code == 2
    assert "--consent-columns" in capsys.readouterr().err
