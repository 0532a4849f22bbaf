"""Server-rendered pages: usable without JavaScript, live with it, readable on a phone.

Templates are Jinja2 with autoescaping on; every value from outside is escaped.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import segno
from jinja2 import Environment, PackageLoader, select_autoescape

from strom.config import ProfileConfig
from strom.session import Session, State
from strom.units import format_kwh, format_sat

__all__ = ["Pages"]

STATE_TEXT = {
    State.AWAITING_PAYMENT: "Waiting for your payment",
    State.EXPIRED: "The invoice expired unpaid",
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


class Pages:
    """Renders the public pages."""

    def __init__(self, fiat_per_btc: Decimal | None = None, fiat_code: str = "EUR") -> None:
        self.env = Environment(
            loader=PackageLoader("lnurl_server", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["sat"] = format_sat
        self.env.filters["kwh"] = format_kwh
        self.env.filters["fiat"] = self._fiat
        self.fiat_per_btc = fiat_per_btc
        self.fiat_code = fiat_code

    def _fiat(self, msat: int) -> str:
        if self.fiat_per_btc is None:
            return ""
        value = Decimal(msat) / Decimal(100_000_000_000) * self.fiat_per_btc
        return f"≈ {value:.2f} {self.fiat_code}"

    def charger(self, profile: ProfileConfig, connectors: list[dict[str, Any]]) -> str:
        """The charger page."""
        tariff = profile.tariff.to_tariff()
        return self.env.get_template("charger.html").render(
            profile=profile, tariff=tariff, connectors=connectors
        )

    def session(self, profile: ProfileConfig, session: Session, view: dict[str, Any]) -> str:
        """The session page."""
        refundable = session.state in (State.STOPPED, State.START_FAILED)
        running = session.state in (State.PAID, State.STARTING, State.CHARGING)
        return self.env.get_template("session.html").render(
            profile=profile,
            session=session,
            view=view,
            state_text=STATE_TEXT[session.state],
            show_withdraw=refundable or running,
            running=running,
            withdraw_qr=segno.make(view["withdraw_lnurl"], error="m").svg_inline(scale=4),
            topup_qr=segno.make(view["topup_lnurl"], error="m").svg_inline(scale=3),
        )
