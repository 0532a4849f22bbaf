"""NIP-57 zap requests (kind 9734): validation of a charger's LNURL callback (appendix D).

Theory of operation: a driver's wallet sends a signed kind-9734 *zap request* to the charger's
LNURL callback. :func:`validate_zap_request` checks it completely and returns a
:class:`ValidZapRequest` whose ``description`` is the exact JSON text to commit to in the
invoice (:func:`description_hash`). Every rule broken has its own exception class whose
``reason`` is meant for the LUD error response (``lud_error()``). Single use is the caller's
job, because only the caller has the store: it passes the ids it has seen and records
``ValidZapRequest.event_id`` once the invoice exists. The receipts that embed a request check
it again with :func:`parse_zap_request` and :func:`check_zap_request_tags`
(:mod:`strom_nostr.zap_receipt`).

Connector selection (Strom's rule, see ``docs/nostr.md``): an ``a`` tag, if present, must be
this charger's status coordinate ``30522:<charger pubkey>:<charger id>`` or the coordinate of
its NIP-99 listing ``30402:<charger pubkey>:<charger id>`` (a marketplace or map client zaps
the event it shows); the connector is
chosen with an optional ``["connector", "<id>"]`` tag. Without it the agent picks a free one.

Reservation (Strom's rule): an optional ``["reserve", "<minutes>"]`` tag, a whole number from 1
to 1440, asks to reserve the connector for that long instead of starting at once
(:attr:`ValidZapRequest.reserve_minutes`). Whether this charger takes reservations, and for how
long, is the caller's check (the tariff); the fee is the core's (an amount below it is
refunded, see ``docs/nostr.md``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Container
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from strom_nostr.discovery import STATUS_KIND, parse_coordinate
from strom_nostr.errors import BadSignature, EventIdMismatch, InvalidEvent
from strom_nostr.event import Event, is_hex64, parse_event
from strom_nostr.maps import LISTING_KIND
from strom_nostr.zap_errors import (
    ZapRequestAmountMismatch,
    ZapRequestBadAmount,
    ZapRequestBadConnector,
    ZapRequestBadCoordinate,
    ZapRequestBadEventTag,
    ZapRequestBadId,
    ZapRequestBadRelays,
    ZapRequestBadReserve,
    ZapRequestBadSenderTag,
    ZapRequestBadSignature,
    ZapRequestError,
    ZapRequestFromFuture,
    ZapRequestLnurlMismatch,
    ZapRequestMalformed,
    ZapRequestMissingRecipient,
    ZapRequestMissingRelays,
    ZapRequestMultipleEvents,
    ZapRequestMultipleRecipients,
    ZapRequestNoTags,
    ZapRequestReplayed,
    ZapRequestStale,
    ZapRequestUnknownConnector,
    ZapRequestWrongCoordinate,
    ZapRequestWrongKind,
    ZapRequestWrongRecipient,
)

__all__ = [
    "MAX_ZAP_RELAYS",
    "MAX_ZAP_REQUEST_BYTES",
    "MAX_ZAP_RESERVE_MINUTES",
    "ZAP_REQUEST_KIND",
    "ZAP_REQUEST_MAX_FUTURE_S",
    "ValidZapRequest",
    "ZapRequestAmountMismatch",
    "ZapRequestBadAmount",
    "ZapRequestBadConnector",
    "ZapRequestBadCoordinate",
    "ZapRequestBadEventTag",
    "ZapRequestBadId",
    "ZapRequestBadRelays",
    "ZapRequestBadReserve",
    "ZapRequestBadSenderTag",
    "ZapRequestBadSignature",
    "ZapRequestError",
    "ZapRequestFromFuture",
    "ZapRequestLnurlMismatch",
    "ZapRequestMalformed",
    "ZapRequestMissingRecipient",
    "ZapRequestMissingRelays",
    "ZapRequestMultipleEvents",
    "ZapRequestMultipleRecipients",
    "ZapRequestNoTags",
    "ZapRequestReplayed",
    "ZapRequestStale",
    "ZapRequestUnknownConnector",
    "ZapRequestWrongCoordinate",
    "ZapRequestWrongKind",
    "ZapRequestWrongRecipient",
    "ZapTags",
    "check_zap_request_tags",
    "description_hash",
    "parse_zap_request",
    "validate_zap_request",
    "zap_request_amount",
]

ZAP_REQUEST_KIND = 9734
ZAP_REQUEST_MAX_FUTURE_S = 120
"""How far ahead of the server's clock a zap request may be dated (clock skew)."""
MAX_ZAP_REQUEST_BYTES = 32 * 1024
MAX_ZAP_RELAYS = 20
_RELAY_URL = re.compile(r"wss?://[^\s/]+\S*")
_CONNECTOR_ID = re.compile(r"[1-9][0-9]?")
_MINUTES = re.compile(r"[1-9][0-9]{0,3}")
MAX_ZAP_RESERVE_MINUTES = 1440


@dataclass(frozen=True, slots=True)
class ValidZapRequest:
    """A zap request that passed every check.

    Attributes:
        event: the request.
        description: the exact JSON text; the invoice description hash commits to it and the
            receipt's ``description`` tag repeats it.
        amount_msat: the amount to invoice.
        sender: the payer's public key (the receipt's ``P``).
        relays: where the receipt must be published.
        connector: the connector chosen with a ``connector`` tag, or None.
        zapped_event: the ``e`` tag, or None.
        coordinate: the ``a`` tag, or None.
        reserve_minutes: the ``reserve`` tag's minutes (a reservation), or 0.
    """

    event: Event
    description: str
    amount_msat: int
    sender: str
    relays: tuple[str, ...]
    connector: int | None
    zapped_event: str | None
    coordinate: str | None
    reserve_minutes: int = 0

    @property
    def event_id(self) -> str:
        """The id to store so the request is used once."""
        return self.event.id

    @property
    def comment(self) -> str:
        """The payer's zap comment (may be empty)."""
        return self.event.content


def description_hash(zap_request_json: str | bytes) -> bytes:
    """sha256 of the zap request JSON text: the invoice's description hash (32 bytes)."""
    data = (
        zap_request_json.encode("utf-8") if isinstance(zap_request_json, str) else zap_request_json
    )
    return hashlib.sha256(data).digest()


_TagIndex = dict[str, list[tuple[str, ...]]]


def _index(event: Event) -> _TagIndex:
    """The event's tags grouped by name, in order (one pass instead of one per rule)."""
    index: _TagIndex = {}
    for tag in event.tags:
        index.setdefault(tag[0], []).append(tag)
    return index


def _named(index: _TagIndex, name: str) -> list[tuple[str, ...]]:
    return index.get(name, [])


def _single_value(index: _TagIndex, name: str, error: type[ZapRequestError]) -> str | None:
    tags = _named(index, name)
    if len(tags) > 1:
        raise error(f"zap request has more than one {name!r} tag")
    if not tags:
        return None
    if len(tags[0]) < 2:
        raise error(f"zap request {name!r} tag has no value")
    return tags[0][1]


def _check_recipient(index: _TagIndex, charger_pubkey: str) -> None:
    recipients = _named(index, "p")
    if not recipients:
        raise ZapRequestMissingRecipient("zap request has no 'p' tag")
    if len(recipients) > 1:
        raise ZapRequestMultipleRecipients("zap request must have exactly one 'p' tag")
    if len(recipients[0]) < 2 or recipients[0][1] != charger_pubkey:
        raise ZapRequestWrongRecipient("zap request 'p' tag is not this charger")


def _is_relay_url(url: str) -> bool:
    if len(url) > 200:
        return _RELAY_URL.fullmatch(url) is not None
    return _is_short_relay_url(url)


@lru_cache(maxsize=4096)
def _is_short_relay_url(url: str) -> bool:
    return _RELAY_URL.fullmatch(url) is not None  # the same few relays come again and again


def _relays(index: _TagIndex) -> tuple[str, ...]:
    listed = [url for tag in _named(index, "relays") for url in tag[1:]]
    relays = list(dict.fromkeys(listed))  # without repeats, in order
    if not relays:
        raise ZapRequestMissingRelays("zap request has no 'relays' tag with a relay in it")
    if len(relays) > MAX_ZAP_RELAYS:
        raise ZapRequestBadRelays(f"zap request lists more than {MAX_ZAP_RELAYS} relays")
    for url in relays:
        if not _is_relay_url(url):
            raise ZapRequestBadRelays(f"zap request relay is not a ws:// or wss:// URL: {url[:80]}")
    return tuple(relays)


def _coordinate(index: _TagIndex, charger_pubkey: str, status_coordinate: str | None) -> str | None:
    value = _single_value(index, "a", ZapRequestBadCoordinate)
    if value is None:
        return None
    if status_coordinate is not None and value == status_coordinate:
        return value  # the common case: exactly this charger's coordinate, nothing to parse
    try:
        coordinate = parse_coordinate(value)
    except ValueError:
        raise ZapRequestBadCoordinate("zap request 'a' tag is not an event coordinate") from None
    if status_coordinate is not None:
        # The same charger's listing: the status coordinate with the listing's kind.
        _, _, rest = status_coordinate.partition(":")
        mine = value in (status_coordinate, f"{LISTING_KIND}:{rest}")
    else:
        mine = (
            coordinate.kind in (STATUS_KIND, LISTING_KIND) and coordinate.pubkey == charger_pubkey
        )
    if not mine:
        raise ZapRequestWrongCoordinate(
            "zap request 'a' tag is not this charger's status event or listing"
        )
    return value


def _connector(index: _TagIndex, connector_ids: Collection[int] | None) -> int | None:
    value = _single_value(index, "connector", ZapRequestBadConnector)
    if value is None:
        return None
    if not _CONNECTOR_ID.fullmatch(value):
        raise ZapRequestBadConnector("zap request 'connector' tag is not a connector number")
    connector = int(value)
    if connector_ids is not None and connector not in connector_ids:
        raise ZapRequestUnknownConnector(f"this charger has no connector {connector}")
    return connector


def _reserve(index: _TagIndex) -> int:
    value = _single_value(index, "reserve", ZapRequestBadReserve)
    if value is None:
        return 0
    if not _MINUTES.fullmatch(value) or int(value) > MAX_ZAP_RESERVE_MINUTES:
        raise ZapRequestBadReserve(
            f"zap request 'reserve' tag is not a whole number of minutes from 1 to "
            f"{MAX_ZAP_RESERVE_MINUTES}"
        )
    return int(value)


def _amount_tag(index: _TagIndex) -> int | None:
    value = _single_value(index, "amount", ZapRequestBadAmount)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18 or int(value) <= 0:
        raise ZapRequestBadAmount("zap request 'amount' tag is not a positive number of msat")
    return int(value)


def _check_tags(
    event: Event,
    index: _TagIndex,
    charger_pubkey: str,
    status_coordinate: str | None,
    connector_ids: Collection[int] | None,
) -> tuple[tuple[str, ...], str | None, int | None, str | None]:
    """Appendix D rules 2-5, 7 and 8 plus Strom's connector rule (no clock, no amount)."""
    if event.kind != ZAP_REQUEST_KIND:
        raise ZapRequestWrongKind(f"expected a kind {ZAP_REQUEST_KIND} zap request")
    if not event.tags:
        raise ZapRequestNoTags("zap request has no tags")
    _check_recipient(index, charger_pubkey)
    if len(_named(index, "e")) > 1:
        raise ZapRequestMultipleEvents("zap request has more than one 'e' tag")
    zapped = _single_value(index, "e", ZapRequestBadEventTag)
    if zapped is not None and not is_hex64(zapped):
        raise ZapRequestBadEventTag("zap request 'e' tag is not an event id")
    relays = _relays(index)
    coordinate = _coordinate(index, charger_pubkey, status_coordinate)
    sender_tag = _single_value(index, "P", ZapRequestBadSenderTag)
    if sender_tag is not None and sender_tag != charger_pubkey:
        raise ZapRequestBadSenderTag("zap request 'P' tag is not the zap receipt's signer")
    return relays, zapped, _connector(index, connector_ids), coordinate


def parse_zap_request(description: str) -> Event:
    """Parse and verify a zap request's JSON text (id and signature), at most 32 KiB.

    Raises:
        ZapRequestError: malformed, a wrong id or a bad signature.
    """
    try:
        return parse_event(description, max_bytes=MAX_ZAP_REQUEST_BYTES)
    except EventIdMismatch as exc:
        raise ZapRequestBadId("zap request id does not match its content") from exc
    except BadSignature as exc:
        raise ZapRequestBadSignature("zap request signature is invalid") from exc
    except InvalidEvent as exc:
        raise ZapRequestMalformed(f"zap request is not a valid nostr event: {exc.reason}") from exc


class ZapTags(NamedTuple):
    """What a zap request's tags say, once they passed the checks."""

    relays: tuple[str, ...]
    """Where the receipt must be published."""
    zapped_event: str | None
    """The ``e`` tag, or None."""
    connector: int | None
    """The connector chosen with a ``connector`` tag, or None."""
    coordinate: str | None
    """The ``a`` tag, or None."""


def check_zap_request_tags(
    event: Event,
    *,
    charger_pubkey: str,
    status_coordinate: str | None,
    connector_ids: Collection[int] | None = None,
) -> ZapTags:
    """Check a zap request's kind and tags: appendix D rules 2-5, 7 and 8, Strom's connector rule.

    Neither the clock nor the amount is looked at (see :func:`validate_zap_request`).

    Args:
        event: the parsed request.
        charger_pubkey: the charger's public key (hex): the one ``p``, and the ``P`` if any.
        status_coordinate: if given, an ``a`` tag must equal it; otherwise an ``a`` tag must
            name a status event of ``charger_pubkey``.
        connector_ids: the charger's connectors; a ``connector`` tag must name one of them.

    Raises:
        ZapRequestError: one subclass per broken rule.
    """
    return ZapTags(
        *_check_tags(event, _index(event), charger_pubkey, status_coordinate, connector_ids)
    )


def zap_request_amount(event: Event) -> int | None:
    """The request's ``amount`` tag in msat, or None when it has none.

    Raises:
        ZapRequestBadAmount: more than one, or not a positive whole number.
    """
    return _amount_tag(_index(event))


def _description_text(event_json: str | bytes) -> str:
    if isinstance(event_json, bytes):
        try:
            return event_json.decode("utf-8")
        except UnicodeDecodeError:
            raise ZapRequestMalformed("zap request is not UTF-8") from None
    if not isinstance(event_json, str):
        raise ZapRequestMalformed("zap request must be JSON text")
    return event_json


def validate_zap_request(
    event_json: str | bytes,
    *,
    amount_msat_query: int,
    charger_pubkey: str,
    charger_status_coordinate: str,
    now: int,
    max_age_s: int,
    seen_ids: Container[str] | None = None,
    connector_ids: Collection[int] | None = None,
    lnurl: str | None = None,
    max_future_s: int = ZAP_REQUEST_MAX_FUTURE_S,
) -> ValidZapRequest:
    """Validate the ``nostr`` query parameter of an LNURL-pay callback (NIP-57 appendix D).

    Args:
        event_json: the zap request JSON exactly as received (URL-decoded).
        amount_msat_query: the callback's ``amount`` query parameter, msat.
        charger_pubkey: this charger's public key (hex); it signs the receipt.
        charger_status_coordinate: ``30522:<pubkey>:<charger id>``, the only ``a`` accepted.
        now: current unix time, seconds.
        max_age_s: oldest ``created_at`` accepted is ``now - max_age_s``.
        seen_ids: ids of zap requests already used; a request among them is refused.
        connector_ids: the charger's connectors; a ``connector`` tag must name one of them.
        lnurl: this charger's bech32 LNURL; if given, an ``lnurl`` tag must match it.
        max_future_s: newest ``created_at`` accepted is ``now + max_future_s`` (clock skew).

    Returns:
        The validated request.

    Raises:
        ZapRequestError: one subclass per broken rule; ``reason`` is fit for the payer.
    """
    description = _description_text(event_json)
    if len(description) > MAX_ZAP_REQUEST_BYTES:
        raise ZapRequestMalformed("zap request is too large")
    if isinstance(amount_msat_query, bool) or not isinstance(amount_msat_query, int):
        raise ZapRequestBadAmount("amount must be a whole number of msat")
    if amount_msat_query <= 0:
        raise ZapRequestBadAmount("amount must be positive")
    event = parse_zap_request(description)
    index = _index(event)
    relays, zapped, connector, coordinate = _check_tags(
        event, index, charger_pubkey, charger_status_coordinate, connector_ids
    )
    reserve_minutes = _reserve(index)
    tagged_amount = _amount_tag(index)
    if tagged_amount is not None and tagged_amount != amount_msat_query:
        raise ZapRequestAmountMismatch(
            f"zap request amount {tagged_amount} msat differs from the requested "
            f"{amount_msat_query} msat"
        )
    tagged_lnurl = _single_value(index, "lnurl", ZapRequestLnurlMismatch)
    if lnurl is not None and tagged_lnurl is not None and tagged_lnurl.lower() != lnurl.lower():
        raise ZapRequestLnurlMismatch("zap request 'lnurl' tag is not this charger's LNURL")
    if event.created_at < now - max_age_s:
        raise ZapRequestStale(f"zap request is older than {max_age_s} seconds")
    if event.created_at > now + max_future_s:
        raise ZapRequestFromFuture("zap request is dated in the future; check your clock")
    if seen_ids is not None and event.id in seen_ids:
        raise ZapRequestReplayed("this zap request was already used")
    return ValidZapRequest(
        event=event,
        description=description,
        amount_msat=amount_msat_query,
        sender=event.pubkey,
        relays=relays,
        connector=connector,
        zapped_event=zapped,
        coordinate=coordinate,
        reserve_minutes=reserve_minutes,
    )
