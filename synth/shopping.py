"""Organic shopping of one chunk of customers: orders, basket lines, complements, returns.

Orders and lines are built as numpy arrays keyed by a chunk-local order index; `world`
assigns the final order ids. Order kinds: organic, replenishment, complement follow-up,
campaign conversion and return.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.catalog import N_TIERS, Catalog
from synth.population import FAV_CUM, FAVOURITES, Population
from synth.response import EXPLORE
from synth.timeline import US_PER_DAY, US_PER_SECOND, Timeline

KIND_ORGANIC = 0
KIND_REPLENISH = 1
KIND_FOLLOW_UP = 2
KIND_CONVERSION = 3
KIND_RETURN = 4
SAME_BASKET_COMPLEMENT = 0.7  # otherwise the complement follows within two weeks
COMPLEMENT_SAME_TIER = 0.6
REPLENISH_MIN_WEIGHT = 0.12
REPLENISH_SHARE = 0.35  # of eligible (customer, category) pairs that buy on a rhythm
REPLENISH_SKIP = 0.15


@dataclass
class Orders:
    """Orders of a chunk: customer (chunk index), timestamp (us since epoch) and kind."""

    cust: np.ndarray
    ts: np.ndarray
    kind: np.ndarray

    @property
    def n(self) -> int:
        """Number of orders."""
        return int(self.cust.shape[0])


@dataclass
class Lines:
    """Basket lines: chunk-local order index, item index and quantity (unaggregated)."""

    order: np.ndarray
    item: np.ndarray
    qty: np.ndarray


def concat_orders(parts: list[Orders]) -> Orders:
    """One Orders from several."""
    return Orders(
        cust=np.concatenate([p.cust for p in parts]),
        ts=np.concatenate([p.ts for p in parts]),
        kind=np.concatenate([p.kind for p in parts]),
    )


def concat_lines(parts: list[Lines]) -> Lines:
    """One Lines from several."""
    return Lines(
        order=np.concatenate([p.order for p in parts]),
        item=np.concatenate([p.item for p in parts]),
        qty=np.concatenate([p.qty for p in parts]),
    )


def draw_items(
    pop: Population,
    catalog: Catalog,
    cust: np.ndarray,
    tier_cum: np.ndarray,
    rng: np.random.Generator,
    *,
    day: np.ndarray | None,
) -> np.ndarray:
    """A fresh item per line: category ~ taste (or popularity), tier ~ preference, item ~ pop.

    With ``day`` None only active items are drawn (conversion orders); otherwise any item still
    sold on that day.
    """
    n = int(cust.shape[0])
    taste_cum = np.cumsum(pop.taste_w[cust], axis=1)
    slot = (rng.random(n)[:, None] >= taste_cum).sum(axis=1)
    slot = np.minimum(slot, pop.taste_cat.shape[1] - 1)
    cat = pop.taste_cat[cust, slot]
    explore = rng.random(n) < EXPLORE
    pop_cum = np.cumsum(catalog.category_popularity)
    wild = np.minimum(
        np.searchsorted(pop_cum, rng.random(n), side="right"), catalog.n_categories - 1
    )
    cat = np.where(explore, wild, cat)
    tier = np.minimum((rng.random(n)[:, None] >= tier_cum[cust]).sum(axis=1), N_TIERS - 1)
    group = cat * N_TIERS + tier
    u = rng.random(n)
    if day is None:
        return catalog.active_sampler.sample(group, u)
    item = catalog.all_sampler.sample(group, u)
    return still_sold(catalog, item, day, u)


def still_sold(catalog: Catalog, item: np.ndarray, day: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Replace items discontinued before ``day`` by an active item of the same group."""
    gone = catalog.discontinued_day[item] <= day
    if gone.any():
        group = catalog.item_category[item[gone]] * N_TIERS + catalog.item_tier[item[gone]]
        item = item.copy()
        item[gone] = catalog.active_sampler.sample(group, u[gone])
    return item


def quantities(catalog: Catalog, item: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Units per line: mostly 1; more for replenished and cheap goods."""
    n = int(item.shape[0])
    cat = catalog.item_category[item]
    qty = 1 + rng.binomial(2, 0.25, n) * (catalog.cycle_days[cat] > 0)
    qty = qty + rng.poisson(0.4, n) * (catalog.item_price[item] < 500)
    return np.asarray(qty, dtype=np.int64)


def organic_shopping(
    pop: Population, catalog: Catalog, timeline: Timeline, rng: np.random.Generator
) -> tuple[Orders, Lines]:
    """Every order a chunk places on its own: organic baskets, replenishment, follow-ups."""
    resp = pop.response
    days = timeline.days
    # organic orders, Poisson in demand-weighted active time
    expected = resp.rate * timeline.mass(resp.active_start, resp.active_end)
    counts = rng.poisson(expected)
    cust = np.repeat(np.arange(pop.n), counts)
    day = timeline.sample_days(
        resp.active_start[cust], resp.active_end[cust], rng.random(cust.size)
    )
    one_time = np.flatnonzero(pop.one_time_day >= 0)
    cust = np.concatenate([cust, one_time])
    day = np.concatenate([day, np.minimum(pop.one_time_day[one_time], days - 1)])
    n_org = cust.shape[0]

    # basket lines: a favourite (repeat purchase) or a fresh draw from the taste
    n_lines = 1 + rng.poisson(resp.basket_lambda[cust])
    line_order = np.repeat(np.arange(n_org), n_lines)
    line_cust = cust[line_order]
    line_day = day[line_order]
    fav = rng.random(line_order.size) < pop.repeat_prob[line_cust]
    item = np.empty(line_order.size, dtype=np.int64)
    fresh = np.flatnonzero(~fav)
    item[fresh] = draw_items(pop, catalog, line_cust[fresh], pop.tier_cum, rng, day=line_day[fresh])
    favs = np.flatnonzero(fav)
    slot = np.minimum(np.searchsorted(FAV_CUM, rng.random(favs.size), side="right"), FAVOURITES - 1)
    item[favs] = still_sold(
        catalog, pop.fav_items[line_cust[favs], slot], line_day[favs], rng.random(favs.size)
    )

    # complements: each anchor line may bring its complements, same basket or soon after
    comp_order, comp_item, follow_cust, follow_day = _complements(
        pop, catalog, item, line_order, line_cust, line_day, days, rng
    )
    n_follow = follow_cust.shape[0]
    follow_order = n_org + np.arange(n_follow)
    lines_order = np.concatenate([line_order, comp_order[0], follow_order[comp_order[1]]])
    lines_item = np.concatenate([item, comp_item[0], comp_item[1]])

    # replenishment: cyclic single-item orders for replenished categories in the taste
    rep_cust, rep_day, rep_item = _replenishment(pop, catalog, days, rng)
    rep_order = n_org + n_follow + np.arange(rep_cust.shape[0])

    all_cust = np.concatenate([cust, follow_cust, rep_cust])
    all_day = np.concatenate([day, follow_day, rep_day])
    kind = np.concatenate(
        [
            np.full(n_org, KIND_ORGANIC),
            np.full(n_follow, KIND_FOLLOW_UP),
            np.full(rep_cust.shape[0], KIND_REPLENISH),
        ]
    )
    ts = timeline.start_us + all_day * US_PER_DAY
    ts = ts + timeline.seconds_of_day(rng, all_cust.shape[0]) * US_PER_SECOND
    registered = registered_us(pop, timeline)[all_cust]
    ts = np.maximum(ts, registered + 60 * US_PER_SECOND)
    orders = Orders(cust=all_cust, ts=ts, kind=kind.astype(np.int64))
    line_items = np.concatenate([lines_item, rep_item])
    lines = Lines(
        order=np.concatenate([lines_order, rep_order]),
        item=line_items,
        qty=quantities(catalog, line_items, rng),
    )
    return orders, lines


def registered_us(pop: Population, timeline: Timeline) -> np.ndarray:
    """Registration timestamp of each customer (us since epoch)."""
    return np.asarray(timeline.start_us + pop.reg_day * US_PER_DAY + pop.reg_second * US_PER_SECOND)


def _complements(
    pop: Population,
    catalog: Catalog,
    item: np.ndarray,
    line_order: np.ndarray,
    line_cust: np.ndarray,
    line_day: np.ndarray,
    days: int,
    rng: np.random.Generator,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray]:
    cat = catalog.item_category[item]
    deg = catalog.edge_hi[cat] - catalog.edge_lo[cat]
    src = np.repeat(np.arange(item.shape[0]), deg)
    within = np.arange(src.shape[0]) - np.repeat(np.cumsum(deg) - deg, deg)
    edge = catalog.edge_lo[cat[src]] + within
    take = rng.random(src.shape[0]) < catalog.comp_strength[edge]
    src, edge = src[take], edge[take]
    target = catalog.comp_target[edge]
    own_tier = catalog.item_tier[item[src]]
    pref = np.minimum(
        (rng.random(src.shape[0])[:, None] >= pop.tier_cum[line_cust[src]]).sum(axis=1),
        N_TIERS - 1,
    )
    tier = np.where(rng.random(src.shape[0]) < COMPLEMENT_SAME_TIER, own_tier, pref)
    comp = catalog.active_sampler.sample(target * N_TIERS + tier, rng.random(src.shape[0]))
    same = rng.random(src.shape[0]) < SAME_BASKET_COMPLEMENT
    later_day = line_day[src] + rng.integers(1, 15, src.shape[0])
    follow = ~same & (later_day < days)
    same_idx = np.flatnonzero(same)
    follow_idx = np.flatnonzero(follow)
    return (
        (line_order[src[same_idx]], np.arange(follow_idx.shape[0])),
        (comp[same_idx], comp[follow_idx]),
        line_cust[src[follow_idx]],
        later_day[follow_idx],
    )


def _replenishment(
    pop: Population, catalog: Catalog, days: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    resp = pop.response
    cycle_cat = catalog.cycle_days[pop.taste_cat]  # (n, K)
    ok = (cycle_cat > 0) & (pop.taste_w >= REPLENISH_MIN_WEIGHT) & (resp.rate[:, None] > 0)
    ok &= rng.random(ok.shape) < REPLENISH_SHARE
    cust, slot = np.nonzero(ok)
    cat = pop.taste_cat[cust, slot]
    cycle = catalog.cycle_days[cat] * np.exp(rng.normal(0.15, 0.25, cust.shape[0]))
    first = resp.active_start[cust] + rng.random(cust.shape[0]) * cycle
    end = np.minimum(resp.active_end[cust], days)
    count = np.where(first < end, np.floor((end - first) / cycle).astype(np.int64) + 1, 0)
    tier = np.minimum(
        (rng.random(cust.shape[0])[:, None] >= pop.tier_cum[cust]).sum(axis=1), N_TIERS - 1
    )
    stream_item = catalog.active_sampler.sample(cat * N_TIERS + tier, rng.random(cust.shape[0]))
    stream = np.repeat(np.arange(cust.shape[0]), count)
    j = np.arange(stream.shape[0]) - np.repeat(np.cumsum(count) - count, count)
    day = first[stream] + j * cycle[stream] + rng.normal(0.0, 0.08, stream.shape[0]) * cycle[stream]
    day = np.clip(np.round(day).astype(np.int64), resp.active_start[cust[stream]], end[stream] - 1)
    keep = (rng.random(stream.shape[0]) >= REPLENISH_SKIP) & (day < days)
    return cust[stream[keep]], day[keep], stream_item[stream[keep]]


def draw_returns(
    pop: Population,
    catalog: Catalog,
    timeline: Timeline,
    order_ts: np.ndarray,
    order_cust: np.ndarray,
    returnable: np.ndarray,
    line_order: np.ndarray,
    line_item: np.ndarray,
    line_qty: np.ndarray,
    return_scale: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return lines for aggregated sale lines: one return order per source order.

    Returns (source order of each return order, return order ts, return line's return-order
    position, return line index into the sale lines).
    """
    cat = catalog.item_category[line_item]
    p = np.minimum(
        0.6, catalog.return_rate[cat] * pop.returner[order_cust[line_order]] * return_scale
    )
    back = returnable[line_order] & (rng.random(line_order.shape[0]) < p)
    delay_days = rng.integers(1, 31, order_ts.shape[0])
    delay = delay_days * US_PER_DAY + rng.integers(0, 86_400, order_ts.shape[0]) * US_PER_SECOND
    ret_ts = order_ts + delay
    back &= ret_ts[line_order] < timeline.end_us
    ret_lines = np.flatnonzero(back)
    sources, pos = np.unique(line_order[ret_lines], return_inverse=True)
    return sources, ret_ts[sources], pos, ret_lines
