"""Commands to chargers, each in the OCPP version its live connection speaks.

:class:`OcppCommands` is the :class:`strom_core.ports.ChargerCommands` the server offers to the
rest of Strom. It is version-neutral: every :class:`~ocpp_server._connection.Dialect` makes its
own command set (:mod:`ocpp_server.v16.commands` for OCPP 1.6), and a command goes to the set of
the dialect the charger's live connection negotiated. Each set finds only the connections of its
own dialect, so a charger that reconnects with another version in between is never sent a
command of the old one: that set finds no connection and answers ``OFFLINE``.

It is the :class:`strom_core.ports.ChargerDisplays` too, routed the same way: a version whose
chargers have no screen the central system writes to (OCPP 1.6) shows nothing (``NO_SCREEN``;
``show`` answers ``NOT_SUPPORTED`` and sends nothing).

In a cluster (:mod:`ocpp_server.ownership`) a charger without a live connection here goes to
:class:`~ocpp_server.ownership.Elsewhere`: the command is sent to the process that holds the
charger, which runs it on its own connection (``OFFLINE`` when no process holds it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from ocpp_server._connection import (
    CallOutcome,
    ChargerConnection,
    ConnectionLookup,
    Dialect,
    OutcomeKind,
)
from ocpp_server.ownership import Elsewhere
from strom_core.ports import (
    NO_SCREEN,
    ChargerCommands,
    ChargerDisplays,
    CommandResult,
    CommandStatus,
    ScreenCapabilities,
    ScreenMessage,
)
from strom_core.ports.device_model import (
    DeviceModelCommands,
    VariableSetting,
    VariablesResult,
)

__all__ = ["OcppCommands", "RoutedDeviceModel", "VersionCommands", "command_result"]

_NOT_CONNECTED: Final = CommandResult(CommandStatus.OFFLINE, "the charger is not connected")
_Port = TypeVar("_Port")
_NO_SCREEN: Final = CommandResult(CommandStatus.NOT_SUPPORTED, "the charger has no screen")


# How each command's answer status maps onto CommandStatus.
_ACCEPTED: Final = frozenset(
    {"Accepted", "AcceptedCanceled", "Unlocked", "Scheduled", "RebootRequired"}
)
_NOT_SUPPORTED: Final = frozenset({"NotSupported", "NotImplemented"})


def command_result(outcome: CallOutcome) -> CommandResult:
    """The typed result of a CALL's outcome, by the answer's ``status`` (both versions)."""
    if outcome.kind == OutcomeKind.OFFLINE:
        return CommandResult(CommandStatus.OFFLINE, outcome.detail)
    if outcome.kind in (OutcomeKind.TIMEOUT, OutcomeKind.LOST):
        return CommandResult(CommandStatus.TIMEOUT, outcome.detail)
    if outcome.kind == OutcomeKind.CALL_ERROR:
        if outcome.error_code in _NOT_SUPPORTED:
            return CommandResult(CommandStatus.NOT_SUPPORTED, outcome.error_code)
        return CommandResult(CommandStatus.ERROR, f"{outcome.error_code}: {outcome.detail}")
    if outcome.kind == OutcomeKind.INVALID:
        return CommandResult(CommandStatus.ERROR, f"invalid answer: {outcome.detail}")
    status = str(outcome.payload.get("status", ""))
    if status in _ACCEPTED:
        return CommandResult(CommandStatus.ACCEPTED, "" if status == "Accepted" else status)
    if status in _NOT_SUPPORTED:
        return CommandResult(CommandStatus.NOT_SUPPORTED, status)
    return CommandResult(CommandStatus.REJECTED, status)


class VersionCommands:
    """What every version's command set shares: sending a CALL to a live connection.

    Every command returns a :class:`~strom_core.ports.CommandResult` and never raises for what
    a charger does: ``OFFLINE`` when it is not connected (nothing was sent), ``TIMEOUT`` when
    it did not answer in time or the connection dropped after sending (the outcome is
    unknown), ``ERROR`` for a CALLERROR or an answer that breaks the schema, ``NOT_SUPPORTED``
    when the charger says so.

    Args:
        connection: a charger's live connection in the version, or None.
    """

    def __init__(self, connection: ConnectionLookup) -> None:
        self._connection = connection

    async def _call(self, charger_id: str, action: str, payload: Mapping[str, Any]) -> CallOutcome:
        conn = self._connection(charger_id)
        if conn is None or not conn.online:
            return CallOutcome(OutcomeKind.OFFLINE, detail="the charger is not connected")
        return await conn.call(action, payload)

    async def _command(
        self, charger_id: str, action: str, payload: Mapping[str, Any]
    ) -> CommandResult:
        return command_result(await self._call(charger_id, action, payload))

    def is_online(self, charger_id: str) -> bool:
        """Whether the charger has a live, admitted connection now."""
        conn = self._connection(charger_id)
        return conn is not None and conn.online


class _NotConnected:
    """The command set of a charger without a live connection: nothing is sent."""

    def is_online(self, charger_id: str) -> bool:
        return False

    async def remote_start(self, charger_id: str, connector_id: int, id_tag: str) -> CommandResult:
        return _NOT_CONNECTED

    async def remote_stop(self, charger_id: str, transaction: str) -> CommandResult:
        return _NOT_CONNECTED

    async def unlock(self, charger_id: str, connector_id: int) -> CommandResult:
        return _NOT_CONNECTED

    async def change_availability(
        self, charger_id: str, connector_id: int, *, operative: bool
    ) -> CommandResult:
        return _NOT_CONNECTED

    async def reset(self, charger_id: str, *, hard: bool) -> CommandResult:
        return _NOT_CONNECTED

    async def trigger_status(self, charger_id: str, connector_id: int | None) -> CommandResult:
        return _NOT_CONNECTED


class _NoScreen:
    """The screen of a charger without one (or without a live connection): nothing is sent."""

    def __init__(self, answer: CommandResult) -> None:
        self._answer = answer

    def screen_of(self, charger_id: str) -> ScreenCapabilities:
        return NO_SCREEN

    async def show(self, charger_id: str, message: ScreenMessage) -> CommandResult:
        return self._answer

    async def clear(self, charger_id: str, message_id: int) -> CommandResult:
        return self._answer

    async def show_cost(self, charger_id: str, connector_id: int, total: Decimal) -> CommandResult:
        return self._answer


class OcppCommands:
    """Commands to connected chargers, by charger id, routed by the connection's dialect.

    Args:
        connection: a charger's live connection, or None.
        dialects: the OCPP versions served; each makes its command set here.
        elsewhere: chargers connected to other processes of a cluster; None: one process.
    """

    def __init__(
        self,
        connection: ConnectionLookup,
        dialects: Iterable[Dialect],
        elsewhere: Elsewhere | None = None,
    ) -> None:
        self._connection = connection
        self._elsewhere = elsewhere
        self._dialects = tuple(dialects)
        self._sets: dict[str, ChargerCommands] = {
            dialect.subprotocol: dialect.commands(partial(self._speaking, dialect))
            for dialect in self._dialects
        }
        self._screens: dict[str, ChargerDisplays] = {
            dialect.subprotocol: (
                dialect.displays(partial(self._speaking, dialect))
                if dialect.displays is not None
                else _NoScreen(_NO_SCREEN)
            )
            for dialect in self._dialects
        }
        self._not_connected = _NotConnected()
        self._screen_offline = _NoScreen(_NOT_CONNECTED)

    def _speaking(self, dialect: Dialect, charger_id: str) -> ChargerConnection | None:
        """The charger's connection when it negotiated ``dialect``, else None."""
        conn = self._connection(charger_id)
        return conn if conn is not None and conn.dialect is dialect else None

    def _local(self, charger_id: str) -> ChargerConnection | None:
        conn = self._connection(charger_id)
        return conn if conn is not None and conn.online else None

    def _route(self, charger_id: str) -> ChargerCommands:
        conn = self._local(charger_id)
        if conn is not None:
            return self._sets[conn.dialect.subprotocol]
        if self._elsewhere is not None:
            return cast(ChargerCommands, self._elsewhere.proxy(charger_id))
        return self._not_connected

    def _screen(self, charger_id: str) -> ChargerDisplays:
        conn = self._local(charger_id)
        if conn is not None:
            return self._screens[conn.dialect.subprotocol]
        if self._elsewhere is not None:
            return cast(ChargerDisplays, self._elsewhere.proxy(charger_id))
        return self._screen_offline

    def local_target(self, charger_id: str, *, screen: bool = False) -> object | None:
        """The command set (or screen) of the charger's live connection *here*, or None.

        What a process runs a command on when another process sent it: never routed on.
        """
        conn = self._local(charger_id)
        if conn is None:
            return None
        return (self._screens if screen else self._sets)[conn.dialect.subprotocol]

    def remote(self, charger_id: str) -> object | None:
        """In a cluster, the commands sent to the owner of a charger not connected here.

        Every command; the owner answers for what its version lacks. None: connected here,
        or one process.
        """
        if self._elsewhere is None or self._local(charger_id) is not None:
            return None
        return self._elsewhere.proxy(charger_id)

    def local_details(self, charger_id: str) -> tuple[str, frozenset[str]] | None:
        """The live connection's subprotocol and the 1.6 profiles it lacks, here; or None."""
        conn = self._local(charger_id)
        if conn is None:
            return None
        lacking = frozenset(
            profile
            for profile in ("SmartCharging", "Reservation", "LocalAuthListManagement")
            if conn.record.lacks_feature(profile)
        )
        return conn.dialect.subprotocol, lacking

    def command_set(self, subprotocol: str) -> ChargerCommands:
        """The command set of one OCPP version, for the commands it has beyond the port.

        Raises:
            KeyError: no version with that websocket subprotocol is served.
        """
        return self._sets[subprotocol]

    def live_set(self, charger_id: str) -> ChargerCommands | None:
        """The command set of the charger's live connection, or None when it is not connected.

        In a cluster, a charger connected elsewhere (as last heard) gets a set that sends each
        command to its owner, with every command of the version it speaks.
        """
        conn = self._local(charger_id)
        if conn is not None:
            return self._sets[conn.dialect.subprotocol]
        if self._elsewhere is None or self._elsewhere.located(charger_id) is None:
            return None
        return cast(ChargerCommands, self._elsewhere.proxy(charger_id))

    def lacks_feature(self, charger_id: str, profile: str) -> bool:
        """Whether the live charger reported its 1.6 feature profiles without ``profile``."""
        conn = self._connection(charger_id)
        if conn is not None:
            return conn.record.lacks_feature(profile)
        located = None if self._elsewhere is None else self._elsewhere.located(charger_id)
        return located is not None and profile in located.lacking

    def live_capable(self, charger_id: str, port: type[_Port], what: str) -> _Port | CommandResult:
        """The live connection's command set when its version implements ``port``.

        ``port`` is a runtime-checkable Protocol (power limits, the local list, firmware …);
        a charger that is not connected gets ``OFFLINE``, one whose version has no such
        commands ``NOT_SUPPORTED``: either way nothing is sent.
        """
        live = self.live_set(charger_id)
        if live is None:
            if self._elsewhere is None:
                return _NOT_CONNECTED
            # Not heard of elsewhere yet: the owner is looked up when the command is sent.
            live = cast(ChargerCommands, self._elsewhere.proxy(charger_id))
        located = None if self._elsewhere is None else self._elsewhere.located(charger_id)
        if (
            self._local(charger_id) is None
            and located is not None
            and located.subprotocol in self._sets
        ):
            # A charger elsewhere has the commands of the version it speaks there.
            version_set: object = self._sets[located.subprotocol]
            if not isinstance(version_set, port):
                return CommandResult(
                    CommandStatus.NOT_SUPPORTED, f"its OCPP version carries no {what} in Strom"
                )
        if not isinstance(live, port):
            return CommandResult(
                CommandStatus.NOT_SUPPORTED, f"its OCPP version carries no {what} in Strom"
            )
        return live

    def is_online(self, charger_id: str) -> bool:
        """Whether the charger has a live, admitted connection now.

        Here, or in a cluster at another process, as last heard.
        """
        if self._local(charger_id) is not None:
            return True
        return self._elsewhere is not None and self._elsewhere.located(charger_id) is not None

    async def remote_start(self, charger_id: str, connector_id: int, id_tag: str) -> CommandResult:
        """Start a transaction on one connector with a per-session idTag (<= 20 chars)."""
        return await self._route(charger_id).remote_start(charger_id, connector_id, id_tag)

    async def remote_stop(self, charger_id: str, transaction: str) -> CommandResult:
        """Stop a transaction by its reference."""
        return await self._route(charger_id).remote_stop(charger_id, transaction)

    async def unlock(self, charger_id: str, connector_id: int) -> CommandResult:
        """Unlock a connector."""
        return await self._route(charger_id).unlock(charger_id, connector_id)

    async def change_availability(
        self, charger_id: str, connector_id: int, *, operative: bool
    ) -> CommandResult:
        """Make a connector (0: the whole charger) operative or inoperative."""
        return await self._route(charger_id).change_availability(
            charger_id, connector_id, operative=operative
        )

    async def reset(self, charger_id: str, *, hard: bool) -> CommandResult:
        """Reset the charger (soft or hard)."""
        return await self._route(charger_id).reset(charger_id, hard=hard)

    async def trigger_status(self, charger_id: str, connector_id: int | None) -> CommandResult:
        """Ask for a connector's status (all connectors when ``connector_id`` is None)."""
        return await self._route(charger_id).trigger_status(charger_id, connector_id)

    # --- screens -------------------------------------------------------------------------------

    def screen_of(self, charger_id: str) -> ScreenCapabilities:
        """What the charger's screen can show (``NO_SCREEN`` when offline or without one)."""
        if self._local(charger_id) is None and self._elsewhere is not None:
            located = self._elsewhere.located(charger_id)
            return NO_SCREEN if located is None else located.screen
        return self._screen(charger_id).screen_of(charger_id)

    async def show(self, charger_id: str, message: ScreenMessage) -> CommandResult:
        """Show a message on the charger's screen (replacing the one with its id)."""
        return await self._screen(charger_id).show(charger_id, message)

    async def clear(self, charger_id: str, message_id: int) -> CommandResult:
        """Remove a message from the charger's screen."""
        return await self._screen(charger_id).clear(charger_id, message_id)

    async def show_cost(self, charger_id: str, connector_id: int, total: Decimal) -> CommandResult:
        """Show the running cost of the transaction on a connector."""
        return await self._screen(charger_id).show_cost(charger_id, connector_id, total)

    def on_screen_reported(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with the charger id whenever a charger reported its screen.

        It runs on the charger's connection: it must not block or raise.
        """
        for dialect in self._dialects:
            dialect.on_screen_reported(listener)


class RoutedDeviceModel:
    """OCPP 2.0.1 device-model commands, to a charger here or at the process holding it.

    Args:
        commands: the server's commands (routed).
        local: the OCPP 2.0.1 command set of this process's connections.
    """

    def __init__(self, commands: OcppCommands, local: DeviceModelCommands) -> None:
        self._commands = commands
        self._local = local

    def _to(self, charger_id: str) -> DeviceModelCommands:
        remote = self._commands.remote(charger_id)
        return self._local if remote is None else cast(DeviceModelCommands, remote)

    async def get_variables(
        self, charger_id: str, variables: Sequence[VariableSetting]
    ) -> VariablesResult:
        """GetVariables, where the charger is connected."""
        return await self._to(charger_id).get_variables(charger_id, variables)

    async def set_variables(
        self, charger_id: str, variables: Sequence[VariableSetting]
    ) -> VariablesResult:
        """SetVariables, where the charger is connected."""
        return await self._to(charger_id).set_variables(charger_id, variables)

    async def get_base_report(
        self, charger_id: str, report: str = "FullInventory"
    ) -> CommandResult:
        """GetBaseReport, where the charger is connected."""
        return await self._to(charger_id).get_base_report(charger_id, report)


if TYPE_CHECKING:
    _IS_DEVICE_MODEL: type[DeviceModelCommands] = RoutedDeviceModel
    _IS_CHARGER_COMMANDS: type[ChargerCommands] = OcppCommands
    _IS_CHARGER_DISPLAYS: type[ChargerDisplays] = OcppCommands
    _NO_SCREEN_IS_DISPLAYS: type[ChargerDisplays] = _NoScreen
    _NOT_CONNECTED_IS_COMMANDS: type[ChargerCommands] = _NotConnected
