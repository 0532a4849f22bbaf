"""Reservations at the front door: the reserve option, its LNURL-pay terms, the payer's buttons.

Theory of operation
-------------------
A charger whose tariff allows reservations (``reservation_max_minutes > 0``) offers, for each
connector the charger reports ``Available``, a few reservation lengths
(:func:`reserve_choices`: 15, 30 and 60 minutes up to the maximum, and the maximum). Each is
the connector's ordinary LNURL-pay with ``reserve=<minutes>``: its payRequest states the terms
in the metadata (:func:`reservation_text`: minutes, fee, that the payment counts toward
charging when started in time and how much of the fee is kept otherwise), asks at least the fee
(and the tariff's minimum) and at most the tariff's maximum, and its callback carries the same
``reserve``. A ``reserve`` that is not a whole number of minutes from 1 to the maximum, or a
charger without reservations, is a LUD-06 error and nothing is created.

The payer's session page shows the reservation with two buttons, posted like the "charge
slower" form (:mod:`lnurl_server.power`): ``POST /s/<id>/start`` and ``POST /s/<id>/cancel``
with the session ``secret`` in the form (only the payer has it); a wrong secret gets the 404
page, posts share the per-client rate limit, and the answer is a redirect (303) back to the
page with ``reservation=<outcome>``, shown in fixed words.
"""

from __future__ import annotations

import logging
import re
from enum import StrEnum
from typing import Final

from strom_core.config import ProfileConfig
from strom_core.tariff import Tariff
from strom_core.units import format_sat
from strom_services.reservations import PayerReservations, ReservationError
from strom_storage.sessions import SessionNotFound
from strom_web.lnurl import LnurlError

__all__ = [
    "RESERVATION_NOTICE",
    "RESERVE_CHOICES",
    "ReservationOutcome",
    "act_from_form",
    "parse_reserve",
    "reservation_text",
    "reserve_choices",
]

log = logging.getLogger(__name__)

RESERVE_CHOICES: Final = (15, 30, 60)  # minutes offered, up to the tariff's maximum
_MINUTES = re.compile(r"[0-9]{1,4}")


def reserve_choices(tariff: Tariff) -> list[int]:
    """The reservation lengths (minutes) the charger page offers; empty: no reservations."""
    longest = tariff.reservation_max_minutes
    if longest <= 0:
        return []
    return sorted({*(m for m in RESERVE_CHOICES if m <= longest), longest})


def parse_reserve(raw: str | None, tariff: Tariff) -> int:
    """The ``reserve`` query parameter: 0 when absent, else minutes the tariff allows.

    Raises:
        LnurlError: not a whole number of minutes, out of range, or no reservations here.
    """
    if raw is None:
        return 0
    if not tariff.offers_reservations:
        raise LnurlError("this charger takes no reservations; nothing was charged")
    longest = tariff.reservation_max_minutes
    if not _MINUTES.fullmatch(raw) or not 1 <= int(raw) <= longest:
        raise LnurlError(
            f"reserve must be a whole number of minutes from 1 to {longest}, got {raw[:12]!r}; "
            "nothing was charged"
        )
    return int(raw)


def reservation_text(
    profile: ProfileConfig, connector_id: int, tariff: Tariff, minutes: int, *, price: str = ""
) -> str:
    """The LUD-06 metadata text of a reservation: its terms, in full.

    ``price``: the energy price as drivers read it (a price in fiat as written); by default
    the tariff's in sats.
    """
    fee = tariff.reservation_fee(minutes)
    kept = tariff.reservation_kept(fee)
    price = price or format_sat(tariff.energy_msat_per_kwh) + "/kWh"
    if tariff.reservation_kept_percent == 100:
        otherwise = "the fee is kept and the rest refunded"
    elif tariff.reservation_kept_percent == 0:
        otherwise = "the whole payment is refunded"
    else:
        otherwise = (
            f"{tariff.reservation_kept_percent} % of the fee ({format_sat(kept)}) is kept and "
            "the rest refunded"
        )
    return (
        f"Reserve connector {connector_id} at {profile.name} for {minutes} min "
        f"(reservation fee {format_sat(fee)}). Start charging within {minutes} min of paying "
        f"and the whole payment, fee included, is your charging budget at {price}; unused "
        f"budget is refunded. If you do not start in time or cancel, {otherwise}."
    )


class ReservationOutcome(StrEnum):
    """What became of the payer's start or cancel (the page's ``reservation`` parameter)."""

    STARTED = "started"
    CANCELLED = "cancelled"
    NOT_RESERVED = "not-reserved"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"


RESERVATION_NOTICE: Final = {
    ReservationOutcome.STARTED: ("ok", "The charger is told to start: plug in your car."),
    ReservationOutcome.CANCELLED: (
        "ok",
        "Reservation cancelled. Collect what is refundable below.",
    ),
    ReservationOutcome.NOT_RESERVED: (
        "idle",
        "The session is no longer reserved; nothing changed.",
    ),
    ReservationOutcome.BUSY: ("warn", "Too many requests; wait a minute and try again."),
    ReservationOutcome.UNAVAILABLE: ("bad", "This cannot be done here right now."),
}
"""The tone and words of each outcome on the page."""


async def act_from_form(
    reservations: PayerReservations | None, session_id: str, action: str
) -> ReservationOutcome:
    """Start or cancel a reservation (its secret already checked) and say what became of it.

    Args:
        reservations: the payer's reservations; None: the action is unavailable.
        session_id: the session.
        action: ``"start"`` or ``"cancel"``.
    """
    if reservations is None:
        return ReservationOutcome.UNAVAILABLE
    try:
        if action == "start":
            await reservations.start(session_id)
            return ReservationOutcome.STARTED
        await reservations.cancel(session_id)
    except (ReservationError, SessionNotFound) as exc:
        log.info("session %s: %s refused: %s", session_id, action, exc)
        return ReservationOutcome.NOT_RESERVED
    return ReservationOutcome.CANCELLED
