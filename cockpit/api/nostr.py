"""``/nostr``: the relays and their state, each charger's npub and status event, publish now.

The agents are reached through :class:`strom_core.ports.agents.NostrAgents`; a publication
runs inside the charger's agent, in order with everything else it does.
"""

from __future__ import annotations

import logging

from cockpit import models as m
from cockpit.api.answers import publish_answer
from cockpit.api.context import ApiContext
from cockpit.endpoint import ApiError, Call, Endpoint
from strom_core.errors import AgentUnavailable
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
        chargers = []
        for profile in self.ctx.config.profiles:
            try:
                agent = agents.agent(profile.id)
            except AgentUnavailable:
                continue
            chargers.append(
                m.NostrCharger(
                    charger_id=profile.id,
                    pubkey=agent.pubkey,
                    npub=encode_npub(agent.pubkey),
                    last_status=publish_answer(agent.last_status),
                )
            )
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

    async def status_event(self, call: Call) -> m.StatusEventOut:
        """``GET /nostr/chargers/{charger_id}/status-event``."""
        ctx = self.ctx
        profile = ctx.profile(call)
        agent = ctx.agent(profile.id)
        try:
            events = await ctx.agents.pool.fetch(
                [{"kinds": [STATUS_KIND], "authors": [agent.pubkey], "limit": 1}], timeout_s=3.0
            )
        except Exception as exc:  # whatever the relay client raises is a 503
            log.warning("api: relays unavailable for %s: %s", profile.id, exc)
            raise ApiError(503, "relays_unavailable", "no relay answered; try again") from None
        newest = max(events, key=lambda e: e.created_at, default=None)
        return m.StatusEventOut(
            charger_id=profile.id,
            npub=encode_npub(agent.pubkey),
            event=newest.to_dict() if newest is not None else None,
        )

    async def publish_status(self, call: Call) -> m.PublishAnswer:
        """``POST /nostr/chargers/{charger_id}/publish-status``."""
        profile = self.ctx.profile(call)
        agent = self.ctx.agent(profile.id)
        try:
            result: PublishResult = await agent.call(agent.publish_status, timeout_s=30.0)
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
