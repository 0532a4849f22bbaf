"""The QR codes Strom shows and prints, made with segno from text Strom controls.

**A connector's code** (charger page, printable sticker) holds the LUD-01 fallback URL
``https://HOST/c/<charger>/<connector>?lightning=LNURL1…``
(:func:`strom_web.lnurl.connector_fallback_url`): a phone camera without a wallet opens the
connector's page on the operator's host, and a Lightning wallet takes the LNURL from the
``lightning`` parameter.

The URL is long (about 120 characters for ``charge.example.org`` and ``cp-1``), so the code is
written in two segments: the page URL up to ``lightning=`` in byte mode (its path is
case-sensitive — ``/c/cp-1`` is not ``/C/CP-1`` — so it keeps its case), and the upper-case
LNURL in the QR alphanumeric mode (5.5 bits a character instead of 8). That saves one or two
versions (4 to 8 modules a side) against one byte-mode segment, and every QR reader joins the
segments back into the one text.

Error correction is level **Q** (25 % of the code can be unreadable): a sticker lives outdoors
on a charger, gets dirty, scratched and reflects light. For ``charge.example.org`` and ``cp-1``
that is version 8 (49 modules, 57 with the quiet zone of 4); the longest charger id (48
characters) behind a 60-character host is version 15 (85 with the quiet zone). The sticker
prints the code 70 mm wide, so a module is 1.2 mm (0.8 mm in that worst case): a phone camera
at arm's length (50 cm, about 6 pixels a millimetre of the sticker) sees 5 or more pixels a
module, where readers need 2 to 3.

**A session's codes** (withdraw, top-up) are for the payer's wallet only and open no page:
they hold ``LIGHTNING:LNURL1…``, all in the alphanumeric mode.
"""

from __future__ import annotations

import segno

__all__ = ["FALLBACK_ERROR", "QUIET_ZONE", "fallback_qr", "lnurl_qr"]

FALLBACK_ERROR = "q"
"""Error correction level of a connector's code (see the module text)."""

QUIET_ZONE = 4
"""The white border, in modules, that ISO/IEC 18004 asks for around a QR code."""

_PARAMETER = "lightning="


def fallback_qr(url: str) -> segno.QRCode:
    """The QR code of a LUD-01 fallback URL that ends in ``lightning=LNURL1…``.

    Args:
        url: from :func:`strom_web.lnurl.connector_fallback_url`.

    Raises:
        ValueError: ``url`` does not end in an upper-case ``lightning=LNURL1…`` parameter.
    """
    head, found, lnurl = url.rpartition(_PARAMETER)
    if not found or not lnurl.startswith("LNURL1") or not lnurl.isalnum() or not lnurl.isupper():
        raise ValueError(f"not a fallback URL ending in lightning=LNURL1…: {url!r}")
    # Two segments, each in the mode segno finds for it: byte, then alphanumeric. segno's
    # encoder takes a sequence of segments though its type hints name only one text; the
    # tests read every such code back. A regular QR code, never a Micro QR (few wallets read
    # those).
    segments = [head + found, lnurl]
    return segno.make_qr(segments, error=FALLBACK_ERROR, boost_error=False)  # type: ignore[arg-type]


def lnurl_qr(lnurl: str) -> segno.QRCode:
    """The QR code of a bare LNURL: ``LIGHTNING:LNURL1…`` in capitals.

    Capitals keep the whole text in the alphanumeric mode (a smaller code), and a phone camera
    that reads ``LIGHTNING:`` offers to open a wallet.
    """
    return segno.make_qr("LIGHTNING:" + lnurl.upper(), error="m")
