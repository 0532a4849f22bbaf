"""``/nostr``: the relays and their state, each charger's npub and status event, publish now.

The agents are reached through :class:`strom_core.ports.agents.NostrAgents`; a publication
runs inside the charger's agent, in order with everything else it does. In a cluster every
process answers alike: the keys are shared, a charger's status event is fetched from the relays
by its key, and an agent's last publication and "publish now" go to the process running it
(one request per charger of another process in the overview). The relays' states are those
of the answering process's own connections.
"""

from __future__ import annotations

import asyncio
import logging

from cockpit import models as m
from cockpit.api.answers import publish_answer
from cockpit.api.context import ApiContext
from cockpit.endpoint import ApiError, Call, Endpoint
from strom_core.errors import AgentMoving, AgentUnavailable, RemoteProtocolError
from strom_core.ports.agents import PublishResult
from strom_nostr.discovery import STATUS_KIND
from strom_nostr.keys import encode_npub
from strom_services.effects import RetryLater

__all__ = ["NostrResource"]

log = logging.getLogger(__name__)


class NostrResource:
    """The nostr side: relays, the chargers' keys and status events."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def nostr(self, call: Call) -> m.NostrOverview:
        """``GET /nostr``."""
        agents = self.ctx.agents
        pool = agents.pool
        try:
            states = await pool.states()
        except Exception as exc:  # a pool not started yet reads as "no states"
            log.info("api: relay states unavailable: %s", exc)
            states = {}
        relays = sorted(set(pool.read_relays) | set(pool.write_relays) | set(states))
        ids = [profile.id for profile in self.ctx.config.profiles]
        found = await asyncio.gather(*(self._last_status(charger_id) for charger_id in ids))
        chargers = [
            m.NostrCharger(
                charger_id=charger_id,
                pubkey=pubkey,
                npub=encode_npub(pubkey),
                last_status=publish_answer(last_status),
            )
            for charger_id, (pubkey, last_status) in zip(ids, found, strict=True)
            if pubkey is not None
        ]
        return m.NostrOverview(
            relays=[
                m.RelayOut(
                    url=url,
                    state=states.get(url, "unknown"),
                    read=url in pool.read_relays,
                    write=url in pool.write_relays,
                )
                for url in relays
            ],
            chargers=chargers,
        )

    async def _last_status(self, charger_id: str) -> tuple[str | None, PublishResult | None]:
        """The charger's key and its agent's last publication; no key: its agent does not run.

        An agent moving to another process (or whose process refused the call: a rolling
        upgrade) is listed, without its last publication.
        """
        agents = self.ctx.agents
        try:
            return agents.pubkey(charger_id), await agents.status_of(charger_id)
        except AgentMoving as exc:
            log.info("api: charger %s: last status unknown: %s", charger_id, exc)
            return agents.pubkey(charger_id), None
        except RemoteProtocolError as exc:  # its process refused the call (another version)
            log.warning("api: charger %s: last status unknown: %s", charger_id, exc)
            return agents.pubkey(charger_id), None
        except AgentUnavailable:
            return None, None

    async def status_event(self, call: Call) -> m.StatusEventOut:
        """``GET /nostr/chargers/{charger_id}/status-event``."""
        ctx = self.ctx
        profile = ctx.profile(call)
        pubkey = ctx.agents.pubkey(profile.id)  # the same in every process of a cluster
        if pubkey is None:
            raise ctx.agent_unavailable(profile.id, AgentUnavailable(profile.id))
        try:
            events = await ctx.agents.pool.fetch(
                [{"kinds": [STATUS_KIND], "authors": [pubkey], "limit": 1}], timeout_s=3.0
            )
        except Exception as exc:  # whatever the relay client raises is a 503
            log.warning("api: relays unavailable for %s: %s", profile.id, exc)
            raise ApiError(503, "relays_unavailable", "no relay answered; try again") from None
        newest = max(events, key=lambda e: e.created_at, default=None)
        return m.StatusEventOut(
            charger_id=profile.id,
            npub=encode_npub(pubkey),
            event=newest.to_dict() if newest is not None else None,
        )

    async def publish_status(self, call: Call) -> m.PublishAnswer:
        """``POST /nostr/chargers/{charger_id}/publish-status``."""
        profile = self.ctx.profile(call)
        try:
            result = await self.ctx.agents.publish_status(profile.id)
        except AgentUnavailable as exc:
            raise self.ctx.agent_unavailable(profile.id, exc) from None
        except RetryLater as exc:
            raise ApiError(503, "agent_busy", str(exc)) from None
        call.audit_detail.update(event=result.event_id, accepted=result.accepted)
        answer = publish_answer(result)
        assert answer is not None
        return answer

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        e = Endpoint
        return [
            e(
                "GET",
                "/nostr",
                self.nostr,
                "Relays and their state; each charger's npub",
                "nostr",
                m.NostrOverview,
                not_found=False,
            ),
            e(
                "GET",
                "/nostr/chargers/{charger_id}/status-event",
                self.status_event,
                "The charger's newest status event as the relays hold it",
                "nostr",
                m.StatusEventOut,
            ),
            e(
                "POST",
                "/nostr/chargers/{charger_id}/publish-status",
                self.publish_status,
                "Publish the charger's status event now",
                "nostr",
                m.PublishAnswer,
                action="nostr.publish_status",
                target="charger_id",
            ),
        ]
