"""The composition root: builds Strom's parts from the configuration and runs them.

This is the one module of the core that may import the I/O packages (``ocpp_server``,
``agent``, ``lnurl_server``). Everything it starts is owned by one :class:`asyncio.TaskGroup`,
so a failure in any part stops the service instead of leaving it half-alive.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiohttp import web

from strom.config import StromConfig
from strom.effects import EffectRunner, Handler
from strom.storage.chargers import ChargerStore
from strom.storage.db import Database, redact_url
from strom.storage.outbox import OutboxRow, OutboxStore
from strom.storage.sessions import SessionStore

__all__ = ["Strom"]

log = logging.getLogger(__name__)


@dataclass
class Strom:
    """A running Strom: its database, stores, effect runner and servers."""

    config: StromConfig
    db: Database
    sessions: SessionStore
    chargers: ChargerStore
    runner: EffectRunner
    http: web.AppRunner | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def open(cls, config: StromConfig) -> Strom:
        """Connect the database, apply migrations and sync chargers from the profiles.

        Raises:
            StorageError: the database cannot be reached or migrated.
        """
        db = Database.from_url(config.storage.url())
        log.info("database: %s", redact_url(config.storage.url()))
        await db.upgrade()
        chargers = ChargerStore(db)
        await chargers.sync(config.profiles)
        sessions = SessionStore(db)
        runner = EffectRunner(OutboxStore(db), _handlers())
        sessions.listeners.append(lambda _transition: runner.wake())
        return cls(config=config, db=db, sessions=sessions, chargers=chargers, runner=runner)

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; then shut every part down in order."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        self.http = web.AppRunner(app, access_log=None)
        await self.http.setup()
        server = self.config.server
        site = web.TCPSite(self.http, server.host, server.port)
        await site.start()
        log.info(
            "serving HTTP on %s:%s (public URL %s); %d charger(s) configured",
            server.host,
            server.port,
            server.public_url,
            len(self.config.profiles),
        )
        try:
            async with asyncio.TaskGroup() as group:
                runner_task = group.create_task(self.runner.run(), name="effect-runner")
                self.ready.set()
                await stop.wait()
                runner_task.cancel()
        finally:
            await self.http.cleanup()
            await self.db.close()
            log.info("stopped")

    async def _healthz(self, request: web.Request) -> web.Response:
        outbox = await OutboxStore(self.db).counts()
        return web.json_response(
            {
                "status": "ok",
                "chargers": len(self.config.profiles),
                "outbox": outbox,
            }
        )


async def _log_notification(row: OutboxRow) -> None:
    log.info("session %s: %s", row.session_id, row.payload.get("what"))


def _handlers() -> dict[str, Handler]:
    return {"notify": _log_notification}
