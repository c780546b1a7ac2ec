"""Column names of the data contract, in one place.

Code never spells a contract column as a bare string: it uses these constants, so a rename is
one edit and a typo is an AttributeError instead of a silent null column.
"""

from __future__ import annotations

from typing import Final


class Col:
    """Column names shared by every table of the contract."""

    # keys
    CUSTOMER: Final = "customer_id"
    ORDER: Final = "order_id"
    ITEM: Final = "item_id"
    OFFER: Final = "offer_id"
    CAMPAIGN: Final = "campaign_id"

    # transactions
    TS: Final = "ts"
    QUANTITY: Final = "quantity"
    AMOUNT: Final = "amount"
    STORE: Final = "store_id"
    CHANNEL: Final = "channel"
    BONUS_EARNED: Final = "bonus_earned"
    BONUS_SPENT: Final = "bonus_spent"

    # items
    CATEGORY: Final = "category"
    PRICE: Final = "price"
    NAME: Final = "name"
    BRAND: Final = "brand"
    SUBCATEGORY: Final = "subcategory"
    MARGIN: Final = "margin"
    IS_ACTIVE: Final = "is_active"

    # customers
    REGISTERED_AT: Final = "registered_at"
    BIRTH_DATE: Final = "birth_date"
    BONUS_BALANCE: Final = "bonus_balance"
    CONSENT_EMAIL: Final = "consent_email"
    CONSENT_PUSH: Final = "consent_push"
    CONSENT_SMS: Final = "consent_sms"

    # offers (history of offers sent and their outcome)
    SENT_AT: Final = "sent_at"
    OFFER_TYPE: Final = "offer_type"
    BONUS: Final = "bonus"
    CONVERTED: Final = "converted"
    CONVERTED_AT: Final = "converted_at"
    REVENUE: Final = "revenue"
    CONTROL: Final = "control"
    THRESHOLD: Final = "threshold"

    # bonus ledger
    POINTS: Final = "points"
    EXPIRES_AT: Final = "expires_at"


class OfferType:
    """Offer types the engine generates. ``NONE`` marks a held-out (control / no e-mail) record.

    The contract accepts any non-empty offer type (an imported experiment keeps its own arm
    names, e.g. ``email_mens``); these are the ones our candidates and the synthetic world use.
    """

    NONE: Final = "none"
    CASHBACK: Final = "cashback"
    CROSS_SELL: Final = "cross_sell"
    UP_SELL: Final = "up_sell"
    SPEND_THRESHOLD: Final = "spend_threshold"
    REACTIVATION: Final = "reactivation"
    EXPIRING_POINTS: Final = "expiring_points"
    BIRTHDAY: Final = "birthday"
    REPLENISHMENT: Final = "replenishment"
    PRIVILEGE: Final = "privilege"
    WELCOME: Final = "welcome"

    ALL: Final = (
        NONE,
        CASHBACK,
        CROSS_SELL,
        UP_SELL,
        SPEND_THRESHOLD,
        REACTIVATION,
        EXPIRING_POINTS,
        BIRTHDAY,
        REPLENISHMENT,
        PRIVILEGE,
        WELCOME,
    )
