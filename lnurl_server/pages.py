"""Server-rendered pages: usable without JavaScript, live with it, readable on a phone.

Templates are Jinja2 with autoescaping on; every value from outside is escaped. The only
markup passed through unescaped is the QR code SVG, which segno makes from text Strom controls
(:mod:`strom_web.qr`: a connector's code is its LUD-01 fallback URL, a session's codes are
bare LNURLs), and the pages' own style sheets and script (``templates/*.css``,
``templates/session.js``), inlined as they are so that the Content-Security-Policy can allow
exactly them by hash (:mod:`strom_web.csp`). They are static: nothing is rendered into
them, so their hashes are computed once, at start.

Amounts are shown with :func:`strom_core.units.format_sat` and energies with
:func:`strom_core.units.format_kwh`; the session page's script mirrors both exactly, so a number
does not change its look when the script takes over from the server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from lnurl_server.cheap import CHEAP_NOTICE, CheapOutcome
from lnurl_server.power import POWER_NOTICE, PowerOutcome, power_choices
from lnurl_server.reservations import RESERVATION_NOTICE, ReservationOutcome
from strom_core.billing import session_interval_bills
from strom_core.charge_plan import ChargePlan
from strom_core.config import ProfileConfig
from strom_core.ports import ChargerLink
from strom_core.prices import PriceSchedule
from strom_core.session import Session, State
from strom_core.session_events import stop_reason_text
from strom_core.units import format_kwh, format_sat
from strom_web.charts import price_chart
from strom_web.csp import map_policy, page_policy
from strom_web.qr import fallback_qr, lnurl_qr

__all__ = [
    "INLINE_SCRIPTS",
    "INLINE_STYLES",
    "MAP_SCRIPTS",
    "MAP_STYLES",
    "STATE_TEXT",
    "Pages",
    "connector_status",
    "format_duration",
]

# The pages' own style sheets and script, inlined into them (templates/…).
INLINE_STYLES = ("pages.css", "session.css")
INLINE_SCRIPTS = ("session.js",)
# The network map's (/map): the common look, its own look and its script.
MAP_STYLES = ("pages.css", "map.css")
MAP_SCRIPTS = ("map.js",)

STATE_TEXT = {
    State.AWAITING_PAYMENT: "Waiting for your payment",
    State.EXPIRED: "The invoice expired unpaid",
    State.RESERVED: "Reserved for you",
    State.PAID: "Paid — starting the charger",
    State.STARTING: "Plug in your car — the charger is starting",
    State.CHARGING: "Charging",
    State.STOPPING: "Stopping",
    State.STOPPED: "Stopped — collect your refund below",
    State.START_FAILED: "The charge did not start — your whole payment is refundable",
    State.REFUND_PENDING: "Refund on its way",
    State.REFUNDED: "Done — refund paid",
    State.CLOSED: "Done — the whole budget was used",
}

# What the driver should know or do next, under the state.
STATE_HINT = {
    State.AWAITING_PAYMENT: "Pay the invoice in your wallet; this page follows by itself.",
    State.EXPIRED: "Nothing was charged. Scan the charger's code again to start over.",
    State.RESERVED: (
        "The connector is held for you. Plug in and press Start charging before the "
        "reservation ends: your whole payment is your charging budget."
    ),
    State.PAID: "Payment received. The charger is being told to start.",
    State.STARTING: "Plug the cable into your car if you have not yet; charging starts shortly.",
    State.CHARGING: "Stop whenever you like: what you did not use goes back to your wallet.",
    State.STOPPING: "Waiting for the charger's final meter reading.",
    State.STOPPED: "Collect what you did not use with your wallet below.",
    State.START_FAILED: "No energy was charged. Collect your whole payment with your wallet below.",
    State.REFUND_PENDING: "Your wallet receives it in a moment.",
    State.REFUNDED: "Thank you for charging. Your receipt is below.",
    State.CLOSED: "Thank you for charging. Your receipt is below.",
}

# The colour of the state: ok (good, green), wait (something is happening), warn (the driver has
# something to do), bad (it went wrong), idle (nothing happens any more).
STATE_TONE = {
    State.AWAITING_PAYMENT: "wait",
    State.EXPIRED: "idle",
    State.RESERVED: "ok",
    State.PAID: "wait",
    State.STARTING: "wait",
    State.CHARGING: "ok",
    State.STOPPING: "wait",
    State.STOPPED: "warn",
    State.START_FAILED: "bad",
    State.REFUND_PENDING: "wait",
    State.REFUNDED: "ok",
    State.CLOSED: "ok",
}

# States in which the page changes without the driver doing anything: without JavaScript the
# page refreshes itself in these.
_MOVING = frozenset(
    {
        State.AWAITING_PAYMENT,
        State.RESERVED,
        State.PAID,
        State.STARTING,
        State.CHARGING,
        State.STOPPING,
        State.REFUND_PENDING,
    }
)
_RECEIPT = frozenset({State.REFUND_PENDING, State.REFUNDED, State.CLOSED})


@dataclass(frozen=True, slots=True)
class ConnectorStatus:
    """How a connector's state reads on the charger page."""

    label: str
    tone: str
    detail: str = ""


# OCPP 1.6 StatusNotification values of a connector that is *not* busy for Strom.
_FREE_DETAIL = {
    "Preparing": "A cable is plugged in.",
    "SuspendedEV": "A cable is plugged in.",
    "SuspendedEVSE": "A cable is plugged in.",
    "Finishing": "The last charge is finishing.",
    "Reserved": "Reserved at the charger.",
}
_OUT_OF_SERVICE = {"Unavailable", "Faulted"}
# A charger that is not connected: no pay code, and the page refreshes itself (seconds) so the
# code appears once it is back. A driver standing at a reconnecting charger waits a minute.
_LINK_STATUS = {
    ChargerLink.RECONNECTING: ConnectorStatus(
        "Reconnecting",
        "wait",
        "The charger is reconnecting. You can pay as soon as it is back, usually within a "
        "minute; this page refreshes by itself.",
    ),
    ChargerLink.OFFLINE: ConnectorStatus(
        "Offline",
        "idle",
        "The charger is not connected right now, so it cannot be paid for. "
        "This page refreshes by itself.",
    ),
}
LINK_REFRESH_S = {ChargerLink.RECONNECTING: 10, ChargerLink.OFFLINE: 30}


def connector_status(
    ocpp_status: str, busy_reason: str, link: ChargerLink = ChargerLink.ONLINE
) -> ConnectorStatus:
    """The driver's view of a connector from its OCPP status and Strom's busy reason.

    Args:
        ocpp_status: the charger's last StatusNotification value, or ``"Unknown"``.
        busy_reason: why the connector cannot be paid for now; empty when it can.
        link: whether its charger is connected (online), reconnecting or offline.

    Returns:
        A short label ("Free", "Reserved", "In use", "Out of service", "Offline", …), its
        tone and a detail line.
    """
    if not busy_reason:
        return ConnectorStatus("Free", "ok", _FREE_DETAIL.get(ocpp_status, ""))
    if "out of service" in busy_reason:
        return ConnectorStatus("Out of service", "bad", _sentence(busy_reason))
    if link in _LINK_STATUS:
        return _LINK_STATUS[link]
    if ocpp_status in _OUT_OF_SERVICE:
        return ConnectorStatus("Out of service", "bad", _sentence(busy_reason))
    if busy_reason.startswith("this connector is reserved"):
        return ConnectorStatus("Reserved", "warn", _sentence(busy_reason))
    if ocpp_status == "Unknown":
        return ConnectorStatus("Offline", "idle", _sentence(busy_reason))
    return ConnectorStatus("In use", "warn", _sentence(busy_reason))


def format_duration(seconds: int) -> str:
    """``"under 1 min"``, ``"42 min"`` or ``"1 h 05 min"`` (whole minutes, floored)."""
    minutes = max(seconds, 0) // 60
    if minutes == 0:
        return "under 1 min"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _sat_number(amount: int) -> str:
    # The number of format_sat without its unit, for a big price with a smaller unit.
    return format_sat(amount).removesuffix(" sat")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _svg(qr: Any) -> Markup:
    # The SVG scales to its box (viewBox, no fixed size) and carries its own white quiet zone.
    svg = qr.svg_inline(omitsize=True, dark="#000", light="#fff", title="QR code")
    return Markup(svg)  # noqa: S704 - segno's own SVG of our own text


def _qr(lnurl: str) -> Markup:
    return _svg(lnurl_qr(lnurl))


def format_kw(watts: int) -> str:
    """``"11 kW"``, ``"3.7 kW"``: whole watts as kilowatts, no trailing zeros."""
    kw = Decimal(watts) / 1000
    return f"{kw.quantize(Decimal(1)) if kw == kw.to_integral_value() else kw.normalize()} kW"


def _percent(part: int, whole: int) -> int:
    if whole <= 0:
        return 0
    return min(100, part * 100 // whole)


class Pages:
    """Renders the public pages.

    Args:
        fiat_per_btc: shows a fiat estimate next to prices when given (a fixed rate).
        fiat_code: the currency of the rate.
        fiat_rate: the rate in force now, asked at each rendering (the RateBook); None from it
            shows no estimate. Replaces ``fiat_per_btc`` when given.
        fake_backend: the lightning backend moves no real money; every page says so on top.
    """

    def __init__(
        self,
        fiat_per_btc: Decimal | None = None,
        fiat_code: str = "EUR",
        *,
        fiat_rate: Callable[[], Decimal | None] | None = None,
        fake_backend: bool = False,
    ) -> None:
        self.env = Environment(
            loader=PackageLoader("lnurl_server", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["sat"] = format_sat
        self.env.filters["kwh"] = format_kwh
        self.env.filters["fiat"] = self._fiat
        self.env.filters["sat_number"] = _sat_number
        self.env.filters["duration"] = format_duration
        self.env.filters["when"] = _when
        self.env.filters["sentence"] = _sentence
        self.env.filters["kw"] = format_kw
        self.env.globals["fake_backend"] = fake_backend
        templates = files("lnurl_server") / "templates"
        self.assets = {
            name: (templates / name).read_text(encoding="utf-8")
            for name in dict.fromkeys(INLINE_STYLES + INLINE_SCRIPTS + MAP_STYLES + MAP_SCRIPTS)
        }
        self.env.globals["inline"] = self._inline
        self._policies: dict[str, str] = {}
        self.fiat_per_btc = fiat_per_btc
        self.fiat_rate = fiat_rate
        self.fiat_code = fiat_code
        self.fake_backend = fake_backend

    def _inline(self, name: str) -> Markup:
        return Markup(self.assets[name])  # noqa: S704 - our own static files, hashed in the CSP

    def content_security_policy(self, public_url: str) -> str:
        """The Content-Security-Policy every page needs: its inline styles and script by hash.

        Args:
            public_url: ``server.public_url``, whose websocket the session page opens.
        """
        policy = self._policies.get(public_url)
        if policy is None:
            policy = self._policies[public_url] = page_policy(
                scripts=[self.assets[name] for name in INLINE_SCRIPTS],
                styles=[self.assets[name] for name in INLINE_STYLES],
                public_url=public_url,
            )
        return policy

    def map_policy(self, public_url: str, *, relays: list[str], tile_url: str) -> str:
        """The Content-Security-Policy of the network map (:func:`strom_web.csp.map_policy`).

        Args:
            public_url: ``server.public_url`` (the bridge to the embedded relay is on it).
            relays: the external relays the map reads.
            tile_url: the tile server's URL template, or empty.
        """
        return map_policy(
            scripts=[self.assets[name] for name in MAP_SCRIPTS],
            styles=[self.assets[name] for name in MAP_STYLES],
            public_url=public_url,
            relays=relays,
            tile_url=tile_url,
        )

    def network_map(self, settings: dict[str, Any]) -> str:
        """The network map page; ``settings`` (relays, operator keys, tiles) go in as JSON."""
        return self.env.get_template("map.html").render(settings=settings)

    def _fiat(self, msat: int) -> str:
        rate = self.fiat_rate() if self.fiat_rate is not None else self.fiat_per_btc
        if rate is None:
            return ""
        value = Decimal(msat) / Decimal(100_000_000_000) * rate
        return f"≈ {value:.2f} {self.fiat_code}"

    def not_found(self, message: str) -> str:
        """A plain, phone-friendly 404 page."""
        return self.env.get_template("not_found.html").render(
            message=message, fake_backend=self.fake_backend
        )

    def charger(
        self,
        profile: ProfileConfig,
        connectors: list[dict[str, Any]],
        *,
        single: bool = False,
        link: ChargerLink = ChargerLink.ONLINE,
        schedule: PriceSchedule | str | None = None,
        now: datetime | None = None,
        fiat: Mapping[str, str] | None = None,
        fiat_when: str = "",
    ) -> str:
        """The charger page, or one connector's page (``single``: where its QR code leads).

        Args:
            profile: the charge point.
            connectors: one dict per connector shown, with ``connector`` (its config),
                ``lnurl`` (its static LNURL-pay), ``fallback_url`` (what its QR code holds:
                its page with the LNURL in ``?lightning=``), ``status`` (OCPP) and ``busy``
                (the reason it cannot be paid for now, or empty).
            single: the page of one connector: it links to the whole charger's page.
            link: whether the charger is connected; when not, no pay code is shown and the
                page refreshes itself.
            schedule: the energy prices of the next hours, shown as "price now" and a chart
                (:func:`strom_web.charts.price_chart`); a text: why no price can be given.
            now: the moment marked "now" on the chart (default: the wall clock).
            fiat: the tariff's components priced in fiat, as written, by key
                (:meth:`strom_core.fiat.FiatTerms.describe`); they replace the sat prices.
            fiat_when: when those are converted, in words.
        """
        tariff = profile.tariff.to_tariff()
        moment = now or datetime.now(UTC)
        price_now: int | None = None
        chart: Markup | None = None
        no_price = schedule if isinstance(schedule, str) else ""
        if isinstance(schedule, PriceSchedule):
            current = schedule.price_at(moment)
            price_now = current.energy_msat_per_kwh if current is not None else None
            chart = Markup(price_chart(schedule, moment))  # noqa: S704 - escaped by charts
        items = []
        for item in connectors:
            status = connector_status(str(item["status"]), str(item["busy"]), link)
            items.append(
                {
                    **item,
                    "label": status.label,
                    "tone": status.tone,
                    "detail": status.detail,
                    "qr": None if item["busy"] else _svg(fallback_qr(str(item["fallback_url"]))),
                }
            )
        return self.env.get_template("charger.html").render(
            profile=profile,
            tariff=tariff,
            connectors=items,
            single=single,
            refresh_s=LINK_REFRESH_S.get(link),
            price_now=price_now,
            price_chart=chart,
            fiat_prices=fiat or {},
            fiat_when=fiat_when,
            no_price=no_price,
            changes=isinstance(schedule, PriceSchedule)
            and len({i.energy_msat_per_kwh for i in schedule.intervals}) > 1,
        )

    def session(
        self,
        profile: ProfileConfig,
        session: Session,
        view: dict[str, Any],
        *,
        can_lower: bool = False,
        secret: str = "",
        power_outcome: PowerOutcome | None = None,
        reservation_outcome: ReservationOutcome | None = None,
        can_plan: bool = False,
        plan: ChargePlan | None = None,
        cheap_outcome: CheapOutcome | None = None,
    ) -> str:
        """The session page.

        Args:
            profile: the charge point.
            session: the session.
            view: what :meth:`lnurl_server.routes.FrontDoor.session_view` shows.
            can_lower: offer the "charge slower" form while the session runs.
            secret: the session's secret, which the form posts back.
            power_outcome: what became of the driver's last lower power, shown on top.
            reservation_outcome: what became of the payer's last start or cancel.
            can_plan: offer the "charge when cheap" form (a dynamic schedule, smart charging).
            plan: the charge-when-cheap plan the charger accepted, shown while it runs.
            cheap_outcome: what became of the driver's last deadline.
        """
        state = session.state
        state_text, state_hint = STATE_TEXT[state], STATE_HINT[state]
        if state is State.START_FAILED and session.reserved and session.consumed_msat:
            # A reservation that ended unused: the fee share was kept.
            state_text = "The reservation ended — the rest of your payment is refundable"
            state_hint = (
                f"{format_sat(session.consumed_msat)} of the reservation fee was kept. "
                "Collect the rest with your wallet below."
            )
        refundable = state in (State.STOPPED, State.START_FAILED)
        running = state in (State.PAID, State.STARTING, State.CHARGING)
        return self.env.get_template("session.html").render(
            profile=profile,
            session=session,
            view=view,
            state_text=state_text,
            state_hint=state_hint,
            reserved=state is State.RESERVED,
            kept_msat=session.tariff.reservation_kept(session.reservation_fee_msat),
            reservation_notice=(
                None if reservation_outcome is None else RESERVATION_NOTICE[reservation_outcome]
            ),
            tone=STATE_TONE[state],
            live=state in _MOVING,
            receipt=state in _RECEIPT,
            finished=state in (State.EXPIRED, State.REFUNDED, State.CLOSED),
            show_withdraw=refundable or running,
            running=running,
            used_percent=_percent(session.consumed_msat, session.paid_msat),
            stop_reason=stop_reason_text(session.stop_reason),
            withdraw_qr=_qr(view["withdraw_lnurl"]),
            topup_qr=_qr(view["topup_lnurl"]),
            power_choices=power_choices(session.power_w) if can_lower and running else [],
            secret=secret,
            power_notice=None if power_outcome is None else POWER_NOTICE[power_outcome],
            interval_bills=session_interval_bills(session),
            can_plan=can_plan and running,
            plan=plan if running else None,
            plan_hours=[] if plan is None else plan.charging_hours(),
            cheap_notice=None if cheap_outcome is None else CHEAP_NOTICE[cheap_outcome],
        )
