"""The ``archetypes`` response family: latent uplift archetypes, effects on the log-odds.

A second ground truth for the synthetic world (``WorldConfig(response_family="archetypes")``)
that deliberately does NOT have the form our bonus model assumes (``p0 + (1 - p0) * uplift(b)``
with one saturating curve), so evaluating on it can reveal the model's mistakes. The customers
and their organic purchases are those of the ``curve`` world of the same seed; only the
response to offers, and so the offer history, differ.

Archetype (latent, one per customer, drawn once from observable behaviour plus noise)::

    z_f = (log(rate + 0.002) + 4) / 1.2          frequency: organic orders a day while active
    z_l = 1 if active_end < days else 0          lapsed before the history ends
    z_m = (log(check) - 9.3) / 0.9               monetary: check = E[order amount | none]
    z_t = (days - reg_day) / 365 - 1.5           tenure in years at the end, centred
    z_p = (price_sens - 0.5) / 0.22              price sensitivity
    score_g = A[g] + SHARPNESS * sum_k B[g, k] z_k + N(0, NOISE^2)     g in GROUPS
    archetype ~ Categorical(softmax(score))

                      A      z_f    z_l    z_m    z_t    z_p
    persuadable      0.0    0.0    0.8    0.0    0.0    0.4
    sure_thing     -2.22    1.4   -1.0    0.2    0.3   -0.2
    lost_cause      0.82   -1.3    0.4   -0.1   -0.3    0.0
    do_not_disturb -1.79    1.0   -0.5    0.3    0.2   -0.4

with SHARPNESS = 2 and NOISE = 0.5: shares about 30% persuadable, 20% sure thing, 35% lost
cause, 15% do not disturb. How much the drivers reveal: the archetype probabilities given the
five drivers rank the persuadables with an AUC of 0.89 and the do-not-disturb customers with
0.84 (20k customers, seed 7), and the drivers themselves are only partly observed (price
sensitivity shows only through the items bought, the purchase rate through a finite history).
With SHARPNESS = 1 and NOISE = 0.8 (the first version) those AUCs were 0.73 / 0.75, and no
policy learnt from the history, nor any simple rule, earned a positive profit: a world where
nothing can be learnt cannot tell a good learner from a bad one. Sure things lean to
frequent, current, tenured buyers; lost causes to never / rarely buying customers; do-not-
disturb to frequent, well-off, price-insensitive ones (so "active customers respond" is wrong
for some); persuadables to middling frequency, lapsed and price-sensitive customers. The
observables predict the archetype moderately, never exactly.

Response (``day`` = days since the start, ``W`` = offer window, ``x = bonus / check``)::

    p_rate(day)    = 1 - exp(-KAPPA * W * (rate * active(day) + floor_rate))     (as `curve`)
    logit p(none)  = logit p_rate(day) + shift            shift ~ N(SHIFT[g], 0.3)
    logit p(t, b)  = logit p(none) + delta(t, b, day)     t != none
    delta(t, b)    = message + ceiling * w_t * shape_t(x / s_t) * gate_t(day)
    shape_t(u)     = 1 - exp(-u)                     saturating  (all other types)
    shape_t(u)     = sigmoid(STEEP * (u - 1))        threshold   (spend_threshold, reactivation)

SHIFT = (0, +1, -1, 0) for (persuadable, sure_thing, lost_cause, do_not_disturb). Per
archetype: sure things and lost causes have message = ceiling = 0 (no effect at all); do not
disturb has ceiling = 0 and message = -U(0.2, 0.5): ANY contact, whatever the bonus, lowers
the odds (about -15% to -35% of p, less for the few with a very high baseline; a mean effect
of about -0.05, the size an independently built loyalty world showed: -0.041 against +0.074
for its persuadables; with -U(0.5, 1.1), -0.10, put-off customers cost more than
persuadables earn, and no policy learnt from the history, nor any rule, made money); persuadables
have message ~ U(0, 0.15) (a bare message, bonus 0, helps a little) and ceiling =
exp(0.25 z_p - 0.15 z_m + N(0, 0.5)), clipped to [0.05, 4] (latent, only partly tied to
observables). Per offer type t (weights and scales are drawn for everyone; they matter only
through a positive ceiling)::

    cashback         w = 0.2 + 0.8 price_sens          s ~ 0.012 LogN(0, 0.5)   saturating
    spend_threshold  w = 0.5 + 0.7 (1 - price_sens)    s ~ 0.018 LogN(0, 0.6)   threshold
    reactivation     w = 2.5 rate / (rate + 1/40)      s ~ 0.012 LogN(0, 0.6)   threshold
    cross_sell       w = 0.15 + 0.45 cross_affinity    s ~ 0.008 LogN(0, 0.4)   saturating
    up_sell 0.2, expiring_points 0.1 + 0.3 price_sens, birthday 0.3, replenishment
    0.1 + 0.3 repl_affinity, privilege 0.2, welcome 0.4; s ~ 0.015 LogN(0, 0.4), saturating

So cashback pays mostly for price-sensitive, low-check customers (the dose is the bonus as a
share of the check); spend_threshold does almost nothing until the bonus reaches the
customer's latent reservation level ``s * check``, then jumps; reactivation works only on
lapsed customers (gate = 1 once dormant: ``active_end <= day`` after some activity, else 0)
with a decent past rate, threshold-like too. ``gate`` is 1 for the other types except
birthday (1 within 21 days before the birthday, else 0.2) and welcome (1 within 30 days of
registering, else 0.15). ``cross_affinity`` / ``repl_affinity``: taste weight on complement
anchor / replenished categories.

A converted customer places one order of ``1 + Poisson(basket_lambda * BASKET_MULT[t])``
lines, each drawn as in `curve` but without up_sell's tier shift; BASKET_MULT is 0.8 for
reactivation (a returning customer buys a small basket) and 1 otherwise.
`ArchetypeParams.order` is the exact mean amount and margin of that order. The order value
cannot depend on the bonus (`ResponseTruth.expected_margin` takes none), so a mechanic that
raised the basket (spend_threshold, cross_sell, up_sell's tiers) would pay even at bonus 0 on
customers who buy anyway: a free lunch that no shop has, which is why there is none here.

The offer history of this family is a shop's randomised test: every ~60 days a campaign
reaches a random share of the consented customers and assigns each, uniformly at random, to
one of its arms: a no-offer control (probability ``control_share``) or one (mechanic, bonus)
of `ARMS` for 2-4 of the 4 mechanics (the first campaign runs all 4), each with probability
``(1 - control_share) / arms``. The offers table carries that ``assignment_prob``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import ClassVar

import numpy as np
import polars as pl

from features.columns import OfferType
from synth.catalog import Catalog
from synth.population import Population
from synth.response import (
    BIRTHDAY_LEAD_DAYS,
    GROUPS,
    KAPPA,
    OFFER_TYPES,
    TYPE_CODE,
    WELCOME_DAYS,
)
from synth.timeline import day_of_year

FAMILY = "archetypes"
OBSERVABLES = ("z_f", "z_l", "z_m", "z_t", "z_p")
INTERCEPT = np.array([0.0, -2.22, 0.82, -1.79])  # in GROUPS order; gives the shares above
COEF = np.array(
    [
        [0.0, 0.8, 0.0, 0.0, 0.4],  # persuadable
        [1.4, -1.0, 0.2, 0.3, -0.2],  # sure_thing
        [-1.3, 0.4, -0.1, -0.3, 0.0],  # lost_cause
        [1.0, -0.5, 0.3, 0.2, -0.4],  # do_not_disturb
    ]
)
SHARPNESS = 2.0
NOISE = 0.5
SHIFT = (0.0, 1.0, -1.0, 0.0)
SHIFT_SD = 0.3
STEEP = 10.0
DND_DROP = (0.2, 0.5)  # do-not-disturb message: -U(low, high) on the log-odds
MESSAGE = 0.15  # persuadable message: U(0, MESSAGE) on the log-odds
THRESHOLD_TYPES = (OfferType.SPEND_THRESHOLD, OfferType.REACTIVATION)
REACTIVATION_RATE_HALF = 1.0 / 40.0
BASKET_MULT: dict[str, float] = {OfferType.REACTIVATION: 0.8}
# the randomised history: bonus levels of each mechanic
ARMS: dict[str, tuple[float, ...]] = {
    OfferType.CASHBACK: (0.0, 50.0, 100.0, 200.0, 300.0),
    OfferType.SPEND_THRESHOLD: (100.0, 200.0, 300.0, 500.0),
    OfferType.REACTIVATION: (100.0, 200.0, 300.0, 500.0),
    OfferType.CROSS_SELL: (0.0, 50.0, 100.0, 200.0),
}
PERSUADABLE = GROUPS.index("persuadable")
DND = GROUPS.index("do_not_disturb")
_IS_THRESHOLD = np.isin(np.array(OFFER_TYPES), THRESHOLD_TYPES)
_BASKET = np.array([BASKET_MULT.get(t, 1.0) for t in OFFER_TYPES])
_NONE = TYPE_CODE[OfferType.NONE]


def weight_column(offer_type: str) -> str:
    """Ground-truth column holding the effect weight of ``offer_type``."""
    return f"w_{offer_type}"


def scale_column(offer_type: str) -> str:
    """Ground-truth column holding the dose scale (bonus / check) of ``offer_type``."""
    return f"s_{offer_type}"


@dataclass(frozen=True)
class ArchetypeParams:
    """Per-customer truth of the archetypes family (one array entry per customer)."""

    group: np.ndarray  # archetype, index into GROUPS
    rate: np.ndarray
    floor_rate: np.ndarray
    active_start: np.ndarray
    active_end: np.ndarray
    reg_day: np.ndarray
    birth_doy: np.ndarray  # -1 when unknown
    basket_lambda: np.ndarray
    line_margin: np.ndarray  # expected margin of one conversion line
    line_amount: np.ndarray
    check: np.ndarray  # expected amount of an order without offer: the dose's unit
    shift: np.ndarray  # baseline log-odds shift
    message: np.ndarray  # log-odds effect of any contact
    ceiling: np.ndarray  # log-odds scale of the bonus effects (0 unless persuadable)
    weight: np.ndarray  # (customers, len(OFFER_TYPES)); column 0 (none) is 0
    scale: np.ndarray  # (customers, len(OFFER_TYPES)); column 0 (none) is 1

    family: ClassVar[str] = FAMILY
    up_sell_shifts_tiers: ClassVar[bool] = False

    def frame_columns(self) -> dict[str, np.ndarray]:
        """Flat columns for the ground-truth table (weight and scale split per offer type)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _MATRICES}
        for code, offer_type in enumerate(OFFER_TYPES):
            if code != _NONE:
                out[weight_column(offer_type)] = self.weight[:, code]
                out[scale_column(offer_type)] = self.scale[:, code]
        return out

    @classmethod
    def from_frame(cls, df: pl.DataFrame) -> ArchetypeParams:
        """Rebuild from the ground-truth table (``group`` as names)."""
        kwargs: dict[str, np.ndarray] = {}
        for f in fields(cls):
            if f.name in _MATRICES:
                continue
            if f.name == "group":
                names = df["group"].to_numpy()
                kwargs["group"] = np.select(
                    [names == g for g in GROUPS], list(range(len(GROUPS))), -1
                )
                continue
            kwargs[f.name] = df[f.name].to_numpy()
        weight = np.zeros((df.height, len(OFFER_TYPES)))
        scale = np.ones((df.height, len(OFFER_TYPES)))
        for code, offer_type in enumerate(OFFER_TYPES):
            if code != _NONE:
                weight[:, code] = df[weight_column(offer_type)].to_numpy()
                scale[:, code] = df[scale_column(offer_type)].to_numpy()
        return cls(weight=weight, scale=scale, **kwargs)

    def baseline_logit(self, idx: np.ndarray, day: np.ndarray, window: int) -> np.ndarray:
        """logit p(none): the log-odds of converting within the window with no offer."""
        active = (self.active_start[idx] <= day) & (day < self.active_end[idx])
        rate = self.rate[idx] * active + self.floor_rate[idx]
        p_rate = 1.0 - np.exp(-KAPPA * window * rate)
        return np.asarray(_logit(p_rate) + self.shift[idx])

    def log_odds_effect(
        self,
        idx: np.ndarray,
        type_code: np.ndarray,
        bonus: np.ndarray,
        day: np.ndarray,
        start: date,
    ) -> np.ndarray:
        """delta: what the offer adds to the log-odds (0 for none); inputs of equal shape."""
        x = bonus / self.check[idx]
        u = x / self.scale[idx, type_code]
        shape = np.where(_IS_THRESHOLD[type_code], _expit(STEEP * (u - 1.0)), -np.expm1(-u))
        gate = self._gate(idx, type_code, day, start)
        effect = self.ceiling[idx] * self.weight[idx, type_code] * shape * gate
        return np.asarray(np.where(type_code == _NONE, 0.0, self.message[idx] + effect))

    def probability(
        self,
        idx: np.ndarray,
        type_code: np.ndarray,
        bonus: np.ndarray,
        day: np.ndarray,
        *,
        window: int,
        start: date,
    ) -> np.ndarray:
        """The exact conversion probability (see the module docstring); all inputs broadcast."""
        idx, type_code, bonus, day = np.broadcast_arrays(
            np.asarray(idx, dtype=np.int64),
            np.asarray(type_code, dtype=np.int64),
            np.asarray(bonus, dtype=float),
            np.asarray(day, dtype=np.int64),
        )
        base = self.baseline_logit(idx, day, window)
        return _expit(base + self.log_odds_effect(idx, type_code, bonus, day, start))

    def lines_mean(self, idx: np.ndarray, type_code: np.ndarray) -> np.ndarray:
        """Expected number of lines in a conversion order."""
        return np.asarray(1.0 + self.basket_lambda[idx] * _BASKET[type_code])

    def order(self, idx: np.ndarray, type_code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected (amount, margin) of a conversion order."""
        idx, type_code = np.broadcast_arrays(
            np.asarray(idx, dtype=np.int64), np.asarray(type_code, dtype=np.int64)
        )
        lines = self.lines_mean(idx, type_code)
        return lines * self.line_amount[idx], lines * self.line_margin[idx]

    def _gate(
        self, idx: np.ndarray, type_code: np.ndarray, day: np.ndarray, start: date
    ) -> np.ndarray:
        gate: np.ndarray = np.ones(idx.shape)
        is_react = type_code == TYPE_CODE[OfferType.REACTIVATION]
        if is_react.any():
            start_day, end_day = self.active_start[idx], self.active_end[idx]
            dormant = (day >= end_day) & (end_day > start_day)
            gate = np.where(is_react, dormant.astype(float), gate)
        is_birthday = type_code == TYPE_CODE[OfferType.BIRTHDAY]
        if is_birthday.any():
            birth = self.birth_doy[idx]
            lead = np.mod(birth - day_of_year(start, day), 365)
            near = (birth >= 0) & (lead <= BIRTHDAY_LEAD_DAYS)
            gate = np.where(is_birthday, np.where(near, 1.0, 0.2), gate)
        is_welcome = type_code == TYPE_CODE[OfferType.WELCOME]
        if is_welcome.any():
            since = day - self.reg_day[idx]
            new = (since >= 0) & (since <= WELCOME_DAYS)
            gate = np.where(is_welcome, np.where(new, 1.0, 0.15), gate)
        return gate


_MATRICES = ("weight", "scale")


def observables(pop: Population, days: int) -> np.ndarray:
    """(customers, 5) behaviour drivers of the archetype: z_f, z_l, z_m, z_t, z_p."""
    resp = pop.response
    check = (1.0 + resp.basket_lambda) * resp.line_amount
    return np.column_stack(
        [
            (np.log(resp.rate + 0.002) + 4.0) / 1.2,
            (resp.active_end < days).astype(float),
            (np.log(check) - 9.3) / 0.9,
            (days - pop.reg_day) / 365.0 - 1.5,
            (pop.price_sens - 0.5) / 0.22,
        ]
    )


def draw_archetypes(
    pop: Population, catalog: Catalog, days: int, rng: np.random.Generator
) -> ArchetypeParams:
    """Archetypes and response parameters of a chunk's customers (see the module docstring)."""
    n = pop.n
    resp = pop.response
    z = observables(pop, days)
    score = INTERCEPT + SHARPNESS * (z @ COEF.T) + rng.normal(0.0, NOISE, (n, len(GROUPS)))
    group = np.argmax(score + rng.gumbel(size=(n, len(GROUPS))), axis=1)  # softmax draw

    shift = rng.normal(np.asarray(SHIFT)[group], SHIFT_SD)
    persuadable = group == PERSUADABLE
    ceiling = np.clip(np.exp(0.25 * z[:, 4] - 0.15 * z[:, 2] + rng.normal(0.0, 0.5, n)), 0.05, 4)
    ceiling = np.where(persuadable, ceiling, 0.0)
    message = np.where(persuadable, rng.uniform(0.0, MESSAGE, n), 0.0)
    message = np.where(group == DND, -rng.uniform(*DND_DROP, n), message)

    anchors = np.zeros(catalog.n_categories)
    anchors[np.unique(catalog.comp_anchor)] = 1.0
    replenishable = (catalog.cycle_days > 0).astype(float)
    cross_affinity = (anchors[pop.taste_cat] * pop.taste_w).sum(axis=1)
    repl_affinity = (replenishable[pop.taste_cat] * pop.taste_w).sum(axis=1)
    ps = pop.price_sens
    spec: dict[str, tuple[np.ndarray | float, float, float]] = {  # weight, scale median, sd
        OfferType.CASHBACK: (0.2 + 0.8 * ps, 0.012, 0.5),
        OfferType.SPEND_THRESHOLD: (0.5 + 0.7 * (1.0 - ps), 0.018, 0.6),
        OfferType.REACTIVATION: (
            2.5 * resp.rate / (resp.rate + REACTIVATION_RATE_HALF),
            0.012,
            0.6,
        ),
        OfferType.CROSS_SELL: (0.15 + 0.45 * cross_affinity, 0.008, 0.4),
        OfferType.UP_SELL: (0.2, 0.015, 0.4),
        OfferType.EXPIRING_POINTS: (0.1 + 0.3 * ps, 0.015, 0.4),
        OfferType.BIRTHDAY: (0.3, 0.015, 0.4),
        OfferType.REPLENISHMENT: (0.1 + 0.3 * repl_affinity, 0.015, 0.4),
        OfferType.PRIVILEGE: (0.2, 0.015, 0.4),
        OfferType.WELCOME: (0.4, 0.015, 0.4),
    }
    weight = np.zeros((n, len(OFFER_TYPES)))
    scale = np.ones((n, len(OFFER_TYPES)))
    for offer_type, (w, median, sd) in spec.items():
        code = TYPE_CODE[offer_type]
        weight[:, code] = w
        scale[:, code] = median * np.exp(rng.normal(0.0, sd, n))
    return ArchetypeParams(
        group=group.astype(np.int64),
        rate=resp.rate,
        floor_rate=resp.floor_rate,
        active_start=resp.active_start,
        active_end=resp.active_end,
        reg_day=resp.reg_day,
        birth_doy=resp.birth_doy,
        basket_lambda=resp.basket_lambda,
        line_margin=resp.line_margin,
        line_amount=resp.line_amount,
        check=(1.0 + resp.basket_lambda) * resp.line_amount,
        shift=shift,
        message=message,
        ceiling=ceiling,
        weight=weight,
        scale=scale,
    )


def meta_constants() -> dict[str, object]:
    """The family's constants, for the ground-truth meta."""
    return {
        "KAPPA": KAPPA,
        "OBSERVABLES": list(OBSERVABLES),
        "INTERCEPT": INTERCEPT.tolist(),
        "COEF": COEF.tolist(),
        "NOISE": NOISE,
        "SHARPNESS": SHARPNESS,
        "SHIFT": list(SHIFT),
        "SHIFT_SD": SHIFT_SD,
        "STEEP": STEEP,
        "DND_DROP": list(DND_DROP),
        "MESSAGE": MESSAGE,
        "THRESHOLD_TYPES": list(THRESHOLD_TYPES),
        "BASKET_MULT": BASKET_MULT,
        "ARMS": {t: list(levels) for t, levels in ARMS.items()},
        "BIRTHDAY_LEAD_DAYS": BIRTHDAY_LEAD_DAYS,
        "WELCOME_DAYS": WELCOME_DAYS,
    }


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1.0 - 1e-9)
    return np.asarray(np.log(p) - np.log1p(-p))


def _expit(z: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))
