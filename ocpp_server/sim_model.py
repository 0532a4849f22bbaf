"""What a simulated charge point is, whatever OCPP version it speaks: options and connectors.

:class:`SimulatorOptions` says what to simulate, which OCPP version it speaks and where to
connect; :class:`ConnectorState` is one connector as the simulated charger keeps it (an OCPP
2.0.1 charger keeps a little more per EVSE, :class:`ocpp_server.v201.sim_model.EvseState`). The
charge points themselves are :class:`ocpp_server.v16.charge_point.SimulatedChargePoint` and
:class:`ocpp_server.v201.charge_point.SimulatedChargePoint201`, on the shared behaviour of
:class:`ocpp_server.sim_base.SimulatorBase`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final

__all__ = ["OCPP_VERSIONS", "ConnectorState", "SimulatorOptions"]

OCPP_VERSIONS: Final = ("1.6", "2.0.1")
"""The OCPP versions a simulated charge point speaks."""


@dataclass(frozen=True, slots=True)
class SimulatorOptions:
    """How to run one simulated charge point.

    Attributes:
        url: the central system's base URL; the charger id is appended
            (``ws://host:9000/ocpp`` -> ``ws://host:9000/ocpp/<charger_id>``).
        fallback_urls: more base URLs of the same central system (the processes of a
            cluster, as a load balancer would spread them): when a connection attempt
            fails the charger tries the next one, round robin, starting from ``url``.
        charger_id: the charge point identity.
        ocpp_version: ``"1.6"`` or ``"2.0.1"`` (see :data:`OCPP_VERSIONS`).
        password: the password for HTTP Basic auth (1.6 AuthorizationKey, 2.0.1
            BasicAuthPassword), or None.
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
            comes back without them and never sends their StopTransaction (2.0.1: their
            TransactionEvent Ended).
        duration_s: stop after this long (None: run until cancelled).
        call_timeout_s: how long to wait for the central system's answers.
        vendor: the vendor name in BootNotification.
        model: the model in BootNotification.
        screen: (OCPP 2.0.1) it has a screen the central system writes display messages to.
        qr_codes: (OCPP 2.0.1) the screen shows URI messages as QR codes.
        running_cost: (OCPP 2.0.1) it shows the running cost the central system tells.
    """

    url: str = "ws://127.0.0.1:9000/ocpp"
    fallback_urls: tuple[str, ...] = ()
    charger_id: str = "sim-1"
    ocpp_version: str = "1.6"
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
    screen: bool = True
    qr_codes: bool = True
    running_cost: bool = True

    def __post_init__(self) -> None:
        if self.ocpp_version not in OCPP_VERSIONS:
            raise ValueError(f"ocpp_version must be one of {', '.join(OCPP_VERSIONS)}")
        if not 1 <= self.connectors <= 99:
            raise ValueError("connectors must be 1-99")
        if self.power_kw < 0 or self.speed <= 0 or self.meter_start_wh < 0:
            raise ValueError("power_kw and meter_start_wh must be >= 0 and speed > 0")
        if any(not 1 <= c <= self.connectors for c in self.plugged):
            raise ValueError("plugged connectors must exist")

    @property
    def endpoint(self) -> str:
        """The full websocket URL of this charger."""
        return self.endpoint_at(0)

    def endpoint_at(self, attempt: int) -> str:
        """The URL of connection attempt ``attempt`` (``url``, then the fallbacks in turn)."""
        urls = (self.url, *self.fallback_urls)
        return f"{urls[attempt % len(urls)].rstrip('/')}/{self.charger_id}"


@dataclass(slots=True)
class ConnectorState:
    """One connector of the simulated charger.

    ``status`` is the status the charger reports for it (the version's own words);
    ``transaction_id`` the transaction it runs: OCPP 1.6's integer from the central system,
    OCPP 2.0.1's own string.
    """

    connector_id: int
    status: str = "Available"
    plugged: bool = False
    operative: bool = True
    transaction_id: int | str | None = None
    id_tag: str | None = None
    meter_mwh: int = 0  # milliwatt-hours, so slow meters still advance
    waiting_tag: str | None = None  # remote start accepted, waiting for the plug
    scheduled_operative: bool | None = None

    @property
    def meter_wh(self) -> int:
        """The register in whole Wh."""
        return self.meter_mwh // 1000

    @property
    def charging(self) -> bool:
        """Whether energy flows: a transaction runs and the vehicle draws."""
        return self.transaction_id is not None and self.status == "Charging"
