"""Roaming partners in the core: their tokens, their sessions' records and what they owe.

Theory of operation
-------------------
A roaming partner (an OCPI eMSP) is an id string here (``"NL-EMS"``); it pays *after* the
charge, like an account card (:mod:`strom_core.cards`): its sessions are ordinary post-paid
sessions with ``payer = "partner:<id>"``, in the same session table, state machine and ledger
(paid stays 0; the stop journals one ``receivable`` entry of the bill).

Two ways in:

* **a token at the charger**: a partner's ``RFID`` token, ``valid`` and whose whitelist is not
  ``NEVER``, is accepted by Authorize/StartTransaction like an operator's card
  (:func:`local_start_refusal` says why one is not). OCPP idTags are ``CiString20``: a uid
  longer than 20 characters can never be presented by a charger, so such a token is never
  indexed for local starts (it may still be used by a remote start). ``ALLOWED`` lets the
  CPO choose between the whitelist and real-time authorisation; Strom's core uses the
  whitelist, because OCPP Authorize must be answered at once and the core has no link to the
  partner. ``ALLOWED_OFFLINE`` is treated the same way (as if the partner could not be
  reached); ``NEVER`` is refused: it needs real-time authorisation, which is the OCPI
  adapter's to add.
* **a remote start** (OCPI START_SESSION): the session is created ``PAID`` and asks the
  charger to start through the outbox, like a paid session.

Either way a side record (:class:`RoamingStart`) keeps what OCPI needs later (the token of
the CDR, how it was authorised) without widening the session.

Receivables: the partner's bill is opened as a :class:`Receivable` in the transaction that
makes the bill final; it is then ``invoiced`` (a Lightning invoice offered to the partner,
replaceable when it expires unpaid), ``paid`` (the invoice settled, exactly once), or
``written_off`` by the operator. An invoiced receivable unpaid past ``due_at`` is overdue; a
partner whose terms say so (:class:`PartnerTerms`) may then start nothing new.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from strom_core.cards import MAX_TAG, check_partner_id
from strom_core.errors import StromError

__all__ = [
    "DEFAULT_TERMS",
    "MAX_UID",
    "PartnerRefused",
    "PartnerTerms",
    "Receivable",
    "ReceivableState",
    "RoamingStart",
    "RoamingToken",
    "StartedBy",
    "TokenType",
    "Whitelist",
    "check_token",
    "local_start_refusal",
]

MAX_UID = 36  # OCPI Token.uid: CiString(36)
MAX_CONTRACT = 36  # OCPI Token.contract_id: CiString(36)
MAX_REFERENCE = 36  # OCPI authorization_reference: CiString(36)


class TokenType(enum.StrEnum):
    """OCPI TokenType."""

    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    OTHER = "OTHER"
    RFID = "RFID"


class Whitelist(enum.StrEnum):
    """OCPI WhitelistType: may the CPO accept the token without asking the partner."""

    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class StartedBy(enum.StrEnum):
    """How a partner's session was authorised (OCPI CDR ``auth_method``)."""

    COMMAND = "command"  # OCPI START_SESSION (auth_method COMMAND)
    TOKEN = "token"  # noqa: S105 (presented at the charger, accepted from the whitelist)


class ReceivableState(enum.StrEnum):
    """Where a partner's bill is: open, invoiced, paid or written off."""

    OPEN = "open"
    INVOICED = "invoiced"
    PAID = "paid"
    WRITTEN_OFF = "written_off"


class PartnerRefused(StromError):
    """A partner's start or stop is refused; ``reason`` says why (nothing was changed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RoamingToken:
    """A partner's token (OCPI Token, the fields Strom uses).

    Raises:
        ValueError: a bad partner id, an empty or too long uid or contract id, a wrong type
            or whitelist.
    """

    partner_id: str
    uid: str
    type: TokenType
    contract_id: str
    last_updated: datetime
    visual_number: str = ""
    issuer: str = ""
    group_id: str = ""
    valid: bool = True
    whitelist: Whitelist = Whitelist.ALWAYS

    def __post_init__(self) -> None:
        check_token(self.partner_id, self.uid)
        object.__setattr__(self, "type", TokenType(self.type))
        object.__setattr__(self, "whitelist", Whitelist(self.whitelist))
        if not 1 <= len(self.contract_id) <= MAX_CONTRACT:
            raise ValueError(f"a contract id is 1 to {MAX_CONTRACT} characters")
        if self.last_updated.tzinfo is None:
            raise ValueError("last_updated must be an aware datetime")

    @property
    def idtag_capable(self) -> bool:
        """Whether a charger can present this token as its idTag (RFID, at most 20 chars)."""
        return self.type is TokenType.RFID and len(self.uid) <= MAX_TAG


def check_token(partner_id: str, uid: str) -> None:
    """Check a partner id and a token uid.

    Raises:
        ValueError: a bad partner id, or a uid that is empty, longer than 36 characters or
            not printable ASCII.
    """
    check_partner_id(partner_id)
    if not 1 <= len(uid) <= MAX_UID or not all(" " <= ch <= "~" for ch in uid):
        raise ValueError(f"a token uid is 1 to {MAX_UID} printable characters: {uid!r}")


def local_start_refusal(token: RoamingToken | None, *, partner_blocked: bool) -> str | None:
    """Why this token may not start a charge presented at a charger; None: it may.

    See the module docstring for the whitelist rule.
    """
    if token is None:
        return "unknown token"
    if not token.idtag_capable:
        return "not a token a charger can present (RFID, at most 20 characters)"
    if not token.valid:
        return "token not valid"
    if token.whitelist is Whitelist.NEVER:
        return "token needs real-time authorisation (whitelist NEVER)"
    if partner_blocked:
        return "partner blocked: an overdue receivable"
    return None


@dataclass(frozen=True, slots=True)
class RoamingStart:
    """What a partner's session keeps for OCPI (its CDR's token and auth method)."""

    session_id: str
    partner_id: str
    token_uid: str
    token_type: TokenType
    contract_id: str
    authorization_reference: str | None
    started_by: StartedBy
    created_at: datetime

    @classmethod
    def of(
        cls,
        session_id: str,
        token: RoamingToken,
        reference: str | None,
        started_by: StartedBy,
        at: datetime,
    ) -> RoamingStart:
        """The record of a session the partner's ``token`` started (or a command for it)."""
        return cls(
            session_id=session_id,
            partner_id=token.partner_id,
            token_uid=token.uid,
            token_type=token.type,
            contract_id=token.contract_id,
            authorization_reference=reference,
            started_by=started_by,
            created_at=at,
        )


@dataclass(frozen=True, slots=True)
class PartnerTerms:
    """A partner's payment terms: days to pay an invoice, and whether overdue blocks starts."""

    block_when_overdue: bool = True
    payment_terms_days: int = 14

    def __post_init__(self) -> None:
        days = self.payment_terms_days
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 365:
            raise ValueError(f"payment terms are 0 to 365 days, not {days!r}")


DEFAULT_TERMS = PartnerTerms()


@dataclass(frozen=True, slots=True)
class Receivable:
    """A partner's bill for one session, and where its payment is."""

    id: int
    partner_id: str
    session_id: str
    amount_msat: int
    state: ReceivableState
    created_at: datetime
    payment_hash: str | None = None
    bolt11: str | None = None
    invoiced_at: datetime | None = None
    due_at: datetime | None = None
    paid_at: datetime | None = None

    def overdue(self, now: datetime) -> bool:
        """Invoiced, unpaid and past its due date."""
        return (
            self.state is ReceivableState.INVOICED and self.due_at is not None and now > self.due_at
        )
