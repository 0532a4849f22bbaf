"""The printable sticker of a connector, as SVG and as PDF: one layout, two writers.

The sticker is A6 (105 x 148 mm). Its QR code (70 mm with its quiet zone) holds the
connector's LUD-01 fallback URL ``https://HOST/c/<charger>/<n>?lightning=LNURL1…`` (see
:mod:`strom_web.qr` for its size and error correction): a phone camera opens the
connector's page, a Lightning wallet pays the LNURL. Around it the sticker says what the charger
and connector are, what it costs, and — in large print under the code — the host the driver
must see before paying ("Pay only at charge.example.org"): a sticker glued over the operator's
would lead elsewhere, and that line is what a driver can check.

Text is fitted to the width with Helvetica's metrics (reportlab's), with a margin for wider
fonts that stand in for it when the SVG is shown or printed. The PDF is written with reportlab
in the PDF standard fonts (Helvetica), so it needs no font files: Western European letters
print as they are, other Latin letters without their accents (Ł → L), and letters of other
scripts as "?" — the SVG prints every script with the fonts of the program that opens it.
"""

from __future__ import annotations

import io
import math
import unicodedata
from dataclasses import dataclass, replace
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from strom_core.config import ProfileConfig
from strom_core.fiat import ShownTariff
from strom_core.tariff import Tariff
from strom_core.units import format_sat
from strom_web.qr import QUIET_ZONE, fallback_qr

__all__ = ["WIDTH_MM", "Line", "sticker_lines", "sticker_pdf", "sticker_svg"]

WIDTH_MM = 105
HEIGHT_MM = 148
QR_MM = 70  # the code with its quiet zone
QR_TOP_MM = 28
_TEXT_MM = 95  # the width text may take
_SMALLEST = 2.6  # mm, about 7 pt: the smallest size a name is shrunk to before it is cut
_WIDER_FONTS = 1.15  # DejaVu Sans, say, is up to 15 % wider than Helvetica
_FONT_FAMILY = "Helvetica, Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif"
_PDF_ENCODING = "cp1252"  # what the PDF standard fonts print (WinAnsiEncoding)
_NO_DECOMPOSITION = str.maketrans({"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "\u0131": "i", "Ħ": "H"})


@dataclass(frozen=True, slots=True)
class Line:
    """One line of text, centred: baseline and font size in mm from the top."""

    y: float
    size: float
    bold: bool
    text: str

    @property
    def font(self) -> str:
        """The PDF standard font of the line."""
        return "Helvetica-Bold" if self.bold else "Helvetica"


def _width(text: str, font: str, size: float) -> float:
    # Helvetica's advance widths; a letter it lacks (another script) counts as a full em.
    return sum(stringWidth(char, font, size) if _printable(char) else size for char in text)


def _printable(char: str) -> bool:
    try:
        char.encode(_PDF_ENCODING)
    except UnicodeEncodeError:
        return False
    return True


def _fit(y: float, size: float, bold: bool, text: str, *, shorten: bool = False) -> Line:
    """The line at ``size`` mm, or as much smaller as the width needs.

    Only a line that may be ``shorten``-ed (the charger's name) stops shrinking at 2.6 mm and
    loses its end to "…" instead; the host and the price are never cut.
    """
    font = "Helvetica-Bold" if bold else "Helvetica"
    room = _TEXT_MM / _WIDER_FONTS
    natural = _width(text, font, 1.0)
    fitted = min(size, math.floor(room / natural * 100) / 100) if natural else size
    if shorten and fitted < _SMALLEST:
        fitted = _SMALLEST
        while len(text) > 1 and _width(text, font, fitted) > room:
            text = text[:-2].rstrip() + "…"
    return Line(y, fitted, bold, text)


def _price(tariff: Tariff | ShownTariff) -> str:
    # A price in fiat is printed as written: the sats it is worth change, the sticker stays.
    shown = tariff if isinstance(tariff, ShownTariff) else ShownTariff(tariff, tariff)
    return " + ".join(replace(shown, rate=None).parts())


def _connector(profile: ProfileConfig, connector_id: int) -> str:
    for connector in profile.connectors:
        if connector.id == connector_id:
            power = f"{connector.max_power_kw.normalize():f}"
            return f"Connector {connector_id} · {connector.type} · {power} kW"
    return f"Connector {connector_id}"


def sticker_lines(
    profile: ProfileConfig, connector_id: int, url: str, tariff: Tariff | ShownTariff
) -> list[Line]:
    """What the sticker says, laid out: above the code, then below it.

    Args:
        profile: the charger.
        connector_id: the connector the sticker is for.
        url: what the code holds (its host is the one the sticker names).
        tariff: the prices in force (fiat components printed as written).
    """
    host = urlsplit(url).netloc
    bounds = tariff.base if isinstance(tariff, ShownTariff) else tariff
    budget = (
        f"Prepay {format_sat(bounds.min_prepay_msat)} to {format_sat(bounds.max_prepay_msat)};"
        " what you do not use is refunded."
    )
    return [
        _fit(11, 5.6, True, "Pay for charging with Lightning"),
        _fit(18.5, 5.0, False, profile.name, shorten=True),
        _fit(24.5, 3.8, False, _connector(profile, connector_id)),
        _fit(104, 3.8, False, "Pay only at"),
        _fit(112, 7.0, True, host),
        _fit(117.5, 3.0, False, "Check that your phone shows this address before you pay."),
        _fit(127, 5.0, True, _price(tariff)),
        _fit(133, 3.2, False, budget),
        _fit(139, 3.0, False, "Scan with any Lightning wallet or your phone's camera."),
    ]


def sticker_svg(
    profile: ProfileConfig, connector_id: int, url: str, tariff: Tariff | ShownTariff
) -> str:
    """The sticker as a standalone SVG document, A6 (105 x 148 mm).

    Args:
        profile: the charger.
        connector_id: the connector the sticker is for.
        url: the connector's fallback URL (:func:`strom_web.lnurl.connector_fallback_url`).
        tariff: the prices in force (fiat components printed as written).
    """
    qr = fallback_qr(url)
    module = QR_MM / qr.symbol_size(scale=1, border=QUIET_ZONE)[0]
    code = qr.svg_inline(scale=module, border=QUIET_ZONE, dark="#000", light="#fff")
    text = "".join(
        f'<text x="{WIDTH_MM / 2}" y="{line.y}" font-size="{line.size}" '
        f'font-weight="{"bold" if line.bold else "normal"}" text-anchor="middle">'
        f"{escape(line.text)}</text>"
        for line in sticker_lines(profile, connector_id, url, tariff)
    )
    title = quoteattr(f"{profile.name}, connector {connector_id}: pay with Lightning")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_MM}mm" height="{HEIGHT_MM}mm" '
        f'viewBox="0 0 {WIDTH_MM} {HEIGHT_MM}" font-family="{_FONT_FAMILY}" '
        f'aria-label={title} role="img">'
        f'<rect width="{WIDTH_MM}" height="{HEIGHT_MM}" fill="#fff"/>{text}'
        f'<g transform="translate({(WIDTH_MM - QR_MM) / 2},{QR_TOP_MM})">{code}</g></svg>'
    )


def _pdf_text(text: str) -> str:
    """``text`` in what the PDF standard fonts print: accents dropped where needed, else "?"."""
    out = []
    for char in text:
        if not _printable(char):
            bare = "".join(
                c
                for c in unicodedata.normalize("NFKD", char.translate(_NO_DECOMPOSITION))
                if not unicodedata.combining(c)
            )
            char = bare if bare and all(_printable(c) for c in bare) else "?"
        out.append(char)
    return "".join(out)


def _dark_runs(row: list[int]) -> list[tuple[int, int]]:
    """The runs of dark modules in a row, as ``(start, end)``: one rectangle each."""
    runs = []
    start = None
    for column, dark in enumerate([*row, 0]):
        if dark and start is None:
            start = column
        elif not dark and start is not None:
            runs.append((start, column))
            start = None
    return runs


def sticker_pdf(
    profile: ProfileConfig, connector_id: int, url: str, tariff: Tariff | ShownTariff
) -> bytes:
    """The same sticker as a one-page PDF, A6, vector (the code as filled squares).

    Args:
        profile: the charger.
        connector_id: the connector the sticker is for.
        url: the connector's fallback URL (:func:`strom_web.lnurl.connector_fallback_url`).
        tariff: the prices in force (fiat components printed as written).
    """
    out = io.BytesIO()
    # invariant: no creation date or random document id, so one sticker is one file.
    pdf = Canvas(out, pagesize=(WIDTH_MM * mm, HEIGHT_MM * mm), invariant=True)
    pdf.setTitle(_pdf_text(f"{profile.name}, connector {connector_id}: pay with Lightning"))
    pdf.setCreator("Strom")
    for line in sticker_lines(profile, connector_id, url, tariff):
        pdf.setFont(line.font, line.size * mm)
        pdf.drawCentredString(WIDTH_MM / 2 * mm, (HEIGHT_MM - line.y) * mm, _pdf_text(line.text))
    qr = fallback_qr(url)
    rows = [list(row) for row in qr.matrix_iter(scale=1, border=QUIET_ZONE)]
    module = QR_MM / len(rows) * mm
    left = (WIDTH_MM - QR_MM) / 2 * mm
    top = (HEIGHT_MM - QR_TOP_MM) * mm
    path = pdf.beginPath()
    for r, row in enumerate(rows):
        for start, end in _dark_runs(row):
            path.rect(left + start * module, top - (r + 1) * module, (end - start) * module, module)
    pdf.drawPath(path, stroke=0, fill=1)
    pdf.showPage()
    pdf.save()
    return out.getvalue()
