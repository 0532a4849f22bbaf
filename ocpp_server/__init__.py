"""The OCPP-J central system shared by every charge-point agent.

Chargers connect to ``ws(s)://HOST:PORT/ocpp/<charger id>`` with the ``ocpp1.6`` or
``ocpp2.0.1`` subprotocol (one offering both gets the configured preference) and, for security
profiles 1 and 2, HTTP Basic auth. The server, connections, admission and the OCPP-J peer are
version-neutral; everything particular to OCPP 1.6 is in :mod:`ocpp_server.v16`, to OCPP 2.0.1
in :mod:`ocpp_server.v201`. :class:`OcppServer` admits them, talks to
Strom's core through :class:`strom_core.ports.OcppCore`, publishes :mod:`strom_core.ports`
events, and offers :class:`OcppCommands` (a :class:`strom_core.ports.ChargerCommands`) to act on
chargers: each command goes to the command set of the OCPP version the charger's connection
speaks (:class:`ocpp_server.v16.Ocpp16Commands` for OCPP 1.6,
:class:`ocpp_server.v201.Ocpp201Commands` for OCPP 2.0.1).
"""

from ocpp_server.backoff import SourceBackoff
from ocpp_server.commands import OcppCommands
from ocpp_server.memory_core import InMemoryOcppCore, MemoryEventSink
from ocpp_server.passwords import (
    KeyedHash,
    NewPassword,
    PasswordKey,
    authorization_key_hex,
    generate_authorization_key,
    hash_password,
    parse_password_hash,
    validate_authorization_key,
    verify_password,
)
from ocpp_server.records import (
    BootInfo,
    ChargerInfo,
    LoggedMessage,
    MessageCounters,
    PendingCharger,
)
from ocpp_server.server import OcppServer
from ocpp_server.settings import (
    ChargerAuth,
    ChargerAuthLookup,
    OcppServerSettings,
    Quirk,
    StaticChargerAuth,
    parse_quirks,
)
from ocpp_server.simulator import (
    SimulatedChargePoint,
    SimulatedChargePoint201,
    SimulatedCharger,
    SimulatorOptions,
    add_arguments,
    options_from_args,
    run_simulator,
    simulated_charge_point,
)

__all__ = [
    "BootInfo",
    "ChargerAuth",
    "ChargerAuthLookup",
    "ChargerInfo",
    "InMemoryOcppCore",
    "KeyedHash",
    "LoggedMessage",
    "MemoryEventSink",
    "MessageCounters",
    "NewPassword",
    "OcppCommands",
    "OcppServer",
    "OcppServerSettings",
    "PasswordKey",
    "PendingCharger",
    "Quirk",
    "SimulatedChargePoint",
    "SimulatedChargePoint201",
    "SimulatedCharger",
    "SimulatorOptions",
    "SourceBackoff",
    "StaticChargerAuth",
    "add_arguments",
    "authorization_key_hex",
    "generate_authorization_key",
    "hash_password",
    "options_from_args",
    "parse_password_hash",
    "parse_quirks",
    "run_simulator",
    "simulated_charge_point",
    "validate_authorization_key",
    "verify_password",
]
