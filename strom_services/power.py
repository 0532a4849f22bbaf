"""Power limits in practice: the site limit after every boot, a driver's lower power, cleanup.

Theory of operation
-------------------
* Site limit: a charger whose profile has ``site_limit_kw`` gets it as its maximum profile
  after every accepted BootNotification (a charger may lose its profiles in a reboot), and
  whenever the operator changes it (:meth:`PowerService.set_site_limit`: the profile in force
  takes the new limit, so the next boot gets it too, and the charger gets it at once). The
  boot's command runs in a task of its own, never on the charger's connection while it waits
  for an answer.
* A driver's lower power (:meth:`PowerService.lower`): bounded by the session's power (the
  connector's, capped by the site limit); sent as a limit of the running transaction, or of the
  connector's next one before it started. Only when the charger ACCEPTED it does the session
  take :class:`~strom_core.session_events.PowerLimited`, so the budget stop plans at the lower
  power only when the charger will keep to it.
* When a session that charged ends, the connector's session limit is cleared, so the next
  driver charges at full power.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from decimal import Decimal
from functools import partial
from typing import Any

from strom_core.config import LiveConfig
from strom_core.errors import IllegalTransition
from strom_core.ports import ChargerBooted, CommandResult, OcppEvent
from strom_core.ports.power import PowerLimits, check_limit_w
from strom_core.session import State, Transition
from strom_core.session_effects import Notify
from strom_core.session_events import PowerLimited
from strom_storage.ocpp import reference_of
from strom_storage.sessions import SessionStore

__all__ = ["PowerService"]

log = logging.getLogger(__name__)

_LIMITABLE = frozenset({State.PAID, State.STARTING, State.CHARGING})
_ENDINGS = frozenset({Notify("stopped"), Notify("start_failed")})


class PowerService:
    """Site limits and session limits on chargers.

    Args:
        live: the configuration in force (the profiles' site limits).
        store: the sessions.
        limits: the chargers' power limits.
    """

    def __init__(self, live: LiveConfig, store: SessionStore, limits: PowerLimits) -> None:
        self.live = live
        self.store = store
        self.limits = limits
        self._tasks: set[asyncio.Task[object]] = set()

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def push_site_limit(self, charger_id: str) -> CommandResult | None:
        """Send the charger its site limit from its profile (None: it has none, nothing sent)."""
        try:
            limit_w = self.live.current.profile(charger_id).site_limit_w
        except KeyError:
            return None
        if limit_w is None:
            return None
        result = await self.limits.set_charger_limit(charger_id, limit_w)
        log.info(
            "cp_id=%s: site limit %s W: %s %s", charger_id, limit_w, result.status, result.detail
        )
        return result

    async def set_site_limit(self, charger_id: str, limit_w: int | None) -> CommandResult:
        """Change a charger's site limit in force and send it (None: no limit, the cap removed).

        The profile in force takes the limit (kept until a restart; whoever changes the profile
        file too makes it last); the charger gets it, or its removal, at once.

        Raises:
            ConfigError: the limit is below 1 kW or above 1000 kW.
            KeyError: no such charger.
        """
        config = self.live.current
        profile = config.profile(charger_id)
        if limit_w is not None:
            check_limit_w(limit_w)
        limit_kw = None if limit_w is None else Decimal(limit_w) / 1000
        if profile.site_limit_kw != limit_kw:
            changed = profile.model_copy(update={"site_limit_kw": limit_kw})
            profiles = tuple(changed if p.id == charger_id else p for p in config.profiles)
            self.live.replace(config.model_copy(update={"profiles": profiles}))
        result = await self.limits.set_charger_limit(charger_id, limit_w)
        log.info(
            "cp_id=%s: site limit set to %s W: %s %s",
            charger_id,
            limit_w,
            result.status,
            result.detail,
        )
        return result

    async def on_event(self, event: OcppEvent) -> None:
        """A :class:`CoreEventSink` subscriber: a booted charger gets its site limit again."""
        if isinstance(event, ChargerBooted):
            self._spawn(self.push_site_limit(event.charger_id))

    async def lower(self, session_id: str, limit_w: int) -> CommandResult:
        """Limit a session to ``limit_w`` watts on its charger.

        Raises:
            ConfigError: the limit is below 1 kW or above the session's power.
            IllegalTransition: the session is not waiting to start or charging.
            KeyError: no such session.
        """
        session = await self.store.get(session_id)
        if session.state not in _LIMITABLE:
            raise IllegalTransition(session.state, "PowerLimited", "the session is not running")
        check_limit_w(limit_w, most_w=session.power_w)
        transaction = None
        if session.transaction_id is not None:
            transaction = await self.store.db.read(
                partial(reference_of, charger_id=session.charger_id, number=session.transaction_id)
            )
        result = await self.limits.limit_session(
            session.charger_id, session.connector_id, transaction, limit_w
        )
        log.info(
            "session %s cp_id=%s transaction=%s: limit %s W: %s %s",
            session_id,
            session.charger_id,
            transaction,
            limit_w,
            result.status,
            result.detail,
        )
        if result.accepted:
            await self.store.apply(session_id, PowerLimited(limit_w))
        return result

    def on_transition(self, transition: Transition) -> None:
        """A :meth:`SessionStore.on_committed` listener: an ended session's limit is cleared."""
        session = transition.session
        ended = any(effect in _ENDINGS for effect in transition.effects)
        full_w = self._connector_power_w(session.charger_id, session.connector_id)
        if ended and session.power_w < full_w:
            self._spawn(self._clear(session.charger_id, session.connector_id, session.id))

    def _connector_power_w(self, charger_id: str, connector_id: int) -> int:
        try:
            return self.live.current.profile(charger_id).session_power_w(connector_id)
        except (KeyError, StopIteration):
            return 0

    async def _clear(self, charger_id: str, connector_id: int, session_id: str) -> None:
        result = await self.limits.clear_session_limit(charger_id, connector_id)
        log.info(
            "session %s cp_id=%s connector %s: session limit cleared: %s",
            session_id,
            charger_id,
            connector_id,
            result.status,
        )
