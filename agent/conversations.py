"""Direct messages: receiving commands, answering them, and writing to drivers first.

Trust, in order, before a DM is acted on: its outer ``created_at`` is plausible (a gift wrap's
may be two days old by design), it is within the reply budget (:mod:`agent.budget`: a gift
wrap is unwrapped only within the unwrapping budget; a stranger's DM is read only within the
agent's budget for strangers, admins and payers always), it opens (signatures, decryption, the
rumor's author is the seal's signer), the time its author wrote it is within
``dm_max_age_s``, and its id is claimed in ``nostr_events`` (a replay finds it taken and does
nothing).

Schemes: an answer goes back in the scheme the sender used. When the agent writes first
(session notifications) it uses the scheme that driver last wrote in, else NIP-17 if the
driver publishes a DM inbox list (kind 10050), else NIP-04. NIP-17 messages go to the inbox
relays only; NIP-04 messages (and NIP-17 ones to a driver without an inbox list) go to the
agents' write relays plus the relays the driver is known to read (the one their DM came from,
the relays of their zap request).

Drivers' commands (``stop``, ``status``, ``refund``) apply to the newest session that pubkey
started on this charger, and to nothing else: anyone else asking gets a polite refusal and
nothing changes. Operators' commands are in :mod:`agent.operator`.

Reservations by DM: ``reserve <minutes> [connector]`` is answered with a BOLT11 invoice for the
least a reservation takes (the fee, or the tariff's minimum if higher) on the named connector or
the first one that can be reserved; the session is opened like a zap's (initiator ``dm``, the
sender's pubkey), so its payer gets the same session DMs ("reserved until HH:MM UTC", ...), and
the invoice commits to the terms the DM states (their SHA-256 is its description hash). A
charger without reservations, minutes beyond its maximum or no connector to reserve get a
refusal and nothing is stored. ``start`` and ``cancel`` act on the sender's newest session
when it is reserved, through the same service as the session page's buttons
(:class:`strom_services.reservations.PayerReservations`): the payer of a zap is the zap
request's author, of a DM invoice the DM's; anyone else finds no reservation of theirs and
nothing changes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from agent import operator
from agent.context import ChargerContext, ChargerControl
from agent.messages import (
    clock_time,
    kept_rule,
    reservation_offer,
    session_links,
    status_text,
)
from agent.relays import PublishResult
from agent.store import Outgoing
from strom_core.errors import BackendError, IllegalTransition, RelayError
from strom_core.session import Session, State
from strom_core.session_events import StopReason, StopRequested
from strom_core.units import format_sat
from strom_nostr.commands import (
    Cancel,
    Help,
    Refund,
    RequestReservation,
    Start,
    Status,
    Stop,
    help_text,
    parse_command,
)
from strom_nostr.discovery import DM_RELAY_LIST_KIND
from strom_nostr.dm import (
    GIFT_WRAP_KIND,
    TWO_DAYS_S,
    DmScheme,
    IncomingDm,
    nip04_message,
    open_dm,
    wrap_message,
)
from strom_nostr.errors import CommandError, CommandNotAllowed, DmError
from strom_nostr.event import Event
from strom_nostr.keys import encode_npub
from strom_services.offers import ConnectorUnavailable
from strom_services.payments import ReservationRefused
from strom_services.reservations import ReservationError
from strom_storage.agents import claim_event, latest_session_of

__all__ = ["build_dm", "handle_dm", "inbox_relays", "publish_outgoing"]

log = logging.getLogger(__name__)

_MAX_INBOX_RELAYS = 10
_NO_SESSION = "You have no charging session on this charger."
_STOPPABLE = (State.PAID, State.STARTING, State.CHARGING)


async def inbox_relays(agent: ChargerContext, pubkey: str) -> tuple[str, ...]:
    """A pubkey's NIP-17 DM inbox relays (kind 10050), looked up once and cached."""
    services = agent.services
    now = services.clock.unix()
    cached = services.inboxes.cached_relays(pubkey, now)
    if cached is not None:
        return cached
    try:
        events = await services.pool.fetch(
            [{"kinds": [DM_RELAY_LIST_KIND], "authors": [pubkey], "limit": 1}],
            timeout_s=services.settings.dm_relay_lookup_timeout_s,
        )
    except RelayError as exc:
        log.info("no DM inbox lookup for %s: %s", pubkey[:12], exc)
        return ()
    lists = [event for event in events if event.pubkey == pubkey]
    relays: tuple[str, ...] = ()
    if lists:
        latest = max(lists, key=lambda event: event.created_at)
        relays = tuple(dict.fromkeys(latest.tag_values("relay")))[:_MAX_INBOX_RELAYS]
    services.inboxes.remember_relays(pubkey, relays, now + services.settings.dm_relay_cache_s)
    return relays


async def build_dm(
    agent: ChargerContext,
    recipient: str,
    text: str,
    *,
    scheme: DmScheme | None,
    reply_to: str | None = None,
    via: Sequence[str] = (),
) -> Outgoing:
    """Sign a DM to ``recipient`` and say where it goes (see the module docstring).

    Args:
        agent: the sender.
        recipient: the recipient's pubkey.
        text: the message.
        scheme: the scheme to answer in, or None when the agent writes first.
        reply_to: the id of the message answered.
        via: relays the recipient is known to read.
    """
    services = agent.services
    if scheme is None:
        remembered = services.inboxes.scheme(recipient)
        scheme = DmScheme(remembered) if remembered else None
    inbox: tuple[str, ...] = ()
    if scheme is not DmScheme.NIP04:
        inbox = await inbox_relays(agent, recipient)
    if scheme is None:
        scheme = DmScheme.NIP17 if inbox else DmScheme.NIP04
    now = int(services.clock.unix())
    if scheme is DmScheme.NIP17:
        event = wrap_message(
            agent.key.secret,
            recipient,
            text,
            now=now,
            reply_to=reply_to,
            random_bytes=services.random_bytes,
        )
        if inbox:
            return Outgoing(event, inbox, only=True)
        return Outgoing(event, tuple(via))
    event = nip04_message(agent.key.secret, recipient, text, created_at=now, reply_to=reply_to)
    return Outgoing(event, tuple(via))


async def publish_outgoing(agent: ChargerContext, item: Outgoing) -> PublishResult:
    """Publish a prepared DM where it was meant to go."""
    return await agent.services.pool.publish(item.event, extra_relays=item.relays, only=item.only)


def _plausible(agent: ChargerContext, event: Event, now: float) -> bool:
    settings = agent.services.settings
    earliest = now - settings.dm_max_age_s
    if event.kind == GIFT_WRAP_KIND:
        earliest -= TWO_DAYS_S
    return earliest <= event.created_at <= now + settings.max_future_s


async def _within_budget(agent: ChargerContext, sender: str) -> bool:
    """Admins and payers always; strangers within the agent's budget (see agent.budget)."""
    services = agent.services
    if sender in services.settings.admin_pubkeys:
        return True
    if await services.payers.paid(agent.charger_id, sender):
        return True
    return services.budget.answer_stranger(agent.charger_id)


async def handle_dm(agent: ChargerControl, event: Event, relay_url: str) -> str:
    """Open, check and answer one DM addressed to this agent.

    Returns:
        What became of it: ``answered``, ``stale``, ``not-unwrapped`` (a gift wrap over the
        unwrapping budget), ``over-budget`` (a stranger over the reply budget),
        ``unreadable`` or ``replay``.
    """
    services = agent.services
    settings = services.settings
    now = services.clock.unix()
    if not _plausible(agent, event, now):
        log.info("charger %s: DM %s ignored: too old or in the future", agent.charger_id, event.id)
        return "stale"
    wrapped = event.kind == GIFT_WRAP_KIND
    if wrapped and not services.budget.unwrap(agent.charger_id):
        return "not-unwrapped"
    # A NIP-04 event's author is its verified signer: sorted before the ECDH of decrypting.
    if not wrapped and not await _within_budget(agent, event.pubkey):
        return "over-budget"
    try:
        dm = open_dm(agent.key.secret, event)
    except DmError as exc:
        log.info("charger %s: DM %s ignored: %s", agent.charger_id, event.id, exc.reason)
        return "unreadable"
    if wrapped and not await _within_budget(agent, dm.sender):
        return "over-budget"
    if not now - settings.dm_max_age_s <= dm.created_at <= now + settings.max_future_s:
        log.info("charger %s: stale DM %s from %s ignored", agent.charger_id, event.id, dm.sender)
        return "stale"
    if not await claim_event(services.db, dm.event_id, event.kind, dm.sender, now):
        log.info("charger %s: replayed DM %s ignored", agent.charger_id, dm.event_id)
        return "replay"
    services.inboxes.remember_scheme(dm.sender, dm.scheme.value)
    answer = await _answer(agent, dm)
    item = await build_dm(
        agent, dm.sender, answer, scheme=dm.scheme, reply_to=dm.message_id, via=(relay_url,)
    )
    await publish_outgoing(agent, item)
    return "answered"


async def _answer(agent: ChargerControl, dm: IncomingDm) -> str:
    is_operator = dm.sender in agent.services.settings.admin_pubkeys
    try:
        command = parse_command(dm.text, operator=is_operator)
    except CommandNotAllowed as exc:
        log.warning(
            "charger %s: refused operator command %r from %s (not an admin)",
            agent.charger_id,
            dm.text[:40],
            encode_npub(dm.sender),
        )
        return exc.reason
    except CommandError as exc:
        return exc.reason
    if is_operator:
        reply = await operator.execute(agent, dm.sender, command)
        if reply is not None:
            return reply
    return await _driver_answer(agent, dm.sender, command)


async def _driver_answer(agent: ChargerControl, sender: str, command: object) -> str:
    if isinstance(command, Help):
        return help_text(operator=False)
    if isinstance(command, RequestReservation):
        return await _reserve(agent, sender, command)
    session = await latest_session_of(agent.services.db, agent.charger_id, sender)
    if isinstance(command, Start | Cancel):
        return await _start_or_cancel(agent, sender, session, start=isinstance(command, Start))
    if isinstance(command, Stop):
        return await _stop(agent, sender, session)
    if isinstance(command, Status):
        return _NO_SESSION if session is None else status_text(session)
    if isinstance(command, Refund):
        return await _refund(agent, session)
    return help_text(operator=False)


async def _reserve(agent: ChargerControl, sender: str, command: RequestReservation) -> str:
    """Answer ``reserve <minutes> [connector]`` with an invoice (see the module docstring)."""
    services = agent.services
    profile = agent.profile
    tariff = services.payments.tariff_for(profile)
    minutes = command.minutes
    if not tariff.offers_reservations:
        return "Sorry, this charger takes no reservations."
    if minutes > tariff.reservation_max_minutes:
        return f"Sorry, a reservation here is 1 to {tariff.reservation_max_minutes} minutes."
    wanted = [c.id for c in profile.connectors]
    if command.connector is not None:
        if command.connector not in wanted:
            return f"Sorry, this charger has no connector {command.connector}."
        wanted = [command.connector]
    amount = tariff.reservation_min_msat(minutes)
    price = services.payments.shown_tariff(profile).text("per_kwh")  # fiat: as written
    reason = "no connector can be reserved right now"
    for connector_id in wanted:
        terms = reservation_offer(profile.name, connector_id, minutes, tariff, amount, price=price)
        try:
            opened = await services.payments.open_session(
                profile,
                connector_id,
                amount,
                description_hash=hashlib.sha256(terms.encode()).digest(),
                initiator="dm",
                initiator_pubkey=sender,
                reserve_minutes=minutes,
            )
        except (ConnectorUnavailable, ReservationRefused) as exc:
            reason = exc.reason
            continue
        except BackendError as exc:
            log.warning("charger %s: no reservation invoice: %s", agent.charger_id, exc)
            return "Sorry, no invoice can be made right now (the lightning node); try later."
        log.info(
            "charger %s: reservation invoice for session %s to %s",
            agent.charger_id,
            opened.session_id,
            encode_npub(sender),
        )
        expiry = services.payments.config.invoice_expiry_s // 60
        return (
            f"{terms} Pay within {expiry} min; the reservation runs from the payment.\n"
            f"lightning:{opened.invoice.bolt11}"
        )
    return f"Sorry, {reason.removesuffix('; nothing was charged')}."


async def _start_or_cancel(
    agent: ChargerContext, sender: str, session: Session | None, *, start: bool
) -> str:
    """The payer's ``start`` or ``cancel`` of their reservation; nobody else's."""
    word = "start" if start else "cancel"
    if session is None or session.state is not State.RESERVED:
        log.warning(
            "charger %s: %s from %s refused: no reservation of theirs",
            agent.charger_id,
            word,
            encode_npub(sender),
        )
        return (
            "You have no reservation on this charger; only the person who paid for a "
            "reservation can start or cancel it."
        )
    reservations = agent.services.payer_reservations
    try:
        if start:
            await reservations.start(session.id)
        else:
            done = await reservations.cancel(session.id)
    except ReservationError as exc:
        return f"Sorry, {exc.reason}."
    log.info("charger %s: session %s: the payer asked to %s", agent.charger_id, session.id, word)
    if start:
        return (
            f"Starting connector {session.connector_id}: plug in your car if it is not yet. "
            "Reply stop to stop, status for progress."
        )
    rule = kept_rule(session.tariff, session.reservation_fee_msat)
    rest = "nothing is left to refund."
    if done.refundable_msat:
        rest = f"{format_sat(done.refundable_msat)} is refundable: send refund for your link."
    return f"Reservation of connector {session.connector_id} cancelled ({rule}); {rest}"


async def _stop(agent: ChargerContext, sender: str, session: Session | None) -> str:
    if session is not None and session.state is State.RESERVED:
        until = session.reserved_until
        return (
            f"Your reservation of connector {session.connector_id} holds until "
            f"{clock_time(until) if until else 'its end'}: reply start to charge, or cancel "
            "to free it."
        )
    if session is None or session.state not in _STOPPABLE:
        log.warning(
            "charger %s: stop from %s refused: no running session of theirs",
            agent.charger_id,
            encode_npub(sender),
        )
        if session is not None and session.state is State.STOPPING:
            return "Your session is already stopping; the bill follows."
        return (
            "Sorry, you have no charging session on this charger to stop; only the person "
            "who started a session can stop it."
        )
    try:
        await agent.services.sessions.apply(session.id, StopRequested(StopReason.INITIATOR))
    except IllegalTransition:
        return f"Your session can no longer be stopped (it is {session.state.value})."
    log.info("charger %s: session %s stopped by its initiator", agent.charger_id, session.id)
    return (
        f"Stopping your session on connector {session.connector_id}. "
        "The bill and your refund link follow."
    )


async def _refund(agent: ChargerContext, session: Session | None) -> str:
    if session is None:
        return _NO_SESSION
    services = agent.services
    secret = await services.store.secret(session.id, services.clock.unix())
    if secret is None:
        return "Open the session page from your wallet's payment message to claim your refund."
    running = session.state in (*_STOPPABLE, State.STOPPING)
    if not running and session.refundable_msat <= 0:
        return "Nothing is left to refund on your last session."
    link = session_links(services.settings.public_url, session.id, secret)
    note = " Claiming it stops the charge first." if running else ""
    return (
        f"Your refund link (LNURL-withdraw) for session {session.id}:{note}\n"
        f"lightning:{link.refund_lnurl}"
    )
