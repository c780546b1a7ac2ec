"""The oracle: the exact response of every customer to every offer, from the ground truth.

The offer history of a generated world draws its outcomes from `response_probability`, the
same function `ResponseTruth.p_convert` evaluates, so a model can be scored against the truth.

Response function (``day`` = days since the start of the history, ``W`` = offer window)::

    active(day) = active_start <= day < active_end    (active_end = 2**31 - 1: still active)
    p0          = 1 - exp(-KAPPA * W * (rate * active(day) + floor_rate))      # baseline
    fit         = fit_<type> * time_factor(type, day)                          # offer fit
    uplift(b)   = min(UPLIFT_CAP, fit * (message + u_max * (1 - exp(-b / b_half))))
    p(none)     = p0
    p(type, b)  = p0 + (1 - p0) * uplift(b)        for persuadable, sure_thing, lost_cause
    p(type, b)  = p0 * (1 - dnd_drop)              for do_not_disturb (contact hurts)

``time_factor`` is 1 except: birthday (1 within 21 days before the birthday, else 0.2), welcome
(1 within 30 days of registering, else 0.15) and reactivation (1 once the customer went
dormant, 0.2 while active, 0.5 before the first purchase). A converted customer places one
order of ``1 + Poisson(basket_lambda * BASKET_MULT[type])`` lines, each line one unit of an
active item drawn by (category ~ taste, tier ~ tier preference, item ~ popularity); up_sell
shifts the tier preference upward. `ResponseTruth.expected_margin` is the exact mean margin of
that order.

This is the ``curve`` response family (the default). `synth.archetypes` is the second family;
`ResponseTruth` answers for either, through the `ResponseModel` interface both implement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import polars as pl

from features.columns import Col, OfferType
from synth.timeline import day_of_year

KAPPA = 0.5  # share of a customer's purchase rate that counts as converting on an offer
UPLIFT_CAP = 0.95
EXPLORE = 0.08  # chance a line's category is drawn from overall popularity, not the taste
UP_SELL_TIER_SHIFT = (0.4, 1.0, 2.5)
BIRTHDAY_LEAD_DAYS = 21
WELCOME_DAYS = 30

# every offer type the world uses; position = type code (none = 0)
OFFER_TYPES: tuple[str, ...] = OfferType.ALL
TYPE_CODE: dict[str, int] = {t: i for i, t in enumerate(OFFER_TYPES)}
CONTACT_TYPES: tuple[str, ...] = tuple(t for t in OFFER_TYPES if t != OfferType.NONE)
BASKET_MULT: dict[str, float] = {
    OfferType.CROSS_SELL: 1.4,
    OfferType.SPEND_THRESHOLD: 1.8,
    OfferType.PRIVILEGE: 1.2,
}
STILL_ACTIVE = 2**31 - 1  # active_end of customers who are still active when the history ends
GROUPS = ("persuadable", "sure_thing", "lost_cause", "do_not_disturb")
DND = GROUPS.index("do_not_disturb")


class ResponseModel(Protocol):
    """A response family's per-customer truth: what `ResponseTruth` and the history draw on."""

    family: ClassVar[str]
    up_sell_shifts_tiers: ClassVar[bool]  # an up_sell conversion draws from shifted tiers

    @property
    def group(self) -> np.ndarray:
        """Response group of each customer (index into GROUPS)."""
        ...

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
        """Exact conversion probability within the window; all inputs broadcast."""
        ...

    def order(self, idx: np.ndarray, type_code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected (amount, margin) of a conversion order."""
        ...

    def lines_mean(self, idx: np.ndarray, type_code: np.ndarray) -> np.ndarray:
        """Expected number of lines in a conversion order (``1 + Poisson`` of one less)."""
        ...

    def frame_columns(self) -> dict[str, np.ndarray]:
        """Flat columns for the ground-truth customers table."""
        ...


def fit_column(offer_type: str) -> str:
    """Ground-truth column holding the static fit of ``offer_type``."""
    return f"fit_{offer_type}"


@dataclass(frozen=True)
class ResponseParams:
    """Per-customer response parameters (one array entry per customer, row = index)."""

    group: np.ndarray  # index into GROUPS
    rate: np.ndarray  # organic orders per day while active
    floor_rate: np.ndarray  # stray purchase rate, always on
    active_start: np.ndarray
    active_end: np.ndarray
    reg_day: np.ndarray
    birth_doy: np.ndarray  # -1 when unknown
    u_max: np.ndarray
    b_half: np.ndarray
    message: np.ndarray
    dnd_drop: np.ndarray
    basket_lambda: np.ndarray
    line_margin: np.ndarray  # expected margin of one conversion line
    line_margin_up: np.ndarray  # ... under an up_sell offer
    line_amount: np.ndarray
    line_amount_up: np.ndarray
    fit: np.ndarray  # (customers, len(OFFER_TYPES)); column 0 (none) is 0

    family: ClassVar[str] = "curve"
    up_sell_shifts_tiers: ClassVar[bool] = True

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
        """`response_probability` of these parameters."""
        return response_probability(self, idx, type_code, bonus, day, window=window, start=start)

    def order(self, idx: np.ndarray, type_code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`expected_order` of these parameters."""
        return expected_order(self, idx, type_code)

    def lines_mean(self, idx: np.ndarray, type_code: np.ndarray) -> np.ndarray:
        """`basket_lines_mean` of these parameters."""
        return basket_lines_mean(self, idx, type_code)

    def frame_columns(self) -> dict[str, np.ndarray]:
        """Flat columns for the ground-truth table (fit split per offer type)."""
        out: dict[str, np.ndarray] = {}
        for f in fields(self):
            if f.name == "fit":
                continue
            out[f.name] = getattr(self, f.name)
        for code, offer_type in enumerate(OFFER_TYPES):
            if offer_type != OfferType.NONE:
                out[fit_column(offer_type)] = self.fit[:, code]
        return out

    @classmethod
    def from_frame(cls, df: pl.DataFrame) -> ResponseParams:
        """Rebuild from the ground-truth table (``group`` as names)."""
        kwargs: dict[str, np.ndarray] = {}
        for f in fields(cls):
            if f.name == "fit":
                continue
            if f.name == "group":
                names = df["group"].to_numpy()
                kwargs["group"] = np.select(
                    [names == g for g in GROUPS], list(range(len(GROUPS))), -1
                )
                continue
            kwargs[f.name] = df[f.name].to_numpy()
        fit = np.zeros((df.height, len(OFFER_TYPES)))
        for code, offer_type in enumerate(OFFER_TYPES):
            if offer_type != OfferType.NONE:
                fit[:, code] = df[fit_column(offer_type)].to_numpy()
        return cls(fit=fit, **kwargs)


def baseline_probability(
    params: ResponseParams, idx: np.ndarray, day: np.ndarray, window: int
) -> np.ndarray:
    """p0: the chance of converting within the window with no offer."""
    active = (params.active_start[idx] <= day) & (day < params.active_end[idx])
    rate = params.rate[idx] * active + params.floor_rate[idx]
    return np.asarray(1.0 - np.exp(-KAPPA * window * rate))


def offer_fit(
    params: ResponseParams, idx: np.ndarray, type_code: np.ndarray, day: np.ndarray, start: date
) -> np.ndarray:
    """How well each offer type suits each customer on ``day`` (0 for none)."""
    fit = params.fit[idx, type_code]
    is_birthday = type_code == TYPE_CODE[OfferType.BIRTHDAY]
    if is_birthday.any():
        birth = params.birth_doy[idx]
        lead = np.mod(birth - day_of_year(start, day), 365)
        near = (birth >= 0) & (lead <= BIRTHDAY_LEAD_DAYS)
        fit = np.where(is_birthday, fit * np.where(near, 1.0, 0.2), fit)
    is_welcome = type_code == TYPE_CODE[OfferType.WELCOME]
    if is_welcome.any():
        since = day - params.reg_day[idx]
        new = (since >= 0) & (since <= WELCOME_DAYS)
        fit = np.where(is_welcome, fit * np.where(new, 1.0, 0.15), fit)
    is_reactivation = type_code == TYPE_CODE[OfferType.REACTIVATION]
    if is_reactivation.any():
        start_day, end_day = params.active_start[idx], params.active_end[idx]
        dormant = (day >= end_day) & (end_day > start_day)
        active = (start_day <= day) & (day < end_day)
        factor = np.where(dormant, 1.0, np.where(active, 0.2, 0.5))
        fit = np.where(is_reactivation, fit * factor, fit)
    return np.asarray(fit)


def response_probability(
    params: ResponseParams,
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
    p0 = baseline_probability(params, idx, day, window)
    fit = offer_fit(params, idx, type_code, day, start)
    curve = 1.0 - np.exp(-bonus / params.b_half[idx])
    uplift = np.minimum(UPLIFT_CAP, fit * (params.message[idx] + params.u_max[idx] * curve))
    contacted = p0 + (1.0 - p0) * uplift
    contacted = np.where(params.group[idx] == DND, p0 * (1.0 - params.dnd_drop[idx]), contacted)
    return np.where(type_code == TYPE_CODE[OfferType.NONE], p0, contacted)


def basket_lines_mean(params: ResponseParams, idx: np.ndarray, type_code: np.ndarray) -> np.ndarray:
    """Expected number of lines in a conversion order."""
    mult = np.ones(len(OFFER_TYPES))
    for offer_type, m in BASKET_MULT.items():
        mult[TYPE_CODE[offer_type]] = m
    return np.asarray(1.0 + params.basket_lambda[idx] * mult[type_code])


def expected_order(
    params: ResponseParams, idx: np.ndarray, type_code: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Expected (amount, margin) of a conversion order."""
    idx, type_code = np.broadcast_arrays(
        np.asarray(idx, dtype=np.int64), np.asarray(type_code, dtype=np.int64)
    )
    lines = basket_lines_mean(params, idx, type_code)
    up = type_code == TYPE_CODE[OfferType.UP_SELL]
    amount = np.where(up, params.line_amount_up[idx], params.line_amount[idx])
    margin = np.where(up, params.line_margin_up[idx], params.line_margin[idx])
    return lines * amount, lines * margin


IdsLike = np.ndarray | pl.Series | list[Any]
TimeLike = date | datetime | np.ndarray | pl.Series | None


class ResponseTruth:
    """The ground truth of a generated world, answering "what would this customer do?".

    The same interface for every response family (``meta["response_family"]``; worlds written
    before there were families are ``curve``).
    """

    def __init__(
        self, params: ResponseModel, customer_ids: np.ndarray, meta: dict[str, Any]
    ) -> None:
        self.params = params
        self.meta = meta
        self.family = params.family
        self.start = date.fromisoformat(meta["start"])
        self.days = int(meta["days"])
        self.window = int(meta["offer_window_days"])
        order = np.argsort(customer_ids, kind="stable")
        self._sorted_ids = customer_ids[order]
        self._sorted_rows = order

    @classmethod
    def load(cls, root: Path | str) -> ResponseTruth:
        """Read ``ROOT/ground_truth`` of a generated world."""
        truth = Path(root) / "ground_truth"
        meta_path = truth / "response.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: no ground truth (is this a synth world?)")
        meta = json.loads(meta_path.read_text())
        source = truth / "customers"
        pattern = str(source / "*.parquet") if source.is_dir() else str(truth / "customers.parquet")
        df = pl.scan_parquet(pattern).collect()
        df = df.sort(pl.col(Col.CUSTOMER).cast(pl.Int64))
        ids = df[Col.CUSTOMER].cast(pl.Int64).to_numpy()
        return cls(_model_from_frame(meta.get("response_family", "curve"), df), ids, meta)

    @property
    def customer_ids(self) -> np.ndarray:
        """All customer ids (int64), in row order."""
        out = np.empty_like(self._sorted_ids)
        out[self._sorted_rows] = self._sorted_ids
        return out

    @property
    def end(self) -> date:
        """The first day after the history: the default decision day."""
        return self.start + timedelta(days=self.days)

    def rows(self, customer_ids: IdsLike) -> np.ndarray:
        """Row index of each customer id; KeyError naming unknown ids."""
        ids = np.asarray(pl.Series(customer_ids).cast(pl.Int64, strict=False).to_numpy())
        if ids.dtype.kind == "f":  # nulls from unparsable ids
            raise KeyError(f"customer ids: not numeric ids of this world: {customer_ids!r}")
        pos = np.searchsorted(self._sorted_ids, ids)
        pos = np.minimum(pos, len(self._sorted_ids) - 1)
        found = self._sorted_ids[pos] == ids
        if not found.all():
            missing = ids[~found][:5].tolist()
            raise KeyError(f"customer ids not in this world: {missing}")
        return np.asarray(self._sorted_rows[pos], dtype=np.int64)

    def day(self, at: TimeLike, n: int) -> np.ndarray:
        """Day index since the start for ``at`` (default: the day after the history)."""
        if at is None:
            return np.full(n, self.days, dtype=np.int64)
        if isinstance(at, datetime):
            return np.full(n, (at.date() - self.start).days, dtype=np.int64)
        if isinstance(at, date):
            return np.full(n, (at - self.start).days, dtype=np.int64)
        series = pl.Series(at).cast(pl.Date).cast(pl.Int64)
        if series.null_count():
            raise ValueError("at: null or unparsable times")
        start = (self.start - date(1970, 1, 1)).days
        return np.broadcast_to(series.to_numpy() - start, (n,)).astype(np.int64)

    def type_codes(self, offer_type: str | IdsLike, n: int) -> np.ndarray:
        """Offer type codes; ValueError naming an unknown offer type."""
        values = [offer_type] if isinstance(offer_type, str) else list(offer_type)
        unknown = sorted({str(v) for v in values} - set(TYPE_CODE))
        if unknown:
            raise ValueError(f"offer_type: unknown {unknown}; expected one of {OFFER_TYPES}")
        codes = np.array([TYPE_CODE[str(v)] for v in values], dtype=np.int64)
        return np.broadcast_to(codes, (n,)).copy()

    def p_convert(
        self,
        customer_ids: IdsLike,
        offer_type: str | IdsLike,
        bonus: float | np.ndarray | pl.Series,
        at: TimeLike = None,
    ) -> np.ndarray:
        """Probability each customer converts within the offer window after ``at``."""
        idx = self.rows(customer_ids)
        n = idx.shape[0]
        bonus_arr = np.broadcast_to(np.asarray(bonus, dtype=float), (n,))
        if np.any(bonus_arr < 0):
            raise ValueError("bonus: must be >= 0")
        return self.params.probability(
            idx,
            self.type_codes(offer_type, n),
            bonus_arr,
            self.day(at, n),
            window=self.window,
            start=self.start,
        )

    def uplift(
        self,
        customer_ids: IdsLike,
        offer_type: str | IdsLike,
        bonus: float | np.ndarray | pl.Series,
        at: TimeLike = None,
    ) -> np.ndarray:
        """p_convert(offer) - p_convert(none): the causal effect of sending the offer."""
        treated = self.p_convert(customer_ids, offer_type, bonus, at)
        return np.asarray(treated - self.p_convert(customer_ids, OfferType.NONE, 0.0, at))

    def expected_margin(
        self, customer_ids: IdsLike, offer_type: str | IdsLike = OfferType.NONE
    ) -> np.ndarray:
        """Expected margin (money) of the conversion order, given the customer converts."""
        idx = self.rows(customer_ids)
        return self.params.order(idx, self.type_codes(offer_type, idx.shape[0]))[1]

    def expected_revenue(
        self, customer_ids: IdsLike, offer_type: str | IdsLike = OfferType.NONE
    ) -> np.ndarray:
        """Expected amount of the conversion order, given the customer converts."""
        idx = self.rows(customer_ids)
        return self.params.order(idx, self.type_codes(offer_type, idx.shape[0]))[0]

    def expected_profit(
        self,
        customer_ids: IdsLike,
        offer_type: str | IdsLike,
        bonus: float | np.ndarray | pl.Series,
        at: TimeLike = None,
    ) -> np.ndarray:
        """Incremental profit of sending the offer vs not: the quantity a bonus policy maximises.

        ``p(offer) * (margin(offer) - bonus) - p(none) * margin(none)``; the bonus is paid only
        on conversion.
        """
        bonus_arr = np.asarray(bonus, dtype=float)
        treated = self.p_convert(customer_ids, offer_type, bonus_arr, at)
        base = self.p_convert(customer_ids, OfferType.NONE, 0.0, at)
        m_treated = self.expected_margin(customer_ids, offer_type)
        m_base = self.expected_margin(customer_ids, OfferType.NONE)
        return np.asarray(treated * (m_treated - bonus_arr) - base * m_base)

    def group(self, customer_ids: IdsLike) -> np.ndarray:
        """Response group name of each customer."""
        names = np.asarray(GROUPS, dtype=object)
        return np.asarray(names[self.params.group[self.rows(customer_ids)]])


def _model_from_frame(family: str, df: pl.DataFrame) -> ResponseModel:
    """The response model of ``family`` from the ground-truth customers table."""
    if family == "curve":
        return ResponseParams.from_frame(df)
    if family == "archetypes":
        from synth.archetypes import ArchetypeParams  # it builds on this module

        return ArchetypeParams.from_frame(df)
    raise ValueError(f"response_family: unknown {family!r} in the ground truth meta")


def simulate_campaign(
    truth: ResponseTruth, campaign: pl.DataFrame, seed: int, at: TimeLike = None
) -> pl.DataFrame:
    """Play a campaign out under the ground truth.

    ``campaign`` has ``customer_id``, ``offer_type`` and ``bonus`` (one row per customer
    contacted; offer_type ``none`` for a hold-out). Returns it with ``p_convert``, a drawn
    ``converted``, the expected ``margin`` of the conversion order and ``profit`` = converted *
    (margin - bonus): the bonus is paid only on conversion.
    """
    missing = [c for c in (Col.CUSTOMER, Col.OFFER_TYPE, Col.BONUS) if c not in campaign.columns]
    if missing:
        raise ValueError(f"campaign: missing columns {missing}")
    ids = campaign[Col.CUSTOMER]
    types = campaign[Col.OFFER_TYPE]
    bonus = campaign[Col.BONUS].cast(pl.Float64).to_numpy()
    p = truth.p_convert(ids, types, bonus, at)
    converted = np.random.default_rng(seed).random(p.shape[0]) < p
    margin = truth.expected_margin(ids, types)
    return campaign.with_columns(
        pl.Series("p_convert", p),
        pl.Series(Col.CONVERTED, converted),
        pl.Series("margin", margin),
        pl.Series("profit", np.where(converted, margin - bonus, 0.0)),
    )
