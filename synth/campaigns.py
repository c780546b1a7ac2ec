"""The offer history: randomised campaigns whose outcomes are drawn from the response truth.

Each campaign reaches a random share of the customers registered (with a consent) before it.
Every reached customer gets a randomised arm: a control hold-out (offer type ``none``, bonus 0)
or a random offer type of the campaign with a random bonus from the grid. Whether the customer
converts within the window is drawn from the response family's exact probability (`curve`:
`synth.response.response_probability`); a conversion is a real order in the transactions, and
its amount is the offer's revenue.

Under the ``archetypes`` family a campaign is a shop's randomised test instead
(`plan_trials`): a fixed list of arms, (mechanic, bonus level) pairs of `synth.archetypes.ARMS`
plus a no-offer control, and every reached customer gets one arm uniformly at random (control
with probability ``control_share``), so the probability of the assigned arm is known and kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from features.columns import Col, OfferType
from synth.archetypes import ARMS
from synth.catalog import Catalog
from synth.config import WorldConfig
from synth.population import Population
from synth.response import (
    CONTACT_TYPES,
    OFFER_TYPES,
    TYPE_CODE,
    UP_SELL_TIER_SHIFT,
    ResponseModel,
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
    arms: tuple[tuple[int, float], ...] = ()  # archetypes family: (type code, bonus) per arm


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


def plan_trials(config: WorldConfig, rng: np.random.Generator) -> list[Campaign]:
    """The archetypes family's campaigns: randomised tests of 2-4 mechanics at their levels.

    Dates, send times and reach shares are drawn as in `plan_campaigns`; the first campaign
    tests every mechanic of `ARMS`, the others a random 2 to 4 of them, each at all its levels.
    """
    mechanics = np.array([TYPE_CODE[t] for t in ARMS])
    out = []
    for c in plan_campaigns(config, rng):
        if c.campaign_id == 1:
            chosen = mechanics
        else:
            size = int(rng.integers(2, len(mechanics) + 1))
            chosen = np.sort(rng.choice(mechanics, size=size, replace=False))
        arms = tuple(
            (int(code), float(level)) for code in chosen for level in ARMS[OFFER_TYPES[code]]
        )
        types = tuple(int(code) for code in chosen)
        out.append(Campaign(c.campaign_id, c.day, c.second, c.share, types, arms))
    return out


def arm_probability(config: WorldConfig, campaign: Campaign) -> float:
    """Probability of each non-control arm of an archetypes campaign (control: control_share)."""
    return (1.0 - config.control_share) / len(campaign.arms)


def campaigns_frame(campaigns: list[Campaign]) -> pl.DataFrame:
    """Ground truth of the campaign plan (with its arms when it is a randomised test)."""
    frame = pl.DataFrame(
        {
            Col.CAMPAIGN: [str(c.campaign_id) for c in campaigns],
            "day": [c.day for c in campaigns],
            "share": [c.share for c in campaigns],
            "offer_types": [[OFFER_TYPES[t] for t in c.types] for c in campaigns],
        }
    )
    if not any(c.arms for c in campaigns):
        return frame
    arms = [[{Col.OFFER_TYPE: OFFER_TYPES[t], Col.BONUS: b} for t, b in c.arms] for c in campaigns]
    return frame.with_columns(pl.Series("arms", arms))


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
    assignment_prob: np.ndarray | None  # P(this arm | reached); archetypes family only
    orders: Orders  # one conversion order per converted offer, in offer order
    lines: Lines  # order index = position among conversion orders


def draw_offers(
    config: WorldConfig,
    campaigns: list[Campaign],
    pop: Population,
    catalog: Catalog,
    timeline: Timeline,
    rng: np.random.Generator,
    model: ResponseModel | None = None,
) -> OfferDraws:
    """Offers of every campaign to this chunk, with outcomes drawn from the response truth.

    ``model`` is the response family's truth (default: the population's ``curve`` one);
    campaigns with arms (`plan_trials`) assign them uniformly at random.
    """
    model = pop.response if model is None else model
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

    assignment_prob: np.ndarray | None = None
    if any(c.arms for c in campaigns):
        control, type_code, bonus, assignment_prob = _assign_arms(config, campaigns, camp, rng)
    else:
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

    p_true = model.probability(
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

    exp_amount = model.order(cust, type_code)[0]
    is_threshold = type_code == TYPE_CODE[OfferType.SPEND_THRESHOLD]
    threshold = np.where(
        is_threshold,
        np.maximum(THRESHOLD_STEP, np.floor(THRESHOLD_SHARE * exp_amount / THRESHOLD_STEP))
        * THRESHOLD_STEP,
        np.nan,
    )
    orders, lines = _conversion_orders(
        pop,
        catalog,
        cust[converted],
        type_code[converted],
        converted_ts[converted],
        model.lines_mean(cust[converted], type_code[converted]),
        model.up_sell_shifts_tiers,
        rng,
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
        assignment_prob=assignment_prob,
        orders=orders,
        lines=lines,
    )


def _assign_arms(
    config: WorldConfig, campaigns: list[Campaign], camp: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(control, type code, bonus, assignment probability): one uniform draw per offer."""
    n = int(camp.shape[0])
    share = config.control_share
    u = rng.random(n)
    control = u < share
    type_code = np.full(n, TYPE_CODE[OfferType.NONE], dtype=np.int64)
    bonus = np.zeros(n)
    prob = np.full(n, share)
    for k, c in enumerate(campaigns):
        mine = np.flatnonzero((camp == k) & ~control)
        arm = ((u[mine] - share) / (1.0 - share) * len(c.arms)).astype(np.int64)
        arm = np.minimum(arm, len(c.arms) - 1)
        arms = np.array(c.arms)
        type_code[mine] = arms[arm, 0].astype(np.int64)
        bonus[mine] = arms[arm, 1]
        prob[mine] = arm_probability(config, c)
    return control, type_code, bonus, prob


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
    lines_mean: np.ndarray,
    shift_up_sell: bool,
    rng: np.random.Generator,
) -> tuple[Orders, Lines]:
    """The order of each conversion, drawn exactly as the family's expected order assumes."""
    n = int(cust.shape[0])
    n_lines = 1 + rng.poisson(lines_mean - 1.0)
    line_order = np.repeat(np.arange(n), n_lines)
    line_cust = cust[line_order]
    up = (type_code[line_order] == TYPE_CODE[OfferType.UP_SELL]) & shift_up_sell
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
