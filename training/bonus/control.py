"""Deterministic control groups: which customers a campaign holds out.

A customer is in the control group of a campaign when
``u = int.from_bytes(blake2b(f"{campaign_id}:{customer_id}".encode("utf-8"),
digest_size=8).digest(), "big") / 2**64`` is below ``share``. The rule depends on nothing but
the two ids, so any process (training, serving, another language) reproduces the same groups,
and different campaigns get independent groups. Integer customer ids are hashed as their
decimal text, as the data contract stores them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

_DIGEST_BYTES = 8
_SCALE = 2.0**-64


class ControlGroupError(ValueError):
    """Invalid control-group input; the message names the argument (and row)."""


def control_draw(
    campaign_id: str, customer_ids: Sequence[str] | npt.ArrayLike | pl.Series
) -> npt.NDArray[np.float64]:
    """The stable uniform draw in [0, 1) of each customer for this campaign."""
    if not isinstance(campaign_id, str) or not campaign_id:
        raise ControlGroupError(f"campaign_id: must be a non-empty string, got {campaign_id!r}")
    ids = _id_strings(customer_ids)
    prefix = hashlib.blake2b(f"{campaign_id}:".encode(), digest_size=_DIGEST_BYTES)
    digests = bytearray()
    for text in ids:
        h = prefix.copy()
        h.update(text.encode("utf-8"))
        digests += h.digest()
    words = np.frombuffer(bytes(digests), dtype=">u8")
    return words.astype(np.float64) * _SCALE


def control_mask(
    campaign_id: str, customer_ids: Sequence[str] | npt.ArrayLike | pl.Series, share: float
) -> npt.NDArray[np.bool_]:
    """True for customers held out as the campaign's control group (expected ``share``)."""
    share = _check_share(share)
    draw = control_draw(campaign_id, customer_ids)
    if share >= 1.0:  # the draw can round up to 1.0 in float64; everybody is in control
        return np.ones(draw.size, dtype=np.bool_)
    return draw < share


def is_control(campaign_id: str, customer_id: str | int, share: float) -> bool:
    """Whether one customer is in the campaign's control group (same rule as control_mask).

    The same draw as `control_draw`, computed without numpy: this runs on every request.
    """
    share = _check_share(share)
    if not isinstance(campaign_id, str) or not campaign_id:
        raise ControlGroupError(f"campaign_id: must be a non-empty string, got {campaign_id!r}")
    text = customer_id if isinstance(customer_id, str) else _convert_items([customer_id])[0]
    if share >= 1.0:
        return True
    digest = hashlib.blake2b(f"{campaign_id}:{text}".encode(), digest_size=_DIGEST_BYTES).digest()
    return float(int.from_bytes(digest, "big")) * _SCALE < share


def _check_share(share: float) -> float:
    if isinstance(share, bool) or not isinstance(share, int | float | np.floating | np.integer):
        raise ControlGroupError(f"share: must be a number in [0, 1], got {share!r}")
    value = float(share)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ControlGroupError(f"share: must be in [0, 1], got {share!r}")
    return value


def _id_strings(customer_ids: Sequence[str] | npt.ArrayLike | pl.Series) -> list[str]:
    if isinstance(customer_ids, pl.Series):
        if customer_ids.null_count():
            row = int(customer_ids.is_null().arg_true()[0])
            raise ControlGroupError(f"customer_ids: null id at row {row}")
        if customer_ids.dtype.is_integer():
            return [str(v) for v in customer_ids.to_list()]
        if customer_ids.dtype != pl.String:
            raise ControlGroupError(
                f"customer_ids: must be strings or integers, got dtype {customer_ids.dtype}"
            )
        return list(customer_ids.to_list())
    if isinstance(customer_ids, np.ndarray):
        if customer_ids.ndim != 1:
            raise ControlGroupError("customer_ids: must be one-dimensional")
        if customer_ids.dtype.kind in "iu":
            return [str(v) for v in customer_ids.tolist()]
        if customer_ids.dtype.kind == "U":
            return list(customer_ids.tolist())
        if customer_ids.dtype.kind != "O":
            raise ControlGroupError(
                f"customer_ids: must be strings or integers, got dtype {customer_ids.dtype}"
            )
        return _convert_items(customer_ids.tolist())
    if isinstance(customer_ids, str | bytes):
        raise ControlGroupError("customer_ids: must be a sequence of ids, not a single string")
    if not isinstance(customer_ids, Iterable):
        raise ControlGroupError(f"customer_ids: must be a sequence, got {type(customer_ids)}")
    return _convert_items(customer_ids)


def _convert_items(items: Iterable[object]) -> list[str]:
    out: list[str] = []
    for row, value in enumerate(items):
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, int | np.integer) and not isinstance(value, bool):
            out.append(str(int(value)))
        else:
            raise ControlGroupError(
                f"customer_ids: row {row} must be a string or integer id, got {value!r}"
            )
    return out
