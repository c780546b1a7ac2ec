"""Play a campaign out under the ground truth: which customers convert, and what they buy.

`play_out` takes a campaign (one row per customer: ``customer_id``, ``offer_type``, ``bonus``,
``control``; any other columns, e.g. ``expected_uplift``, are carried into the offers rows) and
draws, for every customer, whether they convert within the offer window after ``start`` with
the oracle's exact probability ``truth.p_convert(customer, offer_type, bonus, at=start)``
(control customers: offer type ``none``, bonus 0, i.e. the baseline ``p(none)``: they buy in
the window anyway with that chance). A conversion is one order at ``start + window * Beta(1.2,
2.5)`` (the world's timing):

- without ``items``: one line of item ``PLAYOUT_ITEM`` whose amount is the oracle's expected
  conversion order amount (`ResponseTruth.expected_revenue`), so revenue per conversion is
  exact and deterministic;
- with ``items`` (a catalogue with item_id and price; margin and is_active used when present):
  ``1 + Poisson(max(0, expected_amount / mean_price - 1))`` lines, each one unit of an active
  item drawn uniformly, so the expected order amount matches the oracle's whenever it is at
  least one mean price. The world's taste model is not reproduced: margins follow the
  catalogue, not the customer.

The returned transactions hold only these campaign-window purchases; a measurement on them
(`training.results.campaign`) sees conversion exactly as the oracle defines it, so its
treated-minus-control conversion estimates `true_effect`.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import polars as pl

from features.columns import Col, OfferType

PLAYOUT_ITEM: Final = "playout"
REQUIRED = (Col.CUSTOMER, Col.OFFER_TYPE, Col.BONUS, Col.CONTROL)
_US_PER_DAY = 86_400_000_000


class PlayoutError(ValueError):
    """The campaign frame cannot be played out (the message names the column and row)."""


class Truth(Protocol):
    """What `play_out` needs of the ground truth (`synth.response.ResponseTruth` has it)."""

    window: int

    def p_convert(
        self, customer_ids: Any, offer_type: Any, bonus: Any, at: Any = None
    ) -> np.ndarray: ...

    def expected_revenue(self, customer_ids: Any, offer_type: Any = ...) -> np.ndarray: ...


def probabilities(
    truth: Truth, campaign: pl.DataFrame, *, start: datetime
) -> tuple[np.ndarray, np.ndarray]:
    """(p of the customer's arm, p with no offer) for every campaign row, from the oracle."""
    ids, types, bonus, _ = _arms(campaign)
    p_arm = np.asarray(truth.p_convert(_s(ids), list(types), bonus, start), dtype=np.float64)
    p_none = np.asarray(truth.p_convert(_s(ids), OfferType.NONE, 0.0, start), dtype=np.float64)
    return p_arm, p_none


def true_effect(truth: Truth, campaign: pl.DataFrame, *, start: datetime) -> float:
    """The exact conversion effect on the treated: mean over treated of p(offer, b) - p(none)."""
    p_arm, p_none = probabilities(truth, campaign, start=start)
    treated = ~campaign[Col.CONTROL].to_numpy()
    if not treated.any():
        raise PlayoutError("control: every customer is in control, the effect is undefined")
    return float((p_arm[treated] - p_none[treated]).mean())


def true_effects(
    truth: Truth,
    campaign: pl.DataFrame,
    *,
    start: datetime,
    items: pl.DataFrame | None = None,
) -> dict[str, float]:
    """Exact expected effects on the treated of what `play_out` draws, per treated customer.

    ``conversion`` (= `true_effect`), ``revenue`` and, when ``items`` has a margin column,
    ``net_margin``: mean over treated of ``p(arm) (E[margin | arm] - bonus) - p(none)
    E[margin | none]``, the bonus being paid on conversion.
    """
    ids, types, bonus, control = _arms(campaign)
    treated = np.flatnonzero(~control)
    if treated.size == 0:
        raise PlayoutError("control: every customer is in control, the effect is undefined")
    ids, types, bonus = ids[treated], types[treated], bonus[treated]
    p_arm = np.asarray(truth.p_convert(_s(ids), list(types), bonus, start), dtype=np.float64)
    p_none = np.asarray(truth.p_convert(_s(ids), OfferType.NONE, 0.0, start), dtype=np.float64)
    rev_arm = np.asarray(truth.expected_revenue(_s(ids), list(types)), dtype=np.float64)
    rev_none = np.asarray(truth.expected_revenue(_s(ids), OfferType.NONE), dtype=np.float64)
    out = {"conversion": float((p_arm - p_none).mean())}
    if items is None:
        out["revenue"] = float((p_arm * rev_arm - p_none * rev_none).mean())
        return out
    price, margin = _catalogue(items)
    lines_arm = 1.0 + np.maximum(0.0, rev_arm / price.mean() - 1.0)
    lines_none = 1.0 + np.maximum(0.0, rev_none / price.mean() - 1.0)
    out["revenue"] = float((price.mean() * (p_arm * lines_arm - p_none * lines_none)).mean())
    if margin is not None:
        m = float((price * margin).mean())
        out["net_margin"] = float(
            (p_arm * (lines_arm * m - bonus) - p_none * lines_none * m).mean()
        )
    return out


def play_out(
    truth: Truth,
    campaign: pl.DataFrame,
    *,
    start: datetime,
    seed: int,
    campaign_id: str = "playout",
    items: pl.DataFrame | None = None,
    channel: str = "email",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Draw the campaign's outcomes: (contract offers rows, contract transactions rows)."""
    ids, types, bonus, control = _arms(campaign)
    n = ids.shape[0]
    rng = np.random.default_rng(seed)
    p_arm = np.asarray(truth.p_convert(_s(ids), list(types), bonus, start), dtype=np.float64)
    converted = rng.random(n) < p_arm
    offset_days = np.asarray(rng.beta(1.2, 2.5, n), dtype=np.float64) * truth.window
    offset_us = (offset_days * _US_PER_DAY).astype(np.int64)
    start_us = int((start - datetime(1970, 1, 1)) / timedelta(microseconds=1))
    conv_us = start_us + offset_us
    conv = np.flatnonzero(converted)
    expected = np.asarray(
        truth.expected_revenue(_s(ids[conv]), list(types[conv])), dtype=np.float64
    )
    lines = _order_lines(conv, expected, items, rng)
    order_ids = np.array([f"{campaign_id}-{k + 1}" for k in range(n)], dtype=object)
    tx = (
        pl.DataFrame(
            {
                Col.CUSTOMER: ids[lines["row"]].astype(str),
                Col.ORDER: order_ids[lines["row"]].astype(str),
                Col.TS: pl.Series(conv_us[lines["row"]]).cast(pl.Datetime("us")),
                Col.ITEM: lines["item"].astype(str),
                Col.QUANTITY: np.ones(lines["row"].shape[0]),
                Col.AMOUNT: lines["amount"],
            },
            schema_overrides={Col.ITEM: pl.String},
        )
        .group_by(Col.CUSTOMER, Col.ORDER, Col.TS, Col.ITEM, maintain_order=True)
        .agg(pl.col(Col.QUANTITY).sum(), pl.col(Col.AMOUNT).sum())
    )
    revenue = np.full(n, np.nan)
    revenue[conv] = np.bincount(
        np.searchsorted(conv, lines["row"]), weights=lines["amount"], minlength=conv.shape[0]
    )
    converted_at = pl.Series(conv_us).cast(pl.Datetime("us")).set(pl.Series(~converted), None)
    offers = pl.DataFrame(
        {
            Col.OFFER: order_ids.astype(str),
            Col.CUSTOMER: ids.astype(str),
            Col.SENT_AT: pl.Series(np.full(n, start_us)).cast(pl.Datetime("us")),
            Col.OFFER_TYPE: types.astype(str),
            Col.BONUS: bonus,
            Col.CHANNEL: np.full(n, channel, dtype=object).astype(str),
            Col.CONVERTED: converted,
            Col.CONVERTED_AT: converted_at,
            Col.REVENUE: pl.Series(revenue).fill_nan(None),
            Col.CAMPAIGN: np.full(n, campaign_id, dtype=object).astype(str),
            Col.CONTROL: control,
        }
    )
    carried = [c for c in campaign.columns if c not in REQUIRED and c not in offers.columns]
    return offers.hstack(campaign.select(carried)), tx


def _s(ids: np.ndarray) -> pl.Series:
    return pl.Series(Col.CUSTOMER, ids.tolist(), dtype=pl.String)


def _arms(campaign: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ids, offer types, bonuses, control) with control rows set to ``none`` and bonus 0."""
    missing = [c for c in REQUIRED if c not in campaign.columns]
    if missing:
        raise PlayoutError(f"campaign: missing column(s) {missing}; needs {list(REQUIRED)}")
    for name in REQUIRED:
        nulls = campaign[name].is_null()
        if nulls.any():
            raise PlayoutError(f"campaign.{name}: null at row {int(nulls.arg_true()[0])}")
    if campaign.height == 0:
        raise PlayoutError("campaign: no rows")
    dup = campaign[Col.CUSTOMER].is_duplicated()
    if dup.any():
        raise PlayoutError(f"campaign.customer_id: repeated at row {int(dup.arg_true()[0])}")
    control = campaign[Col.CONTROL].cast(pl.Boolean).to_numpy()
    bonus = campaign[Col.BONUS].cast(pl.Float64).to_numpy()
    bad = np.flatnonzero(~np.isfinite(bonus) | (bonus < 0))
    if bad.size:
        raise PlayoutError(f"campaign.bonus: row {int(bad[0])} is {bonus[bad[0]]}, not >= 0")
    types = campaign[Col.OFFER_TYPE].cast(pl.String).to_numpy().astype(object)
    types = np.where(control, OfferType.NONE, types)
    bonus = np.where(control, 0.0, bonus)
    ids = campaign[Col.CUSTOMER].cast(pl.String).to_numpy().astype(object)
    return ids, types, bonus, control


def _order_lines(
    conv: np.ndarray, expected: np.ndarray, items: pl.DataFrame | None, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Lines of each conversion order: offer row, item id, amount (see the module docstring)."""
    if items is None:
        return {
            "row": conv,
            "item": np.full(conv.shape[0], PLAYOUT_ITEM, dtype=object),
            "amount": expected,
        }
    active = _active(items)
    price = active[Col.PRICE].cast(pl.Float64).to_numpy()
    item_ids = active[Col.ITEM].cast(pl.String).to_numpy().astype(object)
    extra = rng.poisson(np.maximum(0.0, expected / price.mean() - 1.0))
    counts = 1 + extra
    rows = np.repeat(conv, counts)
    pick = rng.integers(0, price.shape[0], rows.shape[0])
    return {"row": rows, "item": item_ids[pick], "amount": price[pick]}


def _active(items: pl.DataFrame) -> pl.DataFrame:
    """Active catalogue items with a positive price (the ones a conversion line can be)."""
    for name in (Col.ITEM, Col.PRICE):
        if name not in items.columns:
            raise PlayoutError(f"items: missing column {name!r}")
    active = items
    if Col.IS_ACTIVE in items.columns:
        active = items.filter(pl.col(Col.IS_ACTIVE).fill_null(True))
    active = active.filter(pl.col(Col.PRICE).is_not_null() & (pl.col(Col.PRICE) > 0))
    if active.height == 0:
        raise PlayoutError("items: no active item with a positive price")
    return active


def _catalogue(items: pl.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """Prices and margin fractions (None without a margin column) of the active items."""
    active = _active(items)
    price = active[Col.PRICE].cast(pl.Float64).to_numpy()
    if Col.MARGIN not in active.columns:
        return price, None
    margin = active[Col.MARGIN].cast(pl.Float64).to_numpy()
    if np.isnan(margin).any() or active[Col.MARGIN].null_count():
        raise PlayoutError("items.margin: null for some active item; the true margin is unknown")
    return price, margin


def played_out_dataset(
    root: Path,
    campaign: pl.DataFrame,
    out: Path,
    *,
    start: datetime,
    seed: int,
    campaign_id: str,
) -> tuple[int, int]:
    """Copy the world at ``root`` to ``out`` with the campaign's offers and purchases added.

    Customers the plan does not contact (offer type ``none`` and not control) are not part of
    the campaign and are left out. Written to a temp folder beside ``out``, then renamed, so
    ``out`` is never half written. Returns (offers rows, transaction lines) added.
    """
    from synth.response import ResponseTruth

    contacted = campaign.filter(
        (pl.col(Col.OFFER_TYPE) != OfferType.NONE) | pl.col(Col.CONTROL).cast(pl.Boolean)
    )
    truth = ResponseTruth.load(root)
    items = pl.read_parquet(root / "items.parquet")
    offers, tx = play_out(
        truth, contacted, start=start, seed=seed, campaign_id=campaign_id, items=items
    )
    out = Path(out)
    tmp = out.parent / f".{out.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(root, tmp)
    parts = tmp / "transactions"
    if not parts.is_dir():
        parts.mkdir()
        (tmp / "transactions.parquet").rename(parts / "part-00000.parquet")
    schema = pl.read_parquet_schema(next(iter(sorted(parts.glob("*.parquet")))))
    aligned = tx.select(
        pl.col(c).cast(t) if c in tx.columns else pl.lit(None, dtype=t).alias(c)
        for c, t in schema.items()
    )
    aligned.write_parquet(parts / f"part-{campaign_id}.parquet", compression="zstd")
    history = pl.read_parquet(tmp / "offers.parquet")
    pl.concat([history, offers], how="diagonal_relaxed").write_parquet(
        tmp / "offers.parquet", compression="zstd"
    )
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return offers.height, tx.height
