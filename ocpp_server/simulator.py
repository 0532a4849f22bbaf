"""A simulated OCPP 1.6J charge point, for the demo and the tests.

It behaves like a well-mannered charger: it boots (BootNotification, then StatusNotification
for every connector), sends Heartbeat and MeterValues at the intervals it is configured with,
accepts RemoteStart/RemoteStop, UnlockConnector, Reset, ChangeAvailability, ChangeConfiguration,
GetConfiguration, ClearCache, DataTransfer and TriggerMessage, and reconnects when its
connection drops. Transaction messages (StartTransaction, StopTransaction) that could not be
delivered are kept and sent again after reconnecting, with the same payload, as OCPP 1.6 asks
of a charger for transaction-related messages. ``power_cut()`` models a power loss (a boot on
reconnect); with ``persist_transactions=False`` the charger comes back without its
transactions, as some firmware does, and never stops them.

Its meter runs ``speed`` times faster than real time at ``power_kw`` while a connector is
charging. Both directions are validated against the OCPP 1.6 schemas: a CALL from the central
system that breaks them is answered with a CALLERROR and kept in ``validation_failures``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Final

from websockets.exceptions import InvalidHandshake, InvalidStatus

from ocpp_server.client import CallFailed
from ocpp_server.sim_model import ConnectorState, SimulatorOptions
from ocpp_server.v16.charge_point import SimulatedChargePoint

__all__ = [
    "PASSWORD_ENV",
    "CallFailed",
    "ConnectorState",
    "SimulatedChargePoint",
    "SimulatorOptions",
    "add_arguments",
    "options_from_args",
    "run_simulator",
]

log = logging.getLogger("ocpp_server.simulator")

PASSWORD_ENV: Final = "STROM_SIMULATE_PASSWORD"  # noqa: S105 - a variable name, no secret
"""Where ``strom simulate`` finds the charger's password when ``--password`` is not given."""


# --- command line --------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to a command-line parser (``strom simulate``)."""
    parser.add_argument("--url", default="ws://127.0.0.1:9000/ocpp", help="central system base URL")
    parser.add_argument("--id", dest="charger_id", default="sim-1", help="charge point identity")
    parser.add_argument(
        "--password",
        default=None,
        help=f"the charger's OCPP password (AuthorizationKey) for HTTP Basic auth; default: "
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
    charger = SimulatedChargePoint(options)
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
