"""Names of the customer feature columns, in one place (the contract columns live in `Col`).

Every feature module spells its output columns through `Feat`, so the CLI, training and tests
agree on one name per feature and a rename is one edit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final


class Feat:
    """Output column names of `features.build.customer_features` and `purchase_labels`."""

    # RFM (features.rfm)
    RECENCY_DAYS: Final = "recency_days"
    FREQUENCY: Final = "frequency"
    MONETARY: Final = "monetary"
    R_SCORE: Final = "r_score"
    F_SCORE: Final = "f_score"
    M_SCORE: Final = "m_score"
    RFM_CODE: Final = "rfm_code"
    RFM_SEGMENT: Final = "rfm_segment"
    R_QUINTILE: Final = "r_quintile"
    F_QUINTILE: Final = "f_quintile"
    M_QUINTILE: Final = "m_quintile"

    # lifecycle (features.lifecycle)
    LIFECYCLE_STAGE: Final = "lifecycle_stage"

    # activity (features.activity)
    ACTIVE_DAYS: Final = "active_days"
    ACTIVITY_PERIOD_DAYS: Final = "activity_period_days"
    ACTIVITY_COEF: Final = "activity_coef"
    INTERVAL_MEAN_DAYS: Final = "interval_mean_days"
    INTERVAL_STD_DAYS: Final = "interval_std_days"
    OVERDUE_RATIO: Final = "overdue_ratio"

    # checks (features.checks)
    CHECK_MEAN: Final = "check_mean"
    CHECK_MEDIAN: Final = "check_median"
    SPEND_RECENT: Final = "spend_recent"
    SPEND_PRIOR: Final = "spend_prior"
    SPEND_TREND_DIFF: Final = "spend_trend_diff"
    SPEND_TREND: Final = "spend_trend"
    RETURN_RATE: Final = "return_rate"
    RETURN_LINE_RATE: Final = "return_line_rate"

    # preferences (features.preferences)
    TOP_CATEGORY: Final = "top_category"
    TOP_CATEGORY_SHARE: Final = "top_category_share"
    N_CATEGORIES: Final = "n_categories"
    CATEGORY_ENTROPY: Final = "category_entropy"
    PRICE_TIER: Final = "price_tier"

    # loyalty (features.loyalty)
    BONUS_BALANCE: Final = "bonus_balance"
    DAYS_TO_BIRTHDAY: Final = "days_to_birthday"
    AGE_YEARS: Final = "age_years"

    # customer attributes (features.attributes)
    TENURE_DAYS: Final = "tenure_days"

    # labels (features.build.purchase_labels)
    BOUGHT: Final = "bought"
    SPEND: Final = "spend"

    @staticmethod
    def check_quantile(q: float) -> str:
        """``check_p75`` for q = 0.75 (percent, rounded to a whole number; 0.975 -> p97_5)."""
        pct = round(q * 100, 1)
        text = f"{pct:g}".replace(".", "_")
        return f"check_p{text}"

    @staticmethod
    def points_expiring(days: int) -> str:
        """``points_expiring_7d`` for a 7-day window."""
        return f"points_expiring_{days}d"

    @staticmethod
    def category_shares(categories: Iterable[str]) -> list[str]:
        """One ``cat_share__<slug>`` name per category, in order, unique even if slugs clash."""
        names: list[str] = []
        seen: set[str] = set()
        for category in categories:
            slug = re.sub(r"[^0-9a-z]+", "_", category.lower()).strip("_") or "blank"
            name = f"cat_share__{slug}"
            n = 2
            while name in seen:
                name = f"cat_share__{slug}_{n}"
                n += 1
            seen.add(name)
            names.append(name)
        return names


class Segment:
    """RFM segment groups (see `features.rfm` for the mapping from R/F/M scores)."""

    CHAMPIONS: Final = "champions"
    LOYAL: Final = "loyal"
    POTENTIAL_LOYALIST: Final = "potential_loyalist"
    NEW: Final = "new"
    NEED_ATTENTION: Final = "need_attention"
    ABOUT_TO_SLEEP: Final = "about_to_sleep"
    AT_RISK: Final = "at_risk"
    CANT_LOSE: Final = "cant_lose"
    HIBERNATING: Final = "hibernating"
    LOST: Final = "lost"
    NO_PURCHASE: Final = "no_purchase"


class Stage:
    """Lifecycle stages (see `features.lifecycle` for the rules)."""

    REGISTERED: Final = "registered"
    FIRST_PURCHASE: Final = "first_purchase"
    REPEAT: Final = "repeat"
    ACTIVE: Final = "active"
    AT_RISK: Final = "at_risk"
    SLEEPING: Final = "sleeping"
    LOST: Final = "lost"

    ALL: Final = (REGISTERED, FIRST_PURCHASE, REPEAT, ACTIVE, AT_RISK, SLEEPING, LOST)
