"""Power limits on chargers: a site limit per charger and a lower power for one session.

Theory of operation
-------------------
An operator caps what a whole charger may draw (the *site limit*: the house connection, a
shared fuse); a driver may choose to charge slower than the connector can. Both reach the
charger as charging profiles (OCPP smart charging): the site limit as the charger's maximum,
the driver's choice as a limit of the running transaction (or of the next one on the connector,
before it starts), and a driver's "charge when cheap" plan (:mod:`strom_core.charge_plan`) as a
schedule of the running transaction: full power in the cheap hours, 0 W in the others. The charger
combines every profile it holds into its *composite schedule*, the power it will actually allow; an
operator reads it to see what is in force.

The limits are all in whole watts. A command returns a :class:`CommandResult` like every
other charger command and never raises for what a charger does; a version that cannot carry a
limit answers ``NOT_SUPPORTED`` and sends nothing. Only a limit the charger ACCEPTED may lower
the power a session's budget stop assumes (:mod:`strom_core.session`): the stop comes later at a
lower power, so a limit the charger ignored would let the session overrun its budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from strom_core.errors import ConfigError
from strom_core.ports.chargers import CommandResult

__all__ = ["CompositeSchedule", "PowerLimits", "SchedulePeriod", "check_limit_w"]

MIN_LIMIT_W = 1_000  # below about 1.4 kW (6 A single phase) no vehicle charges at all
MAX_LIMIT_W = 1_000_000


def check_limit_w(limit_w: int, *, most_w: int = MAX_LIMIT_W) -> int:
    """A power limit in whole watts, checked.

    Args:
        limit_w: the limit.
        most_w: the highest limit that makes sense here (the connector's or charger's power).

    Returns:
        ``limit_w``.

    Raises:
        ConfigError: not an int, below 1 kW or above ``most_w``.
    """
    if isinstance(limit_w, bool) or not isinstance(limit_w, int):
        raise ConfigError(f"a power limit is a whole number of watts, got {limit_w!r}")
    if not MIN_LIMIT_W <= limit_w <= most_w:
        raise ConfigError(
            f"a power limit must be between {MIN_LIMIT_W} W and {most_w} W, got {limit_w} W"
        )
    return limit_w


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    """From ``start_s`` seconds after the schedule's start, at most ``limit_w`` watts."""

    start_s: int
    limit_w: int


@dataclass(frozen=True, slots=True)
class CompositeSchedule:
    """What a charger says it will allow on a connector (0: the whole charger).

    Attributes:
        result: the command's result; the other fields are empty unless it was ACCEPTED.
        connector_id: the connector the schedule is for.
        start: when the schedule starts (the charger's timestamp), if it said.
        duration_s: how long the schedule runs, if it said.
        periods: the limits in time order.
    """

    result: CommandResult
    connector_id: int = 0
    start: str | None = None
    duration_s: int | None = None
    periods: tuple[SchedulePeriod, ...] = ()


@runtime_checkable
class PowerLimits(Protocol):
    """Power limits on chargers, in whole watts. No method raises for a charger's answer."""

    async def set_charger_limit(self, charger_id: str, limit_w: int | None) -> CommandResult:
        """Cap the whole charger at ``limit_w`` (None: remove the cap)."""
        ...

    async def limit_session(
        self, charger_id: str, connector_id: int, transaction: str | None, limit_w: int
    ) -> CommandResult:
        """Limit the running transaction (``transaction``) or, when None, the next one."""
        ...

    async def clear_session_limit(self, charger_id: str, connector_id: int) -> CommandResult:
        """Remove the session limit of a connector (its session ended)."""
        ...

    async def plan_session(
        self,
        charger_id: str,
        connector_id: int,
        transaction: str,
        start: datetime,
        duration_s: int,
        periods: tuple[SchedulePeriod, ...],
    ) -> CommandResult:
        """Give the running transaction a schedule (charge when cheap).

        From ``start`` on, each period's limit holds (0 W: wait) until the next period; after
        ``duration_s`` seconds the schedule ends and the session's own limit holds again. It
        sits above the session's limit (:meth:`limit_session`) without replacing it; a new
        plan replaces the previous one.
        """
        ...

    async def composite_schedule(
        self, charger_id: str, connector_id: int, duration_s: int
    ) -> CompositeSchedule:
        """The charger's composite schedule for the next ``duration_s`` seconds."""
        ...
