"""Static tariffs: what a charging session costs, in exact integer msat.

A tariff has three components that add up: energy (msat per kWh), time (msat per minute,
prorated per second) and a flat session fee charged once the charger has started a
transaction. It also bounds the prepayment a driver may send. A copy of the tariff is frozen
into each session when its invoice is created, so the price a driver saw when paying is the
price billed, whatever the operator changes later.

Rounding (see :mod:`strom_core.units`): each component floors separately, so the total is never more
than the exact price.
"""

from __future__ import annotations

from dataclasses import dataclass

from strom_core.errors import ConfigError
from strom_core.units import Msat, energy_cost_msat, time_cost_msat

__all__ = ["Tariff"]


@dataclass(frozen=True, slots=True)
class Tariff:
    """A static price list, all in msat."""

    energy_msat_per_kwh: int
    time_msat_per_minute: int = 0
    session_fee_msat: int = 0
    min_prepay_msat: int = 1_000_000
    max_prepay_msat: int = 1_000_000_000

    def __post_init__(self) -> None:
        for name in (
            "energy_msat_per_kwh",
            "time_msat_per_minute",
            "session_fee_msat",
            "min_prepay_msat",
            "max_prepay_msat",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(
                    f"tariff {name} must be a non-negative integer msat, got {value!r}"
                )
        if self.min_prepay_msat > self.max_prepay_msat:
            raise ConfigError(
                "tariff min_prepay must not exceed max_prepay "
                f"({self.min_prepay_msat} > {self.max_prepay_msat} msat)"
            )
        if self.min_prepay_msat <= self.session_fee_msat:
            raise ConfigError(
                "tariff min_prepay must exceed the session fee, or a minimum payment buys no "
                f"energy ({self.min_prepay_msat} <= {self.session_fee_msat} msat)"
            )

    def cost(self, energy_wh: int, seconds: int, *, started: bool = True) -> Msat:
        """Cost of a session that delivered ``energy_wh`` over ``seconds``.

        Args:
            energy_wh: energy delivered, from the meter register (stop - start).
            seconds: elapsed charging time since the transaction started.
            started: whether the charger started a transaction; no fee is due otherwise.

        Returns:
            The total in msat, each component floored.
        """
        if not started:
            return Msat(0)
        return Msat(
            self.session_fee_msat
            + energy_cost_msat(energy_wh, self.energy_msat_per_kwh)
            + time_cost_msat(seconds, self.time_msat_per_minute)
        )

    def interval_cost(self, power_w: int, seconds: int) -> Msat:
        """Most a session can cost over ``seconds`` at full ``power_w`` (energy plus time).

        Used to stop early enough that a budget is overrun by at most one meter interval.
        """
        energy_wh = -(-power_w * seconds // 3600)  # round up: assume the worst
        return Msat(
            energy_cost_msat(energy_wh, self.energy_msat_per_kwh)
            + time_cost_msat(seconds, self.time_msat_per_minute)
            + 1
        )

    def quote(self, energy_wh: int, seconds: int) -> Msat:
        """What a driver pays for ``energy_wh`` delivered in ``seconds`` (fee included)."""
        return self.cost(energy_wh, seconds)
