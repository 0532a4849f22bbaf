"""The operator's own cards: idTags Strom accepts without a Lightning payment.

Theory of operation
-------------------
A card is an idTag the operator hands out (an RFID card, a fleet key fob). It is listed in the
profile (``[[cards]]``) and carries a label and a mode: ``free`` (the energy is given away,
and recorded as such) or ``account`` (the energy is billed to a named account, a receivable
shown in the ledger). Every other idTag stays refused: a local start never gives free energy
unless the operator listed the card.

A card start is a *post-paid* start: no prepayment, so no budget and no refund. It is not a
second lifecycle: the core opens an ordinary session for it (same session table, same state
machine from ``PAID`` on, same meter readings and the same exactly-once bill at the stop). The
session's ``payer`` says who pays (``""`` for a driver who paid in advance,
``"free"``, ``"account:<name>"`` or ``"partner:<partner id>"``) and its ``postpaid_msat`` is
the cost of its energy at the tariff of its charger. The prepaid ledger of such a session
stays empty (nothing paid, consumed or refundable); its stop journals one ``free`` or
``receivable`` entry. A roaming partner's token (OCPI, :mod:`strom_core.roaming`) is the same
thing: an authorisation event with a payer, the partner (mode ``partner``, never written in a
profile: partners send their tokens themselves).

IdTags are OCPP ``CiString20``: at most 20 characters, compared case-insensitively; a card's
tag is kept as written and matched by its folded form (:func:`tag_key`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from strom_core.session import Session

__all__ = [
    "FREE_PAYER",
    "Card",
    "CardDesk",
    "CardMode",
    "account_payer",
    "check_partner_id",
    "index_cards",
    "partner_of",
    "partner_payer",
    "tag_key",
]

FREE_PAYER = "free"
_ACCOUNT_PREFIX = "account:"
_PARTNER_PREFIX = "partner:"
MAX_TAG = 20
MAX_ACCOUNT = 48
# A roaming partner's id (OCPI: country code and party id, or the platform's own id). The
# session's ``payer`` column holds 56 characters: "partner:" (8) + 36 fits, with room to spare.
MAX_PARTNER = 36


class CardMode(enum.StrEnum):
    """Who pays for a card's energy."""

    FREE = "free"
    ACCOUNT = "account"
    PARTNER = "partner"  # a roaming partner's token (never in a profile)


def tag_key(id_tag: str) -> str:
    """The form two idTags are compared in (OCPP CiString: case-insensitive)."""
    return id_tag.casefold()


def account_payer(account: str) -> str:
    """The session ``payer`` of an account card."""
    return f"{_ACCOUNT_PREFIX}{account}"


def check_partner_id(partner_id: str) -> str:
    """A roaming partner's id as given, if it is one.

    Raises:
        ValueError: empty, longer than 36 characters, or not printable ASCII without spaces.
    """
    if (
        not isinstance(partner_id, str)
        or not 1 <= len(partner_id) <= MAX_PARTNER
        or not all(" " < ch <= "~" for ch in partner_id)
    ):
        raise ValueError(f"a partner id is 1 to {MAX_PARTNER} printable characters: {partner_id!r}")
    return partner_id


def partner_payer(partner_id: str) -> str:
    """The session ``payer`` of a roaming partner's session (its token, or its remote start).

    Raises:
        ValueError: not a partner id (:func:`check_partner_id`).
    """
    return f"{_PARTNER_PREFIX}{check_partner_id(partner_id)}"


def partner_of(payer: str) -> str | None:
    """The partner a session's ``payer`` names; None for any other payer."""
    if payer.startswith(_PARTNER_PREFIX):
        return payer[len(_PARTNER_PREFIX) :]
    return None


@dataclass(frozen=True, slots=True)
class Card:
    """One of the operator's cards.

    Raises:
        ValueError: an idTag that is empty, longer than 20 characters or not printable ASCII;
            an account card without an account, or a free card with one.
    """

    id_tag: str
    label: str = ""
    mode: CardMode = CardMode.FREE
    account: str = ""  # the account of an account card; the partner id of a partner's token

    def __post_init__(self) -> None:
        tag = self.id_tag
        if not 1 <= len(tag) <= MAX_TAG or not all(" " < ch <= "~" for ch in tag):
            raise ValueError(f"card idTag must be 1 to {MAX_TAG} printable characters: {tag!r}")
        object.__setattr__(self, "mode", CardMode(self.mode))
        if self.mode is CardMode.ACCOUNT and not 1 <= len(self.account) <= MAX_ACCOUNT:
            raise ValueError(f"card {tag}: an account card needs an account (1-{MAX_ACCOUNT})")
        if self.mode is CardMode.PARTNER:
            check_partner_id(self.account)
        if self.mode is CardMode.FREE and self.account:
            raise ValueError(f"card {tag}: a free card has no account")

    @property
    def payer(self) -> str:
        """The session ``payer`` of a start with this card."""
        if self.mode is CardMode.PARTNER:
            return partner_payer(self.account)
        return FREE_PAYER if self.mode is CardMode.FREE else account_payer(self.account)


def index_cards(cards: Iterable[Card]) -> Mapping[str, Card]:
    """Cards by :func:`tag_key`.

    Raises:
        ValueError: two cards with the same idTag (as OCPP compares them).
    """
    found: dict[str, Card] = {}
    for card in cards:
        key = tag_key(card.id_tag)
        if key in found:
            raise ValueError(f"card idTag {card.id_tag!r} is listed twice")
        found[key] = card
    return found


class CardDesk(Protocol):
    """Where the OCPP core learns of the operator's cards (:mod:`strom_services.cards`)."""

    def card(self, charger_id: str, id_tag: str) -> Card | None:
        """The charger's card with this idTag (compared as OCPP does), if any."""
        ...

    def card_session(
        self, charger_id: str, connector_id: int, id_tag: str, session_id: str
    ) -> Session | None:
        """A new post-paid session for a start with the charger's card, or None (no card)."""
        ...
