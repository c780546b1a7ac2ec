"""Uplift metrics on randomised data: Qini curve and coefficient, AUUC, uplift at top k.

Inputs are per row: an uplift ``score`` (higher = more worth treating), ``treated`` (True for
an offer, False for a control hold-out) and the binary ``outcome``. Rows are ranked by score,
best first; tied scores enter the curves together (the curves are evaluated only where the
score changes, as ROC curves are), so the result does not depend on the order of ties.

With ``Y_t(k), N_t(k)`` the converted and total treated rows among the first ``k``, and
``Y_c(k), N_c(k)`` the same for control rows:

- Qini curve (Radcliffe): ``Q(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k)`` (0 while ``N_c = 0``),
  the incremental conversions gained by treating the first ``k`` rows, in treated-group units.
- Uplift curve: ``U(k) = (Y_t(k) / N_t(k) - Y_c(k) / N_c(k)) * k`` (0 while either group is
  empty), the incremental conversions if all ``k`` rows were treated.
- AUC of a curve = trapezoid area over ``k = 0..n`` divided by ``n``. The random ranking is the
  straight line from ``(0, 0)`` to ``(n, Q(n))``.
- Normalised Qini (the Qini coefficient, as in scikit-uplift's ``qini_auc_score``) =
  ``(AUC_model - AUC_random) / (AUC_perfect - AUC_random)``; the perfect ranking puts treated
  converters first and control converters last (it allows negative effects). 1 = perfect,
  0 = random. The normalised AUUC is the same ratio on the uplift curve, whose perfect ranking
  (also scikit-uplift's) puts the rows with outcome == treated first.
- Uplift at top ``p``: ``mean(outcome | treated) - mean(outcome | control)`` among the top
  ``ceil(p * n)`` rows (rows tied at the cut-off score are all included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class UpliftMetricsError(ValueError):
    """Uplift metric inputs are unusable (the message names the argument)."""


@dataclass(frozen=True)
class Curve:
    """A cumulative curve: ``x`` rows taken (0..n, at score changes) and the curve ``y``."""

    x: FloatArray
    y: FloatArray

    def auc(self) -> float:
        """Trapezoid area divided by the number of rows."""
        n = float(self.x[-1])
        if n <= 0:
            return 0.0
        return float(np.trapezoid(self.y, self.x) / n)


def _inputs(
    score: npt.ArrayLike, treated: npt.ArrayLike, outcome: npt.ArrayLike
) -> tuple[FloatArray, npt.NDArray[np.bool_], FloatArray]:
    s = np.asarray(score, dtype=np.float64)
    t = np.asarray(treated)
    y = np.asarray(outcome, dtype=np.float64)
    if s.ndim != 1 or t.shape != s.shape or y.shape != s.shape:
        raise UpliftMetricsError(
            f"score, treated and outcome must be 1-d of one length, got {s.shape}, "
            f"{t.shape}, {y.shape}"
        )
    if s.size == 0:
        raise UpliftMetricsError("score: no rows")
    if not np.isfinite(s).all():
        raise UpliftMetricsError(f"score: NaN or infinite at row {int(np.argmin(np.isfinite(s)))}")
    if t.dtype != np.bool_:
        if not np.isin(t, (0, 1)).all():
            raise UpliftMetricsError("treated: must be boolean or 0/1")
        t = t.astype(np.bool_)
    if not np.isin(y, (0.0, 1.0)).all():
        raise UpliftMetricsError("outcome: must be binary (0/1 or bool)")
    if t.all() or not t.any():
        raise UpliftMetricsError("treated: needs both treated and control rows")
    return s, t, y


def _cumulative(
    score: FloatArray, treated: npt.NDArray[np.bool_], outcome: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """k, N_t, Y_t, N_c, Y_c at each distinct-score boundary, starting with k = 0."""
    order = np.argsort(-score, kind="stable")
    s, t, y = score[order], treated[order], outcome[order]
    n_t = np.cumsum(t)
    y_t = np.cumsum(y * t)
    n_c = np.cumsum(~t)
    y_c = np.cumsum(y * ~t)
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # last row of each tie group
    k = (ends + 1).astype(np.float64)

    def pick(a: npt.NDArray[Any]) -> FloatArray:
        return np.concatenate([[0.0], a[ends].astype(np.float64)])

    return np.r_[0.0, k], pick(n_t), pick(y_t), pick(n_c), pick(y_c)


def qini_curve(score: npt.ArrayLike, treated: npt.ArrayLike, outcome: npt.ArrayLike) -> Curve:
    """The Qini curve (see the module docstring)."""
    s, t, y = _inputs(score, treated, outcome)
    k, n_t, y_t, n_c, y_c = _cumulative(s, t, y)
    ratio = np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c > 0)
    return Curve(k, y_t - y_c * ratio)


def uplift_curve(score: npt.ArrayLike, treated: npt.ArrayLike, outcome: npt.ArrayLike) -> Curve:
    """The uplift (gain) curve (see the module docstring)."""
    s, t, y = _inputs(score, treated, outcome)
    k, n_t, y_t, n_c, y_c = _cumulative(s, t, y)
    both = (n_t > 0) & (n_c > 0)
    rate_t = np.divide(y_t, n_t, out=np.zeros_like(y_t), where=both)
    rate_c = np.divide(y_c, n_c, out=np.zeros_like(y_c), where=both)
    return Curve(k, (rate_t - rate_c) * k)


def _perfect_score(treated: npt.NDArray[np.bool_], outcome: FloatArray) -> FloatArray:
    return outcome * treated - outcome * ~treated


def _perfect_uplift_score(treated: npt.NDArray[np.bool_], outcome: FloatArray) -> FloatArray:
    """scikit-uplift's perfect uplift ranking: rows with outcome == treated come first."""
    t = treated.astype(np.float64)
    control_converters = np.sum((outcome == 1) & ~treated)
    treated_non_converters = np.sum((outcome == 0) & treated)
    summand = outcome if control_converters > treated_non_converters else t
    return np.asarray(2.0 * (outcome == t) + summand, dtype=np.float64)


def _normalised(model: Curve, perfect: Curve) -> float:
    def random_auc(c: Curve) -> float:
        return float(c.y[-1]) / 2.0

    denom = perfect.auc() - random_auc(perfect)
    if denom <= 0 or not math.isfinite(denom):
        return math.nan
    return (model.auc() - random_auc(model)) / denom


def qini_auc(score: npt.ArrayLike, treated: npt.ArrayLike, outcome: npt.ArrayLike) -> float:
    """The normalised Qini coefficient: 0 = random ranking, 1 = perfect (NaN if undefined)."""
    s, t, y = _inputs(score, treated, outcome)
    return _normalised(qini_curve(s, t, y), qini_curve(_perfect_score(t, y), t, y))


def auuc(score: npt.ArrayLike, treated: npt.ArrayLike, outcome: npt.ArrayLike) -> float:
    """Area under the uplift curve divided by n: mean incremental conversions per row."""
    return uplift_curve(score, treated, outcome).auc()


def auuc_normalised(score: npt.ArrayLike, treated: npt.ArrayLike, outcome: npt.ArrayLike) -> float:
    """AUUC normalised like the Qini coefficient (0 = random, 1 = perfect)."""
    s, t, y = _inputs(score, treated, outcome)
    return _normalised(uplift_curve(s, t, y), uplift_curve(_perfect_uplift_score(t, y), t, y))


def uplift_at_top(
    score: npt.ArrayLike, treated: npt.ArrayLike, outcome: npt.ArrayLike, share: float
) -> float:
    """Observed uplift (treated rate - control rate) among the top ``share`` of rows.

    NaN when the top rows hold no treated or no control row.
    """
    if not 0.0 < share <= 1.0:
        raise UpliftMetricsError(f"share: must be in (0, 1], got {share}")
    s, t, y = _inputs(score, treated, outcome)
    cut = np.sort(s)[::-1][math.ceil(share * s.size) - 1]
    top = s >= cut
    tt, tc = top & t, top & ~t
    if not tt.any() or not tc.any():
        return math.nan
    return float(y[tt].mean() - y[tc].mean())


def uplift_by_decile(
    score: npt.ArrayLike,
    treated: npt.ArrayLike,
    outcome: npt.ArrayLike,
    bins: int = 10,
) -> list[dict[str, float]]:
    """Per score bin (bin 1 = highest scores): counts, rates, observed and mean predicted uplift.

    Bins are by rank (equal row counts up to ties broken by position).
    """
    s, t, y = _inputs(score, treated, outcome)
    if bins < 1:
        raise UpliftMetricsError(f"bins: must be >= 1, got {bins}")
    order = np.argsort(-s, kind="stable")
    out = []
    for b, rows in enumerate(np.array_split(order, bins), start=1):
        if rows.size == 0:
            continue
        rt, rc = rows[t[rows]], rows[~t[rows]]
        rate_t = float(y[rt].mean()) if rt.size else math.nan
        rate_c = float(y[rc].mean()) if rc.size else math.nan
        out.append(
            {
                "bin": float(b),
                "n_treated": float(rt.size),
                "n_control": float(rc.size),
                "rate_treated": rate_t,
                "rate_control": rate_c,
                "uplift": rate_t - rate_c,
                "predicted": float(s[rows].mean()),
            }
        )
    return out


def uplift_report(
    score: npt.ArrayLike, treated: npt.ArrayLike, outcome: npt.ArrayLike
) -> dict[str, Any]:
    """Every metric of this module in one JSON-able dict."""
    s, t, y = _inputs(score, treated, outcome)
    return {
        "rows": int(s.size),
        "treated": int(t.sum()),
        "qini_auc": qini_auc(s, t, y),
        "auuc": auuc(s, t, y),
        "auuc_normalised": auuc_normalised(s, t, y),
        "uplift_top_10": uplift_at_top(s, t, y, 0.1),
        "uplift_top_20": uplift_at_top(s, t, y, 0.2),
        "uplift_top_30": uplift_at_top(s, t, y, 0.3),
        "overall_uplift": float(y[t].mean() - y[~t].mean()),
        "by_decile": uplift_by_decile(s, t, y),
    }
