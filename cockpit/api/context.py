"""What every resource of the API works with: Strom's parts as ports, and the shared lookups.

The cockpit holds no part of Strom but through this context: the configuration in force (one
:class:`~strom_core.config.LiveConfig`, replaced on a reload), the stores and services, the
agents and the OCPP server as the core's ports (:mod:`strom_core.ports.agents`,
:mod:`strom_core.ports.station`), and how a written profile is applied while Strom runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cockpit.endpoint import ApiError, Call
from cockpit.profiles import ProfileFiles
from strom_core.clock import Clock
from strom_core.config import LiveConfig, ProfileConfig, StromConfig
from strom_core.errors import AgentMoving, AgentUnavailable, ConfigError, IllegalTransition
from strom_core.ports.agents import NostrAgents
from strom_core.ports.ocpi import OcpiPartners
from strom_core.ports.station import ChargerStation, QuirkCheck
from strom_core.session import State
from strom_core.session_events import StopReason, StopRequested
from strom_lightning import NodeWatch
from strom_prices import DynamicPricing
from strom_services.local_list import LocalListService
from strom_services.payments import PaymentService
from strom_services.power import PowerService
from strom_services.roaming import RoamingService
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.reports import Reports
from strom_storage.sessions import SessionNotFound, SessionStore

__all__ = ["ApiContext", "ProfileApplier"]

log = logging.getLogger(__name__)

ProfileApplier = Callable[[ProfileConfig], Awaitable[None]]
"""Applies a written profile to the running Strom (raises ConfigError when it cannot)."""

_STOPPABLE = (State.PAID, State.STARTING, State.CHARGING)


@dataclass
class ApiContext:
    """Strom's parts as the API's handlers use them.

    Attributes:
        live: the configuration in force.
        db: the database (audit rows, connector flags).
        reports: the operator's read models.
        sessions: the session store (stops go through its state machine).
        chargers: the chargers' and connectors' rows.
        payments: the payment service (tariffs in force, the offers' connector view).
        station: the OCPP server.
        agents: the nostr agents.
        check_quirks: checks a profile's OCPP quirk names.
        clock: the time of audit rows.
        node: the lightning node's reachability, when watched.
        apply_profile: applies a written profile now; without it a changed profile takes
            effect at the next start.
        power: the chargers' power limits (site limits, composite schedules).
        local_lists: the chargers' local lists (what a charger answered to changed cards).
        prices: the dynamic prices of the chargers with ``[tariff.dynamic]``, and their health.
        ocpi: the OCPI roaming partners (None: ``[ocpi]`` is off).
        roaming: the roaming partners' receivables and payment terms.
    """

    live: LiveConfig
    db: Database
    reports: Reports
    sessions: SessionStore
    chargers: ChargerStore
    payments: PaymentService
    station: ChargerStation
    agents: NostrAgents
    check_quirks: QuirkCheck
    clock: Clock
    node: NodeWatch | None = None
    apply_profile: ProfileApplier | None = None
    power: PowerService | None = None
    local_lists: LocalListService | None = None
    prices: DynamicPricing | None = None
    ocpi: OcpiPartners | None = None
    roaming: RoamingService | None = None

    @property
    def config(self) -> StromConfig:
        """The configuration in force now."""
        return self.live.current

    @property
    def files(self) -> ProfileFiles:
        """The profile files."""
        return ProfileFiles(self.config.paths.profiles)

    # --- lookups ---------------------------------------------------------------------------

    def profile(self, call: Call) -> ProfileConfig:
        """The charger the path names.

        Raises:
            ApiError: 404 for a charger that is not configured.
        """
        try:
            return self.config.profile(call.path("charger_id"))
        except KeyError:
            raise ApiError(404, "not_found", "there is no such charger") from None

    @staticmethod
    def connector(profile: ProfileConfig, text: str) -> int:
        """A connector of the charger, by its id as text.

        Raises:
            ApiError: 404 for a connector the charger does not have.
        """
        if not text.isdigit() or not any(c.id == int(text) for c in profile.connectors):
            raise ApiError(404, "not_found", f"charger {profile.id} has no connector {text!r}")
        return int(text)

    async def session_row(self, session_id: str) -> Any:
        """A session's row.

        Raises:
            ApiError: 404 for an unknown session.
        """
        row = await self.reports.session_row(session_id)
        if row is None:
            raise ApiError(404, "not_found", "there is no such session")
        return row

    @staticmethod
    def agent_unavailable(charger_id: str, exc: AgentUnavailable) -> ApiError:
        """The 503 of a call to a charger's agent that did not reach it."""
        if isinstance(exc, AgentMoving):
            return ApiError(503, "agent_moving", str(exc))
        return ApiError(503, "agent_unavailable", f"the nostr agent of {charger_id} is not running")

    async def show_in_status(
        self, charger_id: str, *, connector: tuple[int, bool] | None = None
    ) -> None:
        """Have the charger's agent, wherever it runs, show an operator's change in its status.

        ``connector`` is a connector enabled or disabled; without it, the price changed. The
        change is in the database already: an agent that is moving to another process reads it
        there when it starts, so that is logged, not an error.

        Raises:
            ApiError: 503 when the charger has no running agent.
        """
        try:
            if connector is None:
                await self.agents.mark_dirty(charger_id)
            else:
                await self.agents.set_enabled(charger_id, *connector)
        except AgentMoving as exc:
            log.info("api: %s: its agent sees the change when it starts: %s", charger_id, exc)
        except AgentUnavailable as exc:
            raise self.agent_unavailable(charger_id, exc) from None

    async def running(self, charger_id: str | None = None) -> dict[tuple[str, int], str]:
        """The session holding each busy connector: (charger, connector) → session id."""
        rows = await self.reports.running_sessions(charger_id)
        return {(row.charger_id, row.connector_id): row.id for row in rows}

    # --- acts shared by several resources ----------------------------------------------------

    async def apply(self, written: ProfileConfig) -> tuple[list[str], bool]:
        """Apply a written profile now, when the composition root allows it.

        Returns:
            What was applied, and whether a restart is needed instead.

        Raises:
            ApiError: 400 when the running Strom refuses the profile.
        """
        if self.apply_profile is None:
            return [], True
        try:
            await self.apply_profile(written)
        except ConfigError as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
        return ["profile"], False

    async def stop(self, session_id: str) -> None:
        """Stop a session as an operator: a ``StopRequested`` on its state machine.

        Raises:
            ApiError: 404 for an unknown session, 409 for one that cannot be stopped.
        """
        try:
            session = await self.sessions.get(session_id)
        except SessionNotFound:
            raise ApiError(404, "not_found", "there is no such session") from None
        if session.state not in _STOPPABLE:
            raise ApiError(409, "conflict", f"the session is {session.state.value}; not stoppable")
        try:
            await self.sessions.apply(session_id, StopRequested(StopReason.ADMIN))
        except IllegalTransition:
            raise ApiError(409, "conflict", "the session can no longer be stopped") from None
