"""Tiny synthetic purchase histories whose right answers are known by construction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from features.columns import Col
from training.recs.base import Interactions, build_interactions

START = datetime(2024, 1, 1)

# (customer, order, day, item, quantity)
Line = tuple[str, str, float, str, float]


def make_tx(lines: Iterable[Line], prices: dict[str, float] | None = None) -> pl.LazyFrame:
    """Contract transactions from ``(customer, order, day, item, quantity)`` tuples."""
    rows = list(lines)
    prices = prices or {}
    return pl.DataFrame(
        {
            Col.CUSTOMER: [r[0] for r in rows],
            Col.ORDER: [r[1] for r in rows],
            Col.TS: [START + timedelta(days=r[2]) for r in rows],
            Col.ITEM: [r[3] for r in rows],
            Col.QUANTITY: [float(r[4]) for r in rows],
            Col.AMOUNT: [float(r[4]) * prices.get(r[3], 1.0) for r in rows],
        },
        schema_overrides={Col.TS: pl.Datetime("us")},
    ).lazy()


def make_items(spec: dict[str, tuple[str, float]], inactive: Iterable[str] = ()) -> pl.LazyFrame:
    """Catalogue from ``{item: (category, price)}``."""
    off = set(inactive)
    return pl.DataFrame(
        {
            Col.ITEM: list(spec),
            Col.CATEGORY: [c for c, _ in spec.values()],
            Col.PRICE: [p for _, p in spec.values()],
            Col.IS_ACTIVE: [i not in off for i in spec],
        }
    ).lazy()


def checkerboard_lines() -> list[Line]:
    """Customers c00-c09 buy items a0-a4, c10-c19 buy b0-b4; c00 never buys a2.

    Every customer buys each of its group's items in three orders spread over 90 days, so the
    b items are as popular as the a items and a2 is the least popular item of all: only
    collaborative filtering brings a2 back first for c00.
    """
    lines: list[Line] = []
    for c in range(20):
        group = "a" if c < 10 else "b"
        for rep in range(3):
            for j in range(5):
                if c == 0 and j == 2:
                    continue
                day = 30.0 * rep + c + j
                lines.append((f"c{c:02d}", f"o{c}-{rep}-{j}", day, f"{group}{j}", 1.0))
    return lines


CHECKER_ITEMS = {f"{g}{j}": ("gifts", 10.0) for g in "ab" for j in range(5)}


@pytest.fixture(scope="session")
def checkerboard() -> Interactions:
    """The `checkerboard_lines` history."""
    return build_interactions(make_tx(checkerboard_lines()), make_items(CHECKER_ITEMS), until=None)


def world_lines(seed: int = 7) -> tuple[list[Line], dict[str, tuple[str, float]]]:
    """A random little shop: 40 customers, 24 items in 4 categories, 150 days, some returns.

    Each customer has a favourite category and a staple item bought about every 10 days.
    """
    rng = np.random.default_rng(seed)
    cats = ["food", "drink", "home", "toys"]
    items = {f"i{j:02d}": (cats[j % 4], float(2 + j)) for j in range(24)}
    names = list(items)
    lines: list[Line] = []
    for c in range(40):
        fav = c % 4
        staple = names[(c * 5) % 24]
        fav_items = [n for n in names if items[n][0] == cats[fav]]
        for o in range(int(rng.integers(4, 12))):
            day = float(rng.uniform(0, 150))
            basket = {staple} if rng.random() < 0.7 else set()
            basket |= set(rng.choice(fav_items, size=int(rng.integers(1, 3))).tolist())
            if rng.random() < 0.3:
                basket.add(str(rng.choice(names)))
            for it in sorted(basket):
                lines.append((f"c{c:02d}", f"o{c}-{o}", day, it, float(rng.integers(1, 4))))
        if c % 9 == 0:  # a return of a staple bought earlier
            lines.append((f"c{c:02d}", f"r{c}", 149.0, staple, -1.0))
    return lines, items


@pytest.fixture(scope="session")
def world() -> Interactions:
    """The `world_lines` history."""
    lines, items = world_lines()
    return build_interactions(make_tx(lines), make_items(items), until=None)
