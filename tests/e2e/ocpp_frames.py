"""The OCPP frames a session test sends or looks for itself, in its charger's version.

Most tests leave OCPP to the simulated charger. A few speak it themselves: they replay a stop
the charger had queued, or count the central system's requests to stop that reached it. They
say what they mean here and get the frame of the version the charger speaks:

* a stop report is 1.6 ``StopTransaction`` or 2.0.1 ``TransactionEvent`` ``Ended`` (with the
  register in a ``Transaction.End`` sample and the ``stoppedReason``, which 2.0.1 names with
  the same words as 1.6's StopTransaction ``reason``);
* a remote stop is 1.6 ``RemoteStopTransaction`` or 2.0.1 ``RequestStopTransaction``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from ocpp_server.ocppj import Call
from ocpp_server.simulator import SimulatedCharger
from ocpp_server.v201.charge_point import TRIGGER_OF_STOP

REMOTE_STOP: Final = {"1.6": "RemoteStopTransaction", "2.0.1": "RequestStopTransaction"}
"""The central system's request to stop a transaction, per OCPP version."""


def remote_stops(charger: SimulatedCharger) -> list[Call]:
    """The central system's requests to stop a transaction that reached ``charger``."""
    action = REMOTE_STOP[charger.options.ocpp_version]
    return [call for call in charger.received_calls if call.action == action]


def is_stop_report(action: str, payload: Mapping[str, Any]) -> bool:
    """Whether a CALL from a charger reports the end of a transaction (either version)."""
    if action == "TransactionEvent":
        return payload.get("eventType") == "Ended"
    return action == "StopTransaction"


def stop_report(
    charger: SimulatedCharger, transaction_id: int | str, meter_stop_wh: int, reason: str
) -> tuple[str, dict[str, Any]]:
    """The (action, payload) of a stop report the charger sends late, after reconnecting.

    Args:
        charger: the charger whose version speaks.
        transaction_id: the transaction's id (1.6: the central system's integer, 2.0.1: the
            charger's own string).
        meter_stop_wh: the energy register at the stop.
        reason: the stop reason (``PowerLoss``, ``Remote``, ``EVDisconnected``, ...).
    """
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    if charger.options.ocpp_version == "1.6":
        return "StopTransaction", {
            "transactionId": transaction_id,
            "meterStop": meter_stop_wh,
            "timestamp": now,
            "reason": reason,
        }
    register = {
        "value": meter_stop_wh,
        "context": "Transaction.End",
        "measurand": "Energy.Active.Import.Register",
        "unitOfMeasure": {"unit": "Wh"},
    }
    return "TransactionEvent", {
        "eventType": "Ended",
        "timestamp": now,
        "triggerReason": TRIGGER_OF_STOP[reason],
        "seqNo": 1_000,  # after whatever the charger sent of it before
        "offline": True,
        "transactionInfo": {"transactionId": str(transaction_id), "stoppedReason": reason},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [{"timestamp": now, "sampledValue": [register]}],
    }


def stop_accepted(answer: Mapping[str, Any]) -> bool:
    """Whether the central system's answer to a stop report accepts it (either version).

    1.6 answers ``idTagInfo`` when the stop names an idTag, 2.0.1 ``idTokenInfo`` when it
    names an idToken; an answer without either accepts the report as it is.
    """
    info = answer.get("idTagInfo") or answer.get("idTokenInfo") or {"status": "Accepted"}
    return bool(info["status"] == "Accepted")
