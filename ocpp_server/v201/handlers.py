"""Handlers for what an OCPP 2.0.1 station sends, and the CALLs Strom sends after its boot.

This is the edge where OCPP 2.0.1 meets the version-neutral port and events; above it nothing
knows which version a charger speaks.

Theory of operation:

* **Connectors.** Strom connector N is EVSE N (:mod:`ocpp_server.v201.messages`).
* **Status.** 2.0.1 reports ``Available``, ``Occupied``, ``Reserved``, ``Unavailable`` and
  ``Faulted`` per connector; the port speaks 1.6's vocabulary, which the agents and services
  read. ``Occupied`` is refined with what the EVSE's transaction said last
  (``chargingState``): ``Charging``, ``SuspendedEV``, ``SuspendedEVSE``; ``Preparing`` while
  plugged in or authorized without energy flowing (``EVConnected``, ``Idle``, or no
  transaction yet); ``Finishing`` once the EVSE's transaction ended and the cable is still in.
  A TransactionEvent that changes this publishes ConnectorStatusChanged too (a station sends
  no StatusNotification when charging merely starts). After a BootNotification no EVSE has a
  transaction until a TransactionEvent names one again: a station that lost its transactions
  in a power loss reports ``Occupied`` for the plugged-in cable, which then reads
  ``Preparing`` (no transaction), so Strom notices the loss as it does for 1.6.
* **Transactions** are the station's: its ``transactionId`` is the core's reference
  (``start_transaction(..., transaction=<id>)``). A transaction becomes the core's when an
  event carries an idToken, or the ``remoteStartId`` of a RequestStartTransaction Strom sent
  for an idTag (a station whose TxStartPoint is EVConnected starts without one). Until then,
  Strom keeps it here, per charger, with its first energy register: meterStart is the
  register of the Started event (``Transaction.Begin``, else any register in it), else the
  first one seen. A claim also waits for the EVSE to be known (the first event must name it).
  A transaction first seen after its Started (it began before this process: Strom restarted
  meanwhile) may be the core's already: its samples go to the core, which bills them when it
  knows the transaction and drops them when it does not.
* **Idempotence.** Events may come twice, late, out of order and ``offline`` after a
  reconnect: the core's replay rules make a second start and a second stop change nothing; an
  event after the Ended this process saw changes nothing; a seqNo gap is only logged.
* **A reference reused after a reboot** (ids are unique only within one boot of a station):
  a ``Started`` of a reference whose transaction ended (or was refused) begins a new
  transaction when the station booted since that one started (or it was first seen in
  mid-flight, so it may have) and the Started lies outside the ended one's lifetime
  (:func:`strom_core.ports.within_lifetime`). The ended one is kept aside: an event of the
  reference timestamped before the new one's start and within the ended one's lifetime is a
  late (offline) event of it and changes nothing: its seqNo and timestamps are its own. The
  core applies the same rule to the records. An Ended
  is billed once; meterStop is the register of the Ended event (``Transaction.End`` first),
  else the best register seen, never a guess. An Ended for a transaction the core never saw is
  recorded as unknown by the core.
* **The final cost** goes into the answer to the Ended (``totalCost``, OCPP 2.0.1's place for
  it) when the core billed the session with that stop and the station's screen shows costs in
  sats already (:meth:`ChargerHandlers.on_final_cost`, the screens decide). The transaction
  remembers it, so the screens send no CostUpdated for it; where the answer could not carry
  it, the screens send one.
* **After boot** (:meth:`ChargerHandlers.configure`): SetVariables for meter sampling
  (SampledDataCtrlr TxUpdatedInterval, TxUpdatedMeasurands, TxEndedMeasurands) and for the
  heartbeat (OCPPCommCtrlr HeartbeatInterval: stations tend to ignore the interval of the
  BootNotification answer and keep their own, an hour or more), then
  TriggerMessage StatusNotification per EVSE and GetBaseReport FullInventory (the NotifyReport
  answers fill the charger's record). TxStartPoint and TxStopPoint are left as the station has
  them: any start point works (a transaction becomes Strom's with its idToken), and the stop
  point is the station operator's choice for local use. Refusals are logged and tolerated.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from typing import Any, Final

from ocpp_server._connection import (
    CallOutcome,
    ChargerConnection,
    DialectContext,
    Handler,
    OutcomeKind,
    Reply,
)
from ocpp_server.handlers import BaseHandlers
from ocpp_server.meter import TRANSACTION_BEGIN, TRANSACTION_END, RegisterReading
from ocpp_server.records import OpenTransaction
from ocpp_server.v201.messages import (
    AUTHORIZATION_STATUS,
    TransactionEvent,
    boot_info,
    id_token,
    status_report,
    transaction_event,
)
from ocpp_server.v201.meter import register_readings
from strom_core.ports import (
    Authorization,
    ConnectorStatusChanged,
    TransactionStarted,
    TransactionStopped,
    within_lifetime,
)

__all__ = ["ChargerHandlers", "StationState", "variable_key"]

log = logging.getLogger("ocpp_server.v201.handlers")

_MAX_TRANSACTIONS: Final = 32
_MAX_REMOTE_STARTS: Final = 64
_MAX_VARIABLES: Final = 2_000

# Notifications that are accepted and recorded (last value per kind), nothing more.
_NOTIFICATIONS: Final = {
    "FirmwareStatusNotification": "status",
    "LogStatusNotification": "status",
    "PublishFirmwareStatusNotification": "status",
    "NotifyEvent": "generatedAt",
    "ReservationStatusUpdate": "reservationUpdateStatus",
}

_OCCUPIED_BY_CHARGING_STATE: Final = {
    "Charging": "Charging",
    "SuspendedEV": "SuspendedEV",
    "SuspendedEVSE": "SuspendedEVSE",
    "EVConnected": "Preparing",
    "Idle": "Preparing",
}


@dataclass(slots=True)
class _Transaction:
    """A 2.0.1 transaction as this process saw it."""

    started_at: datetime
    evse_id: int | None = None
    meter_start_wh: int | None = None
    id_tag: str | None = None
    status: Authorization | None = None  # the core's decision once claimed
    charging_state: str | None = None
    ended: bool = False
    ended_at: datetime | None = None  # the Ended's timestamp
    last_seq_no: int = -1
    inherited: bool = False  # first seen after its Started: it began before this process
    boot: int = 0  # the station's BootNotifications this process saw before it was first seen
    cost_answered: bool = False  # its Ended's answer carried the final cost (``totalCost``)
    reservation_id: int | None = None  # the reservation it ends, if an event named one

    @property
    def billed(self) -> bool:
        """Whether its samples go to the core (which drops those of a stranger's)."""
        return self.claimed or self.inherited

    @property
    def claimed(self) -> bool:
        return self.status is not None

    @property
    def lifetime_end(self) -> datetime | None:
        """When it ended: its Ended, its start when the core refused it, else None (open)."""
        if self.ended:
            return self.ended_at or self.started_at
        refused = self.status is not None and self.status is not Authorization.ACCEPTED
        return self.started_at if refused else None

    def lived_at(self, at: datetime) -> bool:
        """Whether ``at`` lies within its lifetime, once it ended."""
        end = self.lifetime_end
        return end is not None and within_lifetime(self.started_at, end, at)


@dataclass(slots=True)
class StationState:
    """What Strom keeps about one 2.0.1 station between its messages (and reconnects)."""

    transactions: OrderedDict[str, _Transaction] = field(default_factory=OrderedDict)
    remote_starts: OrderedDict[int, str] = field(default_factory=OrderedDict)
    connector_status: dict[int, str] = field(default_factory=dict)  # 2.0.1 status per EVSE
    on_evse: dict[int, str] = field(default_factory=dict)  # EVSE -> its latest transaction
    read_only: set[str] = field(default_factory=set)  # reported variables the CSMS cannot set
    boots: int = 0  # BootNotifications seen
    earlier: OrderedDict[str, _Transaction] = field(default_factory=OrderedDict)  # reused

    def tracked(self, reference: str, at: datetime) -> _Transaction:
        """The transaction kept under ``reference``, made (first seen ``at``) on first use."""
        found = self.transactions.get(reference)
        if found is None:
            found = self.transactions[reference] = _Transaction(at, boot=self.boots)
            while len(self.transactions) > _MAX_TRANSACTIONS:
                self.transactions.popitem(last=False)
        return found

    def reuse(self, reference: str, event: TransactionEvent) -> bool:
        """Set an ended transaction aside when this Started reuses its reference.

        Returns:
            True when ``event`` begins a new transaction of ``reference`` (see the module
            docstring); the ended one is then kept in :attr:`earlier`.
        """
        tx = self.transactions.get(reference)
        if event.event_type != "Started" or tx is None or tx.lifetime_end is None:
            return False
        rebooted = tx.boot < self.boots or tx.inherited
        if not rebooted or tx.lived_at(event.timestamp):
            return False
        del self.transactions[reference]
        self.earlier[reference] = tx
        while len(self.earlier) > _MAX_TRANSACTIONS:
            self.earlier.popitem(last=False)
        return True

    def of_earlier(self, reference: str, at: datetime) -> _Transaction | None:
        """The ended earlier transaction of a reused reference an event at ``at`` is late for."""
        earlier = self.earlier.get(reference)
        current = self.transactions.get(reference)
        if earlier is None or (current is not None and at >= current.started_at):
            return None
        return earlier if earlier.lived_at(at) else None

    def transaction_on(self, evse_id: int) -> str | None:
        """The latest transaction of an EVSE that is Strom's (ended or not), if any."""
        for reference, tx in reversed(self.transactions.items()):
            if tx.evse_id == evse_id and tx.status is Authorization.ACCEPTED:
                return reference
        return None

    def remember_remote_start(self, remote_start_id: int, id_tag: str) -> None:
        self.remote_starts[remote_start_id] = id_tag
        while len(self.remote_starts) > _MAX_REMOTE_STARTS:
            self.remote_starts.popitem(last=False)

    def status_of(self, evse_id: int) -> str | None:
        """The 1.6-style status of an EVSE from what it and its transaction reported."""
        raw = self.connector_status.get(evse_id)
        if raw != "Occupied":
            return raw
        latest = self.on_evse.get(evse_id)
        tx = self.transactions.get(latest) if latest is not None else None
        if tx is None:
            return "Preparing"
        if tx.ended:
            return "Finishing"
        return _OCCUPIED_BY_CHARGING_STATE.get(tx.charging_state or "", "Preparing")


def _start_register(readings: list[RegisterReading]) -> int | None:
    begin = [r.register_wh for r in readings if r.context == TRANSACTION_BEGIN]
    if begin:
        return min(begin)
    return min((r.register_wh for r in readings), default=None)


def _end_register(readings: list[RegisterReading]) -> int | None:
    end = [r.register_wh for r in readings if r.context == TRANSACTION_END]
    return max(end or [r.register_wh for r in readings], default=None)


class ChargerHandlers(BaseHandlers):
    """The 2.0.1 handlers and post-boot CALLs, shared by all 2.0.1 connections."""

    def __init__(self, context: DialectContext) -> None:
        super().__init__(context, register_readings)
        self._stations: dict[str, StationState] = {}
        self._request_ids = count(1)
        self._reported: list[Callable[[str], None]] = []
        self._total_cost: Callable[[str, int], float | None] = lambda _charger, _msat: None

    def on_reported(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with the charger id when a charger's report is complete.

        The listener runs on the connection's reader: it must not block or raise.
        """
        self._reported.append(listener)

    def on_final_cost(self, total_cost: Callable[[str, int], float | None]) -> None:
        """Let ``total_cost`` decide the ``totalCost`` of an Ended's answer.

        It gets the charger id and the session's final bill in msat, and returns the number
        the station's screen shows, or None when the answer should carry none. It must not
        block or raise.
        """
        self._total_cost = total_cost

    def station(self, charger_id: str) -> StationState:
        """The 2.0.1 state kept for one charger (made on first use)."""
        state = self._stations.get(charger_id)
        if state is None:
            state = self._stations[charger_id] = StationState()
        return state

    def table(self) -> Mapping[str, Handler]:
        """Action name to handler."""
        table: dict[str, Handler] = {
            "Authorize": self.on_authorize,
            "BootNotification": self.on_boot_notification,
            "DataTransfer": self.on_data_transfer,
            "Heartbeat": self.on_heartbeat,
            "MeterValues": self.on_meter_values,
            "NotifyReport": self.on_notify_report,
            "SecurityEventNotification": self.on_security_event_notification,
            "StatusNotification": self.on_status_notification,
            "TransactionEvent": self.on_transaction_event,
        }
        table.update(self._notifications(_NOTIFICATIONS))
        return table

    # --- charger -> CSMS -------------------------------------------------------------------

    async def on_boot_notification(
        self, conn: ChargerConnection, payload: Mapping[str, Any]
    ) -> Reply:
        """BootNotification: Accepted, or Pending while held for approval.

        A station that boots may have lost the transactions it ran (firmware that keeps
        none across a power loss): until one of its TransactionEvents names a transaction
        again, an ``Occupied`` EVSE is plugged in without one (``Preparing``).
        """
        station = self.station(conn.charger_id)
        station.on_evse.clear()
        station.boots += 1  # its transaction ids may repeat from now on
        return await self._boot(conn, boot_info(payload))

    async def on_authorize(self, conn: ChargerConnection, payload: Mapping[str, Any]) -> Reply:
        """Authorize: the core decides about the idToken."""
        token = id_token(payload)
        status = (
            Authorization.INVALID
            if token is None
            else await self._core.authorize(conn.charger_id, token)
        )
        return Reply({"idTokenInfo": {"status": AUTHORIZATION_STATUS[status]}})

    async def on_status_notification(
        self, conn: ChargerConnection, payload: Mapping[str, Any]
    ) -> Reply:
        """StatusNotification: EVSE N is Strom connector N, status in 1.6's vocabulary."""
        report = status_report(payload)
        if (report.evse_id == 0) != (report.connector_id == 0):
            # (0, n) and (n, 0) name no connector (FoxESS, lbbrhzn/ocpp PR 2020): dropped.
            log.info(
                "cp_id=%s: StatusNotification for EVSE %d connector %d ignored",
                conn.charger_id,
                report.evse_id,
                report.connector_id,
            )
            return Reply({})
        station = self.station(conn.charger_id)
        station.connector_status[report.evse_id] = report.status
        if report.status == "Available":
            station.on_evse.pop(report.evse_id, None)  # the cable is out: a new plug-in next
        if conn.auth is not None and report.evse_id > conn.auth.connectors:
            log.warning(
                "cp_id=%s: status for EVSE %d, configured with %d connectors",
                conn.charger_id,
                report.evse_id,
                conn.auth.connectors,
            )
        await self._publish_status(conn, report.evse_id, report.timestamp, always=True)
        return Reply({})

    async def _publish_status(
        self, conn: ChargerConnection, evse_id: int, at: datetime, *, always: bool = False
    ) -> None:
        status = self.station(conn.charger_id).status_of(evse_id)
        if status is None or (not always and conn.record.connector_status.get(evse_id) == status):
            return
        conn.record.connector_status[evse_id] = status
        error = "OtherError" if status == "Faulted" else "NoError"
        await self._events.publish(
            ConnectorStatusChanged(conn.charger_id, evse_id, status, error, at)
        )

    async def on_meter_values(self, conn: ChargerConnection, payload: Mapping[str, Any]) -> Reply:
        """MeterValues: samples of an EVSE count for its transaction when Strom has one open."""
        evse_id = payload.get("evseId")
        station = self.station(conn.charger_id)
        reference = station.on_evse.get(evse_id) if isinstance(evse_id, int) else None
        tx = station.transactions.get(reference) if reference is not None else None
        if reference is None or tx is None or not tx.billed or tx.ended:
            return Reply({})  # readings outside a transaction: nothing to bill or guess
        opened = conn.record.open_transaction(reference)
        for reading in self._readings(conn, payload.get("meterValue") or []):
            await self._sample(conn, reference, opened, reading, connector_id=tx.evse_id)
        return Reply({})

    async def on_transaction_event(
        self, conn: ChargerConnection, payload: Mapping[str, Any]
    ) -> Reply:
        """TransactionEvent Started/Updated/Ended (see the module docstring)."""
        event = transaction_event(payload)
        station = self.station(conn.charger_id)
        reference = event.transaction_id
        earlier = station.of_earlier(reference, event.timestamp)
        if earlier is not None:
            log.info(
                "cp_id=%s: %s of the earlier transaction %s (its id was reused): nothing changes",
                conn.charger_id,
                event.event_type,
                reference,
            )
            return await self._token_reply(conn, earlier, event)
        if station.reuse(reference, event):
            log.info(
                "cp_id=%s: transaction id %s reused after a reboot: a new transaction",
                conn.charger_id,
                reference,
            )
        first_seen = reference not in station.transactions
        tx = station.tracked(reference, event.timestamp)
        tx.inherited |= first_seen and event.event_type != "Started"
        self._note_sequence(conn, tx, event)
        if tx.ended:
            log.info(
                "cp_id=%s: %s of transaction %s after its end: nothing changes",
                conn.charger_id,
                event.event_type,
                reference,
            )
            return await self._token_reply(conn, tx, event)
        self._learn(station, reference, tx, event)
        readings = self._readings(conn, event.meter_values)
        if tx.meter_start_wh is None:
            tx.meter_start_wh = _start_register(readings)
        ended = event.event_type == "Ended"
        ready = ended or (tx.meter_start_wh is not None and tx.evse_id is not None)
        if not tx.claimed and tx.id_tag is not None and ready:
            await self._claim(conn, reference, tx, _end_register(readings))
        for reading in readings:
            if tx.billed:
                opened = conn.record.open_transaction(reference)
                await self._sample(conn, reference, opened, reading, connector_id=tx.evse_id)
            else:
                conn.record.register_seen(reference, reading.register_wh)
        total = await self._end(conn, reference, tx, event, readings) if ended else None
        if tx.evse_id is not None:
            await self._publish_status(conn, tx.evse_id, event.timestamp)
        reply = await self._token_reply(conn, tx, event)
        return reply if total is None else Reply({**reply.payload, "totalCost": total})

    @staticmethod
    def _learn(
        station: StationState, reference: str, tx: _Transaction, event: TransactionEvent
    ) -> None:
        """Keep what the event says about the transaction: EVSE, charging state, idTag."""
        if event.evse_id is not None and tx.evse_id is None:
            tx.evse_id = event.evse_id
        if tx.evse_id is not None:
            station.on_evse[tx.evse_id] = reference
        if event.charging_state is not None:
            tx.charging_state = event.charging_state
        if event.reservation_id is not None:
            tx.reservation_id = event.reservation_id
        if tx.id_tag is None:
            tx.id_tag = event.id_tag or (
                station.remote_starts.get(event.remote_start_id)
                if event.remote_start_id is not None
                else None
            )

    def _note_sequence(
        self, conn: ChargerConnection, tx: _Transaction, event: TransactionEvent
    ) -> None:
        if tx.last_seq_no >= 0 and event.seq_no > tx.last_seq_no + 1:
            log.info(
                "cp_id=%s: transaction %s: seqNo %d after %d (events missing or late)",
                conn.charger_id,
                event.transaction_id,
                event.seq_no,
                tx.last_seq_no,
            )
        tx.last_seq_no = max(tx.last_seq_no, event.seq_no)

    async def _claim(
        self,
        conn: ChargerConnection,
        reference: str,
        tx: _Transaction,
        end_register: int | None,
    ) -> None:
        """Make the transaction the core's, with its idTag and first register."""
        assert tx.id_tag is not None
        meter_start = tx.meter_start_wh
        if meter_start is None:
            # Ended before any register: the End register, else none at all (no energy).
            meter_start = end_register if end_register is not None else 0
            tx.meter_start_wh = meter_start
        connector = tx.evse_id or 0
        decision = await self._core.start_transaction(
            conn.charger_id,
            connector,
            tx.id_tag,
            meter_start,
            tx.started_at,
            transaction=reference,
        )
        tx.status = decision.status
        accepted = decision.status is Authorization.ACCEPTED
        if accepted:
            conn.record.transaction_started(reference, OpenTransaction(connector, meter_start))
        if accepted and not decision.replayed:
            await self._events.publish(
                TransactionStarted(
                    conn.charger_id,
                    connector,
                    reference,
                    tx.id_tag,
                    meter_start,
                    tx.started_at,
                    tx.reservation_id,
                )
            )
        log.info(
            "cp_id=%s: transaction %s on EVSE %d: %s%s",
            conn.charger_id,
            reference,
            connector,
            AUTHORIZATION_STATUS[decision.status],
            " (replay)" if decision.replayed else "",
        )

    async def _end(
        self,
        conn: ChargerConnection,
        reference: str,
        tx: _Transaction,
        event: TransactionEvent,
        readings: list[RegisterReading],
    ) -> float | None:
        """Stop the transaction in the core; the ``totalCost`` its answer carries, if any."""
        opened = conn.record.open_transaction(reference)
        meter_stop = _end_register(readings)
        if meter_stop is None:
            meter_stop = self._stop_register(conn, reference, opened, readings)
        decision = await self._core.stop_transaction(
            conn.charger_id,
            reference,
            meter_stop,
            event.timestamp,
            event.stopped_reason,
            event.id_tag,
        )
        tx.ended = True
        tx.ended_at = event.timestamp
        # Decided before anything else may run: the screens then know not to send it again.
        total = None
        if decision.cost_msat is not None:
            total = self._total_cost(conn.charger_id, decision.cost_msat)
            tx.cost_answered = total is not None
        # A transaction the core refused was never Strom's session: no stop event for it.
        refused = tx.status is not None and tx.status is not Authorization.ACCEPTED
        if decision.known and not decision.replayed and not refused:
            await self._events.publish(
                TransactionStopped(
                    conn.charger_id, reference, meter_stop, event.timestamp, event.stopped_reason
                )
            )
        conn.record.transaction_stopped(reference)
        if not decision.known:
            log.warning(
                "cp_id=%s: Ended for unknown transaction %s recorded, not matched",
                conn.charger_id,
                reference,
            )
        return total

    async def _token_reply(
        self, conn: ChargerConnection, tx: _Transaction, event: TransactionEvent
    ) -> Reply:
        if event.id_tag is None:
            return Reply({})
        if tx.status is not None and tx.id_tag == event.id_tag:
            status = tx.status
        else:
            status = await self._core.authorize(conn.charger_id, event.id_tag)
        return Reply({"idTokenInfo": {"status": AUTHORIZATION_STATUS[status]}})

    async def on_notify_report(self, conn: ChargerConnection, payload: Mapping[str, Any]) -> Reply:
        """NotifyReport: keep the reported variables' actual values in the charger's record.

        Which of them the charger reports read-only is kept too; after the last page of a
        report (``tbc`` false) the :meth:`on_reported` listeners are told.
        """
        variables = conn.record.variables
        read_only = self.station(conn.charger_id).read_only
        for entry in payload.get("reportData") or []:
            key = variable_key(entry)
            for attribute in entry.get("variableAttribute") or []:
                actual = attribute.get("type", "Actual") == "Actual" and "value" in attribute
                if actual and (key in variables or len(variables) < _MAX_VARIABLES):
                    variables[key] = str(attribute["value"])[:2500]
                    if attribute.get("mutability") == "ReadOnly":
                        read_only.add(key)
                    else:
                        read_only.discard(key)
        if not payload.get("tbc", False):
            for listener in self._reported:
                listener(conn.charger_id)
        return Reply({})

    # --- CSMS -> charger after boot --------------------------------------------------------

    async def configure(self, conn: ChargerConnection) -> None:
        """Set meter sampling and the heartbeat, then ask for each EVSE's status and the inventory.

        A refused variable is logged and left as the station has it.
        """
        settings = self._settings
        interval = str(settings.meter_value_sample_interval_s)
        measurands = ",".join(settings.measurands)
        results = await self._set(
            conn,
            [
                ("SampledDataCtrlr", "TxUpdatedInterval", interval),
                ("SampledDataCtrlr", "TxUpdatedMeasurands", measurands),
                ("SampledDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register"),
                ("OCPPCommCtrlr", "HeartbeatInterval", str(settings.heartbeat_interval_s)),
            ],
        )
        if results.get("TxUpdatedMeasurands") not in (None, "Accepted", "RebootRequired") and (
            len(settings.measurands) > 1
        ):
            # Stations refuse the whole list when one measurand is unknown to their meter.
            await self._set(
                conn,
                [("SampledDataCtrlr", "TxUpdatedMeasurands", "Energy.Active.Import.Register")],
            )
        evses = conn.auth.connectors if conn.auth is not None else 1
        for evse in range(1, evses + 1):
            await self._trigger(
                conn,
                {"requestedMessage": "StatusNotification", "evse": {"id": evse, "connectorId": 1}},
            )
        outcome = await conn.call(
            "GetBaseReport", {"requestId": next(self._request_ids), "reportBase": "FullInventory"}
        )
        if outcome.kind != OutcomeKind.ANSWERED or outcome.payload.get("status") != "Accepted":
            log.info(
                "cp_id=%s: GetBaseReport not accepted: %s",
                conn.charger_id,
                outcome.payload.get("status") or outcome.kind,
            )

    async def trigger_boot(self, conn: ChargerConnection) -> None:
        """The BootNotification backstop: ask a station that resumed without booting."""
        log.info("cp_id=%s: connected without BootNotification; asking for one", conn.charger_id)
        await self._trigger(conn, {"requestedMessage": "BootNotification"})

    async def _set(
        self, conn: ChargerConnection, settings: list[tuple[str, str, str]]
    ) -> dict[str, str]:
        """SetVariables; the status per variable name (empty when the call failed)."""
        payload = {
            "setVariableData": [
                {
                    "attributeValue": value,
                    "component": {"name": component},
                    "variable": {"name": variable},
                }
                for component, variable, value in settings
            ]
        }
        outcome = await conn.call("SetVariables", payload)
        if outcome.kind != OutcomeKind.ANSWERED:
            log.info(
                "cp_id=%s: SetVariables failed: %s %s",
                conn.charger_id,
                outcome.kind,
                outcome.error_code,
            )
            return {}
        results: dict[str, str] = {}
        for result in outcome.payload.get("setVariableResult", []):
            name = str(result.get("variable", {}).get("name", ""))
            status = str(result.get("attributeStatus", ""))
            results[name] = status
            if status not in ("Accepted", "RebootRequired"):
                log.info("cp_id=%s: SetVariables %s: %s", conn.charger_id, name, status)
        return results

    async def _trigger(self, conn: ChargerConnection, payload: Mapping[str, Any]) -> CallOutcome:
        outcome = await conn.call("TriggerMessage", payload)
        if outcome.kind != OutcomeKind.ANSWERED or outcome.payload.get("status") != "Accepted":
            log.info(
                "cp_id=%s: TriggerMessage %s not accepted: %s",
                conn.charger_id,
                payload.get("requestedMessage"),
                outcome.payload.get("status") or outcome.kind,
            )
        return outcome


def variable_key(entry: Mapping[str, Any]) -> str:
    """``Component[.instance][@evse]/Variable[.instance]`` of a report entry."""
    component = entry.get("component") or {}
    variable = entry.get("variable") or {}
    name = str(component.get("name", ""))
    if component.get("instance"):
        name += f".{component['instance']}"
    evse = component.get("evse")
    if isinstance(evse, dict) and "id" in evse:
        name += f"@{evse['id']}"
        if "connectorId" in evse:
            name += f".{evse['connectorId']}"
    key = f"{name}/{variable.get('name', '')}"
    if variable.get("instance"):
        key += f".{variable['instance']}"
    return key
