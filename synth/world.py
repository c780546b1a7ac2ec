"""`generate`: write a synthetic retail world (contract tables + ground truth) to a folder.

Customers are generated in chunks (``WorldConfig.chunk_customers``) so memory stays bounded;
each chunk writes one part of every per-customer table. Randomness comes from one
`numpy.random.SeedSequence` per (stage, chunk), so the same config gives byte-identical files.
The ``archetypes`` response family draws its parameters from a stage of its own, so both
families share the customers and organic purchases of a seed.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from features.columns import Col
from features.dataset import atomic_path, write_parquet_atomic
from features.progress import stage
from synth import archetypes, response
from synth.campaigns import (
    CHANNELS,
    THRESHOLD_SHARE,
    Campaign,
    OfferDraws,
    campaigns_frame,
    draw_offers,
    plan_campaigns,
    plan_trials,
)
from synth.catalog import (
    Catalog,
    build_catalog,
    categories_frame,
    complements_frame,
    items_truth_frame,
)
from synth.config import WorldConfig
from synth.loyalty import Ledger, Lots, build_ledger
from synth.population import (
    CITIES,
    NO_BIRTHDAY,
    Population,
    build_population,
    names_of,
    tastes_frame,
    truth_frame,
)
from synth.shopping import (
    KIND_CONVERSION,
    KIND_RETURN,
    Lines,
    Orders,
    concat_lines,
    concat_orders,
    draw_returns,
    organic_shopping,
    registered_us,
)
from synth.timeline import US_PER_DAY, Timeline

TABLES = ("transactions", "customers", "offers", "bonus_ledger")
# offers column of the archetypes family: P(this arm | the campaign reached the customer)
ASSIGNMENT_PROB = "assignment_prob"
TRUTH_PARTS = ("customers", "tastes", "offers")
PURCHASE_CHANNELS = ("store", "online")
_STAGE_CATALOG, _STAGE_CAMPAIGNS, _STAGE_CHUNK, _STAGE_RESPONSE = 1, 2, 3, 4


@dataclass(frozen=True)
class WorldSummary:
    """What `generate` wrote: rows per table, response-group counts and elapsed seconds."""

    out: Path
    rows: dict[str, int]
    groups: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [f"synthetic world in {self.out} ({self.seconds:.1f} s)"]
        lines += [f"  {name}: {n:,} rows" for name, n in self.rows.items()]
        if self.groups:
            shown = ", ".join(f"{g} {n:,}" for g, n in self.groups.items())
            lines.append(f"  response groups: {shown}")
        return "\n".join(lines)


def _rng(config: WorldConfig, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=key))


def generate(config: WorldConfig, out: Path) -> WorldSummary:
    """Generate the world described by ``config`` into the folder ``out``."""
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_chunks = -(-config.customers // config.chunk_customers)
    chunked = n_chunks > 1
    _clear_previous(out)
    timeline = Timeline.build(config.start, config.days)

    with stage("synth catalog") as s:
        catalog = build_catalog(config.items, config.days, _rng(config, _STAGE_CATALOG))
        write_parquet_atomic(catalog.items_frame(), out / "items.parquet")
        truth = out / "ground_truth"
        write_parquet_atomic(categories_frame(catalog), truth / "categories.parquet")
        write_parquet_atomic(complements_frame(catalog), truth / "complements.parquet")
        write_parquet_atomic(items_truth_frame(catalog), truth / "items.parquet")
        s.rows = catalog.n_items
    plan = plan_trials if config.response_family == archetypes.FAMILY else plan_campaigns
    campaigns = plan(config, _rng(config, _STAGE_CAMPAIGNS))
    write_parquet_atomic(campaigns_frame(campaigns), truth / "campaigns.parquet")

    rows = {"items": catalog.n_items, **{t: 0 for t in TABLES}}
    groups = dict.fromkeys(response.GROUPS, 0)
    next_order, next_offer = 1, 1
    for k in range(n_chunks):
        first = k * config.chunk_customers
        n = min(config.chunk_customers, config.customers - first)
        with stage(f"synth chunk {k + 1}/{n_chunks} ({n:,} customers)") as s:
            tables, truth_tables, used_orders, used_offers = _chunk(
                config, catalog, timeline, campaigns, first + 1, n, next_order, next_offer,
                _rng(config, _STAGE_CHUNK, k), _rng(config, _STAGE_RESPONSE, k),
            )  # fmt: skip
            next_order += used_orders
            next_offer += used_offers
            for name, df in tables.items():
                write_parquet_atomic(df, _target(out, name, k, chunked))
                rows[name] += df.height
            for name, df in truth_tables.items():
                write_parquet_atomic(df, _target(truth, name, k, chunked))
            counts = truth_tables["customers"]["group"].value_counts()
            for g, c in counts.iter_rows():
                groups[g] += int(c)
            s.rows = tables["transactions"].height
    _write_meta(config, campaigns, groups, truth / "response.json")
    return WorldSummary(out=out, rows=rows, groups=groups, seconds=time.perf_counter() - started)


def _target(root: Path, name: str, chunk: int, chunked: bool) -> Path:
    if chunked:
        return root / name / f"part-{chunk:05d}.parquet"
    return root / f"{name}.parquet"


def _clear_previous(out: Path) -> None:
    """Remove the files an earlier world left in ``out`` (only names this module writes)."""
    for root, names in ((out, TABLES), (out / "ground_truth", TRUTH_PARTS)):
        for name in names:
            (root / f"{name}.parquet").unlink(missing_ok=True)
            if (root / name).is_dir():
                for part in (root / name).glob("part-*.parquet"):
                    part.unlink()


def _chunk(
    config: WorldConfig,
    catalog: Catalog,
    timeline: Timeline,
    campaigns: list[Campaign],
    first_id: int,
    n: int,
    next_order: int,
    next_offer: int,
    rng: np.random.Generator,
    response_rng: np.random.Generator,
) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame], int, int]:
    """All tables of one chunk of customers; returns (tables, truth, orders used, offers used).

    ``response_rng`` draws the archetypes family's parameters (unused by ``curve``).
    """
    start_epoch_day = (config.start - date(1970, 1, 1)).days
    pop = build_population(
        first_id,
        n,
        config.days,
        start_epoch_day,
        config.offer_window_days,
        catalog,
        config.stores,
        rng,
    )
    model: response.ResponseModel = pop.response
    if config.response_family == archetypes.FAMILY:
        model = archetypes.draw_archetypes(pop, catalog, config.days, response_rng)
    organic, organic_lines = organic_shopping(pop, catalog, timeline, rng)
    offers = draw_offers(config, campaigns, pop, catalog, timeline, rng, model)
    conv_lines = offers.lines
    orders = concat_orders([organic, offers.orders])
    lines = concat_lines(
        [
            organic_lines,
            Lines(order=conv_lines.order + organic.n, item=conv_lines.item, qty=conv_lines.qty),
        ]
    )
    order_local, item, qty = _aggregate(lines)

    # returns: a separate order per source order, after the sale, inside the history
    returnable = orders.kind != KIND_CONVERSION
    sources, ret_ts, ret_pos, ret_lines = draw_returns(
        pop, catalog, timeline, orders.ts, orders.cust, returnable,
        order_local, item, qty, config.return_scale, rng,
    )  # fmt: skip
    n_sale_orders = orders.n
    orders = concat_orders(
        [
            orders,
            Orders(
                cust=orders.cust[sources],
                ts=ret_ts,
                kind=np.full(sources.shape[0], KIND_RETURN, dtype=np.int64),
            ),
        ]
    )
    order_local = np.concatenate([order_local, n_sale_orders + ret_pos])
    item = np.concatenate([item, item[ret_lines]])
    qty = np.concatenate([qty, -qty[ret_lines]])
    source_of = np.concatenate([np.arange(n_sale_orders), sources])  # channel/store source

    # final order ids: by customer, then time
    rank_order = np.lexsort((np.arange(orders.n), orders.ts, orders.cust))
    order_id = np.empty(orders.n, dtype=np.int64)
    order_id[rank_order] = next_order + np.arange(orders.n)

    amount = catalog.item_price[item] * qty
    earned = np.where(qty > 0, np.floor(amount * config.accrual_rate), 0.0)
    order_amount = np.bincount(order_local, weights=amount, minlength=orders.n)
    order_points = np.bincount(order_local, weights=earned, minlength=orders.n)

    # offers: revenue of the conversion order, bonus paid on conversion
    conv_local = organic.n + np.arange(offers.orders.n)
    revenue = np.full(offers.cust.shape[0], np.nan)
    revenue[offers.converted] = order_amount[conv_local]
    conv_order_id = np.full(offers.cust.shape[0], -1, dtype=np.int64)
    conv_order_id[offers.converted] = order_id[conv_local]
    threshold_ok = np.isnan(offers.threshold) | (np.nan_to_num(revenue) >= offers.threshold)
    paid = offers.converted & (offers.bonus > 0) & threshold_ok

    # ledger: lots from purchases and paid offer bonuses; redeemed at later purchases
    purchase = np.flatnonzero((orders.kind != KIND_RETURN) & (order_points > 0))
    lots = Lots(
        cust=np.concatenate([orders.cust[purchase], offers.cust[paid]]),
        ts=np.concatenate([orders.ts[purchase], offers.converted_ts[paid]]),
        points=np.concatenate([order_points[purchase], offers.bonus[paid]]),
        expires=np.concatenate(
            [
                orders.ts[purchase] + config.points_expiry_days * US_PER_DAY,
                offers.converted_ts[paid] + config.offer_points_expiry_days * US_PER_DAY,
            ]
        ),
    )
    sales_sorted = rank_order[orders.kind[rank_order] != KIND_RETURN]
    ledger = build_ledger(
        lots,
        orders.cust[sales_sorted],
        orders.ts[sales_sorted],
        order_amount[sales_sorted],
        pop.redeem_prob,
        pop.n,
        timeline.end_us,
        timeline.start_us,
        rng,
    )
    spent_local = np.zeros(orders.n)
    spent_local[sales_sorted] = ledger.spent_by_order

    online = rng.random(orders.n) < pop.online_share[orders.cust]
    store = np.where(
        rng.random(orders.n) < 0.85,
        pop.home_store[orders.cust],
        rng.integers(1, config.stores + 1, orders.n),
    )
    online = online[source_of]
    store = store[source_of]

    tables = {
        "transactions": _transactions(
            pop,
            catalog,
            orders,
            order_id,
            order_local,
            item,
            qty,
            amount,
            earned,
            spent_local,
            online,
            store,
        ),
        "customers": _customers(pop, timeline, ledger.balance),
        "offers": _offers(pop, offers, next_offer, revenue),
        "bonus_ledger": _ledger(pop, ledger),
    }
    offer_truth = _offer_truth(pop, offers, next_offer, conv_order_id)
    truth = {
        "customers": truth_frame(pop, model),
        "tastes": tastes_frame(pop, catalog),
        "offers": offer_truth,
    }
    return tables, truth, orders.n, offers.cust.shape[0]


def _aggregate(lines: Lines) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum the quantity of repeated (order, item) lines; sorted by order then item."""
    key = np.lexsort((lines.item, lines.order))
    order, item, qty = lines.order[key], lines.item[key], lines.qty[key]
    if order.shape[0] == 0:
        return order, item, qty
    new = np.ones(order.shape[0], dtype=bool)
    new[1:] = (order[1:] != order[:-1]) | (item[1:] != item[:-1])
    starts = np.flatnonzero(new)
    return order[starts], item[starts], np.add.reduceat(qty, starts)


def _ids(values: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.Int64).cast(pl.String)


def _us(values: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.Int64).cast(pl.Datetime("us"))


def _transactions(
    pop: Population,
    catalog: Catalog,
    orders: Orders,
    order_id: np.ndarray,
    order_local: np.ndarray,
    item: np.ndarray,
    qty: np.ndarray,
    amount: np.ndarray,
    earned: np.ndarray,
    spent_local: np.ndarray,
    online: np.ndarray,
    store: np.ndarray,
) -> pl.DataFrame:
    oid = order_id[order_local]
    key = np.lexsort((catalog.item_ids[item], oid))
    oid, order_local = oid[key], order_local[key]
    first_line = np.ones(oid.shape[0], dtype=bool)
    first_line[1:] = oid[1:] != oid[:-1]
    spent = np.where(first_line, spent_local[order_local], 0.0)
    is_online = online[order_local]
    return pl.DataFrame(
        {
            Col.CUSTOMER: _ids(pop.ids[orders.cust[order_local]]),
            Col.ORDER: _ids(oid),
            Col.TS: _us(orders.ts[order_local]),
            Col.ITEM: _ids(catalog.item_ids[item[key]]),
            Col.QUANTITY: qty[key].astype(float),
            Col.AMOUNT: amount[key],
            Col.STORE: _ids(store[order_local]).set(pl.Series(is_online), None)
            if is_online.any()
            else _ids(store[order_local]),
            Col.CHANNEL: names_of(PURCHASE_CHANNELS, is_online.astype(np.int64)),
            Col.BONUS_EARNED: earned[key],
            Col.BONUS_SPENT: spent,
        }
    )


def _customers(pop: Population, timeline: Timeline, balance: np.ndarray) -> pl.DataFrame:
    known = pop.birth_day != NO_BIRTHDAY
    birth = pl.Series(np.where(known, pop.birth_day, 0), dtype=pl.Int32).cast(pl.Date)
    birth = birth.set(pl.Series(~known), None)
    return pl.DataFrame(
        {
            Col.CUSTOMER: _ids(pop.ids),
            Col.REGISTERED_AT: _us(registered_us(pop, timeline)),
            Col.BIRTH_DATE: birth,
            Col.BONUS_BALANCE: balance,
            Col.CONSENT_EMAIL: pop.consent[:, 0],
            Col.CONSENT_PUSH: pop.consent[:, 1],
            Col.CONSENT_SMS: pop.consent[:, 2],
            "city": names_of(CITIES, pop.city),
        }
    )


def _offer_order(offers: OfferDraws) -> np.ndarray:
    return np.lexsort((offers.cust, offers.campaign))


def _offers(
    pop: Population, offers: OfferDraws, next_offer: int, revenue: np.ndarray
) -> pl.DataFrame:
    key = _offer_order(offers)
    n = key.shape[0]
    converted = offers.converted[key]
    converted_at = _us(offers.converted_ts[key]).set(pl.Series(~converted), None)
    threshold = offers.threshold[key]
    frame = pl.DataFrame(
        {
            Col.OFFER: _ids(next_offer + np.arange(n)),
            Col.CUSTOMER: _ids(pop.ids[offers.cust[key]]),
            Col.SENT_AT: _us(offers.sent_ts[key]),
            Col.OFFER_TYPE: names_of(response.OFFER_TYPES, offers.type_code[key]),
            Col.BONUS: offers.bonus[key],
            Col.CHANNEL: names_of(CHANNELS, offers.channel[key]),
            Col.CONVERTED: converted,
            Col.CONVERTED_AT: converted_at,
            Col.REVENUE: pl.Series(revenue[key]).fill_nan(None),
            Col.CAMPAIGN: _ids(offers.campaign[key]),
            Col.CONTROL: offers.control[key],
            Col.THRESHOLD: pl.Series(threshold).fill_nan(None),
        }
    )
    if offers.assignment_prob is None:
        return frame
    return frame.with_columns(pl.Series(ASSIGNMENT_PROB, offers.assignment_prob[key]))


def _offer_truth(
    pop: Population, offers: OfferDraws, next_offer: int, conv_order_id: np.ndarray
) -> pl.DataFrame:
    """Per offer: the probability its outcome was drawn from, and the conversion order."""
    key = _offer_order(offers)
    n = key.shape[0]
    order = conv_order_id[key]
    return pl.DataFrame(
        {
            Col.OFFER: _ids(next_offer + np.arange(n)),
            Col.CUSTOMER: _ids(pop.ids[offers.cust[key]]),
            "p_convert": offers.p_true[key],
            Col.ORDER: _ids(order).set(pl.Series(order < 0), None),
        }
    )


def _ledger(pop: Population, ledger: Ledger) -> pl.DataFrame:
    key = np.lexsort((ledger.points, ledger.ts, ledger.cust))
    expires = ledger.expires[key]
    return pl.DataFrame(
        {
            Col.CUSTOMER: _ids(pop.ids[ledger.cust[key]]),
            Col.TS: _us(ledger.ts[key]),
            Col.POINTS: ledger.points[key],
            Col.EXPIRES_AT: _us(expires).set(pl.Series(expires < 0), None),
        }
    )


def _write_meta(
    config: WorldConfig, campaigns: list[Campaign], groups: dict[str, int], target: Path
) -> None:
    doc = response.__doc__
    constants: dict[str, object] = {
        "KAPPA": response.KAPPA,
        "UPLIFT_CAP": response.UPLIFT_CAP,
        "EXPLORE": response.EXPLORE,
        "UP_SELL_TIER_SHIFT": list(response.UP_SELL_TIER_SHIFT),
        "BIRTHDAY_LEAD_DAYS": response.BIRTHDAY_LEAD_DAYS,
        "WELCOME_DAYS": response.WELCOME_DAYS,
        "BASKET_MULT": response.BASKET_MULT,
        "THRESHOLD_SHARE": THRESHOLD_SHARE,
    }
    if config.response_family == archetypes.FAMILY:
        doc = archetypes.__doc__
        constants = {
            **archetypes.meta_constants(),
            "EXPLORE": response.EXPLORE,
            "UP_SELL_TIER_SHIFT": list(response.UP_SELL_TIER_SHIFT),
            "THRESHOLD_SHARE": THRESHOLD_SHARE,
        }
    meta = {
        "start": config.start.isoformat(),
        "days": config.days,
        "offer_window_days": config.offer_window_days,
        "response_family": config.response_family,
        "formula": [line for line in (doc or "").splitlines()],
        "constants": constants,
        "offer_types": list(response.OFFER_TYPES),
        "groups": groups,
        "campaigns": len(campaigns),
        "bonus_paid": (
            "on conversion, into the bonus ledger, expiring after offer_points_expiry_days; "
            "a spend_threshold bonus only when the conversion order reaches the threshold"
        ),
        "files": {
            "customers": "per-customer response parameters, lifecycle and latent traits",
            "tastes": "customer category affinities (taste slots)",
            "offers": "per offer of the history: the probability its outcome was drawn from",
            "items": "item tier, popularity weight, discontinued day",
            "categories": "category base price, popularity, replenishment cycle, return rate",
            "complements": "cross-sell truth: anchor category -> complement, strength",
            "campaigns": "the campaign plan",
        },
        "config": {
            k: (v.isoformat() if isinstance(v, date) else v)
            for k, v in dataclasses.asdict(config).items()
        },
    }
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
