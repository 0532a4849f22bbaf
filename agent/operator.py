"""Operator commands over DM, from the configured admin npubs only; each one is audited.

The caller (:mod:`agent.conversations`) has already checked that the sender is an admin.
Every command, read-only ones included, writes one ``audit_log`` row (actor = the admin's
npub). Commands that act on the charger go through :class:`strom_core.ports.ChargerCommands` and
report the charger's answer as it is (accepted, rejected, offline, timeout).

``price <n> sat/kWh`` changes the energy price of the tariff in force
(:class:`strom_services.tariffs.TariffBook`): stored, so it outlives a restart, shown by the
status event at once, and charged to every new session, until the profile's tariff changes.

``limit <kW>`` sets the charger's site limit in force and sends it at once
(:meth:`strom_services.power.PowerService.set_site_limit`; ``limit off`` removes it). It lasts
until a restart; the profile's ``site_limit_kw`` (or the API, which writes it) makes it last.

``firmware <url>`` has the charger fetch and install firmware from the URL now (UpdateFirmware
through :class:`strom_core.ports.firmware.FirmwareCommands`) and answers with what the charger
said; how the download and installation go the charger reports later, and ``firmware`` alone
shows the last firmware, diagnostics and log statuses it reported (and its firmware version).

``reserve <connector> <minutes> [<card idTag>]`` reserves a connector without payment straight
through :class:`strom_core.ports.reservations.ReservationCommands` (ReserveNow): for one of the
operator's cards (``[[cards]]`` of the profile; its holder can then start there), or, without a
card, for an operator tag nobody holds (``operator-<id>``: a plain hold). The reservation id
comes from the same persisted counter as paid reservations' (``id_allocator`` row
``ocpp_reservation``), so it is never reused. An accepted reservation is noted by the agent
(holder ``operator:<id>``), so the status shows the connector reserved with its end.
``reserve cancel <connector>`` sends CancelReservation for the operator's reservation of the
connector: the one the agent noted, or after a restart the newest audited ``reserve`` of that
connector that the charger accepted and has not ended. A connector held by a paid reservation
is not the operator's to cancel here: its payer cancels it (and gets the refund the tariff
says).

``refund <session>`` only reports: the refund itself goes to the payer, through the
LNURL-withdraw link only the payer holds.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from agent.context import ChargerControl
from agent.messages import charger_text, clock_time, session_line
from strom_core.cards import tag_key
from strom_core.ports import CommandResult, CommandStatus
from strom_core.units import format_sat
from strom_nostr.commands import (
    CancelReserve,
    Command,
    Disable,
    Enable,
    Firmware,
    Help,
    Refund,
    Reserve,
    Reset,
    ResetKind,
    Sessions,
    SetLimit,
    SetPrice,
    Status,
    Unlock,
    help_text,
)
from strom_nostr.keys import encode_npub
from strom_services.reservations import RESERVATION_COUNTER
from strom_storage.agents import (
    audit,
    last_audit_detail,
    next_id,
    open_sessions,
    set_connector_enabled,
)
from strom_storage.sessions import SessionNotFound

__all__ = ["execute"]

log = logging.getLogger(__name__)

_OPERATOR_HOLDER = "operator:"


async def execute(agent: ChargerControl, sender: str, command: Command) -> str | None:
    """Run an operator command; None for a command that is the operator's own driver command.

    Args:
        agent: the charger's agent.
        sender: the admin's pubkey (already checked).
        command: the parsed command.

    Returns:
        The answer to DM back, or None when the command is ``stop`` or ``refund`` without a
        session (those apply to the operator's own session, like any driver's).
    """
    if isinstance(command, Refund) and command.session_id is None:
        return None
    handler = _HANDLERS.get(type(command))
    if handler is None:
        return None
    action, target, answer, detail = await handler(agent, command)
    actor = encode_npub(sender)
    await audit(
        agent.services.db,
        actor=actor,
        action=action,
        target=target,
        detail={**detail, "answer": answer[:500]},
        now=agent.services.clock.unix(),
    )
    log.info("charger %s: operator %s: %s %s", agent.charger_id, actor, action, target)
    return answer


_Outcome = tuple[str, str, str, dict[str, Any]]


async def _help(agent: ChargerControl, command: Command) -> _Outcome:
    return "help", agent.charger_id, help_text(operator=True), {}


async def _status(agent: ChargerControl, command: Command) -> _Outcome:
    services = agent.services
    price = services.payments.shown_tariff(agent.profile).text("per_kwh")
    connectors = agent.connectors
    held = agent.reservations
    rows = []
    for connector in agent.profile.connectors:
        status, enabled = connectors.get(connector.id, ("Unknown", True))
        if connector.id in held:
            holder, until = held[connector.id]
            operator = _operator_reservation(holder) is not None
            whose = "the operator" if operator else f"session {holder}"
            status = f"{status}, reserved for {whose} until {clock_time(until)}"
        rows.append((connector.id, status, enabled))
    sessions = await open_sessions(services.db, agent.charger_id)
    text = charger_text(agent.profile.name, agent.link, rows, price, len(sessions))
    return "status", agent.charger_id, text, {}


async def _sessions(agent: ChargerControl, command: Command) -> _Outcome:
    sessions = await open_sessions(agent.services.db, agent.charger_id)
    text = "\n".join(session_line(s) for s in sessions) or "No open sessions."
    return "sessions", agent.charger_id, text, {"count": len(sessions)}


def _known(agent: ChargerControl, connector_id: int) -> bool:
    return any(c.id == connector_id for c in agent.profile.connectors)


def _result(result: CommandResult) -> str:
    detail = f" ({result.detail})" if result.detail else ""
    return f"{result.status.value}{detail}"


async def _availability(agent: ChargerControl, command: Command) -> _Outcome:
    assert isinstance(command, Enable | Disable)
    enabled = isinstance(command, Enable)
    word = "enable" if enabled else "disable"
    target = f"{agent.charger_id}/{command.connector}"
    if not _known(agent, command.connector):
        return word, target, f"{agent.profile.name} has no connector {command.connector}.", {}
    services = agent.services
    result = await services.commands.change_availability(
        agent.charger_id, command.connector, operative=enabled
    )
    answer = (
        f"Connector {command.connector} {word}d for new sessions; "
        f"the charger answered {_result(result)}."
    )
    await set_connector_enabled(services.db, agent.charger_id, command.connector, enabled=enabled)
    services.payments.forget_view()  # offers see the change at once
    agent.set_enabled(command.connector, enabled)
    return word, target, answer, {"charger_answer": result.status.value}


async def _price(agent: ChargerControl, command: Command) -> _Outcome:
    assert isinstance(command, SetPrice)
    terms = agent.profile.tariff.to_fiat()
    written = None if terms is None else terms.amount("per_kwh")
    if terms is not None and written is not None:
        # A price in sats would be stored and shown nowhere: the fiat price is what sells.
        answer = (
            f"Nothing changed: the energy of {agent.profile.name} is priced in {terms.currency} "
            f"({written} {terms.currency}/kWh); change it in the charger's profile or the "
            "admin UI."
        )
        return "price", agent.charger_id, answer, {"refused": f"energy priced in {terms.currency}"}
    await agent.services.tariffs.set_energy_price(
        agent.profile,
        command.msat_per_kwh,
        source="dm",  # the audit row names the admin
    )
    agent.mark_dirty()
    answer = (
        f"Energy price of {agent.profile.name} set to {format_sat(command.msat_per_kwh)}/kWh "
        "for new sessions (kept across restarts, until the charger's profile changes its "
        "tariff)."
    )
    return "price", agent.charger_id, answer, {"msat_per_kwh": command.msat_per_kwh}


async def _limit(agent: ChargerControl, command: Command) -> _Outcome:
    assert isinstance(command, SetLimit)
    power = agent.services.power
    if power is None:
        return "limit", agent.charger_id, "Power limits are not available here.", {}
    result = await power.set_site_limit(agent.charger_id, command.limit_w)
    what = "removed" if command.limit_w is None else f"set to {command.limit_w / 1000:g} kW"
    answer = (
        f"Site limit of {agent.profile.name} {what} until a restart; "
        f"the charger answered {_result(result)}."
    )
    return (
        "limit",
        agent.charger_id,
        answer,
        {"limit_w": command.limit_w, "charger_answer": result.status.value},
    )


_NOTICES = (
    ("firmware", "FirmwareStatusNotification"),
    ("diagnostics", "DiagnosticsStatusNotification"),
    ("log upload", "LogStatusNotification"),
)


async def _firmware(agent: ChargerControl, command: Command) -> _Outcome:
    assert isinstance(command, Firmware)
    services = agent.services
    name = agent.profile.name
    if command.location is None:
        info = services.charger_info(agent.charger_id) if services.charger_info else None
        if info is None:
            return "firmware", agent.charger_id, f"{name} has not connected yet.", {}
        version = info.boot.firmware_version if info.boot is not None else None
        lines = [f"{name}: firmware {version or 'version not reported'}"]
        notes = info.notifications
        for label, action in _NOTICES:
            lines.append(f"last {label} status: {notes.get(action, 'none reported')}")
        return "firmware", agent.charger_id, "\n".join(lines), {}
    if services.firmware is None:
        return "firmware", agent.charger_id, "Firmware updates are not available here.", {}
    result = await services.firmware.update_firmware(
        agent.charger_id, command.location, services.clock.now()
    )
    answer = (
        f"Firmware update of {name} from {command.location}: the charger answered "
        f"{_result(result)}. Send firmware for its progress."
    )
    return (
        "firmware",
        agent.charger_id,
        answer,
        {"location": command.location, "charger_answer": result.status.value},
    )


def _operator_reservation(holder: str) -> int | None:
    """The reservation id of an operator's reservation noted by the agent, else None."""
    if not holder.startswith(_OPERATOR_HOLDER):
        return None
    number = holder.removeprefix(_OPERATOR_HOLDER)
    return int(number) if number.isdigit() else None


async def _reserve(agent: ChargerControl, command: Command) -> _Outcome:
    assert isinstance(command, Reserve)
    services = agent.services
    name = agent.profile.name
    connector = command.connector
    target = f"{agent.charger_id}/{connector}"
    if not _known(agent, connector):
        return "reserve", target, f"{name} has no connector {connector}.", {}
    if services.reservations is None:
        return "reserve", target, "Reservations are not available here.", {}
    held = agent.reservations.get(connector)
    if held is not None and _operator_reservation(held[0]) is None:
        answer = (
            f"Connector {connector} is held by a paid reservation until {clock_time(held[1])} "
            f"(session {held[0]}); nothing sent."
        )
        return "reserve", target, answer, {"session": held[0]}
    id_tag = command.id_tag
    if id_tag is not None:
        cards = {tag_key(card.id_tag): card for card in agent.profile.cards}
        card = cards.get(tag_key(id_tag))
        if card is None:
            answer = (
                f"{name} has no card {id_tag} (the profile's [[cards]]); nothing sent. "
                f"reserve {connector} {command.minutes} alone holds it for no card."
            )
            return "reserve", target, answer, {"id_tag": id_tag}
        id_tag = card.id_tag
    reservation_id = await next_id(services.db, RESERVATION_COUNTER)
    tag = id_tag or f"operator-{reservation_id}"
    until = services.clock.now() + timedelta(minutes=command.minutes)
    result = await services.reservations.reserve_now(
        agent.charger_id, connector, reservation_id=reservation_id, expires_at=until, id_tag=tag
    )
    accepted = result.status is CommandStatus.ACCEPTED
    if accepted:
        agent.note_reservation(
            connector, f"{_OPERATOR_HOLDER}{reservation_id}", int(until.timestamp())
        )
    whom = f"card {id_tag}" if id_tag else "no card (a hold)"
    answer = (
        f"Reservation {reservation_id} of connector {connector} for {whom} until "
        f"{clock_time(until)}: the charger answered {_result(result)}."
    )
    detail = {
        "connector": connector,
        "minutes": command.minutes,
        "id_tag": tag,
        "reservation_id": reservation_id,
        "until": until.isoformat(),
        "charger_answer": result.status.value,
    }
    return "reserve", target, answer, detail


async def _known_operator_reservation(agent: ChargerControl, connector: int) -> int | None:
    """The operator's reservation of the connector: noted, else the newest audited one."""
    held = agent.reservations.get(connector)
    if held is not None:
        return _operator_reservation(held[0])
    services = agent.services
    detail = await last_audit_detail(services.db, "reserve", f"{agent.charger_id}/{connector}")
    if detail is None or detail.get("charger_answer") != CommandStatus.ACCEPTED.value:
        return None
    number, until = detail.get("reservation_id"), detail.get("until")
    if not isinstance(number, int) or not isinstance(until, str):
        return None
    if datetime.fromisoformat(until) <= services.clock.now():
        return None  # it ended at its time
    return number


async def _cancel_reserve(agent: ChargerControl, command: Command) -> _Outcome:
    assert isinstance(command, CancelReserve)
    services = agent.services
    connector = command.connector
    target = f"{agent.charger_id}/{connector}"
    if not _known(agent, connector):
        return "reserve_cancel", target, f"{agent.profile.name} has no connector {connector}.", {}
    if services.reservations is None:
        return "reserve_cancel", target, "Reservations are not available here.", {}
    held = agent.reservations.get(connector)
    if held is not None and _operator_reservation(held[0]) is None:
        answer = (
            f"Connector {connector} is held by a paid reservation until {clock_time(held[1])} "
            f"(session {held[0]}); its payer cancels it. Nothing sent."
        )
        return "reserve_cancel", target, answer, {"session": held[0]}
    reservation_id = await _known_operator_reservation(agent, connector)
    if reservation_id is None:
        answer = f"No reservation of yours on connector {connector} is running; nothing sent."
        return "reserve_cancel", target, answer, {}
    result = await services.reservations.cancel_reservation(agent.charger_id, reservation_id)
    if result.status in (CommandStatus.ACCEPTED, CommandStatus.REJECTED):
        # Rejected: the charger holds no reservation with that id (any more) either way.
        agent.note_reservation(connector, f"{_OPERATOR_HOLDER}{reservation_id}", None)
    answer = (
        f"Cancel of reservation {reservation_id} on connector {connector}: "
        f"the charger answered {_result(result)}."
    )
    detail = {"reservation_id": reservation_id, "charger_answer": result.status.value}
    return "reserve_cancel", target, answer, detail


async def _unlock(agent: ChargerControl, command: Command) -> _Outcome:
    assert isinstance(command, Unlock)
    target = f"{agent.charger_id}/{command.connector}"
    if not _known(agent, command.connector):
        return "unlock", target, f"{agent.profile.name} has no connector {command.connector}.", {}
    result = await agent.services.commands.unlock(agent.charger_id, command.connector)
    answer = f"Unlock of connector {command.connector}: {_result(result)}."
    return "unlock", target, answer, {"charger_answer": result.status.value}


async def _reset(agent: ChargerControl, command: Command) -> _Outcome:
    assert isinstance(command, Reset)
    hard = command.kind is ResetKind.HARD
    result = await agent.services.commands.reset(agent.charger_id, hard=hard)
    answer = f"{command.kind.value.capitalize()} reset of {agent.profile.name}: {_result(result)}."
    return (
        "reset",
        agent.charger_id,
        answer,
        {"kind": command.kind.value, "charger_answer": result.status.value},
    )


async def _refund(agent: ChargerControl, command: Command) -> _Outcome:
    assert isinstance(command, Refund)
    assert command.session_id is not None
    session_id = command.session_id
    try:
        session = await agent.services.sessions.get(session_id)
    except SessionNotFound:
        session = None
    if session is None or session.charger_id != agent.charger_id:
        return "refund", session_id, f"No session {session_id} on this charger.", {}
    answer = (
        f"{session_line(session)}. The refund goes to the payer only, through the "
        "LNURL-withdraw link they hold (session page or DM)."
    )
    return "refund", session_id, answer, {"refundable_msat": session.refundable_msat}


_HANDLERS = {
    Help: _help,
    Status: _status,
    Sessions: _sessions,
    Enable: _availability,
    Disable: _availability,
    SetPrice: _price,
    SetLimit: _limit,
    Firmware: _firmware,
    Reserve: _reserve,
    CancelReserve: _cancel_reserve,
    Unlock: _unlock,
    Reset: _reset,
    Refund: _refund,
}
