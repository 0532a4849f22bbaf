"""The seam between the OCPP server and the core.

* :class:`OcppCore` is what the OCPP server calls when a charger speaks: authorisation of idTags,
  the transaction-id allocator, and the transaction/meter records. The services implement it on
  the database, so recording a StartTransaction and advancing the session happen in one
  database transaction.
* The ``Charger*`` / ``Transaction*`` / ``Meter*`` dataclasses are the events the OCPP server
  publishes (to the services and the agents) through an :class:`EventSink`.

All quantities are exact: energy in integer Wh, times as aware UTC datetimes.

The port speaks no OCPP version. A transaction is a string reference (``transaction``): OCPP
1.6's integer ``transactionId`` (allocated by the core) travels as its decimal string, and
OCPP 2.0.1's ``transactionId`` is a string the charger chooses (given to
:meth:`OcppCore.start_transaction`). References are per charger: two chargers may choose the
same one. A charger speaks one version at a time, so its open transactions are all of one kind;
a 2.0.1 id that looks like a 1.6 number is still found (its own record comes first).

A 2.0.1 charger that reboots may choose a transactionId it used before. A reference names
the charger's latest transaction of that name; an earlier one that had *ended* is kept under
``<reference>~<number>`` (``~`` is no identifierString character, ``number`` the core's own
id of it), where the operator finds it. Which of the two a message means is decided by time
(:func:`within_lifetime`): a start or stop whose timestamp lies within the ended
transaction's lifetime (from its start to its stop) is a late message of that one, and
changes nothing; a start outside it is a new transaction.
Authorisation results are :class:`Authorization` meanings; each version package maps them to
its wire values (1.6's ``AuthorizationStatus``: ``Accepted``, ``Blocked``, ``Expired``,
``Invalid``, ``ConcurrentTx``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = [
    "Authorization",
    "ChargerBooted",
    "ChargerOffline",
    "ChargerOnline",
    "ConnectorStatusChanged",
    "EventSink",
    "MeterSample",
    "OcppCore",
    "OcppEvent",
    "SecurityEventReported",
    "StartDecision",
    "StopDecision",
    "TransactionStarted",
    "TransactionStopped",
    "within_lifetime",
]


class Authorization(enum.StrEnum):
    """What the core decides about an idTag (each OCPP version maps it to its wire value)."""

    ACCEPTED = "accepted"  # Strom issued it for a paid session that may start now
    BLOCKED = "blocked"  # known, but barred
    EXPIRED = "expired"  # Strom issued it, and its session is over
    INVALID = "invalid"  # not Strom's, not for this charger or connector, not startable
    IN_USE = "in_use"  # its session is already charging (1.6 and 2.0.1: ConcurrentTx)


@dataclass(frozen=True, slots=True)
class StartDecision:
    """The core's answer to a started transaction (``transaction``: its reference)."""

    transaction: str
    status: Authorization
    # True when this StartTransaction.req was already recorded (a charger resending it after a
    # reconnect): the answer is the recorded one, and TransactionStarted is not published again.
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class StopDecision:
    """The core's answer to a stopped transaction (``known`` False: recorded, not matched)."""

    known: bool
    status: Authorization = Authorization.ACCEPTED
    # True when this stop was already recorded: nothing changed, TransactionStopped not repeated.
    replayed: bool = False
    # The session's final bill (its consumed amount) when this stop billed one; None otherwise
    # (a replay, a refused or unknown transaction, or a core that bills nothing).
    cost_msat: int | None = None


def within_lifetime(started_at: datetime, ended_at: datetime, at: datetime) -> bool:
    """Whether a message timestamped ``at`` belongs to an ended transaction of its reference.

    A charger that reused a transactionId after a reboot sends the new transaction's messages
    from after the old one ended (or, with a clock that went back, from before it started);
    a late or replayed message of the old transaction lies within its lifetime.

    Args:
        started_at: when the ended transaction started.
        ended_at: when it ended (its start, for a start Strom refused).
        at: the message's timestamp.

    Returns:
        True when ``at`` lies from ``started_at`` to ``ended_at`` (both included).
    """
    return started_at <= at <= ended_at


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
    """An accepted StartTransaction, recorded once (replays do not repeat this event).

    ``reservation_id`` is the reservation the charger says the transaction ends (the
    ``reservationId`` of an OCPP 1.6 StartTransaction), or None.
    """

    charger_id: str
    connector_id: int
    transaction: str
    id_tag: str
    meter_start_wh: int
    at: datetime
    reservation_id: int | None = None


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One energy register sample (Energy.Active.Import.Register), normalised to Wh."""

    charger_id: str
    connector_id: int
    transaction: str
    register_wh: int
    at: datetime


@dataclass(frozen=True, slots=True)
class TransactionStopped:
    """A StopTransaction for a known transaction, recorded once."""

    charger_id: str
    transaction: str
    meter_stop_wh: int
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class SecurityEventReported:
    """A charger reported a security event (OCPP 2.0.1, and 1.6 with the security extension).

    ``kind`` is the event type (``FirmwareUpdated``, ``TamperDetectionActivated``, …), ``at``
    the charger's time of it, ``tech_info`` its free text, if any.
    """

    charger_id: str
    kind: str
    at: datetime
    tech_info: str = ""


OcppEvent = (
    ChargerOnline
    | ChargerBooted
    | ChargerOffline
    | ConnectorStatusChanged
    | TransactionStarted
    | MeterSample
    | TransactionStopped
    | SecurityEventReported
)


class EventSink(Protocol):
    """Receives OCPP events in the order a charger produced them."""

    async def publish(self, event: OcppEvent) -> None:
        """Deliver one event; must not raise for a subscriber's failure."""
        ...


class OcppCore(Protocol):
    """What the OCPP server asks the core. Every method is idempotent for replays."""

    async def authorize(self, charger_id: str, id_tag: str) -> Authorization:
        """Authorise an idTag: accepted only when Strom issued it for a paid session."""
        ...

    async def start_transaction(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        meter_start_wh: int,
        timestamp: datetime,
        *,
        transaction: str | None = None,
    ) -> StartDecision:
        """Record a started transaction.

        ``transaction`` None (OCPP 1.6): the core allocates the reference from its persisted
        allocator; a replay (same charger, connector, idTag, meterStart and timestamp) returns
        the same reference and status and changes nothing.

        ``transaction`` given (OCPP 2.0.1, at most 36 characters): the charger chose it, and
        it is the reference from then on. A replay is a start of a reference this charger
        already has, open, or ended with the start's timestamp within its lifetime
        (:func:`within_lifetime`): the recorded reference and status, nothing changed. A
        start of a reference whose transaction ended, timestamped outside its lifetime, is a
        reuse after a reboot: the ended one is kept as ``<reference>~<number>`` and the start
        recorded as a new transaction, in one commit.
        """
        ...

    async def stop_transaction(
        self,
        charger_id: str,
        transaction: str,
        meter_stop_wh: int,
        timestamp: datetime,
        reason: str,
        id_tag: str | None,
    ) -> StopDecision:
        """Record a stopped transaction; an unknown reference is recorded and never guessed.

        A stop timestamped before the start of the reference's open transaction, within the
        lifetime of an ended earlier transaction of that reference (reused after a reboot),
        is that one's late stop: answered as a replay, nothing changed. Any other stop of the
        reference stops its latest transaction.
        """
        ...

    async def record_meter(self, sample: MeterSample) -> None:
        """Store one meter sample (repeats and out-of-order samples tolerated)."""
        ...
