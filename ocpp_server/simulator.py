"""A simulated charge point speaking OCPP 1.6J or OCPP 2.0.1, for the demo and the tests.

It behaves like a well-mannered charger: it boots (BootNotification, then StatusNotification
for every connector), sends Heartbeat and its meter at the intervals it is configured with,
answers the central system's commands, and reconnects when its connection drops. Transaction
messages that could not be delivered are kept and sent again after reconnecting, as both
versions ask of a charger. ``power_cut()`` models a power loss (a boot on reconnect); with
``persist_transactions=False`` the charger comes back without its transactions, as some
firmware does, and never stops them. Its meter runs ``speed`` times faster than real time at
``power_kw`` while a connector is charging. Both directions are validated against the
version's schemas: a CALL from the central system that breaks them is answered with a CALLERROR
and kept in ``validation_failures``.

* OCPP 1.6 (:class:`~ocpp_server.v16.charge_point.SimulatedChargePoint`): StartTransaction,
  MeterValues, StopTransaction; RemoteStart/RemoteStop, UnlockConnector, Reset,
  ChangeAvailability, Change/GetConfiguration, ClearCache, DataTransfer, TriggerMessage.
* OCPP 2.0.1 (:class:`~ocpp_server.v201.charge_point.SimulatedChargePoint201`): its own
  transactions in TransactionEvent Started/Updated/Ended (replayed with ``offline: true``);
  RequestStart/StopTransaction, UnlockConnector, Reset, ChangeAvailability, TriggerMessage,
  Get/SetVariables, GetBaseReport, display messages, CostUpdated, DataTransfer.

:func:`simulated_charge_point` picks the class for ``SimulatorOptions.ocpp_version``; both
offer :class:`SimulatedCharger`, so a test, the demo or a benchmark runs either unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Protocol

from websockets.exceptions import InvalidHandshake, InvalidStatus

from ocpp_server.client import CallFailed
from ocpp_server.ocppj import Call
from ocpp_server.sim_model import OCPP_VERSIONS, ConnectorState, SimulatorOptions
from ocpp_server.v16.charge_point import SimulatedChargePoint
from ocpp_server.v201.charge_point import SimulatedChargePoint201
from strom_core.clock import SYSTEM_CLOCK, Clock

__all__ = [
    "PASSWORD_ENV",
    "CallFailed",
    "ConnectorState",
    "SimulatedChargePoint",
    "SimulatedChargePoint201",
    "SimulatedCharger",
    "SimulatorOptions",
    "add_arguments",
    "options_from_args",
    "run_simulator",
    "simulated_charge_point",
]

log = logging.getLogger("ocpp_server.simulator")

PASSWORD_ENV: Final = "STROM_SIMULATE_PASSWORD"  # noqa: S105 - a variable name, no secret
"""Where ``strom simulate`` finds the charger's password when ``--password`` is not given."""


class SimulatedCharger(Protocol):
    """What every simulated charge point offers, whatever OCPP version it speaks.

    ``connectors`` maps each connector (2.0.1: each EVSE) to its state; ``status`` there is
    in the version's words, ``charging`` in neither's.
    """

    options: SimulatorOptions
    received_calls: list[Call]
    validation_failures: list[str]
    boots: int
    connections: int
    boot_status: str | None

    @property
    def connectors(self) -> Mapping[int, ConnectorState]:
        """The connectors (2.0.1: the EVSEs) by number."""
        ...

    @property
    def connected(self) -> bool:
        """Whether a websocket is open now."""
        ...

    @property
    def password(self) -> str | None:
        """The password presented with HTTP Basic auth."""
        ...

    async def run(self) -> None:
        """Connect, boot and serve; reconnect after a drop unless told not to."""
        ...

    def stop(self) -> None:
        """Stop after the current connection."""
        ...

    def drop_connection(self) -> None:
        """Lose the connection as a network failure would."""
        ...

    def power_cut(self) -> None:
        """Lose power: the charger boots when it reconnects."""
        ...

    async def wait_until(self, predicate: Callable[[], bool], within_s: float = ...) -> None:
        """Wait until ``predicate()`` holds."""
        ...

    async def plug(self, connector_id: int = ...) -> None:
        """Plug a vehicle in."""
        ...

    async def unplug(self, connector_id: int = ...) -> None:
        """Unplug the vehicle."""
        ...

    async def start_transaction(self, connector_id: int, id_tag: str) -> dict[str, Any]:
        """A driver starts a transaction at the charger."""
        ...

    async def stop_transaction(self, connector_id: int, reason: str = ...) -> dict[str, Any]:
        """Stop the connector's transaction."""
        ...

    async def call(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send a CALL and return the CALLRESULT payload."""
        ...


def simulated_charge_point(
    options: SimulatorOptions,
    *,
    clock: Clock = SYSTEM_CLOCK,
    observe: Callable[[Call], None] | None = None,
) -> SimulatedCharger:
    """The simulated charge point of ``options.ocpp_version``.

    Args:
        options: what to simulate and where to connect.
        clock: drives the meter, the intervals and the timestamps.
        observe: told about every CALL from the central system as it arrives.
    """
    if options.ocpp_version == "2.0.1":
        return SimulatedChargePoint201(options, clock=clock, observe=observe)
    return SimulatedChargePoint(options, clock=clock, observe=observe)


# --- command line --------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to a command-line parser (``strom simulate``)."""
    parser.add_argument("--url", default="ws://127.0.0.1:9000/ocpp", help="central system base URL")
    parser.add_argument("--id", dest="charger_id", default="sim-1", help="charge point identity")
    parser.add_argument(
        "--ocpp",
        dest="ocpp_version",
        choices=OCPP_VERSIONS,
        default="1.6",
        help="the OCPP version the charger speaks (default: 1.6)",
    )
    parser.add_argument(
        "--password",
        default=None,
        help=f"the charger's OCPP password (1.6 AuthorizationKey, 2.0.1 BasicAuthPassword) for "
        f"HTTP Basic auth; default: "
        f"${PASSWORD_ENV}, else none (write --password=KEY for a key starting with '-')",
    )
    parser.add_argument("--connectors", type=int, default=1)
    parser.add_argument("--power-kw", type=Decimal, default=Decimal(11))
    parser.add_argument("--speed", type=float, default=1.0, help="meter speed factor")
    parser.add_argument("--meter-start-wh", type=int, default=0)
    parser.add_argument(
        "--plug", type=int, action="append", default=[], help="connector plugged at start"
    )
    parser.add_argument("--ca-file", type=Path, default=None, help="CA to trust for wss://")
    parser.add_argument("--duration", type=float, default=None, help="stop after seconds")
    parser.add_argument("--no-reconnect", action="store_true")


def options_from_args(
    ns: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> SimulatorOptions:
    """Build :class:`SimulatorOptions` from parsed :func:`add_arguments` options.

    Args:
        ns: the parsed options.
        environ: where ``STROM_SIMULATE_PASSWORD`` is read (``os.environ`` if None).
    """
    password = ns.password
    if password is None:
        password = (os.environ if environ is None else environ).get(PASSWORD_ENV) or None
    return SimulatorOptions(
        url=ns.url,
        charger_id=ns.charger_id,
        ocpp_version=ns.ocpp_version,
        password=password,
        connectors=ns.connectors,
        power_kw=ns.power_kw,
        speed=ns.speed,
        meter_start_wh=ns.meter_start_wh,
        plugged=tuple(ns.plug),
        ca_file=ns.ca_file,
        duration_s=ns.duration,
        reconnect=not ns.no_reconnect,
    )


async def run_simulator(options: SimulatorOptions) -> int:
    """Run one simulated charge point until ``duration_s`` elapses or the task is cancelled.

    Returns:
        0 after a normal end, 2 when the central system refused the charger (HTTP status),
        1 when it could not be reached (only with ``reconnect`` off).
    """
    charger = simulated_charge_point(options)
    try:
        async with asyncio.timeout(options.duration_s):
            await charger.run()
    except TimeoutError:
        return 0
    except InvalidStatus as exc:
        log.error("%s: refused by the central system: %s", options.charger_id, exc)
        return 2
    except (OSError, InvalidHandshake) as exc:
        log.error("%s: cannot reach %s: %s", options.charger_id, options.endpoint, exc)
        return 1
    return 0
