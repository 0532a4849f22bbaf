"""What the agents say: the texts of driver and operator DMs, and the links they carry.

Pure functions of a session (or a charger's state) to plain text. Amounts are shown in sats
and energy in kWh through :mod:`strom_core.units`, never through floats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import bech32

from strom_core.ports import ChargerLink
from strom_core.session import Session, State
from strom_core.session_events import stop_reason_text
from strom_core.tariff import Tariff
from strom_core.units import format_kwh, format_sat

__all__ = [
    "SessionLinks",
    "charger_text",
    "clock_time",
    "kept_rule",
    "lnurl",
    "progress_text",
    "reservation_offer",
    "session_line",
    "session_links",
    "session_text",
    "status_text",
]


def clock_time(when: datetime | float) -> str:
    """A time of day as drivers read it: ``14:05 UTC`` (profiles have no time zone)."""
    moment = when if isinstance(when, datetime) else datetime.fromtimestamp(when, UTC)
    return f"{moment.astimezone(UTC):%H:%M} UTC"


def lnurl(url: str) -> str:
    """LUD-01: the bech32 ``LNURL1…`` form of a URL."""
    words = bech32.convertbits(url.encode(), 8, 5, True)
    assert words is not None
    return bech32.bech32_encode("lnurl", words).upper()


@dataclass(frozen=True, slots=True)
class SessionLinks:
    """The links only a session's payer may have (they carry the session secret)."""

    page: str
    refund: str
    topup: str

    @property
    def refund_lnurl(self) -> str:
        """The LNURL-withdraw of the unused budget."""
        return lnurl(self.refund)

    @property
    def topup_lnurl(self) -> str:
        """The LNURL-pay that adds budget."""
        return lnurl(self.topup)


def session_links(public_url: str, session_id: str, secret: str) -> SessionLinks:
    """The session page, refund (LNURL-withdraw) and top-up (LNURL-pay) URLs of a session."""
    base = public_url.rstrip("/")
    token = quote(secret)
    return SessionLinks(
        page=f"{base}/s/{session_id}?secret={token}",
        refund=f"{base}/lnurlw/{session_id}?secret={token}",
        topup=f"{base}/s/{session_id}/topup?secret={token}",
    )


def _bill(session: Session) -> str:
    return (
        f"Energy {format_kwh(session.energy_wh)}, cost {format_sat(session.consumed_msat)} "
        f"of {format_sat(session.paid_msat)} paid"
    )


def _refund_line(session: Session, links: SessionLinks | None) -> str:
    if session.refundable_msat <= 0:
        return "Nothing is left to refund."
    if links is None:
        return (
            f"{format_sat(session.refundable_msat)} is refundable: open the session page "
            "from your wallet's payment message to claim it."
        )
    return (
        f"{format_sat(session.refundable_msat)} is refundable. Scan or paste this "
        f"LNURL-withdraw in your wallet to claim it:\nlightning:{links.refund_lnurl}"
    )


def kept_rule(tariff: Tariff, fee_msat: int) -> str:
    """What of a reservation fee is kept when the payer does not start in time or cancels."""
    percent = tariff.reservation_kept_percent
    if percent == 100:
        return f"the fee ({format_sat(fee_msat)}) is kept"
    if percent == 0:
        return "nothing is kept"
    return f"{percent} % of the fee ({format_sat(tariff.reservation_kept(fee_msat))}) is kept"


def reservation_offer(
    name: str,
    connector_id: int,
    minutes: int,
    tariff: Tariff,
    amount_msat: int,
    *,
    price: str = "",
) -> str:
    """The terms of a reservation a DM asks for (the invoice commits to this text's hash).

    ``price``: the energy price as drivers read it (a price in fiat as written); by default
    the tariff's in sats.
    """
    fee = tariff.reservation_fee(minutes)
    price = price or f"{format_sat(tariff.energy_msat_per_kwh)}/kWh"
    return (
        f"Reservation of connector {connector_id} at {name} for {minutes} min: "
        f"{format_sat(amount_msat)} (reservation fee {format_sat(fee)}). Start charging within "
        f"{minutes} min of paying and the whole payment is your charging budget at "
        f"{price}, unused budget refunded; if you do not "
        f"start in time or cancel, {kept_rule(tariff, fee)} and the rest refunded."
    )


def _reserved(session: Session) -> str:
    until = session.reserved_until
    when = clock_time(until) if until is not None else "its end"
    rule = kept_rule(session.tariff, session.reservation_fee_msat)
    return (
        f"Connector {session.connector_id} is reserved for you until {when}. Reply start when "
        f"your car is plugged in, or cancel to free it (if you cancel or do not start in time, "
        f"{rule} and the rest refunded)."
    )


def _reservation_ended(session: Session, links: SessionLinks | None) -> str:
    reason = stop_reason_text(session.stop_reason) if session.stop_reason else "ended"
    kept = f"{format_sat(session.consumed_msat)} of the fee kept"
    if not session.consumed_msat:
        kept = "nothing of the fee kept"
    return f"Your reservation ended ({reason}): {kept}.\n{_refund_line(session, links)}"


def progress_text(session: Session) -> str:
    """Periodic progress while charging."""
    return (
        f"Charging on connector {session.connector_id}: {_bill(session)}; "
        f"{format_sat(session.refundable_msat)} of budget left. Reply stop to stop."
    )


def _low_budget(session: Session, links: SessionLinks | None) -> str:
    text = (
        f"Your budget is running low: {format_sat(session.refundable_msat)} left "
        f"({format_kwh(session.energy_wh)} charged so far). Zap this charger again to add "
        "budget"
    )
    if links is not None:
        text += f", or pay this top-up LNURL:\nlightning:{links.topup_lnurl}"
    return text + "."


def _stopped(session: Session, links: SessionLinks | None) -> str:
    reason = f" ({stop_reason_text(session.stop_reason)})" if session.stop_reason else ""
    return f"Charging stopped{reason}. {_bill(session)}.\n{_refund_line(session, links)}"


def _paid(session: Session, links: SessionLinks | None) -> str:
    text = (
        f"Payment of {format_sat(session.paid_msat)} received. "
        f"Starting connector {session.connector_id}."
    )
    if links is not None:
        text += f" Live session page: {links.page}"
    return text


def _started(session: Session, links: SessionLinks | None) -> str:
    return (
        f"Charging started on connector {session.connector_id} with a budget of "
        f"{format_sat(session.paid_msat)}. Reply stop to stop, status for progress."
    )


def _start_failed(session: Session, links: SessionLinks | None) -> str:
    reason = session.stop_reason or "the charger did not start"
    return f"Charging could not start: {reason}.\n{_refund_line(session, links)}"


def _topped_up(session: Session, links: SessionLinks | None) -> str:
    return f"Top-up received: {format_sat(session.refundable_msat)} of budget left."


def _refund_paid(session: Session, links: SessionLinks | None) -> str:
    return f"Refund paid. In total {format_sat(session.refunded_msat)} came back to you."


def _refund_failed(session: Session, links: SessionLinks | None) -> str:
    return "The refund payment failed; nothing was lost. " + _refund_line(session, links)


_SESSION_TEXTS: dict[str, Callable[[Session, SessionLinks | None], str]] = {
    "paid": _paid,
    "started": _started,
    "low_budget": _low_budget,
    "stopped": _stopped,
    "start_failed": _start_failed,
    "reserved": lambda session, _links: _reserved(session),
    "reservation_ended": _reservation_ended,
    "topped_up": _topped_up,
    "refund_paid": _refund_paid,
    "refund_failed": _refund_failed,
}


def session_text(what: str, session: Session, links: SessionLinks | None) -> str | None:
    """The DM for a session notification (``Notify.what``), or None for one not sent."""
    text = _SESSION_TEXTS.get(what)
    return None if text is None else text(session, links)


def status_text(session: Session) -> str:
    """A driver's ``status`` answer about their own session."""
    if session.state in (State.PAID, State.STARTING):
        return f"Your session is starting on connector {session.connector_id}; plug in your car."
    if session.state in (State.CHARGING, State.STOPPING):
        return progress_text(session)
    if session.state is State.AWAITING_PAYMENT:
        return "Your session is waiting for its payment."
    if session.state is State.RESERVED:
        return _reserved(session)
    return (
        f"Your last session on connector {session.connector_id} is {session.state.value}. "
        f"{_bill(session)}; {format_sat(session.refundable_msat)} refundable."
    )


def session_line(session: Session) -> str:
    """One line about a session, for operators."""
    return (
        f"{session.id} connector {session.connector_id} {session.state.value}: "
        f"{format_kwh(session.energy_wh)}, paid {format_sat(session.paid_msat)}, "
        f"consumed {format_sat(session.consumed_msat)}, "
        f"refundable {format_sat(session.refundable_msat)}"
    )


_LINK_TEXT = {
    ChargerLink.ONLINE: "online",
    ChargerLink.RECONNECTING: "reconnecting after a restart of Strom (no payments until back)",
    ChargerLink.OFFLINE: "OFFLINE",
}


def charger_text(
    name: str,
    link: ChargerLink,
    connectors: Sequence[tuple[int, str, bool]],
    price: str,
    open_sessions: int,
) -> str:
    """The operator's ``status`` answer: ``connectors`` are (id, OCPP status, enabled).

    ``price`` is the energy price as a driver reads it (``250 sat/kWh``).
    """
    lines = [f"{name}: {_LINK_TEXT[link]}, {price}"]
    for connector_id, status, enabled in connectors:
        lines.append(f"connector {connector_id}: {status}{'' if enabled else ' (disabled)'}")
    lines.append(f"open sessions: {open_sessions}")
    return "\n".join(lines)
