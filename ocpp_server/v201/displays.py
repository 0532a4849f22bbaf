"""The screens of OCPP 2.0.1 stations (implements :class:`strom_core.ports.ChargerDisplays`).

Theory of operation
-------------------
What a station's screen can do is what it reported in its device model (the NotifyReport
answers to the GetBaseReport sent after its boot, kept in the charger's record), never a guess:

* **messages**: ``DisplayMessageCtrlr.Available`` is true (and ``.Enabled``, when reported, too);
* **QR codes**: messages, and ``URI`` is among ``DisplayMessageCtrlr.SupportedFormats``;
* **running cost**: ``TariffCostCtrlr.Available[Cost]`` is true (and ``.Enabled[Cost]``, when
  reported), and the screen's currency is sats (below).

A station that reported none of these gets nothing. The port maps onto OCPP 2.0.1 as:

* ``show``: SetDisplayMessage, the message's id, priority ``NormalCycle`` (``InFront`` for an
  urgent message), format ``UTF8`` (``URI`` for a QR code), ``display.evse.id`` the connector
  (EVSE N is connector N; connector 0, the whole station, names no EVSE);
* ``clear``: ClearDisplayMessage (``Unknown``, a message the screen no longer shows, is done);
* ``show_cost``: CostUpdated, ``totalCost`` the total as a number, ``transactionId`` the
  station's id of the latest transaction on the EVSE that is Strom's (the one running, or the
  one that just ended, for the final cost). Without one nothing is sent (REJECTED).
* **final cost**: OCPP 2.0.1 carries it in the answer to the Ended (``totalCost``):
  :meth:`Ocpp201Displays.total_cost` gives it to the handlers when the screen shows costs in
  sats already; a final cost of a transaction whose Ended answer carried it is then not sent
  again. Where the screen's currency is still to be set, a CostUpdated carries it (after the
  currency).

**Currency.** CostUpdated carries no currency: the station shows ``totalCost`` in its own
``TariffCostCtrlr.Currency``. Strom's totals are sats, and a driver who paid sats expects to
read sats; "2,000" under a station's "EUR" would read as two thousand euros. So before its
first cost a station whose currency is not ``SAT`` and which reported it writable is set to
``SAT`` (SetVariables, once); a station that refuses, or reports its currency read-only, or
reports none, shows no cost at all. ``SAT`` is no ISO 4217 code, but none is assigned to it
either, and it is what the sats on Strom's pages are called.

**Refusals** switch a capability off for the rest of the connection, logged once, so nothing is
retried in a loop: a CALLERROR ``NotImplemented``/``NotSupported`` (messages, or cost), a
SetDisplayMessage ``Rejected`` (messages) or ``NotSupportedMessageFormat`` (QR codes for a URI
message, messages otherwise). A new connection (after a reboot, with a new report) starts
afresh. Other answers (``UnknownTransaction``, a timeout) are only results.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from ocpp_server._connection import CallOutcome, ChargerConnection, ConnectionLookup, OutcomeKind
from ocpp_server.commands import VersionCommands, command_result
from ocpp_server.v201.handlers import StationState
from strom_core.ports import (
    NO_SCREEN,
    ChargerDisplays,
    CommandResult,
    CommandStatus,
    ScreenCapabilities,
    ScreenMessage,
)
from strom_core.units import MSAT_PER_SAT

__all__ = ["SCREEN_CURRENCY", "Ocpp201Displays"]

log = logging.getLogger("ocpp_server.v201.displays")

SCREEN_CURRENCY: Final = "SAT"
"""The currency a station's screen shows Strom's costs in (TariffCostCtrlr.Currency)."""

_MESSAGES: Final = "messages"
_QR: Final = "QR codes"
_COST: Final = "running cost"
_CURRENCY_KEY: Final = "TariffCostCtrlr/Currency"
_MAX_CONTENT: Final = 512
_UNSUPPORTED_CALL: Final = frozenset({"NotImplemented", "NotSupported"})


def _is_true(variables: Mapping[str, str], key: str, *, missing: bool) -> bool:
    value = variables.get(key)
    return missing if value is None else value.strip().lower() == "true"


def _controller_on(variables: Mapping[str, str], component: str, instance: str = "") -> bool:
    """``Available`` true and ``Enabled`` not false (with the instance, or without any)."""
    suffix = f".{instance}" if instance else ""
    available = variables.get(f"{component}/Available{suffix}")
    if available is None and suffix:
        available = variables.get(f"{component}/Available")
    enabled = f"{component}/Enabled{suffix}"
    if suffix and enabled not in variables:
        enabled = f"{component}/Enabled"
    return (available or "").strip().lower() == "true" and _is_true(
        variables, enabled, missing=True
    )


def _number(total: Decimal) -> int | float:
    """``totalCost`` as a JSON number (sats with at most three decimals stay exact)."""
    return int(total) if total == total.to_integral_value() else float(total)


class _Screen:
    """What one connection's screen has been found not to do (switched off, logged once)."""

    __slots__ = ("conn", "off")

    def __init__(self, conn: ChargerConnection) -> None:
        self.conn = conn
        self.off: set[str] = set()


class Ocpp201Displays(VersionCommands):
    """The screens of stations connected with OCPP 2.0.1 (see the module docstring).

    Args:
        connection: a charger's live OCPP 2.0.1 connection, or None.
        station: the 2.0.1 state the handlers keep for a charger (its transactions).
    """

    def __init__(
        self, connection: ConnectionLookup, station: Callable[[str], StationState]
    ) -> None:
        super().__init__(connection)
        self._station = station
        self._screens: dict[str, _Screen] = {}

    # --- what a screen can do ----------------------------------------------------------------

    def _screen(self, conn: ChargerConnection) -> _Screen:
        screen = self._screens.get(conn.charger_id)
        if screen is None or screen.conn is not conn:  # a new connection starts afresh
            screen = self._screens[conn.charger_id] = _Screen(conn)
        return screen

    def _switch_off(self, conn: ChargerConnection, what: str, why: str) -> None:
        off = self._screen(conn).off
        if what not in off:
            off.add(what)
            log.info(
                "cp_id=%s: no %s on its screen for this connection: %s",
                conn.charger_id,
                what,
                why,
            )

    def _live(self, charger_id: str) -> ChargerConnection | None:
        conn = self._connection(charger_id)
        return conn if conn is not None and conn.online else None

    def screen_of(self, charger_id: str) -> ScreenCapabilities:
        """What the station reported its screen can show, less what it refused since."""
        conn = self._live(charger_id)
        if conn is None:
            return NO_SCREEN
        variables = conn.record.variables
        off = self._screen(conn).off
        messages = _controller_on(variables, "DisplayMessageCtrlr") and _MESSAGES not in off
        formats = variables.get("DisplayMessageCtrlr/SupportedFormats", "").split(",")
        qr = messages and "URI" in (f.strip() for f in formats) and _QR not in off
        cost = (
            _controller_on(variables, "TariffCostCtrlr", "Cost")
            and self._currency_settable(conn)
            and _COST not in off
        )
        return ScreenCapabilities(messages=messages, qr=qr, cost=cost)

    def _currency_settable(self, conn: ChargerConnection) -> bool:
        """The station shows sats, or reported its currency writable."""
        currency = conn.record.variables.get(_CURRENCY_KEY)
        if currency is None:
            return False
        if currency.strip().upper() == SCREEN_CURRENCY:
            return True
        return _CURRENCY_KEY not in self._station(conn.charger_id).read_only

    # --- the port ----------------------------------------------------------------------------

    async def show(self, charger_id: str, message: ScreenMessage) -> CommandResult:
        """SetDisplayMessage (a message with the same id is replaced)."""
        screen = self.screen_of(charger_id)
        if not (screen.qr if message.uri else screen.messages):
            return self._unable(charger_id, _QR if message.uri else _MESSAGES)
        info: dict[str, Any] = {
            "id": message.message_id,
            "priority": "InFront" if message.urgent else "NormalCycle",
            "message": {
                "format": "URI" if message.uri else "UTF8",
                "content": message.text[:_MAX_CONTENT],
            },
        }
        if message.connector_id > 0:
            info["display"] = {"name": "Display", "evse": {"id": message.connector_id}}
        outcome = await self._call(charger_id, "SetDisplayMessage", {"message": info})
        status = outcome.payload.get("status") if outcome.kind == OutcomeKind.ANSWERED else None
        if status == "NotSupportedMessageFormat":
            self._refused(charger_id, _QR if message.uri else _MESSAGES, status)
            return CommandResult(CommandStatus.NOT_SUPPORTED, status)
        if status == "Rejected":
            self._refused(charger_id, _MESSAGES, status)
        else:
            self._unsupported_call(charger_id, outcome, _MESSAGES)
        return command_result(outcome)

    async def clear(self, charger_id: str, message_id: int) -> CommandResult:
        """ClearDisplayMessage (one the screen does not show is cleared already)."""
        if not self.screen_of(charger_id).messages:
            return self._unable(charger_id, _MESSAGES)
        outcome = await self._call(charger_id, "ClearDisplayMessage", {"id": message_id})
        self._unsupported_call(charger_id, outcome, _MESSAGES)
        if outcome.kind == OutcomeKind.ANSWERED and outcome.payload.get("status") == "Unknown":
            return CommandResult(CommandStatus.ACCEPTED, "not shown")
        return command_result(outcome)

    async def show_cost(self, charger_id: str, connector_id: int, total: Decimal) -> CommandResult:
        """CostUpdated for the EVSE's transaction, in sats (the currency is set first)."""
        if not self.screen_of(charger_id).cost:
            return self._unable(charger_id, _COST)
        station = self._station(charger_id)
        transaction = station.transaction_on(connector_id)
        if transaction is None:
            return CommandResult(CommandStatus.REJECTED, "no transaction on the connector")
        tx = station.transactions.get(transaction)
        if tx is not None and tx.ended and tx.cost_answered:
            return CommandResult(CommandStatus.ACCEPTED, "the Ended's answer carried it")
        currency = await self._set_currency(charger_id)
        if not currency.accepted:
            return currency
        payload = {"totalCost": _number(total), "transactionId": transaction}
        outcome = await self._call(charger_id, "CostUpdated", payload)
        self._unsupported_call(charger_id, outcome, _COST)
        if outcome.kind == OutcomeKind.ANSWERED:
            return CommandResult(CommandStatus.ACCEPTED)
        return command_result(outcome)

    def total_cost(self, charger_id: str, cost_msat: int) -> float | None:
        """The ``totalCost`` of an Ended's answer, or None when the screen cannot show it so.

        Args:
            charger_id: the station.
            cost_msat: the session's final bill.

        Returns:
            The amount in sats, when the station shows costs and its currency is ``SAT``.
        """
        conn = self._live(charger_id)
        if conn is None or not self.screen_of(charger_id).cost:
            return None
        if conn.record.variables.get(_CURRENCY_KEY, "").strip().upper() != SCREEN_CURRENCY:
            return None  # a CostUpdated sets the currency first
        return _number(Decimal(cost_msat) / MSAT_PER_SAT)

    # --- helpers -----------------------------------------------------------------------------

    async def _set_currency(self, charger_id: str) -> CommandResult:
        """Make the screen's currency ``SAT`` (once: it is kept in the record when taken)."""
        conn = self._live(charger_id)
        if conn is None:
            return CommandResult(CommandStatus.OFFLINE, "the charger is not connected")
        variables = conn.record.variables
        if variables.get(_CURRENCY_KEY, "").strip().upper() == SCREEN_CURRENCY:
            return CommandResult(CommandStatus.ACCEPTED)
        setting = {
            "attributeValue": SCREEN_CURRENCY,
            "component": {"name": "TariffCostCtrlr"},
            "variable": {"name": "Currency"},
        }
        outcome = await self._call(charger_id, "SetVariables", {"setVariableData": [setting]})
        if outcome.kind != OutcomeKind.ANSWERED:
            self._unsupported_call(charger_id, outcome, _COST)
            return command_result(outcome)
        results = outcome.payload.get("setVariableResult") or [{}]
        status = str(results[0].get("attributeStatus", ""))
        if status != "Accepted":
            self._refused(charger_id, _COST, f"TariffCostCtrlr.Currency {SCREEN_CURRENCY} {status}")
            return CommandResult(CommandStatus.NOT_SUPPORTED, f"currency not set: {status}")
        variables[_CURRENCY_KEY] = SCREEN_CURRENCY
        log.info("cp_id=%s: its screen shows costs in %s", charger_id, SCREEN_CURRENCY)
        return CommandResult(CommandStatus.ACCEPTED)

    def _unable(self, charger_id: str, what: str) -> CommandResult:
        if self._live(charger_id) is None:
            return CommandResult(CommandStatus.OFFLINE, "the charger is not connected")
        return CommandResult(CommandStatus.NOT_SUPPORTED, f"its screen shows no {what}")

    def _refused(self, charger_id: str, what: str, why: str) -> None:
        conn = self._live(charger_id)
        if conn is not None:
            self._switch_off(conn, what, why)

    def _unsupported_call(self, charger_id: str, outcome: CallOutcome, what: str) -> None:
        if outcome.kind == OutcomeKind.CALL_ERROR and outcome.error_code in _UNSUPPORTED_CALL:
            self._refused(charger_id, what, f"CALLERROR {outcome.error_code}")


if TYPE_CHECKING:
    _IS_DISPLAYS: type[ChargerDisplays] = Ocpp201Displays
