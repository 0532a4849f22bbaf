"""What the simulated OCPP 1.6 charge point is: how it runs and the state of its connectors.

:class:`SimulatorOptions` says what to simulate and where to connect;
:class:`ConnectorState` is one connector as the simulated charger keeps it. The charge point
itself is :class:`ocpp_server.v16.charge_point.SimulatedChargePoint`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

__all__ = ["ConnectorState", "SimulatorOptions"]


@dataclass(frozen=True, slots=True)
class SimulatorOptions:
    """How to run one simulated charge point.

    Attributes:
        url: the central system's base URL; the charger id is appended
            (``ws://host:9000/ocpp`` -> ``ws://host:9000/ocpp/<charger_id>``).
        charger_id: the charge point identity.
        password: the AuthorizationKey for HTTP Basic auth, or None.
        connectors: number of connectors.
        power_kw: charging power per connector.
        speed: how many times faster than real time the meter runs.
        meter_start_wh: every connector's register at start.
        plugged: connectors with a vehicle plugged in at start.
        ca_file: CA certificate to trust for ``wss://`` (the system store when None).
        reconnect: reconnect after the connection drops.
        reconnect_delay_s: wait before reconnecting.
        boot_on_reconnect: send BootNotification after every reconnect (False models a
            charger that only lost its network and resumes without booting).
        persist_transactions: keep transactions (and queued transaction messages) across a
            power loss (:meth:`SimulatedChargePoint.power_cut`). False models firmware that
            comes back without them and never sends their StopTransaction.
        duration_s: stop after this long (None: run until cancelled).
        call_timeout_s: how long to wait for the central system's answers.
        vendor: chargePointVendor in BootNotification.
        model: chargePointModel in BootNotification.
    """

    url: str = "ws://127.0.0.1:9000/ocpp"
    charger_id: str = "sim-1"
    password: str | None = None
    connectors: int = 1
    power_kw: Decimal = Decimal(11)
    speed: float = 1.0
    meter_start_wh: int = 0
    plugged: tuple[int, ...] = ()
    ca_file: Path | None = None
    reconnect: bool = True
    reconnect_delay_s: float = 1.0
    boot_on_reconnect: bool = True
    persist_transactions: bool = True
    duration_s: float | None = None
    call_timeout_s: float = 30.0
    vendor: str = "Strom"
    model: str = "Simulator"

    def __post_init__(self) -> None:
        if not 1 <= self.connectors <= 99:
            raise ValueError("connectors must be 1-99")
        if self.power_kw < 0 or self.speed <= 0 or self.meter_start_wh < 0:
            raise ValueError("power_kw and meter_start_wh must be >= 0 and speed > 0")
        if any(not 1 <= c <= self.connectors for c in self.plugged):
            raise ValueError("plugged connectors must exist")

    @property
    def endpoint(self) -> str:
        """The full websocket URL of this charger."""
        return f"{self.url.rstrip('/')}/{self.charger_id}"


@dataclass(slots=True)
class ConnectorState:
    """One connector of the simulated charger (``transaction_id``: OCPP 1.6's integer)."""

    connector_id: int
    status: str = "Available"
    plugged: bool = False
    operative: bool = True
    transaction_id: int | None = None
    id_tag: str | None = None
    meter_mwh: int = 0  # milliwatt-hours, so slow meters still advance
    waiting_tag: str | None = None  # remote start accepted, waiting for the plug
    scheduled_operative: bool | None = None

    @property
    def meter_wh(self) -> int:
        """The register in whole Wh."""
        return self.meter_mwh // 1000
