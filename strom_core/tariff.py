"""Static tariffs: what a charging session costs, in exact integer msat.

A tariff has three components that add up: energy (msat per kWh), time (msat per minute,
prorated per second) and a flat session fee charged once the charger has started a
transaction. It also bounds the prepayment a driver may send. A copy of the tariff is frozen
into each session when its invoice is created, so the price a driver saw when paying is the
price billed, whatever the operator changes later.

Reservations (a paid hold on a connector for a driver on the way, :mod:`strom_core.session`):
a charger offers them when ``reservation_max_minutes > 0``. Reserving for ``m`` minutes costs
:meth:`Tariff.reservation_fee` = ``reservation_fee_msat + reservation_fee_msat_per_minute * m``.
The payment is the session's budget, so the fee counts toward charging when the driver starts
in time; otherwise :meth:`Tariff.reservation_kept` of it (``reservation_kept_percent``, floored)
is kept and the rest refunded.

Idle fee: once the charger reports the car finished but still plugged (the session core's
:class:`~strom_core.session_events.VehicleIdle`), every whole minute beyond
``idle_grace_minutes`` costs ``idle_msat_per_minute`` until the car draws again or the
transaction stops (:meth:`Tariff.idle_cost`). The grace counts once per session.

Dynamic energy prices: a session may carry a frozen :class:`~strom_core.prices.PriceSchedule`;
its energy is then billed per interval of the schedule (:mod:`strom_core.billing`) instead of at
``energy_msat_per_kwh``, which stays the price of static tariffs. Time, session and idle fees
are the same either way.

Rounding (see :mod:`strom_core.units`): each component floors separately, so the total is never more
than the exact price.
"""

from __future__ import annotations

from dataclasses import dataclass

from strom_core.errors import ConfigError
from strom_core.units import Msat, energy_cost_msat, time_cost_msat

__all__ = ["MAX_RESERVATION_MINUTES", "Tariff"]

MAX_RESERVATION_MINUTES = 24 * 60  # a day: longer holds are not reservations


@dataclass(frozen=True, slots=True)
class Tariff:
    """A static price list, all in msat."""

    energy_msat_per_kwh: int
    time_msat_per_minute: int = 0
    session_fee_msat: int = 0
    min_prepay_msat: int = 1_000_000
    max_prepay_msat: int = 1_000_000_000
    reservation_fee_msat: int = 0  # flat, per reservation
    reservation_fee_msat_per_minute: int = 0
    reservation_max_minutes: int = 0  # 0: no reservations at this charger
    reservation_kept_percent: int = 100  # share of the fee kept when the payer does not start
    idle_msat_per_minute: int = 0  # after the car finished but is still plugged
    idle_grace_minutes: int = 0  # free idle minutes before the idle fee runs

    def __post_init__(self) -> None:
        for name in (
            "energy_msat_per_kwh",
            "time_msat_per_minute",
            "session_fee_msat",
            "min_prepay_msat",
            "max_prepay_msat",
            "reservation_fee_msat",
            "reservation_fee_msat_per_minute",
            "reservation_max_minutes",
            "reservation_kept_percent",
            "idle_msat_per_minute",
            "idle_grace_minutes",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                unit = " msat" if "msat" in name else ""
                raise ConfigError(
                    f"tariff {name} must be a non-negative integer{unit}, got {value!r}"
                )
        if self.reservation_kept_percent > 100:
            raise ConfigError(
                "tariff reservation_kept_percent must be 0 to 100, "
                f"got {self.reservation_kept_percent}"
            )
        if self.reservation_max_minutes > MAX_RESERVATION_MINUTES:
            raise ConfigError(
                f"tariff reservation_max_minutes must be at most {MAX_RESERVATION_MINUTES}, "
                f"got {self.reservation_max_minutes}"
            )
        if self.reservation_fee(self.reservation_max_minutes) > self.max_prepay_msat:
            raise ConfigError(
                "tariff reservation fee for the longest reservation exceeds max_prepay "
                f"({self.reservation_fee(self.reservation_max_minutes)} > "
                f"{self.max_prepay_msat} msat)"
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

    @property
    def offers_reservations(self) -> bool:
        """Whether drivers may reserve a connector at this tariff."""
        return self.reservation_max_minutes > 0

    def reservation_fee(self, minutes: int) -> Msat:
        """The fee for reserving a connector for ``minutes``."""
        return Msat(self.reservation_fee_msat + self.reservation_fee_msat_per_minute * minutes)

    def reservation_kept(self, fee_msat: int) -> Msat:
        """How much of a reservation fee is kept when the payer does not start (floored)."""
        return Msat(fee_msat * self.reservation_kept_percent // 100)

    def reservation_min_msat(self, minutes: int) -> Msat:
        """The least a driver may pay to reserve for ``minutes``: the fee, and the minimum."""
        return Msat(max(self.reservation_fee(minutes), self.min_prepay_msat))

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

    def idle_cost(self, idle_seconds: int) -> Msat:
        """The idle fee for ``idle_seconds`` of idling: whole minutes beyond the grace."""
        billed_minutes = max(0, idle_seconds - 60 * self.idle_grace_minutes) // 60
        return Msat(billed_minutes * self.idle_msat_per_minute)

    def interval_cost(
        self, power_w: int, seconds: int, energy_msat_per_kwh: int | None = None
    ) -> Msat:
        """Most a session can cost over ``seconds`` at full ``power_w`` (energy, time, idle).

        Used to stop early enough that a budget is overrun by at most one meter interval.
        ``energy_msat_per_kwh`` is the highest price of the interval for a session billed by a
        schedule (the tariff's own energy price otherwise). The idle fee is counted as if the
        interval were idle (at most one more whole minute than it lasts).
        """
        price = self.energy_msat_per_kwh if energy_msat_per_kwh is None else energy_msat_per_kwh
        energy_wh = -(-power_w * seconds // 3600)  # round up: assume the worst
        idle_minutes = -(-seconds // 60) + 1 if self.idle_msat_per_minute else 0
        return Msat(
            max(0, energy_cost_msat(energy_wh, price))
            + time_cost_msat(seconds, self.time_msat_per_minute)
            + idle_minutes * self.idle_msat_per_minute
            + 1
        )

    def quote(self, energy_wh: int, seconds: int) -> Msat:
        """What a driver pays for ``energy_wh`` delivered in ``seconds`` (fee included)."""
        return self.cost(energy_wh, seconds)
