"""LNURL protocol pieces, pure: no sockets, no clock of its own.

* LUD-01: bech32 ``LNURL1…`` encoding (through the ``lnurl`` library, which also enforces that
  a clearnet URL is https — http only for onion and local development) and the fallback URL
  ``https://HOST/c/<charger>/<connector>?lightning=LNURL1…`` that the QR code of a connector
  holds (:func:`connector_fallback_url`).
* LUD-17: ``lnurlp://`` / ``lnurlw://`` scheme URLs.
* LUD-06: payRequest metadata (``text/plain``, LUD-16 ``text/identifier``, an image), its
  description hash, and strict parsing of the callback's ``amount`` (integer msat, in range).
* LUD-12 comments, LUD-09 success actions (``url`` + description ≤ 144 characters, same
  domain), LUD-03 withdrawRequest responses, and the ``{"status": "ERROR", "reason": …}`` form.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import lnurl as lnurl_lib

__all__ = [
    "COMMENT_MAX",
    "LnurlError",
    "PayMetadata",
    "bech32_lnurl",
    "connector_fallback_url",
    "connector_page_url",
    "connector_pay_url",
    "error",
    "fallback_url",
    "lud17_url",
    "parse_amount_msat",
    "parse_comment",
    "pay_request",
    "success_action",
    "withdraw_request",
]

COMMENT_MAX = 140
_MSAT = re.compile(r"^[1-9][0-9]{0,15}$")


class LnurlError(ValueError):
    """A request a wallet sent is wrong; ``reason`` is what the wallet shows its user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def error(reason: str) -> dict[str, str]:
    """The LUD error response body."""
    return {"status": "ERROR", "reason": reason}


def bech32_lnurl(url: str) -> str:
    """LUD-01: the bech32 ``LNURL1…`` form of ``url`` (upper case, for QR codes).

    Raises:
        LnurlError: ``url`` is clearnet http (only https, onion or local hosts are allowed).
    """
    try:
        return str(lnurl_lib.encode(url).bech32).upper()
    except (lnurl_lib.InvalidUrl, lnurl_lib.InvalidLnurl, ValueError) as exc:
        raise LnurlError(f"cannot encode {url!r} as an LNURL: {exc or 'not https'}") from None


def fallback_url(page_url: str, target_url: str) -> str:
    """LUD-01 fallback: a web page URL carrying the LNURL in ``?lightning=``."""
    return f"{page_url}?{urlencode({'lightning': bech32_lnurl(target_url)})}"


def connector_pay_url(base: str, charger_id: str, connector_id: int) -> str:
    """The URL behind a connector's static LNURL-pay (``<base>/lnurlp/<charger>/<n>``)."""
    return f"{base}/lnurlp/{quote(charger_id)}/{connector_id}"


def connector_page_url(base: str, charger_id: str, connector_id: int) -> str:
    """The public page of one connector (``<base>/c/<charger>/<n>``)."""
    return f"{base}/c/{quote(charger_id)}/{connector_id}"


def connector_fallback_url(base: str, charger_id: str, connector_id: int) -> str:
    """What a connector's QR code holds: its page, with its LNURL-pay in ``?lightning=``.

    ``<base>/c/<charger>/<n>?lightning=LNURL1…`` (LUD-01 fallback scheme): a phone camera
    opens the connector's page on the operator's host; a Lightning wallet takes the LNURL from
    the ``lightning`` parameter and pays ``<base>/lnurlp/<charger>/<n>``.

    Args:
        base: ``server.public_url`` (no trailing slash).
        charger_id: a valid charger id.
        connector_id: the connector's number.

    Raises:
        LnurlError: ``base`` is clearnet http.
    """
    return fallback_url(
        connector_page_url(base, charger_id, connector_id),
        connector_pay_url(base, charger_id, connector_id),
    )


def lud17_url(url: str, kind: str) -> str:
    """LUD-17: ``lnurlp://host/path`` (``kind="p"``) or ``lnurlw://…`` for an https URL."""
    if kind not in ("p", "w"):
        raise ValueError("kind must be 'p' or 'w'")
    return re.sub(r"^https?://", f"lnurl{kind}://", url)


@dataclass(frozen=True, slots=True)
class PayMetadata:
    """LUD-06 metadata of one pay request; serialised once, hashed for the invoice."""

    text: str
    identifier: str | None = None  # LUD-16 "name@host"
    image_png_base64: str | None = None

    def serialise(self) -> str:
        """The exact ``metadata`` string (the invoice's description hash covers these bytes)."""
        entries: list[list[str]] = [["text/plain", self.text]]
        if self.identifier:
            entries.append(["text/identifier", self.identifier])
        if self.image_png_base64:
            entries.append(["image/png;base64", self.image_png_base64])
        return json.dumps(entries, ensure_ascii=False, separators=(",", ":"))

    def description_hash(self) -> bytes:
        """sha256 of the metadata string, for the invoice's ``h`` tag."""
        return hashlib.sha256(self.serialise().encode()).digest()


def pay_request(
    *,
    callback: str,
    metadata: str,
    min_msat: int,
    max_msat: int,
    comment_allowed: int = COMMENT_MAX,
    nostr_pubkey: str | None = None,
) -> dict[str, Any]:
    """The LUD-06 payRequest response (with LUD-12 and NIP-57 fields)."""
    body: dict[str, Any] = {
        "tag": "payRequest",
        "callback": callback,
        "minSendable": min_msat,
        "maxSendable": max_msat,
        "metadata": metadata,
        "commentAllowed": comment_allowed,
    }
    if nostr_pubkey:
        body["allowsNostr"] = True
        body["nostrPubkey"] = nostr_pubkey
    return body


def parse_amount_msat(raw: str | None, *, min_msat: int, max_msat: int) -> int:
    """Parse the callback's ``amount``: a positive integer of msat within the advertised range.

    Raises:
        LnurlError: missing, not an integer, or out of range.
    """
    if raw is None or raw == "":
        raise LnurlError("amount is missing (millisatoshis expected)")
    if not _MSAT.match(raw):
        raise LnurlError(f"amount must be a whole number of millisatoshis, got {raw[:20]!r}")
    amount = int(raw)
    if amount < min_msat or amount > max_msat:
        raise LnurlError(
            f"amount must be between {min_msat} and {max_msat} millisatoshis, got {amount}"
        )
    return amount


def parse_comment(raw: str | None, allowed: int = COMMENT_MAX) -> str:
    """LUD-12: an optional comment of at most ``allowed`` characters.

    Raises:
        LnurlError: the comment is too long.
    """
    comment = raw or ""
    if len(comment) > allowed:
        raise LnurlError(f"comment is longer than {allowed} characters")
    return comment


def success_action(url: str, description: str, *, callback_url: str) -> dict[str, str]:
    """LUD-09 ``url`` success action: same domain as the callback, description ≤ 144 chars."""
    if urlsplit(url).netloc != urlsplit(callback_url).netloc:
        raise ValueError("a LUD-09 url success action must be on the callback's domain")
    if len(description) > 144:
        raise ValueError("a LUD-09 description is at most 144 characters")
    return {"tag": "url", "description": description, "url": url}


def withdraw_request(
    *, callback: str, k1: str, min_msat: int, max_msat: int, description: str
) -> dict[str, Any]:
    """The LUD-03 withdrawRequest response."""
    return {
        "tag": "withdrawRequest",
        "callback": callback,
        "k1": k1,
        "minWithdrawable": min_msat,
        "maxWithdrawable": max_msat,
        "defaultDescription": description,
    }
