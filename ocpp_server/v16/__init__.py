"""OCPP 1.6J: everything that is particular to OCPP 1.6 in Strom's central system.

The version-neutral parts (:mod:`ocpp_server.server`, the connection, admission, passwords,
back-off, records) pick this package when a charger negotiates the ``ocpp1.6`` websocket
subprotocol. Its modules are named so an OCPP 2.0.1 package (``ocpp_server.v201``) mirrors them:

* :mod:`~ocpp_server.v16.schemas`: payload validation against the OCPP 1.6 JSON schemas;
* :mod:`~ocpp_server.v16.messages`: typed views of what a charger sends;
* :mod:`~ocpp_server.v16.meter`: energy register readings out of MeterValue lists;
* :mod:`~ocpp_server.v16.handlers`: the ``on_<action>`` handlers, talking to the core's port
  (1.6's integer transaction ids and ``AuthorizationStatus`` are mapped here, at the edge);
* :mod:`~ocpp_server.v16.commands`: the 1.6 command set (RemoteStart/Stop, Reset, …), where
  the server's :class:`~ocpp_server.commands.OcppCommands` routes a 1.6 charger's commands;
* :mod:`~ocpp_server.v16.charge_point`: the simulated OCPP 1.6 charge point (on the shared
  :mod:`~ocpp_server.sim_base`, with the options and connector state of
  :mod:`~ocpp_server.sim_model`) and its answers to the central system's CALLs in
  :mod:`~ocpp_server.v16.sim_answers`.
"""

from __future__ import annotations

from typing import Final

from ocpp_server._connection import Dialect, DialectContext
from ocpp_server.v16 import schemas
from ocpp_server.v16.commands import (
    ConfigurationKey,
    DataTransferResult,
    GetConfigurationResult,
    Ocpp16Commands,
)
from ocpp_server.v16.handlers import ChargerHandlers

__all__ = [
    "SUBPROTOCOL",
    "ConfigurationKey",
    "DataTransferResult",
    "GetConfigurationResult",
    "Ocpp16Commands",
    "dialect",
]

SUBPROTOCOL: Final = "ocpp1.6"


def dialect(context: DialectContext) -> Dialect:
    """What a connection that negotiated ``ocpp1.6`` needs, and the 1.6 command set."""
    handlers = ChargerHandlers(context)
    return Dialect(
        subprotocol=SUBPROTOCOL,
        schemas=schemas,
        handlers=handlers.table(),
        configure=handlers.configure,
        trigger_boot=handlers.trigger_boot,
        commands=Ocpp16Commands,
    )
