"""The catalogue: categories, the complement graph, items in price tiers, and item samplers.

Categories come from a readable list (laptop, laptop_bag, coffee_machine, coffee_beans, ...)
whose complement pairs carry the cross-sell truth; a large catalogue adds generic categories
with random complement pairs. Every category holds items in three price tiers (basic < better <
premium, with non-overlapping price bands) so an up-sell has a right answer. A few items are
discontinued part-way through the history (``is_active`` false).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from features.columns import Col

TIERS = ("basic", "better", "premium")
N_TIERS = len(TIERS)
# price band of each tier as a multiple of the category's base price; bands do not overlap
TIER_PRICE_BANDS = ((0.55, 0.85), (0.95, 1.35), (1.6, 2.6))
TIER_MARGIN_BONUS = (-0.03, 0.0, 0.06)
ITEMS_PER_NAMED_CATEGORY = 8
ITEMS_PER_GENERIC_CATEGORY = 40

# name, group, base price, margin, replenishment cycle in days (0: not replenished), return rate
_NAMED: tuple[tuple[str, str, float, float, int, float], ...] = (
    ("laptop", "electronics", 45000, 0.10, 0, 0.05),
    ("laptop_bag", "electronics", 2500, 0.45, 0, 0.04),
    ("computer_mouse", "electronics", 1200, 0.40, 0, 0.03),
    ("coffee_machine", "kitchen", 18000, 0.18, 0, 0.05),
    ("coffee_beans", "grocery", 900, 0.30, 21, 0.005),
    ("descaler", "household", 400, 0.45, 90, 0.005),
    ("jeans", "apparel", 3500, 0.50, 0, 0.12),
    ("belt", "apparel", 1200, 0.55, 0, 0.06),
    ("smartphone", "electronics", 25000, 0.09, 0, 0.04),
    ("phone_case", "electronics", 800, 0.60, 0, 0.04),
    ("screen_protector", "electronics", 500, 0.65, 0, 0.02),
    ("diapers", "baby", 1500, 0.20, 14, 0.01),
    ("baby_wipes", "baby", 250, 0.30, 14, 0.005),
    ("dog_food", "pet", 2200, 0.22, 30, 0.01),
    ("dog_toys", "pet", 500, 0.50, 0, 0.03),
    ("shampoo", "beauty", 450, 0.35, 45, 0.01),
    ("conditioner", "beauty", 450, 0.35, 45, 0.01),
    ("razor", "beauty", 1500, 0.30, 0, 0.02),
    ("razor_blades", "beauty", 900, 0.45, 40, 0.005),
    ("printer", "electronics", 9000, 0.08, 0, 0.04),
    ("printer_ink", "electronics", 2000, 0.55, 60, 0.01),
    ("tv", "electronics", 35000, 0.09, 0, 0.04),
    ("hdmi_cable", "electronics", 400, 0.60, 0, 0.02),
    ("shirt", "apparel", 2000, 0.50, 0, 0.10),
    ("tie", "apparel", 900, 0.55, 0, 0.05),
    ("shoes", "apparel", 5000, 0.45, 0, 0.12),
    ("shoe_care", "apparel", 450, 0.55, 0, 0.01),
    ("socks", "apparel", 300, 0.55, 60, 0.02),
    ("cat_food", "pet", 1800, 0.22, 25, 0.01),
    ("cat_litter", "pet", 700, 0.25, 20, 0.005),
    ("bicycle", "sports", 30000, 0.15, 0, 0.03),
    ("bike_helmet", "sports", 3000, 0.40, 0, 0.04),
    ("bike_lock", "sports", 1500, 0.40, 0, 0.02),
    ("kettle", "kitchen", 2500, 0.25, 0, 0.04),
    ("tea", "grocery", 350, 0.35, 30, 0.005),
    ("vacuum_cleaner", "household", 15000, 0.14, 0, 0.04),
    ("vacuum_bags", "household", 600, 0.45, 60, 0.005),
    ("tablet", "electronics", 20000, 0.10, 0, 0.04),
    ("tablet_cover", "electronics", 1200, 0.55, 0, 0.03),
    ("headphones", "electronics", 4000, 0.30, 0, 0.05),
    ("charger", "electronics", 1200, 0.45, 0, 0.02),
    ("running_shoes", "sports", 7000, 0.40, 0, 0.10),
    ("protein_powder", "sports", 2500, 0.35, 30, 0.01),
    ("toothpaste", "beauty", 200, 0.35, 30, 0.005),
    ("toothbrush", "beauty", 300, 0.45, 90, 0.01),
    ("grill", "household", 12000, 0.20, 0, 0.04),
    ("charcoal", "household", 500, 0.30, 0, 0.005),
    ("yoga_mat", "sports", 2000, 0.45, 0, 0.04),
    ("baby_food", "baby", 120, 0.25, 10, 0.005),
    ("monitor", "electronics", 15000, 0.11, 0, 0.04),
    ("keyboard", "electronics", 2500, 0.35, 0, 0.03),
)

# anchor -> complement, strength (chance an anchor line brings the complement along)
_NAMED_COMPLEMENTS: tuple[tuple[str, str, float], ...] = (
    ("laptop", "laptop_bag", 0.45),
    ("laptop", "computer_mouse", 0.40),
    ("laptop", "keyboard", 0.15),
    ("laptop", "monitor", 0.10),
    ("coffee_machine", "coffee_beans", 0.60),
    ("coffee_machine", "descaler", 0.25),
    ("jeans", "belt", 0.30),
    ("smartphone", "phone_case", 0.55),
    ("smartphone", "screen_protector", 0.40),
    ("smartphone", "charger", 0.20),
    ("smartphone", "headphones", 0.15),
    ("diapers", "baby_wipes", 0.45),
    ("dog_food", "dog_toys", 0.20),
    ("shampoo", "conditioner", 0.35),
    ("razor", "razor_blades", 0.50),
    ("printer", "printer_ink", 0.55),
    ("tv", "hdmi_cable", 0.40),
    ("shirt", "tie", 0.20),
    ("shoes", "shoe_care", 0.30),
    ("shoes", "socks", 0.25),
    ("cat_food", "cat_litter", 0.40),
    ("bicycle", "bike_helmet", 0.45),
    ("bicycle", "bike_lock", 0.40),
    ("kettle", "tea", 0.30),
    ("vacuum_cleaner", "vacuum_bags", 0.45),
    ("tablet", "tablet_cover", 0.50),
    ("running_shoes", "socks", 0.30),
    ("toothpaste", "toothbrush", 0.15),
    ("grill", "charcoal", 0.50),
)

_BRANDS = (
    "Acme", "Northwind", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Tyrell",
    "Hooli", "Vandelay", "Soylent", "Cyberdyne",
)  # fmt: skip


@dataclass(frozen=True)
class Catalog:
    """Categories and items as numpy arrays (internal index = position), plus samplers.

    Items are ordered by (category, tier); ``group = category * 3 + tier`` indexes the
    contiguous block ``group_lo[g]:group_hi[g]`` of items in that group.
    """

    category_names: tuple[str, ...]
    category_groups: tuple[str, ...]
    category_price: np.ndarray  # base price per category
    category_popularity: np.ndarray  # sums to 1
    cycle_days: np.ndarray  # replenishment cycle, 0 when not replenishable
    return_rate: np.ndarray
    comp_anchor: np.ndarray  # complement edges (category indexes)
    comp_target: np.ndarray
    comp_strength: np.ndarray
    edge_lo: np.ndarray  # CSR over anchor category: edges edge_lo[c]:edge_hi[c]
    edge_hi: np.ndarray
    item_ids: np.ndarray  # external id per item (int64)
    item_category: np.ndarray
    item_tier: np.ndarray
    item_price: np.ndarray
    item_margin: np.ndarray
    item_popularity: np.ndarray  # within its (category, tier) group
    item_brand: np.ndarray
    discontinued_day: np.ndarray  # day from which the item is no longer sold (days if active)
    group_lo: np.ndarray
    group_hi: np.ndarray
    all_sampler: GroupSampler
    active_sampler: GroupSampler

    @property
    def n_categories(self) -> int:
        """Number of categories."""
        return len(self.category_names)

    @property
    def n_items(self) -> int:
        """Number of items."""
        return int(self.item_ids.shape[0])

    def group_value(self, values: np.ndarray) -> np.ndarray:
        """Popularity-weighted mean of a per-item value over active items, per group (C x 3)."""
        weights = self.active_sampler.weights
        sums = np.bincount(self._item_group, weights=weights * values, minlength=self._n_groups)
        mass = np.bincount(self._item_group, weights=weights, minlength=self._n_groups)
        return (sums / mass).reshape(self.n_categories, N_TIERS)

    @property
    def _n_groups(self) -> int:
        return self.n_categories * N_TIERS

    @property
    def _item_group(self) -> np.ndarray:
        return np.asarray(self.item_category * N_TIERS + self.item_tier)

    def items_frame(self) -> pl.DataFrame:
        """The contract items table (plus the ``tier`` extra column), sorted by item id."""
        names = np.asarray(self.category_names, dtype=object)
        tiers = np.asarray(TIERS, dtype=object)
        groups = np.asarray(self.category_groups, dtype=object)
        cat = names[self.item_category]
        tier = tiers[self.item_tier]
        df = pl.DataFrame(
            {
                Col.ITEM: self.item_ids,
                Col.NAME: [
                    f"{b} {t} {c.replace('_', ' ')} #{i}"
                    for b, t, c, i in zip(
                        self.item_brand, tier, cat, self.item_ids.tolist(), strict=True
                    )
                ],
                Col.CATEGORY: cat.tolist(),
                Col.SUBCATEGORY: groups[self.item_category].tolist(),
                Col.BRAND: self.item_brand.tolist(),
                Col.PRICE: self.item_price,
                Col.MARGIN: self.item_margin,
                Col.IS_ACTIVE: self.discontinued_day >= np.iinfo(np.int32).max,
                "tier": tier.tolist(),
            }
        )
        return df.sort(Col.ITEM).with_columns(pl.col(Col.ITEM).cast(pl.String))


@dataclass(frozen=True)
class GroupSampler:
    """Draws an item from a (category, tier) group in proportion to item weights."""

    weights: np.ndarray
    cum: np.ndarray  # inclusive cumulative weights
    base: np.ndarray  # cumulative weight before each group
    mass: np.ndarray  # total weight of each group
    last: np.ndarray  # last item with positive weight in each group

    @classmethod
    def build(cls, weights: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> GroupSampler:
        """A sampler over items ordered by group, with group blocks ``lo:hi``."""
        cum = np.cumsum(weights)
        base = np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0.0)
        mass = cum[hi - 1] - base
        if np.any(mass <= 0):
            raise ValueError("every (category, tier) group needs an item with positive weight")
        last = np.empty(lo.shape[0], dtype=np.int64)
        for g in range(lo.shape[0]):
            positive = np.flatnonzero(weights[lo[g] : hi[g]] > 0)
            last[g] = lo[g] + positive[-1]
        return cls(weights=weights, cum=cum, base=base, mass=mass, last=last)

    def sample(self, group: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Item index for each group given uniforms ``u`` in [0, 1)."""
        target = self.base[group] + u * self.mass[group]
        idx = np.searchsorted(self.cum, target, side="right")
        return np.asarray(np.minimum(idx, self.last[group]))


def build_catalog(n_items: int, days: int, rng: np.random.Generator) -> Catalog:
    """A catalogue of exactly ``n_items`` items over named (and, if large, generic) categories."""
    n_named = min(len(_NAMED), max(3, n_items // ITEMS_PER_NAMED_CATEGORY))
    surplus = n_items - ITEMS_PER_NAMED_CATEGORY * len(_NAMED)
    n_generic = max(0, surplus // ITEMS_PER_GENERIC_CATEGORY)
    named = _NAMED[:n_named]
    names = [n[0] for n in named] + [f"general_{k:04d}" for k in range(n_generic)]
    groups = [n[1] for n in named] + [f"general_group_{k % 25:02d}" for k in range(n_generic)]
    n_cat = len(names)
    price = np.concatenate(
        [
            np.array([n[2] for n in named], dtype=float),
            np.maximum(np.exp(rng.normal(7.0, 1.1, n_generic)), 50.0),
        ]
    )
    margin = np.concatenate(
        [np.array([n[3] for n in named], dtype=float), rng.uniform(0.12, 0.55, n_generic)]
    )
    cycle = np.concatenate(
        [
            np.array([n[4] for n in named], dtype=np.int64),
            np.where(rng.random(n_generic) < 0.2, rng.integers(10, 90, n_generic), 0),
        ]
    )
    returns = np.concatenate(
        [np.array([n[5] for n in named], dtype=float), rng.uniform(0.005, 0.08, n_generic)]
    )
    popularity = np.exp(rng.normal(0.0, 0.8, n_cat))
    popularity[cycle > 0] *= 1.6  # everyday goods are bought by many
    popularity /= popularity.sum()

    anchor, target, strength = _complement_edges(names, n_named, n_generic, rng)
    order = np.argsort(anchor, kind="stable")
    anchor, target, strength = anchor[order], target[order], strength[order]
    edge_lo = np.searchsorted(anchor, np.arange(n_cat), side="left")
    edge_hi = np.searchsorted(anchor, np.arange(n_cat), side="right")

    # items: 3 per category (one per tier), the rest spread by popularity
    per_cat = np.full(n_cat, N_TIERS, dtype=np.int64)
    extra = n_items - per_cat.sum()
    if extra < 0:
        raise ValueError(f"items: {n_items} is too few for {n_cat} categories")
    per_cat += rng.multinomial(extra, np.sqrt(popularity) / np.sqrt(popularity).sum())
    item_cat = np.repeat(np.arange(n_cat), per_cat)
    item_tier = np.empty(n_items, dtype=np.int64)
    start = 0
    for c in range(n_cat):
        k = int(per_cat[c])
        tiers = np.concatenate(
            [np.arange(N_TIERS), rng.choice(N_TIERS, k - N_TIERS, p=[0.45, 0.35, 0.20])]
        )
        item_tier[start : start + k] = np.sort(tiers)
        start += k
    lows = np.array([b[0] for b in TIER_PRICE_BANDS])[item_tier]
    highs = np.array([b[1] for b in TIER_PRICE_BANDS])[item_tier]
    item_price = np.round(price[item_cat] * rng.uniform(lows, highs), 0)
    item_margin = np.clip(
        margin[item_cat] + np.array(TIER_MARGIN_BONUS)[item_tier] + rng.normal(0, 0.02, n_items),
        0.02,
        0.9,
    ).round(3)
    item_pop = np.exp(rng.normal(0.0, 0.7, n_items)) * np.array([1.6, 1.0, 0.5])[item_tier]

    group = item_cat * N_TIERS + item_tier
    n_groups = n_cat * N_TIERS
    group_lo = np.searchsorted(group, np.arange(n_groups), side="left")
    group_hi = np.searchsorted(group, np.arange(n_groups), side="right")

    # discontinued items: ~3%, never the only or the most popular item of their group
    discontinued = np.full(n_items, np.iinfo(np.int32).max, dtype=np.int64)
    candidates = rng.random(n_items) < 0.03
    group_size = (group_hi - group_lo)[group]
    group_top = np.zeros(n_items, dtype=bool)
    for g in range(n_groups):
        if group_hi[g] > group_lo[g]:
            group_top[group_lo[g] + int(np.argmax(item_pop[group_lo[g] : group_hi[g]]))] = True
    chosen = candidates & (group_size >= 2) & ~group_top
    discontinued[chosen] = rng.integers(
        days // 4, max(days // 4 + 1, (3 * days) // 4), chosen.sum()
    )

    active_weights = np.where(chosen, 0.0, item_pop)
    item_ids = rng.permutation(n_items).astype(np.int64) + 1
    brands = np.asarray(_BRANDS, dtype=object)[rng.integers(0, len(_BRANDS), n_items)]
    return Catalog(
        category_names=tuple(names),
        category_groups=tuple(groups),
        category_price=price,
        category_popularity=popularity,
        cycle_days=cycle,
        return_rate=returns,
        comp_anchor=anchor,
        comp_target=target,
        comp_strength=strength,
        edge_lo=edge_lo,
        edge_hi=edge_hi,
        item_ids=item_ids,
        item_category=item_cat,
        item_tier=item_tier,
        item_price=item_price,
        item_margin=item_margin,
        item_popularity=item_pop,
        item_brand=brands,
        discontinued_day=discontinued,
        group_lo=group_lo,
        group_hi=group_hi,
        all_sampler=GroupSampler.build(item_pop, group_lo, group_hi),
        active_sampler=GroupSampler.build(active_weights, group_lo, group_hi),
    )


def _complement_edges(
    names: list[str], n_named: int, n_generic: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = {name: i for i, name in enumerate(names)}
    anchor: list[int] = []
    target: list[int] = []
    strength: list[float] = []
    for a, t, s in _NAMED_COMPLEMENTS:
        if a in index and t in index:
            anchor.append(index[a])
            target.append(index[t])
            strength.append(s)
    if n_generic >= 2:
        generic = np.arange(n_named, n_named + n_generic)
        anchors = generic[rng.random(n_generic) < 0.35]
        for a in anchors.tolist():
            for t in rng.choice(generic[generic != a], size=int(rng.integers(1, 3)), replace=False):
                anchor.append(a)
                target.append(int(t))
                strength.append(float(rng.uniform(0.15, 0.5)))
    return (
        np.array(anchor, dtype=np.int64),
        np.array(target, dtype=np.int64),
        np.array(strength, dtype=float),
    )


def categories_frame(catalog: Catalog) -> pl.DataFrame:
    """Ground truth per category: group, base price, popularity, cycle and return rate."""
    return pl.DataFrame(
        {
            Col.CATEGORY: list(catalog.category_names),
            "group": list(catalog.category_groups),
            "base_price": catalog.category_price,
            "popularity": catalog.category_popularity,
            "cycle_days": catalog.cycle_days,
            "return_rate": catalog.return_rate,
        }
    )


def complements_frame(catalog: Catalog) -> pl.DataFrame:
    """Ground truth complement graph: anchor category -> complement category, strength."""
    names = np.asarray(catalog.category_names, dtype=object)
    return pl.DataFrame(
        {
            "anchor": names[catalog.comp_anchor].tolist(),
            "complement": names[catalog.comp_target].tolist(),
            "strength": catalog.comp_strength,
        },
        schema={"anchor": pl.String, "complement": pl.String, "strength": pl.Float64},
    )


def items_truth_frame(catalog: Catalog) -> pl.DataFrame:
    """Ground truth per item: tier, popularity weight and the day it was discontinued."""
    gone = catalog.discontinued_day < np.iinfo(np.int32).max
    discontinued = pl.Series(np.where(gone, catalog.discontinued_day, 0), dtype=pl.Int64)
    return (
        pl.DataFrame(
            {
                Col.ITEM: catalog.item_ids,
                Col.CATEGORY: pl.Series(list(catalog.category_names)).gather(catalog.item_category),
                "tier": catalog.item_tier,
                "popularity": catalog.item_popularity,
                "discontinued_day": discontinued.set(pl.Series(~gone), None),
            }
        )
        .sort(Col.ITEM)
        .with_columns(pl.col(Col.ITEM).cast(pl.String))
    )
