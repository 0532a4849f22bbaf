"""What a connector's QR code holds, read back from its pixels with a real barcode reader."""

from __future__ import annotations

import io
from urllib.parse import parse_qs, urlsplit

import lnurl
import pytest
import segno

from strom_web.lnurl import connector_fallback_url, connector_pay_url
from strom_web.qr import fallback_qr, lnurl_qr

BASE = "https://charge.example.org"


def scan(qr: segno.QRCode) -> str:
    """Decode ``qr`` from a PNG of it, as a phone camera would."""
    import zxingcpp
    from PIL import Image

    png = io.BytesIO()
    qr.save(png, kind="png", scale=4)
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.getvalue())))
    assert len(found) == 1, f"expected one readable QR code, found {len(found)}"
    return str(found[0].text)


def test_a_connector_code_opens_its_page_and_gives_wallets_the_lnurl() -> None:
    url = connector_fallback_url(BASE, "cp-1", 2)
    scanned = scan(fallback_qr(url))

    assert scanned == url
    parts = urlsplit(scanned)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "charge.example.org", "/c/cp-1/2")
    (lightning,) = parse_qs(parts.query)["lightning"]
    assert lightning.startswith("LNURL1")
    assert str(lnurl.decode(lightning)) == connector_pay_url(BASE, "cp-1", 2)
    assert str(lnurl.decode(lightning)) == f"{BASE}/lnurlp/cp-1/2"


def test_a_connector_code_keeps_the_case_of_the_path() -> None:
    # Paths are case-sensitive: /c/CP-West/1 is not /c/cp-west/1.
    url = connector_fallback_url(BASE, "CP-West_3", 1)
    assert scan(fallback_qr(url)) == url
    assert urlsplit(url).path == "/c/CP-West_3/1"


def test_a_connector_code_is_smaller_with_the_lnurl_in_the_alphanumeric_mode() -> None:
    url = connector_fallback_url(BASE, "cp-1", 1)
    code = fallback_qr(url)
    as_one_text = segno.make_qr(url, error="q", boost_error=False)
    assert code.version < as_one_text.version
    assert code.error == "Q"  # a sticker outdoors: 25 % of it may be unreadable
    assert code.version <= 8


def test_the_longest_charger_id_still_prints_with_modules_of_at_least_0_8_mm() -> None:
    url = connector_fallback_url("https://" + "a" * 48 + ".example.org", "x" * 48, 99)
    code = fallback_qr(url)
    assert scan(code) == url
    modules = code.symbol_size(scale=1, border=4)[0]
    assert 70 / modules >= 0.8  # the sticker prints the code 70 mm wide


@pytest.mark.parametrize(
    "url",
    [
        "https://charge.example.org/c/cp-1/1",
        "https://charge.example.org/c/cp-1/1?lightning=lnurl1dp68gurn8ghj7",
        "https://charge.example.org/c/cp-1/1?lightning=LNURL1DP68&x=1",
    ],
)
def test_a_code_is_made_only_of_a_fallback_url_ending_in_an_upper_case_lnurl(url: str) -> None:
    with pytest.raises(ValueError, match="fallback URL"):
        fallback_qr(url)


def test_a_session_code_holds_the_bare_lnurl_for_the_payers_wallet() -> None:
    bech32 = lnurl.encode(f"{BASE}/lnurlw/abc?secret=s").bech32
    assert scan(lnurl_qr(str(bech32))) == "LIGHTNING:" + str(bech32).upper()
