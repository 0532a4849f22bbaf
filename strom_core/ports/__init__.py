"""The ports: what the core and the services need from the adapters, as Protocols and types.

The core never imports an adapter (storage, lightning, OCPP server, agents, front door,
cockpit). It defines here what it needs from them and what it offers them; the composition
root (``strom.app``) plugs implementations together. One module per concern:

* :mod:`strom_core.ports.chargers` — commands to chargers and how connected a charger is;
* :mod:`strom_core.ports.ocpp` — what the OCPP server asks of the core, and its events;
* :mod:`strom_core.ports.agents` — what the cockpit asks of the nostr agents;
* :mod:`strom_core.ports.station` — what the cockpit asks of the OCPP server;
* :mod:`strom_core.ports.ocpi` — what the cockpit asks of the OCPI server (roaming partners).

Import from the module of the concern; the names below are re-exported for convenience.
"""

from __future__ import annotations

from strom_core.ports.chargers import (
    NO_SCREEN,
    ChargerCommands,
    ChargerDisplays,
    ChargerIdentities,
    ChargerLink,
    CommandResult,
    CommandStatus,
    ScreenCapabilities,
    ScreenMessage,
    charger_link,
)
from strom_core.ports.ocpp import (
    Authorization,
    ChargerBooted,
    ChargerOffline,
    ChargerOnline,
    ConnectorStatusChanged,
    EventSink,
    MeterSample,
    OcppCore,
    OcppEvent,
    SecurityEventReported,
    StartDecision,
    StopDecision,
    TransactionStarted,
    TransactionStopped,
    within_lifetime,
)

__all__ = [
    "NO_SCREEN",
    "Authorization",
    "ChargerBooted",
    "ChargerCommands",
    "ChargerDisplays",
    "ChargerIdentities",
    "ChargerLink",
    "ChargerOffline",
    "ChargerOnline",
    "CommandResult",
    "CommandStatus",
    "ConnectorStatusChanged",
    "EventSink",
    "MeterSample",
    "OcppCore",
    "OcppEvent",
    "ScreenCapabilities",
    "ScreenMessage",
    "SecurityEventReported",
    "StartDecision",
    "StopDecision",
    "TransactionStarted",
    "TransactionStopped",
    "charger_link",
    "within_lifetime",
]
