"""OCPP 1.6 SmartCharging: power limits as charging profiles (implements ``PowerLimits``).

Theory of operation
-------------------
Strom sets at most three kinds of profile on a 1.6 charger, each with a fixed id so a new one
replaces the old (a charger keeps one profile per id):

* the site limit: ``ChargePointMaxProfile`` on connector 0, stack level 0, id
  :data:`SITE_PROFILE_ID`; it caps the whole charger whatever else it holds;
* a session's lower power: ``TxProfile`` for the running transaction (with its
  ``transactionId``), or ``TxDefaultProfile`` on the connector before the transaction started,
  id ``SESSION_PROFILE_BASE + connector``; ClearChargingProfile with that id removes it when the
  session ends;
* a session's "charge when cheap" plan: ``TxProfile`` for the running transaction, id
  ``PLAN_PROFILE_BASE + connector``, one stack level above the lower power, so it takes
  precedence while it runs and the lower power holds again after it. It is ``Absolute``: its
  ``startSchedule`` is the plan's start and its ``duration`` ends at the driver's deadline; its
  periods are the plan's, full power or 0 W (a 0 W limit is valid in 1.6). The charger drops a
  TxProfile with its transaction.

The site limit and the lower power are one ``Relative`` schedule with a single period from 0 s, in
watts (``chargingRateUnit`` ``W``): "at most this much, from now on". GetCompositeSchedule asks the
charger what it allows once its profiles are combined (a limit that is negative or beyond any float
in watts is an invalid answer: ``ERROR``). The profile payloads are built by pure functions here
(:func:`site_profile`, :func:`session_profile`) so tests and the simulator share them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from ocpp_server._connection import OutcomeKind
from ocpp_server.commands import VersionCommands, command_result
from ocpp_server.ocppj import format_timestamp
from ocpp_server.v16.messages import transaction_id
from strom_core.ports import CommandResult, CommandStatus
from strom_core.ports.power import CompositeSchedule, SchedulePeriod

__all__ = [
    "PLAN_PROFILE_BASE",
    "SESSION_PROFILE_BASE",
    "SITE_PROFILE_ID",
    "SmartCharging16",
    "plan_profile",
    "schedule_limit_w",
    "session_profile",
    "site_profile",
]

SITE_PROFILE_ID: Final = 1
SESSION_PROFILE_BASE: Final = 100
PLAN_PROFILE_BASE: Final = 200
_SESSION_STACK_LEVEL: Final = 1
_PLAN_STACK_LEVEL: Final = 2


def _schedule(limit_w: int) -> dict[str, Any]:
    return {
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": float(limit_w)}],
    }


def site_profile(limit_w: int) -> dict[str, Any]:
    """SetChargingProfile.req capping the whole charger at ``limit_w`` watts."""
    return {
        "connectorId": 0,
        "csChargingProfiles": {
            "chargingProfileId": SITE_PROFILE_ID,
            "stackLevel": 0,
            "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": _schedule(limit_w),
        },
    }


def session_profile(connector_id: int, transaction: int | None, limit_w: int) -> dict[str, Any]:
    """SetChargingProfile.req limiting a transaction (or, when None, the connector's next one)."""
    profile: dict[str, Any] = {
        "chargingProfileId": SESSION_PROFILE_BASE + connector_id,
        "stackLevel": _SESSION_STACK_LEVEL,
        "chargingProfilePurpose": "TxDefaultProfile" if transaction is None else "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": _schedule(limit_w),
    }
    if transaction is not None:
        profile["transactionId"] = transaction
    return {"connectorId": connector_id, "csChargingProfiles": profile}


def plan_profile(
    connector_id: int,
    transaction: int,
    start: datetime,
    duration_s: int,
    periods: tuple[SchedulePeriod, ...],
) -> dict[str, Any]:
    """SetChargingProfile.req giving a running transaction a plan (charge when cheap)."""
    return {
        "connectorId": connector_id,
        "csChargingProfiles": {
            "chargingProfileId": PLAN_PROFILE_BASE + connector_id,
            "transactionId": transaction,
            "stackLevel": _PLAN_STACK_LEVEL,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "duration": duration_s,
                "startSchedule": format_timestamp(start),
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [
                    {"startPeriod": p.start_s, "limit": float(p.limit_w)} for p in periods
                ],
            },
        },
    }


def _watts_per_unit(schedule: Mapping[str, Any]) -> float:
    """Watts per unit of a schedule's limits (amperes taken at 230 V on three phases)."""
    return 1.0 if schedule.get("chargingRateUnit") == "W" else 230.0 * 3


def schedule_limit_w(schedule: Mapping[str, Any]) -> int:
    """The lowest limit of a profile's schedule, in watts."""
    periods = schedule.get("chargingSchedulePeriod", [])
    return int(min(float(p["limit"]) for p in periods) * _watts_per_unit(schedule))


class SmartCharging16(VersionCommands):
    """The SmartCharging commands of the OCPP 1.6 command set."""

    async def set_charger_limit(self, charger_id: str, limit_w: int | None) -> CommandResult:
        """SetChargingProfile ChargePointMaxProfile (None: ClearChargingProfile of it)."""
        if limit_w is None:
            payload = {"id": SITE_PROFILE_ID}
            return await self._command(charger_id, "ClearChargingProfile", payload)
        return await self._command(charger_id, "SetChargingProfile", site_profile(limit_w))

    async def limit_session(
        self, charger_id: str, connector_id: int, transaction: str | None, limit_w: int
    ) -> CommandResult:
        """SetChargingProfile TxProfile for ``transaction`` (None: TxDefaultProfile).

        A reference that is no OCPP 1.6 transaction id is REJECTED and nothing is sent.
        """
        try:
            number = None if transaction is None else transaction_id(transaction)
        except ValueError as exc:
            return CommandResult(CommandStatus.REJECTED, str(exc))
        payload = session_profile(connector_id, number, limit_w)
        return await self._command(charger_id, "SetChargingProfile", payload)

    async def plan_session(
        self,
        charger_id: str,
        connector_id: int,
        transaction: str,
        start: datetime,
        duration_s: int,
        periods: tuple[SchedulePeriod, ...],
    ) -> CommandResult:
        """SetChargingProfile: an Absolute TxProfile above the session's lower power.

        A reference that is no OCPP 1.6 transaction id, or no periods, is REJECTED and nothing
        is sent.
        """
        try:
            number = transaction_id(transaction)
        except ValueError as exc:
            return CommandResult(CommandStatus.REJECTED, str(exc))
        if not periods or periods[0].start_s != 0 or duration_s < 1:
            return CommandResult(CommandStatus.REJECTED, "a plan starts at 0 s and lasts")
        payload = plan_profile(connector_id, number, start, duration_s, periods)
        return await self._command(charger_id, "SetChargingProfile", payload)

    async def clear_session_limit(self, charger_id: str, connector_id: int) -> CommandResult:
        """ClearChargingProfile of the connector's session profile (Unknown is ACCEPTED)."""
        payload = {"id": SESSION_PROFILE_BASE + connector_id}
        result = await self._command(charger_id, "ClearChargingProfile", payload)
        if result.status is CommandStatus.REJECTED and result.detail == "Unknown":
            return CommandResult(CommandStatus.ACCEPTED, "Unknown")  # nothing left to clear
        return result

    async def composite_schedule(
        self, charger_id: str, connector_id: int, duration_s: int
    ) -> CompositeSchedule:
        """GetCompositeSchedule in watts."""
        payload = {"connectorId": connector_id, "duration": duration_s, "chargingRateUnit": "W"}
        outcome = await self._call(charger_id, "GetCompositeSchedule", payload)
        result = command_result(outcome)
        if outcome.kind != OutcomeKind.ANSWERED or not result.accepted:
            return CompositeSchedule(result, connector_id)
        schedule = outcome.payload.get("chargingSchedule")
        if schedule is None:
            return CompositeSchedule(result, connector_id, outcome.payload.get("scheduleStart"))
        per_unit = _watts_per_unit(schedule)
        periods: list[SchedulePeriod] = []
        for period in schedule.get("chargingSchedulePeriod", []):
            watts = float(period["limit"]) * per_unit
            if not 0 <= watts < math.inf:  # fits the schema, yet no power a charger draws
                bad = CommandResult(CommandStatus.ERROR, f"invalid answer: limit {period['limit']}")
                return CompositeSchedule(bad, connector_id)
            periods.append(SchedulePeriod(int(period["startPeriod"]), int(watts)))
        duration = schedule.get("duration")
        return CompositeSchedule(
            result,
            int(outcome.payload.get("connectorId", connector_id)),
            outcome.payload.get("scheduleStart"),
            None if duration is None else int(duration),
            tuple(periods),
        )
