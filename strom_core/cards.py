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
``"free"`` or ``"account:<name>"``) and its ``postpaid_msat`` is the cost of its energy at the
tariff of its charger. The prepaid ledger of such a session stays empty (nothing paid,
consumed or refundable); its stop journals one ``free`` or ``receivable`` entry. A roaming
partner's token (OCPI) is the same thing: an authorisation event with a payer.

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
    "index_cards",
    "tag_key",
]

FREE_PAYER = "free"
_ACCOUNT_PREFIX = "account:"
MAX_TAG = 20
MAX_ACCOUNT = 48


class CardMode(enum.StrEnum):
    """Who pays for a card's energy."""

    FREE = "free"
    ACCOUNT = "account"


def tag_key(id_tag: str) -> str:
    """The form two idTags are compared in (OCPP CiString: case-insensitive)."""
    return id_tag.casefold()


def account_payer(account: str) -> str:
    """The session ``payer`` of an account card."""
    return f"{_ACCOUNT_PREFIX}{account}"


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
    account: str = ""

    def __post_init__(self) -> None:
        tag = self.id_tag
        if not 1 <= len(tag) <= MAX_TAG or not all(" " < ch <= "~" for ch in tag):
            raise ValueError(f"card idTag must be 1 to {MAX_TAG} printable characters: {tag!r}")
        object.__setattr__(self, "mode", CardMode(self.mode))
        if self.mode is CardMode.ACCOUNT and not 1 <= len(self.account) <= MAX_ACCOUNT:
            raise ValueError(f"card {tag}: an account card needs an account (1-{MAX_ACCOUNT})")
        if self.mode is CardMode.FREE and self.account:
            raise ValueError(f"card {tag}: a free card has no account")

    @property
    def payer(self) -> str:
        """The session ``payer`` of a start with this card."""
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
