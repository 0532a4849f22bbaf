"""OCPP 2.0.1: everything that is particular to OCPP 2.0.1 in Strom's central system.

The version-neutral parts (:mod:`ocpp_server.server`, the connection, admission, passwords,
back-off, records) pick this package when a charger negotiates the ``ocpp2.0.1`` websocket
subprotocol. It mirrors :mod:`ocpp_server.v16`:

* :mod:`~ocpp_server.v201.schemas`: payload validation against the OCPP 2.0.1 JSON schemas,
  with the error codes of OCPP-J 2.0.1;
* :mod:`~ocpp_server.v201.messages`: typed views of what a station sends, Strom's connector
  numbering (connector N is EVSE N) and the remote start id;
* :mod:`~ocpp_server.v201.meter`: energy register readings out of 2.0.1 meter values;
* :mod:`~ocpp_server.v201.handlers`: the handlers, mapping 2.0.1 (TransactionEvent, connector
  status, idTokens) onto the version-neutral port and events;
* :mod:`~ocpp_server.v201.commands`: the 2.0.1 command set (RequestStart/StopTransaction,
  Reset, Get/SetVariables, …);
* :mod:`~ocpp_server.v201.displays`: the stations' screens (display messages, running cost),
  as far as each station reported it has one.
"""

from __future__ import annotations

from typing import Final

from ocpp_server._connection import ConnectionLookup, Dialect, DialectContext
from ocpp_server.v201 import schemas
from ocpp_server.v201.commands import (
    Ocpp201Commands,
    VariableResult,
    VariableSetting,
    VariablesResult,
)
from ocpp_server.v201.displays import Ocpp201Displays
from ocpp_server.v201.handlers import ChargerHandlers

__all__ = [
    "SUBPROTOCOL",
    "Ocpp201Commands",
    "Ocpp201Displays",
    "VariableResult",
    "VariableSetting",
    "VariablesResult",
    "dialect",
]

SUBPROTOCOL: Final = "ocpp2.0.1"


def dialect(context: DialectContext) -> Dialect:
    """What a connection that negotiated ``ocpp2.0.1`` needs, its commands and screens."""
    handlers = ChargerHandlers(context)

    def remember(charger_id: str, remote_start_id: int, id_tag: str) -> None:
        handlers.station(charger_id).remember_remote_start(remote_start_id, id_tag)

    def displays(lookup: ConnectionLookup) -> Ocpp201Displays:
        screens = Ocpp201Displays(lookup, handlers.station)
        handlers.on_final_cost(screens.total_cost)
        return screens

    return Dialect(
        subprotocol=SUBPROTOCOL,
        schemas=schemas,
        handlers=handlers.table(),
        configure=handlers.configure,
        trigger_boot=handlers.trigger_boot,
        commands=lambda lookup: Ocpp201Commands(lookup, remember),
        wire_code=schemas.wire_code,
        displays=displays,
        on_screen_reported=handlers.on_reported,
    )
