"""The request-time fast paths of cross-sell and up-sell answer exactly as dense scoring does.

`GetOffers` asks cross-sell for a cart and up-sell for each anchor. Both models now score only
the items that can win (the cart's associated items; the anchor's price-step candidates) instead
of all items; these tests pin that the answers are the dense answers, on a random shop with
associations, CF blending, exclusions and ties.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.training.recs.conftest import make_items, make_tx
from training.recs.als import ALSConfig
from training.recs.base import Interactions, build_interactions, top_k
from training.recs.crosssell import CrossSell, CrossSellConfig
from training.recs.upsell import UpSell, UpSellConfig

CF = ALSConfig(factors=8, iterations=3, regularization=0.1)


@pytest.fixture(scope="module")
def shop() -> Interactions:
    """120 items in 12 categories, companion pairs, prices with repeats (ties), 3 inactive."""
    rng = np.random.default_rng(3)
    n_items = 120
    items = {
        f"i{j:03d}": (f"cat{j % 12}", float(rng.choice([5.0, 6.0, 8.0, 10.0, 13.0, 20.0])))
        for j in range(n_items)
    }
    items["i119"] = ("cat11", float("nan"))  # no price: never an up-sell, never up-sold
    companion = rng.integers(0, n_items, n_items)
    lines = []
    for o in range(1500):
        c = f"c{int(rng.integers(0, 200)):03d}"
        first = int(min(rng.zipf(1.3), n_items) - 1)
        basket = {first, int(companion[first])}
        basket |= {int(x) for x in rng.integers(0, n_items, int(rng.integers(0, 4)))}
        lines += [(c, f"o{o}", float(o % 90), f"i{j:03d}", 1) for j in basket]
    return build_interactions(
        make_tx(lines), make_items(items, inactive=["i003", "i015", "i027"]), until=None
    )


@pytest.fixture(scope="module")
def cross_sell(shop: Interactions) -> CrossSell:
    model = CrossSell(CrossSellConfig(min_support=2, neighbours=8, cf=CF))
    model.fit(shop)
    return model


@pytest.fixture(scope="module")
def up_sell(shop: Interactions) -> UpSell:
    model = UpSell(UpSellConfig(cf=CF))
    model.fit(shop)
    return model


def _dense_cross_sell(
    model: CrossSell, cart: np.ndarray, customer: int, k: int, banned: np.ndarray | None
) -> np.ndarray:
    import scipy.sparse as sp

    items = np.unique(cart)
    anchors = sp.csr_matrix(
        (np.ones(items.size, dtype=np.float32), (np.zeros(items.size, dtype=np.int64), items)),
        shape=(1, model.n_items),
    )
    scores = model._score(anchors, np.array([customer]))
    out: np.ndarray = top_k(scores, k, banned=None if banned is None else banned[None, :])[0]
    return out


def test_cross_sell_for_a_cart_matches_dense_scoring(shop: Interactions, cross_sell: CrossSell):
    rng = np.random.default_rng(0)
    fast_paths = 0
    for trial in range(300):
        cart = rng.integers(0, shop.n_items, int(rng.integers(1, 4)))
        customer = int(rng.integers(-1, shop.n_customers))
        k = int(rng.choice([1, 3, 10, 40]))  # 40: fallback items fill the list
        banned = rng.random(shop.n_items) < 0.1 if trial % 2 else None
        got = cross_sell.recommend_for_cart(cart, k, customer_idx=customer, exclude=banned)
        want = _dense_cross_sell(cross_sell, cart, customer, k, banned)
        np.testing.assert_array_equal(got, want, err_msg=f"cart {cart}, customer {customer}")
        fast_paths += int(len(cross_sell.assoc[np.unique(cart)].indices) >= 2 * k)
    assert fast_paths > 50  # the sparse path was exercised, not only the dense fallback


def test_cross_sell_without_a_cart_anchors_on_recent_purchases_as_dense_scoring(
    shop: Interactions, cross_sell: CrossSell
):
    customers = [-1, *range(shop.n_customers)]  # -1: unknown, popular items
    for customer in customers:
        for k in (5, 40):
            got = cross_sell.recommend_for_cart(
                np.zeros(0, dtype=np.int64), k, customer_idx=customer
            )
            want = cross_sell.recommend(np.array([customer]), k)[0]
            np.testing.assert_array_equal(got, want, err_msg=f"customer {customer}, k {k}")


def test_cross_sell_without_a_cart_never_returns_excluded_items(
    shop: Interactions, cross_sell: CrossSell
):
    banned = np.zeros(shop.n_items, dtype=bool)
    banned[::2] = True
    for customer in (-1, 0, 5):
        got = cross_sell.recommend_for_cart(
            np.zeros(0, dtype=np.int64), 10, customer_idx=customer, exclude=banned
        )
        assert (got >= 0).all() and not banned[got].any()


def _dense_candidates(model: UpSell, anchor: int) -> np.ndarray:
    p = model.item_price[anchor]
    if not np.isfinite(p) or p <= 0:
        return np.zeros(0, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        ok = (
            (model.item_category == model.item_category[anchor])
            & model.item_active
            & (model.item_price >= model.config.min_ratio * p)
            & (model.item_price <= model.config.max_ratio * p)
        )
    ok[anchor] = False
    return np.flatnonzero(ok)


def test_up_sell_candidates_and_ranking_match_dense_scoring(shop: Interactions, up_sell: UpSell):
    rng = np.random.default_rng(1)
    with_candidates = 0
    for anchor in range(shop.n_items):
        want_candidates = _dense_candidates(up_sell, anchor)
        np.testing.assert_array_equal(up_sell.candidates(anchor), want_candidates)
        for customer in (-1, int(rng.integers(0, shop.n_customers))):
            banned = rng.random(shop.n_items) < 0.2
            for exclude in (None, banned):
                got = up_sell.recommend_for_item(anchor, 4, customer_idx=customer, exclude=exclude)
                dense = up_sell._rank(anchor, customer)[None, :]
                want = top_k(dense, 4, banned=None if exclude is None else exclude[None, :])[0]
                np.testing.assert_array_equal(got, want)
        with_candidates += int(up_sell.candidates(anchor).size > 1)
    assert with_candidates > 20


def _numpy_up_sell_scores(model: UpSell, anchor: int, customer: int) -> np.ndarray:
    """The up-sell score formula in plain numpy, independent of the compiled kernel."""
    cfg = model.config
    cand = model.candidates(anchor)
    s = cfg.pop_weight * model.category_pop[cand].astype(np.float64)
    tier = model.item_tier[cand]
    fit = np.exp(-((tier - model.customer_tier[customer]) ** 2) / (2 * cfg.tier_sd**2))
    s = s + cfg.tier_weight * fit
    assert model.cf is not None
    aff = (model.cf.user_factors[customer : customer + 1] @ model.cf.item_factors[cand].T)[0]
    aff = aff.astype(np.float64)
    lo, hi = aff.min(), aff.max()
    out: np.ndarray = s + cfg.cf_weight * ((aff - lo) / (hi - lo) if hi > lo else 0.0 * aff)
    return out


def test_up_sell_ranks_as_the_plain_numpy_formula(shop: Interactions, up_sell: UpSell):
    customers = [c for c in range(shop.n_customers) if up_sell.cf.has_history[c]][:20]  # type: ignore[union-attr]
    compared = 0
    for anchor in range(shop.n_items):
        cand = up_sell.candidates(anchor)
        if cand.size < 2:
            continue
        for customer in customers:
            want = _numpy_up_sell_scores(up_sell, anchor, customer)
            got = up_sell._candidate_scores(anchor, customer)[1]
            np.testing.assert_allclose(got, want, rtol=1e-12)  # libm vs numpy exp: last bit
            order = np.lexsort((cand, -want))
            np.testing.assert_array_equal(
                up_sell.recommend_for_item(anchor, cand.size, customer_idx=customer),
                cand[order],
            )
            compared += 1
    assert compared > 100


_AFTER_WARM = """
import json, pickle, sys
import numpy as np
from training.recs import kernels
from training.recs.crosssell import CrossSell
from training.recs.upsell import UpSell

(cross_state, up_state, n_customers) = pickle.load(open(sys.argv[1], "rb"))
cross, up = CrossSell.from_state(*cross_state), UpSell.from_state(*up_state)
cross.warm()
up.warm()
every = [kernels.associated, kernels.cross_sell_ranked, kernels.up_sell_scores, kernels.top_allowed]
compiled = [len(k.signatures) for k in every]
rng = np.random.default_rng(5)
for _ in range(300):
    customer = int(rng.integers(-1, n_customers))
    cart = rng.integers(0, cross.n_items, int(rng.integers(0, 4)))
    banned = rng.random(cross.n_items) < 0.1 if rng.random() < 0.5 else None
    cross.recommend_for_cart(cart, 5, customer_idx=customer, exclude=banned)
    anchor = int(rng.integers(0, up.n_items))
    up.recommend_for_item(anchor, 5, customer_idx=customer, exclude=banned)
print(json.dumps([compiled, [len(k.signatures) for k in every]]))
"""


def test_warm_compiles_every_kernel_the_request_path_uses(
    tmp_path: Path, shop: Interactions, cross_sell: CrossSell, up_sell: UpSell
):
    """In a fresh process (compiled kernels are per process): requests after `warm` compile
    nothing new, so no request pays for a compilation."""
    states = tmp_path / "models.pkl"
    states.write_bytes(pickle.dumps((cross_sell.state(), up_sell.state(), shop.n_customers)))
    run = subprocess.run(
        [sys.executable, "-c", _AFTER_WARM, str(states)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    warm, after = json.loads(run.stdout)
    assert all(n > 0 for n in warm)  # every kernel compiled by warm ...
    assert after == warm  # ... and nothing more by the requests


def test_up_sell_price_index_survives_a_state_round_trip(up_sell: UpSell):
    again = UpSell.from_state(*up_sell.state())
    for anchor in range(up_sell.n_items):
        np.testing.assert_array_equal(again.candidates(anchor), up_sell.candidates(anchor))
