"""Power limits routed by the OCPP version a charger speaks (implements ``PowerLimits``).

A charger's limits go to the command set of its live connection when that set carries them
(OCPP 1.6: :mod:`ocpp_server.v16.smart_charging`); a version whose set does not answers
``NOT_SUPPORTED`` and nothing is sent, and a charger without a live connection ``OFFLINE``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ocpp_server.commands import OcppCommands
from strom_core.ports import CommandResult
from strom_core.ports.power import CompositeSchedule, PowerLimits, SchedulePeriod

__all__ = ["OcppPowerLimits"]


class OcppPowerLimits:
    """Power limits to connected chargers, by charger id.

    Args:
        commands: the server's commands, routed by each connection's version.
    """

    def __init__(self, commands: OcppCommands) -> None:
        self._commands = commands

    def offered(self, charger_id: str) -> bool:
        """Whether a driver is offered power options at the charger now.

        Its live connection's version must carry power limits, and a 1.6 charger that reported
        its feature profiles must have named SmartCharging among them.
        """
        return not isinstance(self._limits(charger_id), CommandResult) and not (
            self._commands.lacks_feature(charger_id, "SmartCharging")
        )

    def _limits(self, charger_id: str) -> PowerLimits | CommandResult:
        return self._commands.live_capable(charger_id, PowerLimits, "power limits")

    async def set_charger_limit(self, charger_id: str, limit_w: int | None) -> CommandResult:
        """Cap the whole charger at ``limit_w`` watts (None: remove the cap)."""
        target = self._limits(charger_id)
        if isinstance(target, CommandResult):
            return target
        return await target.set_charger_limit(charger_id, limit_w)

    async def limit_session(
        self, charger_id: str, connector_id: int, transaction: str | None, limit_w: int
    ) -> CommandResult:
        """Limit the running transaction (or, when None, the connector's next one)."""
        target = self._limits(charger_id)
        if isinstance(target, CommandResult):
            return target
        return await target.limit_session(charger_id, connector_id, transaction, limit_w)

    async def clear_session_limit(self, charger_id: str, connector_id: int) -> CommandResult:
        """Remove the session limit of a connector."""
        target = self._limits(charger_id)
        if isinstance(target, CommandResult):
            return target
        return await target.clear_session_limit(charger_id, connector_id)

    async def plan_session(
        self,
        charger_id: str,
        connector_id: int,
        transaction: str,
        start: datetime,
        duration_s: int,
        periods: tuple[SchedulePeriod, ...],
    ) -> CommandResult:
        """Give the running transaction a schedule (charge when cheap)."""
        target = self._limits(charger_id)
        if isinstance(target, CommandResult):
            return target
        return await target.plan_session(
            charger_id, connector_id, transaction, start, duration_s, periods
        )

    async def composite_schedule(
        self, charger_id: str, connector_id: int, duration_s: int
    ) -> CompositeSchedule:
        """The charger's composite schedule for a connector (0: the whole charger)."""
        target = self._limits(charger_id)
        if isinstance(target, CommandResult):
            return CompositeSchedule(target, connector_id)
        return await target.composite_schedule(charger_id, connector_id, duration_s)


if TYPE_CHECKING:
    _IS_POWER_LIMITS: type[PowerLimits] = OcppPowerLimits
