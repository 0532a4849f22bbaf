"""The printable sticker of a connector: its static LNURL-pay as a QR code, with what it costs.

The QR holds ``LIGHTNING:LNURL1…`` in upper case (the QR alphanumeric mode makes the code
smaller and every wallet reads it). The SVG is the whole sticker (name, connector, price,
fallback URL); the PDF is the QR code alone at print size (segno writes it), for print shops
that want to set their own text.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

import segno

from strom.config import ProfileConfig
from strom.tariff import Tariff
from strom.units import format_sat

__all__ = ["qr_payload", "sticker_pdf", "sticker_svg"]

_WIDTH = 400
_QR_SIZE = 320


def qr_payload(lnurl: str) -> str:
    """What the QR code holds."""
    return f"LIGHTNING:{lnurl.upper()}"


def _price(tariff: Tariff) -> str:
    text = f"{format_sat(tariff.energy_msat_per_kwh)}/kWh"
    if tariff.time_msat_per_minute:
        text += f" + {format_sat(tariff.time_msat_per_minute)}/min"
    if tariff.session_fee_msat:
        text += f" + {format_sat(tariff.session_fee_msat)} per session"
    return text


def sticker_svg(profile: ProfileConfig, connector_id: int, lnurl: str, tariff: Tariff) -> str:
    """The sticker as a standalone SVG document (400 x 560 user units)."""
    qr = segno.make_qr(qr_payload(lnurl), error="m")
    modules = qr.symbol_size(scale=1, border=2)[0]
    scale = _QR_SIZE / modules
    code = qr.svg_inline(scale=scale, border=2, dark="#000", light="#fff")
    x = (_WIDTH - _QR_SIZE) / 2
    lines = [
        (40, 22, "bold", "Pay for charging with Lightning"),
        (74, 20, "normal", profile.name),
        (100, 16, "normal", f"Connector {connector_id}"),
    ]
    text = "".join(
        f'<text x="{_WIDTH / 2}" y="{y}" font-size="{size}" font-weight="{weight}" '
        f'text-anchor="middle">{escape(value)}</text>'
        for y, size, weight, value in lines
    )
    below = _QR_SIZE + 130
    footer = (
        f'<text x="{_WIDTH / 2}" y="{below + 10}" font-size="18" text-anchor="middle">'
        f"{escape(_price(tariff))}</text>"
        f'<text x="{_WIDTH / 2}" y="{below + 36}" font-size="13" text-anchor="middle">'
        "Scan with any Lightning wallet. Unused budget is refunded.</text>"
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} 560" '
        f'width="{_WIDTH}" height="560" font-family="Helvetica, Arial, sans-serif">'
        f'<rect width="{_WIDTH}" height="560" fill="#fff"/>{text}'
        f'<g transform="translate({x},{118})">{code}</g>{footer}</svg>'
    )


def sticker_pdf(lnurl: str) -> bytes:
    """The QR code of the sticker as a PDF page (about 8 cm wide)."""
    qr = segno.make_qr(qr_payload(lnurl), error="m")
    out = io.BytesIO()
    modules = qr.symbol_size(scale=1, border=4)[0]
    qr.save(out, kind="pdf", scale=max(1, round(227 / modules)), border=4)
    return out.getvalue()
