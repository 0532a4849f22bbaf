"""The seam between the OCPP server and the core.

* :class:`OcppCore` is what the OCPP server calls when a charger speaks: authorisation of idTags,
  the transaction-id allocator, and the transaction/meter records. The services implement it on
  the database, so recording a StartTransaction and advancing the session happen in one
  database transaction.
* The ``Charger*`` / ``Transaction*`` / ``Meter*`` dataclasses are the events the OCPP server
  publishes (to the services and the agents) through an :class:`EventSink`.

All quantities are exact: energy in integer Wh, times as aware UTC datetimes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = [
    "AuthorizationStatus",
    "ChargerBooted",
    "ChargerOffline",
    "ChargerOnline",
    "ConnectorStatusChanged",
    "EventSink",
    "MeterSample",
    "OcppCore",
    "OcppEvent",
    "StartDecision",
    "StopDecision",
    "TransactionStarted",
    "TransactionStopped",
]


class AuthorizationStatus(enum.StrEnum):
    """OCPP 1.6 ``AuthorizationStatus`` values Strom answers with."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


@dataclass(frozen=True, slots=True)
class StartDecision:
    """The core's answer to a StartTransaction.req."""

    transaction_id: int
    status: AuthorizationStatus
    # True when this StartTransaction.req was already recorded (a charger resending it after a
    # reconnect): the answer is the recorded one, and TransactionStarted is not published again.
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class StopDecision:
    """The core's answer to a StopTransaction.req (``known`` False: recorded, not matched)."""

    known: bool
    status: AuthorizationStatus = AuthorizationStatus.ACCEPTED
    # True when this stop was already recorded: nothing changed, TransactionStopped not repeated.
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ChargerOnline:
    """A charger connected (or reconnected) and authenticated."""

    charger_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ChargerBooted:
    """A charger's BootNotification was accepted: it (re)started.

    It may have lost its transactions: firmware that keeps none across a power loss exists.
    """

    charger_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ChargerOffline:
    """A charger disconnected or stayed silent for 2.5 heartbeat intervals."""

    charger_id: str
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectorStatusChanged:
    """A StatusNotification (connector 0 is the charger as a whole)."""

    charger_id: str
    connector_id: int
    status: str  # OCPP ChargePointStatus: Available, Preparing, Charging, …
    error_code: str
    at: datetime
    info: str = ""


@dataclass(frozen=True, slots=True)
class TransactionStarted:
    """An accepted StartTransaction, recorded once (replays do not repeat this event)."""

    charger_id: str
    connector_id: int
    transaction_id: int
    id_tag: str
    meter_start_wh: int
    at: datetime


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One energy register sample (Energy.Active.Import.Register), normalised to Wh."""

    charger_id: str
    connector_id: int
    transaction_id: int
    register_wh: int
    at: datetime


@dataclass(frozen=True, slots=True)
class TransactionStopped:
    """A StopTransaction for a known transaction, recorded once."""

    charger_id: str
    transaction_id: int
    meter_stop_wh: int
    at: datetime
    reason: str


OcppEvent = (
    ChargerOnline
    | ChargerBooted
    | ChargerOffline
    | ConnectorStatusChanged
    | TransactionStarted
    | MeterSample
    | TransactionStopped
)


class EventSink(Protocol):
    """Receives OCPP events in the order a charger produced them."""

    async def publish(self, event: OcppEvent) -> None:
        """Deliver one event; must not raise for a subscriber's failure."""
        ...


class OcppCore(Protocol):
    """What the OCPP server asks the core. Every method is idempotent for replays."""

    async def authorize(self, charger_id: str, id_tag: str) -> AuthorizationStatus:
        """Answer Authorize.req: Accepted only for an idTag Strom issued for a paid session."""
        ...

    async def start_transaction(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        meter_start_wh: int,
        timestamp: datetime,
    ) -> StartDecision:
        """Record a StartTransaction.req and allocate its id from the persisted allocator.

        A replay (same charger, connector, idTag, meterStart and timestamp) returns the same
        transaction id and status and changes nothing.
        """
        ...

    async def stop_transaction(
        self,
        charger_id: str,
        transaction_id: int,
        meter_stop_wh: int,
        timestamp: datetime,
        reason: str,
        id_tag: str | None,
    ) -> StopDecision:
        """Record a StopTransaction.req; an unknown id is recorded and never guessed."""
        ...

    async def record_meter(self, sample: MeterSample) -> None:
        """Store one meter sample (repeats and out-of-order samples tolerated)."""
        ...
