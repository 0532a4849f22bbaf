"""The driver's "Charge when cheap — ready by [time]" on the session page: a form and a POST.

Theory of operation
-------------------
The session page of a session that charges on a dynamic tariff, at a charger whose OCPP
version carries power limits, shows a form: the time the car should be ready (``by``, a UTC
time of day ``HH:MM`` or ``HH:MM:SS``, taken as its next occurrence) and, optionally, the energy
wanted (``kwh``; empty: what the remaining budget buys). It posts them with the session
``secret`` (only the payer has it) to ``POST /s/<id>/cheap``; the answer is a redirect (303)
back to the page with ``cheap=<outcome>`` in fixed words, and the page shows the plan the
charger accepted (the hours it charges). A wrong secret gets the 404 page; posts share the
per-client rate limit. A session that cannot be planned (no dynamic prices, a charger without
smart charging, not charging) is refused with the reason and nothing is sent. No JavaScript.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final

from strom_core.ports import CommandStatus
from strom_services.cheap import CheapCharging, PlanInvalid, PlanRefused
from strom_storage.sessions import SessionNotFound

__all__ = ["CHEAP_NOTICE", "CheapOutcome", "deadline_of", "plan_from_form"]

log = logging.getLogger(__name__)

_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")
_MAX_KWH_TEXT = 8


class CheapOutcome(StrEnum):
    """What became of a driver's deadline (the page's ``cheap`` parameter)."""

    PLANNED = "planned"
    FULL_POWER = "full-power"
    REFUSED = "refused"
    NOT_OFFERED = "not-offered"
    OFFLINE = "offline"
    NO_ANSWER = "no-answer"
    INVALID = "invalid"
    BUSY = "busy"


CHEAP_NOTICE: Final = {
    CheapOutcome.PLANNED: ("ok", "Planned: your car charges in the cheapest hours before then."),
    CheapOutcome.FULL_POWER: (
        "warn",
        "That much energy does not fit before then even at full power: it charges at full "
        "power from now.",
    ),
    CheapOutcome.REFUSED: ("bad", "The charger refused the plan; it charges as before."),
    CheapOutcome.NOT_OFFERED: (
        "bad",
        "Charge when cheap needs a charging session with hourly prices at a charger with smart "
        "charging; this one cannot; nothing changed.",
    ),
    CheapOutcome.OFFLINE: ("bad", "The charger is not connected right now; nothing changed."),
    CheapOutcome.NO_ANSWER: ("warn", "The charger did not answer in time; it charges as before."),
    CheapOutcome.INVALID: (
        "bad",
        "Give a time (HH:MM, UTC) within a day and, if you like, the kWh you want; nothing "
        "changed.",
    ),
    CheapOutcome.BUSY: ("warn", "Too many requests; wait a minute and try again."),
}
"""The tone and words of each outcome on the page."""


def deadline_of(text: str | None, now: datetime) -> datetime | None:
    """The next ``HH:MM[:SS]`` (UTC) after ``now``; None when the text is not such a time."""
    match = _TIME.fullmatch(text.strip()) if text else None
    if match is None:
        return None
    hour, minute, second = (int(group or 0) for group in match.groups())
    day = now.astimezone(UTC).date()
    at = datetime.combine(day, time(hour, minute, second), tzinfo=UTC)
    return at if at > now else at + timedelta(days=1)


def _wh(text: str | None) -> int | None:
    """Whole Wh from a kWh number as typed; None when empty; -1 when not a number."""
    if text is None or not text.strip():
        return None
    if len(text) > _MAX_KWH_TEXT:
        return -1
    try:
        wh = Decimal(text.strip()) * 1000
    except InvalidOperation:
        return -1
    if not wh.is_finite() or wh <= 0:
        return -1
    return int(wh)


async def plan_from_form(
    cheap: CheapCharging, session_id: str, by: str | None, kwh: str | None, now: datetime
) -> CheapOutcome:
    """Plan a session to be ready ``by`` (the form's text) and say what became of it."""
    deadline = deadline_of(by, now)
    energy_wh = _wh(kwh)
    if deadline is None or energy_wh == -1:
        return CheapOutcome.INVALID
    try:
        planned = await cheap.plan(session_id, deadline, energy_wh)
    except PlanInvalid as exc:
        log.info("session %s: charge when cheap invalid: %s", session_id, exc)
        return CheapOutcome.INVALID
    except PlanRefused as exc:
        log.info("session %s: charge when cheap refused: %s", session_id, exc)
        return CheapOutcome.NOT_OFFERED
    except SessionNotFound:
        return CheapOutcome.NOT_OFFERED
    result = planned.result
    if result.accepted:
        return CheapOutcome.PLANNED if planned.plan.fits else CheapOutcome.FULL_POWER
    if result.status is CommandStatus.OFFLINE:
        return CheapOutcome.OFFLINE
    if result.status is CommandStatus.TIMEOUT:
        return CheapOutcome.NO_ANSWER
    return CheapOutcome.REFUSED
