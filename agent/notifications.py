"""Session DMs to the driver who zapped: paid, started, progress, low budget, stopped, refunds.

The ``notify`` outbox rows of a session (``Notify(what)`` effects of the state machine) become
DMs to the session's initiator when it was started by a zap. Delivery is exactly-once as the
driver sees it: the signed DM is stored in the DM journal under the outbox row's key *before*
it is published (:class:`agent.store.AgentStore`), so a row run twice after a crash publishes
the very same event again (relays and clients drop it), and a row already published is
skipped. When no relay accepts the DM the row is retried later (``RetryLater``) with the same
stored event.

Progress DMs (energy, cost, remaining budget) are sent every ``progress_interval_s`` while a
zap session is charging. They are not journalled: one lost in a crash is simply superseded.
The refund and top-up links carry the session secret, which the agents recompute from the
server key (:meth:`agent.store.AgentStore.secret`); when it cannot be had (a replaced server
key) the DMs point to the session page the wallet received.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from agent.context import ChargerContext, SessionWatch
from agent.conversations import build_dm, publish_outgoing
from agent.messages import SessionLinks, progress_text, session_links, session_text
from agent.relays import PublishResult
from strom_core.session import State
from strom_services.effects import RetryLater
from strom_storage.agents import initiator_of, zap_relays_of
from strom_storage.sessions import SessionNotFound

__all__ = ["deliver", "send_progress"]

log = logging.getLogger(__name__)

_ENDED = {"stopped", "start_failed"}


async def _links(agent: ChargerContext, session_id: str) -> SessionLinks | None:
    secret = await agent.services.store.secret(session_id, agent.services.clock.unix())
    if secret is None:
        return None
    return session_links(agent.services.settings.public_url, session_id, secret)


async def deliver(
    agent: SessionWatch, key: str, session_id: str, what: str, recipient: str
) -> None:
    """Send (once) the DM of one ``notify`` outbox row to the session's initiator.

    Args:
        agent: the session's charger's agent.
        key: the outbox row's idempotency key.
        session_id: the session.
        what: the notification (``Notify.what``).
        recipient: the initiator's pubkey.

    Raises:
        RetryLater: no relay accepted the DM; the row is to be run again.
    """
    services = agent.services
    if what == "started":
        agent.session_started(session_id)
    elif what in _ENDED:
        agent.session_ended(session_id)
    journal = await services.store.outgoing(key)
    if journal is not None and journal[1]:
        return
    if journal is not None:
        items = journal[0]
    else:
        session = await services.sessions.get(session_id)
        text = session_text(what, session, await _links(agent, session_id))
        if text is None:
            return
        via = (*services.pool.write_relays, *await zap_relays_of(services.db, session_id))
        item = await build_dm(agent, recipient, text, scheme=None, via=via)
        items = await services.store.prepare(key, [item], int(services.clock.unix()))
    results: list[PublishResult] = [await publish_outgoing(agent, item) for item in items]
    if not all(result.accepted for result in results):
        raise RetryLater(f"session {session_id}: no relay accepted the {what} DM")
    await services.store.mark_published(key)
    log.info("charger %s: session %s: %s DM sent", agent.charger_id, session_id, what)


async def send_progress(agent: SessionWatch, session_ids: Sequence[str]) -> None:
    """Send a progress DM for each of these sessions that is still charging."""
    services = agent.services
    for session_id in session_ids:
        try:
            session = await services.sessions.get(session_id)
        except SessionNotFound:
            agent.session_ended(session_id)
            continue
        if session.state is not State.CHARGING:
            if session.state is not State.STOPPING:
                agent.session_ended(session_id)
            continue
        who = await initiator_of(services.db, session_id)
        if who is None or who.pubkey is None:
            agent.session_ended(session_id)
            continue
        via = (*services.pool.write_relays, *await zap_relays_of(services.db, session_id))
        item = await build_dm(agent, who.pubkey, progress_text(session), scheme=None, via=via)
        await publish_outgoing(agent, item)
