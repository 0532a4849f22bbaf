"""NIP-98 HTTP Auth: an ``Authorization: Nostr <base64 event>`` header, checked without I/O.

Theory of operation: the client signs a kind-27235 event whose ``u`` tag is the absolute
request URL and whose ``method`` tag is the HTTP method; a request with a body also carries
``payload``, the hex sha256 of the body. :func:`check_http_auth` decodes the header, verifies
the event (id and BIP-340 signature), and checks each of those tags and the freshness window
(NIP-98 suggests 60 s). It does not check *who* signed (an admin or not) nor replays: those
need state and belong to the caller, which gets the event id to claim.

Every refusal is an :class:`HttpAuthError` whose message says what was wrong, in words a
client developer can act on; the header's content never reaches a log unquoted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from strom_nostr.errors import InvalidEvent, NostrRemoteError
from strom_nostr.event import Event, parse_event

__all__ = [
    "HTTP_AUTH_KIND",
    "MAX_HEADER_BYTES",
    "HttpAuthError",
    "check_http_auth",
    "http_auth_tags",
    "normalise_url",
]

HTTP_AUTH_KIND = 27235
MAX_HEADER_BYTES = 8 * 1024
_SCHEME = "nostr "


class HttpAuthError(NostrRemoteError):
    """The ``Authorization: Nostr`` header does not authorise this request."""


def normalise_url(url: str) -> str:
    """The URL as compared: without a ``#fragment`` (a client never sends one)."""
    return url.split("#", 1)[0]


def http_auth_tags(url: str, method: str, body: bytes | None = None) -> list[list[str]]:
    """The tags of a NIP-98 event for a request (what a client signs)."""
    tags = [["u", url], ["method", method.upper()]]
    if body:
        tags.append(["payload", hashlib.sha256(body).hexdigest()])
    return tags


def _decode(header: str) -> Event:
    if len(header) > MAX_HEADER_BYTES:
        raise HttpAuthError(f"the Authorization header is longer than {MAX_HEADER_BYTES} bytes")
    if header[: len(_SCHEME)].lower() != _SCHEME:
        raise HttpAuthError('expected "Authorization: Nostr <base64 event>"')
    token = header[len(_SCHEME) :].strip()
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise HttpAuthError("the Nostr token is not base64") from None
    try:
        return parse_event(raw)
    except InvalidEvent as exc:
        raise HttpAuthError(f"the Nostr token is not a valid signed event: {exc}") from None


def _single_tag(event: Event, name: str) -> str | None:
    values = [tag[1] for tag in event.tags if len(tag) >= 2 and tag[0] == name]
    if len(values) > 1:
        raise HttpAuthError(f"the event has more than one {name!r} tag")
    return values[0] if values else None


def check_http_auth(
    header: str,
    *,
    url: str,
    method: str,
    body: bytes | None,
    now: int,
    window_s: int = 60,
) -> Event:
    """Check a NIP-98 ``Authorization`` header against the request it came with.

    Args:
        header: the whole header value (``Nostr <base64>``).
        url: the absolute URL of the request as the client addressed it (public URL, path
            and query).
        method: the HTTP method.
        body: the request body (None or empty when there is none).
        now: unix time in seconds.
        window_s: how far ``created_at`` may be from ``now``, either way.

    Returns:
        The verified event (its ``pubkey`` is the signer; its ``id`` is for replay checks).

    Raises:
        HttpAuthError: anything that does not authorise exactly this request.
    """
    event = _decode(header)
    if event.kind != HTTP_AUTH_KIND:
        raise HttpAuthError(f"expected an event of kind {HTTP_AUTH_KIND}, got {event.kind}")
    if abs(event.created_at - now) > window_s:
        raise HttpAuthError(
            f"the event's created_at is more than {window_s} s from the server's clock"
        )
    signed_url = _single_tag(event, "u")
    if signed_url is None or normalise_url(signed_url) != normalise_url(url):
        raise HttpAuthError(f"the event's 'u' tag must be the request URL {url}")
    signed_method = _single_tag(event, "method")
    if signed_method is None or signed_method.upper() != method.upper():
        raise HttpAuthError(f"the event's 'method' tag must be {method.upper()}")
    payload = _single_tag(event, "payload")
    if body:
        digest = hashlib.sha256(body).hexdigest()
        if payload is None:
            raise HttpAuthError("a request with a body needs a 'payload' tag (sha256 of it)")
        if not hmac.compare_digest(payload.lower(), digest):
            raise HttpAuthError("the 'payload' tag is not the sha256 of the request body")
    elif payload is not None and payload.lower() != hashlib.sha256(b"").hexdigest():
        raise HttpAuthError("the 'payload' tag is given but the request has no body")
    return event
