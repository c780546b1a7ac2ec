"""Configuration of the synthetic retail world: one frozen dataclass, validated on creation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# response families of the offer history and its ground truth (see `synth.response` for
# ``curve``, `synth.archetypes` for ``archetypes``)
RESPONSE_FAMILIES = ("curve", "archetypes")


@dataclass(frozen=True)
class WorldConfig:
    """Everything that shapes a generated world; the same config gives byte-identical tables.

    ``customers``, ``items``, ``days`` and ``seed`` are the main knobs; the rest have defaults
    that give a realistic mid-size retailer. ``chunk_customers`` bounds memory: customers are
    generated and written in chunks of that size (changing it changes the random draws).

    ``response_family`` chooses how customers respond to offers: ``curve`` (the default, the
    functional form our bonus model assumes) or ``archetypes`` (latent uplift archetypes with
    effects on the log-odds, see `synth.archetypes`). Both families give the same customers and
    organic purchases for a seed; they differ in the offer history and its ground truth. Under
    ``archetypes`` the history is a shop's randomised test: a campaign every ~60 days (unless
    ``campaigns`` is set), each arm a (mechanic, bonus level) of `synth.archetypes.ARMS`, so
    ``bonus_grid`` applies to the ``curve`` family only.
    """

    customers: int
    items: int
    days: int
    seed: int
    start: date = date(2025, 1, 1)
    chunk_customers: int = 100_000
    stores: int = 40
    offer_window_days: int = 14
    campaigns: int | None = None  # default: one every ~30 days, at least 3
    campaign_share: tuple[float, float] = (0.08, 0.25)  # share of customers each campaign reaches
    control_share: float = 0.2
    bonus_grid: tuple[float, ...] = (0.0, 50.0, 100.0, 200.0, 300.0, 500.0)
    accrual_rate: float = 0.03  # points earned per unit of amount
    points_expiry_days: int = 180
    offer_points_expiry_days: int = 30
    return_scale: float = 1.0  # multiplies every category's return rate
    response_family: str = "curve"  # one of RESPONSE_FAMILIES

    def __post_init__(self) -> None:
        _at_least("customers", self.customers, 1)
        _at_least("items", self.items, 12)
        _at_least("days", self.days, 30)
        _at_least("chunk_customers", self.chunk_customers, 1)
        _at_least("stores", self.stores, 1)
        _at_least("offer_window_days", self.offer_window_days, 1)
        _at_least("points_expiry_days", self.points_expiry_days, 1)
        _at_least("offer_points_expiry_days", self.offer_points_expiry_days, 1)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {self.seed!r}")
        if not isinstance(self.start, date):
            raise ValueError(f"start: expected a date, got {self.start!r}")
        if self.offer_window_days * 2 >= self.days:
            raise ValueError(
                f"offer_window_days: {self.offer_window_days} leaves no room for campaigns "
                f"in {self.days} days (needs less than days / 2)"
            )
        if self.campaigns is not None:
            _at_least("campaigns", self.campaigns, 1)
        low, high = self.campaign_share
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(
                f"campaign_share: expected 0 < low <= high <= 1, got {self.campaign_share!r}"
            )
        if not 0.0 <= self.control_share < 1.0:
            raise ValueError(f"control_share: expected a value in [0, 1), got {self.control_share}")
        if not self.bonus_grid or any(b < 0 for b in self.bonus_grid):
            raise ValueError(
                f"bonus_grid: expected non-negative bonus levels, got {self.bonus_grid!r}"
            )
        if list(self.bonus_grid) != sorted(set(self.bonus_grid)):
            raise ValueError(
                f"bonus_grid: expected distinct levels in increasing order, got {self.bonus_grid!r}"
            )
        if not 0.0 <= self.accrual_rate < 1.0:
            raise ValueError(f"accrual_rate: expected a value in [0, 1), got {self.accrual_rate}")
        if self.return_scale < 0:
            raise ValueError(f"return_scale: expected >= 0, got {self.return_scale}")
        if self.response_family not in RESPONSE_FAMILIES:
            raise ValueError(
                f"response_family: expected one of {RESPONSE_FAMILIES}, "
                f"got {self.response_family!r}"
            )

    @property
    def n_campaigns(self) -> int:
        """The number of campaigns in the offer history."""
        if self.campaigns is not None:
            return self.campaigns
        if self.response_family == "archetypes":
            return max(3, self.days // 60)
        return max(3, self.days // 30)


def _at_least(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected at least {minimum}, got {value}")
