"""The NIP-57 errors: one class per broken rule, so callers and tests can tell them apart.

Every zap request error carries a ``reason`` written for the payer; ``lud_error()`` turns it
into the LUD-06 error response. Re-exported by :mod:`strom_nostr.zap_request` (requests) and
:mod:`strom_nostr.zap_receipt` (receipts).
"""

from __future__ import annotations

from strom_nostr.errors import NostrRemoteError

__all__ = [
    "ZapReceiptError",
    "ZapReceiptForeign",
    "ZapReceiptInvalid",
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
]


class ZapRequestError(NostrRemoteError):
    """A zap request that must be refused; ``reason`` goes to the payer."""

    def lud_error(self) -> dict[str, str]:
        """The LUD-06 error response for this refusal."""
        return {"status": "ERROR", "reason": self.reason}


class ZapRequestMalformed(ZapRequestError):
    """Not a well-formed nostr event (JSON, fields, size)."""


class ZapRequestBadId(ZapRequestError):
    """The event id is not the hash of the event."""


class ZapRequestBadSignature(ZapRequestError):
    """The signature does not verify."""


class ZapRequestWrongKind(ZapRequestError):
    """Not kind 9734."""


class ZapRequestNoTags(ZapRequestError):
    """The event has no tags at all (D.2)."""


class ZapRequestMissingRecipient(ZapRequestError):
    """No ``p`` tag (D.3)."""


class ZapRequestMultipleRecipients(ZapRequestError):
    """More than one ``p`` tag (D.3)."""


class ZapRequestWrongRecipient(ZapRequestError):
    """The ``p`` tag is not this charger's public key."""


class ZapRequestMultipleEvents(ZapRequestError):
    """More than one ``e`` tag (D.4)."""


class ZapRequestBadEventTag(ZapRequestError):
    """The ``e`` tag is not a 64-hex event id."""


class ZapRequestMissingRelays(ZapRequestError):
    """No ``relays`` tag, or one without relays (D.5): nowhere to publish the receipt."""


class ZapRequestBadRelays(ZapRequestError):
    """A relay is not a ws:// or wss:// URL, or there are too many."""


class ZapRequestBadAmount(ZapRequestError):
    """The ``amount`` tag (or the query amount) is not one positive whole number of msat."""


class ZapRequestAmountMismatch(ZapRequestError):
    """The ``amount`` tag differs from the ``amount`` query parameter (D.6)."""


class ZapRequestBadCoordinate(ZapRequestError):
    """An ``a`` tag that is not one valid event coordinate (D.7)."""


class ZapRequestWrongCoordinate(ZapRequestError):
    """An ``a`` tag that names something other than this charger's status event."""


class ZapRequestBadSenderTag(ZapRequestError):
    """More than one ``P`` tag, or one that is not the receipt signer (D.8)."""


class ZapRequestBadConnector(ZapRequestError):
    """A ``connector`` tag that is repeated or not a connector number."""


class ZapRequestUnknownConnector(ZapRequestError):
    """A ``connector`` tag naming a connector this charger does not have."""


class ZapRequestBadReserve(ZapRequestError):
    """A ``reserve`` tag that is repeated or not a whole number of minutes (1 to 1440)."""


class ZapRequestLnurlMismatch(ZapRequestError):
    """The ``lnurl`` tag is not this charger's LNURL."""


class ZapRequestStale(ZapRequestError):
    """``created_at`` is older than the freshness window."""


class ZapRequestFromFuture(ZapRequestError):
    """``created_at`` is further in the future than clock skew explains."""


class ZapRequestReplayed(ZapRequestError):
    """This zap request was already used for an invoice."""


class ZapReceiptError(NostrRemoteError):
    """A zap receipt the agent must not act on."""


class ZapReceiptForeign(ZapReceiptError):
    """Not a receipt signed by this agent's key (someone else's, or a forgery)."""


class ZapReceiptInvalid(ZapReceiptError):
    """Signed by us but inconsistent: invoice, description, preimage or embedded request."""
