"""The offer history: randomised campaigns whose outcomes are drawn from the response truth.

Each campaign reaches a random share of the customers registered (with a consent) before it.
Every reached customer gets a randomised arm: a control hold-out (offer type ``none``, bonus 0)
or a random offer type of the campaign with a random bonus from the grid. Whether the customer
converts within the window is drawn from `synth.response.response_probability`; a conversion
is a real order in the transactions, and its amount is the offer's revenue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from features.columns import Col, OfferType
from synth.catalog import Catalog
from synth.config import WorldConfig
from synth.population import Population
from synth.response import (
    CONTACT_TYPES,
    OFFER_TYPES,
    TYPE_CODE,
    UP_SELL_TIER_SHIFT,
    basket_lines_mean,
    expected_order,
    response_probability,
)
from synth.shopping import KIND_CONVERSION, Lines, Orders, draw_items
from synth.timeline import US_PER_DAY, US_PER_SECOND, Timeline

CHANNELS = ("email", "push", "sms")
THRESHOLD_SHARE = 0.4  # spend threshold, as a share of the expected conversion order
THRESHOLD_STEP = 10.0


@dataclass(frozen=True)
class Campaign:
    """One campaign: when it is sent, whom it reaches, which offer types it randomises."""

    campaign_id: int
    day: int
    second: int
    share: float
    types: tuple[int, ...]  # offer type codes (never none)


def plan_campaigns(config: WorldConfig, rng: np.random.Generator) -> list[Campaign]:
    """Campaign dates spread over the history; the first one randomises every offer type."""
    n = config.n_campaigns
    last = config.days - config.offer_window_days - 1
    first = min(last, max(7, config.days // 10))
    anchors = np.linspace(first, last, n)
    jitter = rng.integers(-3, 4, n)
    days = np.clip(np.round(anchors).astype(np.int64) + jitter, first, last)
    contact = np.array([TYPE_CODE[t] for t in CONTACT_TYPES])
    out = []
    for k in range(n):
        if k == 0 or rng.random() < 0.4:
            types = contact
        else:
            size = int(rng.integers(3, len(contact)))
            types = np.sort(rng.choice(contact, size=size, replace=False))
        out.append(
            Campaign(
                campaign_id=k + 1,
                day=int(days[k]),
                second=int(rng.integers(8 * 3600, 19 * 3600)),
                share=float(rng.uniform(*config.campaign_share)),
                types=tuple(int(t) for t in types),
            )
        )
    return out


def campaigns_frame(campaigns: list[Campaign]) -> pl.DataFrame:
    """Ground truth of the campaign plan."""
    return pl.DataFrame(
        {
            Col.CAMPAIGN: [str(c.campaign_id) for c in campaigns],
            "day": [c.day for c in campaigns],
            "share": [c.share for c in campaigns],
            "offer_types": [[OFFER_TYPES[t] for t in c.types] for c in campaigns],
        }
    )


@dataclass
class OfferDraws:
    """Offers of a chunk (one entry per offer) and the conversion orders they caused."""

    cust: np.ndarray
    campaign: np.ndarray  # campaign id
    sent_ts: np.ndarray
    type_code: np.ndarray
    bonus: np.ndarray
    channel: np.ndarray
    control: np.ndarray
    converted: np.ndarray
    converted_ts: np.ndarray  # valid where converted
    threshold: np.ndarray  # NaN unless spend_threshold
    p_true: np.ndarray  # the response probability the outcome was drawn from
    orders: Orders  # one conversion order per converted offer, in offer order
    lines: Lines  # order index = position among conversion orders


def draw_offers(
    config: WorldConfig,
    campaigns: list[Campaign],
    pop: Population,
    catalog: Catalog,
    timeline: Timeline,
    rng: np.random.Generator,
) -> OfferDraws:
    """Offers of every campaign to this chunk, with outcomes drawn from the response truth."""
    reachable = pop.consent.any(axis=1)
    cust_parts, camp_parts = [], []
    for c in campaigns:
        eligible = reachable & (pop.reg_day < c.day)
        hit = np.flatnonzero(eligible & (rng.random(pop.n) < c.share))
        cust_parts.append(hit)
        camp_parts.append(np.full(hit.shape[0], c.campaign_id - 1))
    cust = np.concatenate(cust_parts)
    camp = np.concatenate(camp_parts)
    n = int(cust.shape[0])
    day = np.array([c.day for c in campaigns], dtype=np.int64)[camp]
    second = np.array([c.second for c in campaigns], dtype=np.int64)[camp]
    sent_ts = timeline.start_us + day * US_PER_DAY
    sent_ts = sent_ts + (second + rng.integers(0, 2 * 3600, n)) * US_PER_SECOND

    control = rng.random(n) < config.control_share
    pick = rng.random(n)
    type_code = np.zeros(n, dtype=np.int64)
    for k, c in enumerate(campaigns):
        mine = np.flatnonzero(camp == k)
        types = np.array(c.types, dtype=np.int64)
        type_code[mine] = types[(pick[mine] * len(types)).astype(np.int64)]
    type_code[control] = TYPE_CODE[OfferType.NONE]
    grid = np.asarray(config.bonus_grid, dtype=float)
    bonus = np.where(control, 0.0, grid[rng.integers(0, grid.shape[0], n)])
    channel = _channels(pop.consent[cust], rng)

    p_true = response_probability(
        pop.response,
        cust,
        type_code,
        bonus,
        day,
        window=config.offer_window_days,
        start=config.start,
    )
    converted = rng.random(n) < p_true
    offset = rng.beta(1.2, 2.5, n) * config.offer_window_days * US_PER_DAY
    converted_ts = sent_ts + offset.astype(np.int64)

    exp_amount = expected_order(pop.response, cust, type_code)[0]
    is_threshold = type_code == TYPE_CODE[OfferType.SPEND_THRESHOLD]
    threshold = np.where(
        is_threshold,
        np.maximum(THRESHOLD_STEP, np.floor(THRESHOLD_SHARE * exp_amount / THRESHOLD_STEP))
        * THRESHOLD_STEP,
        np.nan,
    )
    orders, lines = _conversion_orders(
        pop, catalog, cust[converted], type_code[converted], converted_ts[converted], rng
    )
    return OfferDraws(
        cust=cust,
        campaign=camp + 1,
        sent_ts=sent_ts,
        type_code=type_code,
        bonus=bonus,
        channel=channel,
        control=control,
        converted=converted,
        converted_ts=converted_ts,
        threshold=threshold,
        p_true=p_true,
        orders=orders,
        lines=lines,
    )


def _channels(consent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A consented channel per offer, uniformly among the customer's consents."""
    weights = consent.astype(float) * rng.random(consent.shape)
    return np.asarray(np.argmax(weights, axis=1))


def _conversion_orders(
    pop: Population,
    catalog: Catalog,
    cust: np.ndarray,
    type_code: np.ndarray,
    ts: np.ndarray,
    rng: np.random.Generator,
) -> tuple[Orders, Lines]:
    """The order of each conversion, drawn exactly as `expected_order` assumes."""
    n = int(cust.shape[0])
    n_lines = 1 + rng.poisson(basket_lines_mean(pop.response, cust, type_code) - 1.0)
    line_order = np.repeat(np.arange(n), n_lines)
    line_cust = cust[line_order]
    up = type_code[line_order] == TYPE_CODE[OfferType.UP_SELL]
    tier_up = pop.tier_pref * np.array(UP_SELL_TIER_SHIFT)
    tier_up /= tier_up.sum(axis=1, keepdims=True)
    item = np.empty(line_order.shape[0], dtype=np.int64)
    for mask, prefs in ((~up, pop.tier_pref), (up, tier_up)):
        sel = np.flatnonzero(mask)
        item[sel] = draw_items(
            pop, catalog, line_cust[sel], np.cumsum(prefs, axis=1), rng, day=None
        )
    orders = Orders(cust=cust, ts=ts, kind=np.full(n, KIND_CONVERSION, dtype=np.int64))
    return orders, Lines(order=line_order, item=item, qty=np.ones(line_order.shape[0], np.int64))
