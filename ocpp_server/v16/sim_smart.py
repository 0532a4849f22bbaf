"""The simulated OCPP 1.6 charge point's smart charging: the profiles it holds and obeys.

It keeps every profile it accepts by ``chargingProfileId`` (a new one with the same id replaces
the old) and draws, on each connector, the least of its own power, its ``ChargePointMaxProfile``
limits and the connector's transaction limit: the ``TxProfile`` of the running transaction when
there is one (of several, the highest ``stackLevel`` in force), else the connector's (or connector
0's) ``TxDefaultProfile``. An ``Absolute`` profile follows its schedule through time: before its
``startSchedule`` and from the end of its ``duration`` it is not in force, in between the
period that started last holds (so a 0 W period stops the charge). Any other profile counts
with its lowest period. A ``TxProfile``
for a transaction the connector does not run, or without a transaction, is Rejected, as the
specification asks. GetCompositeSchedule answers that same limit as one period.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ocpp_server.client import Answer
from ocpp_server.ocppj import parse_timestamp
from ocpp_server.sim_model import ConnectorState
from ocpp_server.v16.smart_charging import schedule_limit_w

__all__ = ["SimulatedProfiles"]


class SimulatedProfiles:
    """The charging profiles of a simulated 1.6 charge point.

    Args:
        connectors: the charge point's connectors, by id.
        power_w: the charge point's own power, in watts.
        timestamp: the charge point's current time, as OCPP writes it.
        now: the charge point's current time (Absolute schedules follow it).
    """

    def __init__(
        self,
        connectors: Mapping[int, ConnectorState],
        power_w: int,
        timestamp: Callable[[], str],
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._connectors = connectors
        self._power_w = power_w
        self._timestamp = timestamp
        self._now = now or (lambda: parse_timestamp(timestamp()))
        self.profiles: dict[int, tuple[int, dict[str, Any]]] = {}  # id -> (connector, profile)

    def table(self) -> dict[str, Callable[[Mapping[str, Any]], Answer]]:
        """Action name to answer."""
        return {
            "SetChargingProfile": self.on_set_charging_profile,
            "ClearChargingProfile": self.on_clear_charging_profile,
            "GetCompositeSchedule": self.on_get_composite_schedule,
        }

    def _in_force_w(self, profile: Mapping[str, Any]) -> int | None:
        """The profile's limit now, in watts; None when it is not in force."""
        schedule = profile["chargingSchedule"]
        if profile["chargingProfileKind"] != "Absolute" or "startSchedule" not in schedule:
            return schedule_limit_w(schedule)
        elapsed = (self._now() - parse_timestamp(schedule["startSchedule"])).total_seconds()
        duration = schedule.get("duration")
        if elapsed < 0 or (duration is not None and elapsed >= duration):
            return None
        started = [p for p in schedule["chargingSchedulePeriod"] if p["startPeriod"] <= elapsed]
        if not started:
            return None
        latest = max(started, key=lambda p: p["startPeriod"])
        return schedule_limit_w({**schedule, "chargingSchedulePeriod": [latest]})

    def limit_w(self, connector_id: int) -> int:
        """The power the connector may draw now, in watts."""
        limits = [self._power_w]
        connector = self._connectors.get(connector_id)
        running = None if connector is None else connector.transaction_id
        tx_limits: dict[int, int] = {}  # stack level -> limit
        defaults: dict[int, int] = {}
        for on, profile in self.profiles.values():
            purpose = profile["chargingProfilePurpose"]
            watts = self._in_force_w(profile)
            if watts is None:
                continue
            if purpose == "ChargePointMaxProfile":
                limits.append(watts)
            elif purpose == "TxProfile" and on == connector_id and running is not None:
                if profile.get("transactionId") == running:
                    tx_limits[int(profile["stackLevel"])] = watts
            elif purpose == "TxDefaultProfile" and on in (0, connector_id):
                defaults[on] = watts
        tx_limit = tx_limits[max(tx_limits)] if tx_limits else None
        if tx_limit is None:
            tx_limit = defaults.get(connector_id, defaults.get(0))
        if tx_limit is not None:
            limits.append(tx_limit)
        return min(limits)

    def on_set_charging_profile(self, payload: Mapping[str, Any]) -> Answer:
        """Keep the profile (replacing one with its id) or reject it."""
        connector_id = int(payload["connectorId"])
        profile = dict(payload["csChargingProfiles"])
        purpose = profile["chargingProfilePurpose"]
        if connector_id != 0 and connector_id not in self._connectors:
            return Answer({"status": "Rejected"})
        if purpose == "ChargePointMaxProfile" and connector_id != 0:
            return Answer({"status": "Rejected"})
        if purpose == "TxProfile":
            connector = self._connectors.get(connector_id)
            running = None if connector is None else connector.transaction_id
            if running is None or profile.get("transactionId") not in (None, running):
                return Answer({"status": "Rejected"})
            profile["transactionId"] = running
        self.profiles[int(profile["chargingProfileId"])] = (connector_id, profile)
        return Answer({"status": "Accepted"})

    def on_clear_charging_profile(self, payload: Mapping[str, Any]) -> Answer:
        """Remove the profiles matching every criterion given (all when none is)."""
        matching = [
            number
            for number, (connector_id, profile) in self.profiles.items()
            if payload.get("id") in (None, number)
            and payload.get("connectorId") in (None, connector_id)
            and payload.get("chargingProfilePurpose") in (None, profile["chargingProfilePurpose"])
            and payload.get("stackLevel") in (None, profile["stackLevel"])
        ]
        for number in matching:
            del self.profiles[number]
        return Answer({"status": "Accepted" if matching else "Unknown"})

    def on_get_composite_schedule(self, payload: Mapping[str, Any]) -> Answer:
        """The connector's limit (0: the charger's) as one period, in the unit asked for."""
        connector_id = int(payload["connectorId"])
        if connector_id != 0 and connector_id not in self._connectors:
            return Answer({"status": "Rejected"})
        watts = self.limit_w(connector_id)
        unit = payload.get("chargingRateUnit", "W")
        limit = float(watts) if unit == "W" else round(watts / (230.0 * 3), 1)
        return Answer(
            {
                "status": "Accepted",
                "connectorId": connector_id,
                "scheduleStart": self._timestamp(),
                "chargingSchedule": {
                    "duration": int(payload["duration"]),
                    "chargingRateUnit": unit,
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
                },
            }
        )
