"""The printable sticker: its PDF rendered to pixels and read back as a wallet's camera would,
its text as a driver reads it, and the same text in the SVG.

The PDF is rendered with PDFium (pypdfium2) and its QR code read with zxing-cpp; the SVG's QR
code is read back in Chromium (``tests/browser/test_sticker_print.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import lnurl
from reportlab.pdfbase.pdfmetrics import stringWidth

from cockpit.sticker import WIDTH_MM, sticker_lines, sticker_pdf, sticker_svg
from strom_core.config import ProfileConfig
from strom_core.tariff import Tariff
from strom_web.lnurl import connector_fallback_url
from tests.cockpit.conftest import CHARGER, Cockpit

BASE = "https://charge.example.org"


def profile(name: str = "Hofladen Süd", charger_id: str = "cp-7") -> ProfileConfig:
    return ProfileConfig.model_validate(
        {
            "id": charger_id,
            "name": name,
            "location": {"lat": 52.52, "lon": 13.405, "address": "Alexanderplatz 1"},
            "connectors": [{"id": 1, "max_power_kw": Decimal(22)}, {"id": 2, "max_power_kw": 11}],
            "tariff": {"per_kwh_sat": 250, "per_minute_sat": 2, "session_fee_sat": 10},
        }
    )


@contextmanager
def rendered(pdf: bytes, dpi: int = 300) -> Iterator[tuple[Any, str]]:
    """The PDF's single page as a PIL image at ``dpi``, and its text."""
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    try:
        assert len(document) == 1
        page = document[0]
        width_pt, height_pt = page.get_size()
        assert (round(width_pt / 72 * 25.4), round(height_pt / 72 * 25.4)) == (105, 148)  # A6
        text = page.get_textpage().get_text_range()
        yield page.render(scale=dpi / 72).to_pil(), text
    finally:
        document.close()


def scan(image: Any) -> str:
    import zxingcpp

    found = zxingcpp.read_barcodes(
        image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    assert len(found) == 1, f"expected one readable QR code, found {len(found)}"
    return str(found[0].text)


def assert_fallback_url(scanned: str, base: str, charger_id: str, connector_id: int) -> None:
    """The code opens the connector's page on ``base``'s host, and a wallet finds its LNURL."""
    parts = urlsplit(scanned)
    assert f"{parts.scheme}://{parts.netloc}" == base
    assert parts.path == f"/c/{charger_id}/{connector_id}"
    (lightning,) = parse_qs(parts.query)["lightning"]
    assert str(lnurl.decode(lightning)) == f"{base}/lnurlp/{charger_id}/{connector_id}"


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_the_pdf_sticker_scans_to_the_connector_page_and_says_where_to_pay() -> None:
    charger = profile()
    url = connector_fallback_url(BASE, charger.id, 2)
    pdf = sticker_pdf(charger, 2, url, charger.tariff.to_tariff())

    with rendered(pdf) as (image, text):
        assert scan(image) == url
        # At 100 dpi (a poor photo of the sticker) the code still reads.
        assert scan(image.resize((image.width // 3, image.height // 3))) == url
    assert_fallback_url(url, BASE, charger.id, 2)
    text = words(text)
    assert "Pay only at charge.example.org" in text
    assert "Hofladen Süd" in text
    assert "Connector 2 · Type2 · 11 kW" in text
    assert "250 sat/kWh + 2 sat/min + 10 sat per session" in text
    assert "Prepay 1,000 sat to 500,000 sat" in text


def test_the_svg_sticker_says_the_same_as_the_pdf() -> None:
    charger = profile()
    url = connector_fallback_url(BASE, charger.id, 1)
    tariff = charger.tariff.to_tariff()
    svg = sticker_svg(charger, 1, url, tariff)
    with rendered(sticker_pdf(charger, 1, url, tariff)) as (_, text):
        pdf_lines = [line for line in text.splitlines() if line.strip()]
    svg_lines = [
        line.replace("&amp;", "&") for line in re.findall(r"<text [^>]*>([^<]*)</text>", svg)
    ]
    assert svg_lines == [line.strip() for line in pdf_lines]
    assert 'width="105mm" height="148mm"' in svg  # prints at its size


def test_a_name_the_pdf_fonts_lack_prints_without_accents_and_whole_in_the_svg() -> None:
    charger = profile(name="Łódź Dvůr Králové 北京")
    url = connector_fallback_url(BASE, charger.id, 1)
    tariff = charger.tariff.to_tariff()
    with rendered(sticker_pdf(charger, 1, url, tariff)) as (image, text):
        assert "Lódz Dvur Králové ??" in text  # ó, á and é are in the standard fonts
        assert scan(image) == url
    assert "Łódź Dvůr Králové 北京" in sticker_svg(charger, 1, url, tariff)


def test_every_line_fits_the_sticker_however_long_the_name_and_host() -> None:
    charger = profile(
        name="Gemeindeparkplatz am Bahnhof Nord, Ostseite, Ebene 2 " * 3, charger_id="x" * 48
    )
    long_host = "https://strom.ladestation-mueller-gmbh-und-co-kg.gemeindewerke-nord.example.de"
    url = connector_fallback_url(long_host, charger.id, 1)
    lines = sticker_lines(charger, 1, url, Tariff(energy_msat_per_kwh=123_456_789))
    for line in lines:
        width = stringWidth(line.text, line.font, line.size)
        assert width <= WIDTH_MM - 10, line
    host = next(line for line in lines if "ladestation" in line.text)
    assert host.text == urlsplit(long_host).netloc  # never shortened, however small
    assert lines[1].text.endswith("…")  # the name is
    assert lines[1].size == 2.6
    assert "123,456.789 sat/kWh" in [line.text for line in lines]  # a price is never cut
    with rendered(sticker_pdf(charger, 1, url, Tariff(energy_msat_per_kwh=1_000))) as (image, _):
        assert scan(image) == url


async def test_the_api_sticker_pdf_and_svg_hold_this_strom_s_page_and_lnurl(
    cockpit: Cockpit, tmp_path: Path
) -> None:
    base = cockpit.stack.strom.config.server.public_url
    host = urlsplit(base).netloc
    pdf = await cockpit.call("GET", f"/chargers/{CHARGER}/sticker.pdf", params={"connector": "1"})
    assert pdf.status_code == 200
    assert pdf.headers["Content-Type"] == "application/pdf"
    with rendered(pdf.content) as (image, text):
        scanned = scan(image)
    assert_fallback_url(scanned, base, CHARGER, 1)
    assert f"Pay only at {host}" in words(text)
    page = await cockpit.http.get(scanned)  # what a phone camera opens
    assert page.status_code == 200
    assert "Connector 1" in page.text

    svg = await cockpit.call("GET", f"/chargers/{CHARGER}/sticker.svg", params={"connector": "1"})
    assert svg.headers["Content-Type"].startswith("image/svg+xml")
    assert f">{host}</text>" in svg.text
    assert ">Pay only at</text>" in svg.text


async def test_the_page_a_sticker_leads_to_shows_that_connector_and_others_are_404(
    cockpit: Cockpit,
) -> None:
    profile = {
        "name": "Two sockets",
        "location": {"lat": 48.1, "lon": 11.5},
        "connectors": [{"id": 1, "max_power_kw": "22"}, {"id": 2, "max_power_kw": 11}],
        "tariff": {"per_kwh_sat": "300"},
    }
    created = await cockpit.call("PUT", "/chargers/cp-two", json=profile)
    assert created.status_code == 200, created.text
    pdf = await cockpit.call("GET", "/chargers/cp-two/sticker.pdf", params={"connector": "2"})
    with rendered(pdf.content) as (image, text):
        scanned = scan(image)
    assert "Connector 2 · Type2 · 11 kW" in text
    assert_fallback_url(scanned, cockpit.base, "cp-two", 2)

    page = await cockpit.http.get(scanned)  # what a phone camera opens
    assert page.status_code == 200
    assert 'data-testid="connector-2"' in page.text
    assert 'data-testid="connector-1"' not in page.text
    assert 'href="/c/cp-two">All connectors of Two sockets' in page.text

    missing = await cockpit.http.get(f"{cockpit.base}/c/cp-two/3?lightning=LNURL1X")
    assert missing.status_code == 404
    assert "This charger has no connector 3." in missing.text
    assert missing.headers["Content-Security-Policy"].startswith("default-src 'none'")
