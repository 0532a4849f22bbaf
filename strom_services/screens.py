"""What a charger's own screen shows: the price and the pay code while idle, the session after.

Theory of operation
-------------------
Paying with Lightning is most natural when the charger itself says how: a charger whose screen
the central system may write to (OCPP 2.0.1 display messages; :class:`ChargerDisplays` says which
chargers have one, from what they reported) shows, per connector:

* **idle** (the connector reports ``Available``): the price ("Pay with Lightning: 250 sat/kWh"),
  and, where the screen shows QR codes, the connector's LNURL-pay as a ``lightning:`` URI, the
  same code as the sticker's;
* **paid** (its session reached ``paid``): "Paid 20,000 sat. Plug in to start charging.", and the
  QR code goes (it would invite a second payment);
* **charging**: "Charging. Stop and get the rest back from your phone (session page).", and the
  running cost, as the session's bill grows (at most every ``cost_interval_s`` seconds, and once
  more when the transaction stops, with the final cost);
* **finished** (the session ended with the cable still in): "Charging finished. Please unplug.";
  back to idle when the connector is ``Available`` again.

A charger tells what its screen can do only after it connected (OCPP 2.0.1: the report that
follows its boot), usually after its connectors said they are ``Available``: so the keeper
remembers which connectors are idle, and :meth:`ScreenKeeper.refresh` puts the price on them
once the charger's screen is known (and again when its tariff changes).

Connector *n* uses message ids ``10·n + 1`` (text) and ``10·n + 2`` (QR code), so each new
message replaces the last one of its kind and nothing piles up on the charger.

A session's commit and an OCPP event never wait for a screen: :meth:`ScreenKeeper.on_transition`
and :meth:`ScreenKeeper.on_event` only note a wish, the newest per connector and kind (the
text, the cost: a cost update never displaces the text and the reverse), and one task
(:meth:`ScreenKeeper.run`) sends them, so a burst of meter readings makes one cost update. A text
wish equal to the last one of its connector is not made again. A
screen is a courtesy: an answer other than Accepted is logged and forgotten, never retried, and
never touches a session or a payment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from strom_core.clock import Clock
from strom_core.fiat import ShownTariff
from strom_core.ports import (
    ChargerDisplays,
    CommandResult,
    ConnectorStatusChanged,
    OcppEvent,
    ScreenMessage,
)
from strom_core.session import State, Transition
from strom_core.tariff import Tariff
from strom_core.units import MSAT_PER_SAT, format_sat
from strom_web.lnurl import LnurlError, bech32_lnurl, connector_pay_url

__all__ = [
    "CHARGING_TEXT",
    "FINISHED_TEXT",
    "ScreenKeeper",
    "price_text",
    "qr_message_id",
    "text_message_id",
]

log = logging.getLogger(__name__)

_ENDED: Final = frozenset({State.STOPPED, State.REFUND_PENDING, State.REFUNDED, State.CLOSED})
CHARGING_TEXT: Final = "Charging. Stop and get the rest back from your phone (session page)."
FINISHED_TEXT: Final = "Charging finished. Please unplug."


def text_message_id(connector_id: int) -> int:
    """The id of a connector's text message."""
    return 10 * connector_id + 1


def qr_message_id(connector_id: int) -> int:
    """The id of a connector's QR code message."""
    return 10 * connector_id + 2


def price_text(tariff: Tariff | ShownTariff) -> str:
    """The price list in a line, as the idle screen says it.

    A component priced in fiat reads as written with its sats at the current rate
    (:class:`~strom_core.fiat.ShownTariff`), and the line says when the sats are counted.
    """
    shown = tariff if isinstance(tariff, ShownTariff) else ShownTariff(tariff, tariff)
    note = f" {shown.note}." if shown.note else ""
    return (
        "Pay with Lightning: "
        + " + ".join(shown.parts())
        + f".{note} Scan the code; unused sats are refunded."
    )


@dataclass(frozen=True, slots=True)
class _Idle:
    pass


@dataclass(frozen=True, slots=True)
class _Paid:
    paid_msat: int


@dataclass(frozen=True, slots=True)
class _Says:
    """A fixed text in front (charging, finished)."""

    text: str


@dataclass(frozen=True, slots=True)
class _Cost:
    consumed_msat: int
    final: bool = False


_Text = _Idle | _Paid | _Says
_Wish = _Text | _Cost
_Where = tuple[str, int]  # charger, connector


class ScreenKeeper:
    """Keeps the screens of chargers that have one (see the module docstring).

    Args:
        displays: the chargers' screens (the OCPP server).
        tariff_of: the tariff in force on a charger as a driver paying now gets it (its fiat
            components as written and converted at the current rate); None: not Strom's
            charger.
        base_url: Strom's public URL, that LNURLs are made of.
        clock: Strom's clock (monotonic time paces the cost updates).
        cost_interval_s: at most one running-cost update per connector in this many seconds.
    """

    def __init__(
        self,
        displays: ChargerDisplays,
        tariff_of: Callable[[str], Tariff | ShownTariff | None],
        base_url: str,
        *,
        clock: Clock,
        cost_interval_s: float = 30.0,
    ) -> None:
        self._displays = displays
        self._tariff_of = tariff_of
        self._base = base_url
        self._clock = clock
        self._cost_interval_s = cost_interval_s
        self._wishes: dict[tuple[str, int, str], _Wish] = {}  # (charger, connector, kind)
        self._last_text: dict[_Where, _Text] = {}  # the newest text wish of each connector
        self._last_cost: dict[_Where, float] = {}
        self._idle: set[_Where] = set()  # connectors last reported Available
        self._wake = asyncio.Event()

    # --- what happens ------------------------------------------------------------------------

    def on_transition(self, transition: Transition) -> None:
        """A session changed (a :meth:`SessionStore.on_committed` listener; never blocks)."""
        session = transition.session
        if not transition.changed:
            return
        screen = self._displays.screen_of(session.charger_id)
        where = (session.charger_id, session.connector_id)
        charged = session.started_at is not None
        if session.state is State.PAID and screen.messages:
            self._wish(where, _Paid(session.paid_msat))
        if session.state is State.CHARGING and screen.messages:
            self._wish(where, _Says(CHARGING_TEXT))
        if session.state in _ENDED and charged and screen.messages and where not in self._idle:
            self._wish(where, _Says(FINISHED_TEXT))  # the cable is still in
        if session.state in (State.CHARGING, State.STOPPING) and screen.cost:
            self._wish(where, _Cost(session.consumed_msat))
        elif session.state in _ENDED and charged and screen.cost:
            self._wish(where, _Cost(session.consumed_msat, final=True))

    async def on_event(self, event: OcppEvent) -> None:
        """An OCPP event (a :class:`CoreEventSink` subscriber): idle connectors show the price."""
        if not isinstance(event, ConnectorStatusChanged) or event.connector_id == 0:
            return
        where = (event.charger_id, event.connector_id)
        if event.status != "Available":
            self._idle.discard(where)
            return
        self._idle.add(where)
        if self._displays.screen_of(event.charger_id).messages:
            self._wish(where, _Idle())

    def refresh(self, charger_id: str) -> None:
        """The charger reported its screen, or its tariff changed: idle connectors show the price.

        A listener of the OCPP server and of the tariffs; never blocks.
        """
        if not self._displays.screen_of(charger_id).messages:
            return
        for where in sorted(self._idle):
            if where[0] == charger_id:
                self._wish(where, _Idle())

    def _wish(self, where: _Where, wish: _Wish) -> None:
        if isinstance(wish, _Cost):
            self._wishes[(*where, "cost")] = wish
        elif self._last_text.get(where) != wish or isinstance(wish, _Idle):
            self._last_text[where] = wish
            self._wishes[(*where, "text")] = wish
        else:
            return  # it says that already (or will)
        self._wake.set()

    # --- the task that writes to the screens -------------------------------------------------

    async def run(self) -> None:
        """Send the newest wish of each connector, until cancelled."""
        while True:
            due = self._next_due()
            if due is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            delay = due - self._clock.monotonic()
            if delay > 0:
                self._wake.clear()
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                continue
            await self._send_due()

    def _ready_at(self, key: tuple[str, int, str], wish: _Wish) -> float:
        if isinstance(wish, _Cost) and not wish.final:
            last = self._last_cost.get(key[:2])
            if last is not None:
                return last + self._cost_interval_s
        return 0.0  # due now

    def _next_due(self) -> float | None:
        times = [self._ready_at(key, wish) for key, wish in self._wishes.items()]
        return min(times, default=None)

    async def _send_due(self) -> None:
        now = self._clock.monotonic()
        for key, wish in list(self._wishes.items()):
            if self._ready_at(key, wish) > now:
                continue
            del self._wishes[key]
            charger_id, connector_id, _kind = key
            where = (charger_id, connector_id)
            if isinstance(wish, _Idle):
                await self._show_idle(charger_id, connector_id)
            elif isinstance(wish, _Paid):
                await self._show_paid(charger_id, connector_id, wish.paid_msat)
            elif isinstance(wish, _Says):
                message = ScreenMessage(
                    text_message_id(connector_id), connector_id, wish.text, urgent=True
                )
                result = await self._displays.show(charger_id, message)
                self._log(charger_id, connector_id, "text", result)
            else:
                self._last_cost[where] = now
                total = Decimal(wish.consumed_msat) / MSAT_PER_SAT
                result = await self._displays.show_cost(charger_id, connector_id, total)
                self._log(charger_id, connector_id, "cost", result)
                if wish.final:
                    self._last_cost.pop(where, None)

    async def _show_idle(self, charger_id: str, connector_id: int) -> None:
        tariff = self._tariff_of(charger_id)
        if tariff is None:
            return
        text = ScreenMessage(text_message_id(connector_id), connector_id, price_text(tariff))
        self._log(charger_id, connector_id, "price", await self._displays.show(charger_id, text))
        if not self._displays.screen_of(charger_id).qr:
            return
        try:
            lnurl = bech32_lnurl(connector_pay_url(self._base, charger_id, connector_id))
        except LnurlError as exc:  # a clearnet http:// public URL makes no LNURL
            log.info("cp_id=%s: no QR code on its screen: %s", charger_id, exc)
            return
        code = ScreenMessage(qr_message_id(connector_id), connector_id, f"lightning:{lnurl}", True)
        self._log(charger_id, connector_id, "QR code", await self._displays.show(charger_id, code))

    async def _show_paid(self, charger_id: str, connector_id: int, paid_msat: int) -> None:
        text = f"Paid {format_sat(paid_msat)}. Plug in to start charging."
        message = ScreenMessage(text_message_id(connector_id), connector_id, text, urgent=True)
        self._log(charger_id, connector_id, "paid", await self._displays.show(charger_id, message))
        if self._displays.screen_of(charger_id).qr:
            result = await self._displays.clear(charger_id, qr_message_id(connector_id))
            self._log(charger_id, connector_id, "QR code removal", result)

    @staticmethod
    def _log(charger_id: str, connector_id: int, what: str, result: CommandResult) -> None:
        if not result.accepted:
            log.info(
                "cp_id=%s connector %d: screen %s not shown: %s %s",
                charger_id,
                connector_id,
                what,
                result.status,
                result.detail,
            )
