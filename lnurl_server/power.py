"""The driver's "charge slower" on the session page: a form, a POST, the page again.

Theory of operation
-------------------
The session page of a running session shows the power it charges at and a small form of a few
lower powers. The form posts ``kw`` and the session ``secret`` (the page's own capability: only
the payer has it, so a page elsewhere cannot forge the post) to ``POST /s/<id>/power``; the
answer is a redirect (303) back to the page with ``power=<outcome>``, and the page says what
became of it in fixed words (nothing the client sent is shown back). No JavaScript is needed.

The limit goes through :meth:`strom_services.power.PowerService.lower`: only a limit the
charger ACCEPTED changes the session (the page then shows the lower power, and the budget stop
plans with it); a refusal, an offline charger or no answer changes nothing. A wrong secret gets
the page's 404; a malformed power, or one outside 1 kW to the session's power, is refused
before anything is sent. Posts share the per-client rate limit of invoices, so a page cannot be
used to flood a charger with profiles.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final

from strom_core.errors import ConfigError, IllegalTransition
from strom_core.ports import CommandStatus
from strom_services.power import PowerService
from strom_storage.sessions import SessionNotFound

__all__ = ["POWER_CHOICES_W", "POWER_NOTICE", "PowerOutcome", "lower_from_form", "power_choices"]

log = logging.getLogger(__name__)

# The powers the form offers, where below the session's own (1-phase 6/10/16 A, 3-phase 16 A).
POWER_CHOICES_W: Final = (11_000, 7_400, 3_700, 2_300, 1_400)
_MAX_KW_TEXT = 12


class PowerOutcome(StrEnum):
    """What became of a driver's lower power (the page's ``power`` parameter)."""

    LIMITED = "limited"
    REFUSED = "refused"
    OFFLINE = "offline"
    NO_ANSWER = "no-answer"
    INVALID = "invalid"
    NOT_RUNNING = "not-running"
    BUSY = "busy"


POWER_NOTICE: Final = {
    PowerOutcome.LIMITED: ("ok", "The charger took your lower power; the budget stop uses it."),
    PowerOutcome.REFUSED: ("bad", "The charger refused a lower power; nothing changed."),
    PowerOutcome.OFFLINE: ("bad", "The charger is not connected right now; nothing changed."),
    PowerOutcome.NO_ANSWER: (
        "warn",
        "The charger did not answer in time; your session keeps its power.",
    ),
    PowerOutcome.INVALID: ("bad", "That power is not one this session can take; nothing changed."),
    PowerOutcome.NOT_RUNNING: ("idle", "The session no longer runs; nothing changed."),
    PowerOutcome.BUSY: ("warn", "Too many requests; wait a minute and try again."),
}
"""The tone and words of each outcome on the page."""


def power_choices(power_w: int) -> list[int]:
    """The powers (W) the form offers a session charging at ``power_w``: those below it."""
    return [choice for choice in POWER_CHOICES_W if choice < power_w]


def _watts(text: str | None) -> int | None:
    """Whole watts from a kW number as typed (``"3.7"``), or None when it is not one."""
    if text is None or not 0 < len(text) <= _MAX_KW_TEXT:
        return None
    try:
        watts = Decimal(text.strip()) * 1000
    except InvalidOperation:
        return None
    if not watts.is_finite() or watts != watts.to_integral_value():
        return None
    return int(watts)


async def lower_from_form(power: PowerService, session_id: str, kw: str | None) -> PowerOutcome:
    """Lower a session's power to ``kw`` (the form's text) and say what became of it.

    Args:
        power: the power service.
        session_id: the session, its secret already checked.
        kw: the form's ``kw`` field.

    Returns:
        The outcome; the session changed only when it is ``LIMITED``.
    """
    limit_w = _watts(kw)
    if limit_w is None:
        return PowerOutcome.INVALID
    try:
        result = await power.lower(session_id, limit_w)
    except ConfigError:
        return PowerOutcome.INVALID
    except (IllegalTransition, SessionNotFound):
        return PowerOutcome.NOT_RUNNING
    log.info("session %s: driver's lower power %s W: %s", session_id, limit_w, result.status)
    if result.accepted:
        return PowerOutcome.LIMITED
    if result.status is CommandStatus.OFFLINE:
        return PowerOutcome.OFFLINE
    if result.status is CommandStatus.TIMEOUT:
        return PowerOutcome.NO_ANSWER
    return PowerOutcome.REFUSED
