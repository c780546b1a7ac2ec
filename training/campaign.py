"""Campaign planning over a trained bundle: who is in the audience, and the budgeted plan.

`offers campaign` and the service's `StreamCampaignOffers` both call `plan_campaign`, so the
same campaign id, audience and budget give the same answer whichever way it is asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import polars as pl

from features.columns import Col
from features.names import Feat
from training.bonus.optimizer import Allocation
from training.bonus.rule_book import RuleAllocation, load_book
from training.bundle import load_bundle

ALL = "all"


class AudienceError(ValueError):
    """The audience cannot be selected as asked; ``field`` names the offending argument."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Segments:
    """Per-customer segment labels from the bundle (aligned arrays of text)."""

    customer_ids: np.ndarray
    rfm_code: np.ndarray
    rfm_group: np.ndarray
    lifecycle_stage: np.ndarray

    def names(self) -> set[str]:
        """Every segment name a campaign may target: RFM groups, lifecycle stages, ``all``."""
        return {ALL} | {str(x) for x in np.concatenate([self.rfm_group, self.lifecycle_stage]) if x}

    def members(self, segment: str) -> np.ndarray:
        """Customer ids in ``segment``."""
        if segment == ALL:
            return self.customer_ids
        if segment not in self.names():
            known = ", ".join(sorted(self.names()))
            raise AudienceError("segment", f"unknown segment {segment!r} (known: {known})")
        hit = (self.rfm_group == segment) | (self.lifecycle_stage == segment)
        members: np.ndarray = self.customer_ids[hit]
        return members

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Segments:
        """The segments saved in a bundle (`training.pipeline.SEGMENTS` arrays)."""
        return cls(
            customer_ids=arrays[Col.CUSTOMER],
            rfm_code=arrays[Feat.RFM_CODE],
            rfm_group=arrays[Feat.RFM_SEGMENT],
            lifecycle_stage=arrays[Feat.LIFECYCLE_STAGE],
        )


class CampaignBook(Protocol):
    """What planning needs of a book: `training.bonus.book.OfferBook` (model-priced options)
    or `training.bonus.rule_book.RuleBook` (rule-based, budget at worst-case cost)."""

    @property
    def rows_by_customer(self) -> dict[str, int]: ...

    def plan(
        self,
        rows: np.ndarray,
        *,
        campaign_id: str,
        budget: float | None,
        control_share: float,
    ) -> tuple[pl.DataFrame, Allocation | RuleAllocation]: ...


@dataclass(frozen=True)
class CampaignPlan:
    """The plan (one row per audience customer in the book) and what was left out.

    ``allocation`` is an `Allocation` (optimizer: expected profit, cost, gap) for a model book
    and a `RuleAllocation` (worst-case cost, nothing predicted) for a rule book; the rows of a
    rule-based plan carry an extra ``rule`` column and null expected uplift and profit.
    """

    rows: pl.DataFrame
    allocation: Allocation | RuleAllocation
    not_in_book: tuple[str, ...]  # requested customers the book has no options for

    @property
    def rule_based(self) -> bool:
        """Whether the plan comes from the rule table (no predicted response)."""
        return isinstance(self.allocation, RuleAllocation)


def plan_campaign(
    book: CampaignBook,
    segments: Segments,
    *,
    campaign_id: str,
    budget: float | None,
    control_share: float,
    customer_ids: Sequence[str] | None = None,
    segment: str | None = None,
) -> CampaignPlan:
    """Plan a budgeted campaign for a list of customers or a named segment."""
    if (customer_ids is None) == (segment is None):
        raise AudienceError("audience", "give exactly one of customer ids and segment")
    if not campaign_id:
        raise AudienceError("campaign_id", "must not be empty")
    if not 0.0 <= control_share < 1.0:
        raise AudienceError("control_share", f"must be in [0, 1), got {control_share}")
    wanted = (
        np.asarray(customer_ids, dtype=str)
        if customer_ids is not None
        else segments.members(str(segment))
    )
    index = book.rows_by_customer
    rows = np.fromiter((index.get(str(c), -1) for c in wanted), dtype=np.int64, count=len(wanted))
    missing = tuple(str(c) for c, r in zip(wanted, rows, strict=True) if r < 0)
    rows = np.unique(rows[rows >= 0])
    frame, alloc = book.plan(
        rows, campaign_id=campaign_id, budget=budget, control_share=control_share
    )
    return CampaignPlan(frame, alloc, missing)


def load_campaign_inputs(path: Path | str) -> tuple[CampaignBook | None, Segments]:
    """The book (None when the bundle has none) and the customer segments of a bundle.

    The book is an `OfferBook` or a `RuleBook`, whichever training saved.
    """
    from training.pipeline import OFFER_BOOK, SEGMENTS

    bundle = load_bundle(path)
    book = load_book(*bundle.state(OFFER_BOOK)) if OFFER_BOOK in bundle.models else None
    return book, Segments.from_arrays(bundle.state(SEGMENTS)[1])
