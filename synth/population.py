"""Customers: latent tastes, price sensitivity, lifecycle, rhythm, consents and response truth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from features.columns import Col, OfferType
from synth.catalog import N_TIERS, Catalog
from synth.response import (
    EXPLORE,
    GROUPS,
    OFFER_TYPES,
    STILL_ACTIVE,
    TYPE_CODE,
    UP_SELL_TIER_SHIFT,
    ResponseModel,
    ResponseParams,
    baseline_probability,
)
from synth.timeline import day_of_year

LIFECYCLES = (
    "loyal",
    "regular",
    "occasional",
    "one_time",
    "sleeping",
    "lost",
    "registered_only",
)
_LIFECYCLE_SHARE = np.array([0.12, 0.28, 0.22, 0.12, 0.11, 0.09, 0.06])
# mean days between organic orders while active (one_time and registered_only: none)
_GAP_DAYS = np.array([9.0, 28.0, 85.0, 0.0, 30.0, 35.0, 0.0])
# share registered during the history (the rest registered up to 3 years before it)
_NEW_SHARE = np.array([0.15, 0.25, 0.3, 0.45, 0.1, 0.1, 0.6])
TASTE_SLOTS = 10
FAVOURITES = 6
FAV_WEIGHTS = 1.0 / np.arange(1, FAVOURITES + 1)
FAV_CUM = np.cumsum(FAV_WEIGHTS / FAV_WEIGHTS.sum())
NO_BIRTHDAY = np.iinfo(np.int64).min
CITIES = ("Metropolis", "Gotham", "Springfield", "Riverton", "Lakeside", "Hill Valley")


@dataclass(frozen=True)
class Population:
    """One chunk of customers: ids, observable attributes, latent traits and response truth."""

    ids: np.ndarray  # external customer ids, int64
    lifecycle: np.ndarray
    reg_day: np.ndarray
    reg_second: np.ndarray
    birth_day: np.ndarray  # days since 1970-01-01, or NO_BIRTHDAY
    consent: np.ndarray  # (n, 3): email, push, sms
    city: np.ndarray
    price_sens: np.ndarray
    tier_pref: np.ndarray  # (n, 3)
    taste_cat: np.ndarray  # (n, K) category per taste slot
    taste_w: np.ndarray  # (n, K) slot weights, rows sum to 1
    fav_items: np.ndarray  # (n, F) favourite items (repeat purchases)
    repeat_prob: np.ndarray
    returner: np.ndarray
    online_share: np.ndarray
    home_store: np.ndarray
    one_time_day: np.ndarray  # day of the single order of one-time buyers, else -1
    redeem_prob: np.ndarray
    response: ResponseParams

    @property
    def n(self) -> int:
        """Customers in the chunk."""
        return int(self.ids.shape[0])

    @property
    def tier_cum(self) -> np.ndarray:
        """Cumulative tier preference, for sampling."""
        return np.cumsum(self.tier_pref, axis=1)

    @property
    def taste_cum(self) -> np.ndarray:
        """Cumulative taste weights, for sampling."""
        return np.cumsum(self.taste_w, axis=1)


def build_population(
    first_id: int,
    n: int,
    days: int,
    start_epoch_day: int,
    window: int,
    catalog: Catalog,
    stores: int,
    rng: np.random.Generator,
) -> Population:
    """Draw ``n`` customers with ids ``first_id..first_id+n-1``."""
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    lifecycle = rng.choice(len(LIFECYCLES), n, p=_LIFECYCLE_SHARE)
    is_new = rng.random(n) < _NEW_SHARE[lifecycle]
    # sleepers and lost customers who registered during the history did so early in it
    fades = np.isin(lifecycle, [LIFECYCLES.index("sleeping"), LIFECYCLES.index("lost")])
    latest = np.where(fades, max(1, days // 4), max(1, days - 7))
    reg_day = np.where(
        is_new,
        (rng.random(n) * latest).astype(np.int64),
        -rng.integers(1, 3 * 365, n),
    )
    reg_second = rng.integers(0, 86_400, n)
    active_start = np.maximum(reg_day, 0) + np.where(is_new, rng.integers(0, 5, n), 0)
    active_start = np.minimum(active_start, days - 1)
    gap = _GAP_DAYS[lifecycle] * np.exp(rng.normal(0.0, 0.45, n))
    rate = np.where(gap > 0, 1.0 / np.maximum(gap, 1.0), 0.0)
    active_end = np.full(n, STILL_ACTIVE, dtype=np.int64)
    sleeping = lifecycle == LIFECYCLES.index("sleeping")
    sleep_gap = np.minimum(rng.uniform(90, 180, n), days * rng.uniform(0.3, 0.5, n))
    active_end = np.where(sleeping, days - sleep_gap.astype(np.int64), active_end)
    lost = lifecycle == LIFECYCLES.index("lost")
    lost_end = active_start + ((days - active_start) * rng.uniform(0.1, 0.45, n)).astype(np.int64)
    active_end = np.where(lost, lost_end, active_end)
    active_end = np.maximum(active_end, active_start + 1)
    one_time = lifecycle == LIFECYCLES.index("one_time")
    one_time_day = np.where(
        one_time,
        active_start + (rng.random(n) * np.minimum(60, days - active_start)).astype(np.int64),
        -1,
    )
    floor_rate = np.exp(rng.normal(np.log(0.0015), 0.6, n))

    has_birthday = rng.random(n) < 0.9
    age_days = rng.integers(18 * 365, 78 * 365, n)
    birth_day = np.where(has_birthday, start_epoch_day - age_days, NO_BIRTHDAY)
    consent = np.column_stack(
        [rng.random(n) < 0.72, rng.random(n) < 0.45, rng.random(n) < 0.28]
    )  # email, push, sms
    city = rng.choice(len(CITIES), n, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.1])

    price_sens = rng.beta(2.0, 2.0, n)
    theta = 3.0 * (0.5 - price_sens) + rng.normal(0.0, 0.4, n)
    tier_logit = theta[:, None] * np.array([-1.0, 0.0, 1.0]) + np.log([1.0, 1.0, 0.6])
    tier_pref = np.exp(tier_logit)
    tier_pref /= tier_pref.sum(axis=1, keepdims=True)

    k = min(TASTE_SLOTS, catalog.n_categories)
    taste_cat = _taste_categories(catalog.category_popularity, n, k, rng)
    taste_w = rng.gamma(1.0, 1.0, (n, k)) + 1e-9
    taste_w /= taste_w.sum(axis=1, keepdims=True)

    fav_cat = _draw_categories(catalog, taste_cat, np.cumsum(taste_w, axis=1), rng, (n, FAVOURITES))
    fav_tier = _draw_tiers(np.cumsum(tier_pref, axis=1), rng, (n, FAVOURITES))
    fav_items = catalog.all_sampler.sample(
        fav_cat * N_TIERS + fav_tier, rng.random((n, FAVOURITES))
    )
    repeat_prob = np.clip(rng.beta(1.2, 8.0, n), 0.01, 0.9)
    returner = np.exp(rng.normal(-0.2, 0.7, n))
    online_share = rng.beta(2.0, 3.0, n)
    home_store = rng.integers(1, stores + 1, n)
    redeem_prob = np.clip(0.25 + 0.6 * price_sens + rng.normal(0, 0.1, n), 0.02, 0.95)
    basket_lambda = np.exp(rng.normal(np.log(1.3), 0.5, n))

    group_value_margin = catalog.group_value(catalog.item_price * catalog.item_margin)
    group_value_amount = catalog.group_value(catalog.item_price)
    tier_up = tier_pref * np.array(UP_SELL_TIER_SHIFT)
    tier_up /= tier_up.sum(axis=1, keepdims=True)
    line_margin = _line_expectation(catalog, taste_cat, taste_w, tier_pref, group_value_margin)
    line_margin_up = _line_expectation(catalog, taste_cat, taste_w, tier_up, group_value_margin)
    line_amount = _line_expectation(catalog, taste_cat, taste_w, tier_pref, group_value_amount)
    line_amount_up = _line_expectation(catalog, taste_cat, taste_w, tier_up, group_value_amount)
    check = (1.0 + basket_lambda) * line_amount

    birth_doy = _birth_doy(birth_day)
    response = _response_params(
        rng,
        days=days,
        window=window,
        lifecycle=lifecycle,
        rate=rate,
        floor_rate=floor_rate,
        active_start=active_start,
        active_end=active_end,
        reg_day=reg_day,
        birth_doy=birth_doy,
        consent=consent,
        price_sens=price_sens,
        check=check,
        taste_cat=taste_cat,
        taste_w=taste_w,
        catalog=catalog,
        basket_lambda=basket_lambda,
        line_margin=line_margin,
        line_margin_up=line_margin_up,
        line_amount=line_amount,
        line_amount_up=line_amount_up,
    )
    return Population(
        ids=ids,
        lifecycle=lifecycle,
        reg_day=reg_day,
        reg_second=reg_second,
        birth_day=birth_day,
        consent=consent,
        city=city,
        price_sens=price_sens,
        tier_pref=tier_pref,
        taste_cat=taste_cat,
        taste_w=taste_w,
        fav_items=fav_items,
        repeat_prob=repeat_prob,
        returner=returner,
        online_share=online_share,
        home_store=home_store,
        one_time_day=one_time_day,
        redeem_prob=redeem_prob,
        response=response,
    )


def _taste_categories(
    popularity: np.ndarray, n: int, k: int, rng: np.random.Generator
) -> np.ndarray:
    """k distinct categories per customer, drawn one by one in proportion to popularity.

    Successive draws without replacement (the Plackett-Luce / Gumbel top-k law): draw 4k
    categories with replacement and keep the first k distinct; rows with fewer than k distinct
    (and small catalogues) fall back to Gumbel top-k over every category.
    """
    n_cat = popularity.shape[0]
    m = 4 * k
    if n_cat <= m:
        keys = np.log(popularity)[None, :] + rng.gumbel(size=(n, n_cat))
        return np.asarray(np.argsort(-keys, axis=1)[:, :k])
    cum = np.cumsum(popularity)
    cand = np.minimum(np.searchsorted(cum, rng.random((n, m)), side="right"), n_cat - 1)
    order = np.argsort(cand, axis=1, kind="stable")
    ranked = np.take_along_axis(cand, order, axis=1)
    first_sorted = np.ones((n, m), dtype=bool)
    first_sorted[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    is_first = np.zeros((n, m), dtype=bool)
    np.put_along_axis(is_first, order, first_sorted, axis=1)
    rank = np.cumsum(is_first, axis=1)
    out = np.empty((n, k), dtype=np.int64)
    full = rank[:, -1] >= k
    keep = is_first & (rank <= k) & full[:, None]
    out[full] = cand[keep].reshape(-1, k)
    short = np.flatnonzero(~full)
    if short.size:
        keys = np.log(popularity)[None, :] + rng.gumbel(size=(short.size, n_cat))
        out[short] = np.argsort(-keys, axis=1)[:, :k]
    return out


def _draw_categories(
    catalog: Catalog,
    taste_cat: np.ndarray,
    taste_cum: np.ndarray,
    rng: np.random.Generator,
    shape: tuple[int, int],
) -> np.ndarray:
    """Categories for a (customers, m) block: taste slot, or overall popularity (EXPLORE)."""
    u = rng.random(shape)
    slot = (u[:, :, None] >= taste_cum[:, None, :]).sum(axis=2)
    slot = np.minimum(slot, taste_cat.shape[1] - 1)
    cat = np.take_along_axis(taste_cat, slot, axis=1)
    explore = rng.random(shape) < EXPLORE
    pop_cum = np.cumsum(catalog.category_popularity)
    wild = np.minimum(np.searchsorted(pop_cum, rng.random(shape)), catalog.n_categories - 1)
    return np.where(explore, wild, cat)


def _draw_tiers(
    tier_cum: np.ndarray, rng: np.random.Generator, shape: tuple[int, int]
) -> np.ndarray:
    u = rng.random(shape)
    tier = (u[:, :, None] >= tier_cum[:, None, :]).sum(axis=2)
    return np.asarray(np.minimum(tier, N_TIERS - 1))


def _line_expectation(
    catalog: Catalog,
    taste_cat: np.ndarray,
    taste_w: np.ndarray,
    tier_pref: np.ndarray,
    group_value: np.ndarray,
) -> np.ndarray:
    """Exact mean of a per-item value over one conversion line (category, tier, item draws)."""
    per_slot = (group_value[taste_cat] * tier_pref[:, None, :]).sum(axis=2)  # (n, K)
    from_taste = (per_slot * taste_w).sum(axis=1)
    from_popularity = tier_pref @ (catalog.category_popularity @ group_value)
    return np.asarray((1.0 - EXPLORE) * from_taste + EXPLORE * from_popularity)


def _birth_doy(birth_day: np.ndarray) -> np.ndarray:
    known = birth_day != NO_BIRTHDAY
    doy = day_of_year(date(1970, 1, 1), np.where(known, birth_day, 0))
    return np.where(known, doy, -1)


def _response_params(
    rng: np.random.Generator,
    *,
    days: int,
    window: int,
    lifecycle: np.ndarray,
    rate: np.ndarray,
    floor_rate: np.ndarray,
    active_start: np.ndarray,
    active_end: np.ndarray,
    reg_day: np.ndarray,
    birth_doy: np.ndarray,
    consent: np.ndarray,
    price_sens: np.ndarray,
    check: np.ndarray,
    taste_cat: np.ndarray,
    taste_w: np.ndarray,
    catalog: Catalog,
    basket_lambda: np.ndarray,
    line_margin: np.ndarray,
    line_margin_up: np.ndarray,
    line_amount: np.ndarray,
    line_amount_up: np.ndarray,
) -> ResponseParams:
    """Groups and uplift curves; tied to observable traits, with noise."""
    n = rate.shape[0]
    probe = ResponseParams(
        group=np.zeros(n, dtype=np.int64),
        rate=rate,
        floor_rate=floor_rate,
        active_start=active_start,
        active_end=active_end,
        reg_day=reg_day,
        birth_doy=birth_doy,
        u_max=np.zeros(n),
        b_half=np.ones(n),
        message=np.zeros(n),
        dnd_drop=np.zeros(n),
        basket_lambda=basket_lambda,
        line_margin=line_margin,
        line_margin_up=line_margin_up,
        line_amount=line_amount,
        line_amount_up=line_amount_up,
        fit=np.zeros((n, len(OFFER_TYPES))),
    )
    idx = np.arange(n)
    p0_end = baseline_probability(probe, idx, np.full(n, days), window)
    p0_mid = baseline_probability(probe, idx, np.full(n, days // 2), window)
    p0_typ = np.maximum(p0_end, p0_mid)

    # do-not-disturb: more likely among frequent buyers who gave few consents
    few_consents = consent.sum(axis=1) <= 1
    dnd_p = 0.04 + 0.08 * few_consents + 0.06 * (rate > 1 / 20)
    dnd = rng.random(n) < dnd_p
    sure = ~dnd & (p0_typ > 0.3) & (rng.random(n) < 0.7)
    lost_cause = ~dnd & ~sure & (p0_typ < 0.04) & (rng.random(n) < 0.55)
    group = np.select(
        [dnd, sure, lost_cause],
        [GROUPS.index("do_not_disturb"), GROUPS.index("sure_thing"), GROUPS.index("lost_cause")],
        GROUPS.index("persuadable"),
    )

    # persuadable curves: price-sensitive customers respond more and to smaller bonuses;
    # big spenders need big bonuses (b_half scales with the typical check)
    room = 1.0 - p0_typ
    u_max = rng.beta(2.5, 3.0, n) * (0.5 + 1.0 * price_sens) * room
    b_half = (
        60.0
        * (np.maximum(check, 50.0) / 2000.0) ** 0.55
        * np.exp(rng.normal(0.0, 0.8, n))
        / (0.35 + price_sens)
    )
    b_half = np.clip(b_half, 10.0, 3000.0)
    message = rng.uniform(0.0, 0.04, n) * room
    u_max = np.where(group == 0, np.minimum(u_max, 0.85), 0.0)
    message = np.where(group == 0, message, 0.0)
    # sure things and lost causes barely move
    u_max = np.where((group == 1) | (group == 2), rng.uniform(0.0, 0.01, n), u_max)
    dnd_drop = np.where(group == 3, rng.uniform(0.25, 0.75, n), 0.0)

    fit = np.zeros((n, len(OFFER_TYPES)))
    anchors = np.zeros(catalog.n_categories)
    anchors[np.unique(catalog.comp_anchor)] = 1.0
    replenishable = (catalog.cycle_days > 0).astype(float)
    cross_affinity = (anchors[taste_cat] * taste_w).sum(axis=1)
    repl_affinity = (replenishable[taste_cat] * taste_w).sum(axis=1)
    loyalty = np.clip(rate * 15.0, 0.0, 1.0)
    base = {
        OfferType.CASHBACK: 0.55 + 0.45 * price_sens,
        OfferType.SPEND_THRESHOLD: 0.3 + 0.5 * price_sens + 0.2 * (check > 3000),
        OfferType.REACTIVATION: np.full(n, 0.9),
        OfferType.BIRTHDAY: np.full(n, 0.9),
        OfferType.REPLENISHMENT: 0.2 + 0.8 * np.sqrt(repl_affinity),
        OfferType.CROSS_SELL: 0.25 + 0.75 * np.sqrt(cross_affinity),
        OfferType.UP_SELL: 0.15 + 0.75 * (1.0 - price_sens),
        OfferType.EXPIRING_POINTS: 0.35 + 0.5 * price_sens,
        OfferType.PRIVILEGE: 0.3 + 0.6 * loyalty,
        OfferType.WELCOME: np.full(n, 0.9),
    }
    for offer_type, value in base.items():
        noise = np.exp(rng.normal(0.0, 0.3, n))
        fit[:, TYPE_CODE[offer_type]] = np.clip(value * noise, 0.0, 1.0)
    return ResponseParams(
        group=group,
        rate=rate,
        floor_rate=floor_rate,
        active_start=active_start,
        active_end=active_end,
        reg_day=reg_day,
        birth_doy=birth_doy,
        u_max=u_max,
        b_half=b_half,
        message=message,
        dnd_drop=dnd_drop,
        basket_lambda=basket_lambda,
        line_margin=line_margin,
        line_margin_up=line_margin_up,
        line_amount=line_amount,
        line_amount_up=line_amount_up,
        fit=fit,
    )


def truth_frame(pop: Population, model: ResponseModel | None = None) -> pl.DataFrame:
    """Ground truth per customer: lifecycle, latent traits and every response parameter.

    ``model`` is the response family's truth (default: the population's ``curve`` one).
    """
    model = pop.response if model is None else model
    columns: dict[str, np.ndarray | pl.Series] = dict(model.frame_columns())
    columns["group"] = names_of(GROUPS, model.group)
    df = pl.DataFrame(
        {
            Col.CUSTOMER: pop.ids,
            "lifecycle": names_of(LIFECYCLES, pop.lifecycle),
            "one_time_day": pop.one_time_day,
            "price_sens": pop.price_sens,
            "tier_basic": pop.tier_pref[:, 0],
            "tier_better": pop.tier_pref[:, 1],
            "tier_premium": pop.tier_pref[:, 2],
            "repeat_prob": pop.repeat_prob,
            "returner": pop.returner,
            "online_share": pop.online_share,
            "redeem_prob": pop.redeem_prob,
            **columns,
        }
    )
    return df.with_columns(pl.col(Col.CUSTOMER).cast(pl.String))


def tastes_frame(pop: Population, catalog: Catalog) -> pl.DataFrame:
    """Ground truth taste slots: (customer, category, weight), heaviest first."""
    k = pop.taste_cat.shape[1]
    order = np.argsort(-pop.taste_w, axis=1, kind="stable")
    cats = np.take_along_axis(pop.taste_cat, order, axis=1)
    weights = np.take_along_axis(pop.taste_w, order, axis=1)
    return pl.DataFrame(
        {
            Col.CUSTOMER: np.repeat(pop.ids, k),
            Col.CATEGORY: names_of(catalog.category_names, cats.ravel()),
            "weight": weights.ravel(),
        }
    ).with_columns(pl.col(Col.CUSTOMER).cast(pl.String))


def names_of(names: tuple[str, ...], codes: np.ndarray) -> pl.Series:
    """A string series naming each code (fast: no Python strings per row)."""
    return pl.Series(list(names), dtype=pl.String).gather(np.asarray(codes, dtype=np.int64))
