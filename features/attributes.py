"""Customer attributes from the ``customers`` table, passed through as features.

Extra (non-contract) columns and the consent flags pass through unchanged. ``registered_at``
becomes ``tenure_days`` (whole days registered at the cutoff; negative if registered after
it). ``birth_date`` feeds `features.loyalty.birthdays` and ``bonus_balance`` the balance
fallback, so neither is passed raw.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from features.columns import Col
from features.names import Feat
from features.orders import whole_days_since

PASSED_CONTRACT = (Col.CONSENT_EMAIL, Col.CONSENT_PUSH, Col.CONSENT_SMS)
USED_ELSEWHERE = (Col.CUSTOMER, Col.REGISTERED_AT, Col.BIRTH_DATE, Col.BONUS_BALANCE)


def attribute_columns(customers: pl.LazyFrame) -> list[str]:
    """The columns of ``customers`` passed through, in table order."""
    return [c for c in customers.collect_schema().names() if c not in USED_ELSEWHERE]


def customer_attributes(customers: pl.LazyFrame, *, as_of: datetime) -> pl.LazyFrame:
    """Tenure in days (when registered_at exists) and the pass-through columns per customer."""
    schema = customers.collect_schema()
    tenure = (
        [whole_days_since(pl.col(Col.REGISTERED_AT), as_of).alias(Feat.TENURE_DAYS)]
        if Col.REGISTERED_AT in schema
        else []
    )
    return customers.select(Col.CUSTOMER, *tenure, *attribute_columns(customers))
