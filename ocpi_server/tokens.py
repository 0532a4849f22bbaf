"""The Tokens module, Strom as its Receiver; and the pull of partners' token lists.

Theory of operation (mod_tokens.asciidoc):

* **Push.** A partner PUTs or PATCHes its tokens at
  ``/ocpi/2.2.1/tokens/{country_code}/{party_id}/{uid}[?type=…]`` (type RFID when left out)
  and may GET one back. A partner writes only its own tokens: the URL's country code and
  party id must be its own (else HTTP 404, as transport_and_format allows), and a PUT's
  body must name the same party, uid and type as the URL (else 2001). Tokens are stored by
  :class:`~strom_services.roaming.RoamingService` under the roaming partner id
  ``str(partner.id)``; an older ``last_updated`` never overwrites a newer one; a PATCH must
  carry ``last_updated`` and changes only the fields it names (an unknown token: 2004).
* **Pull** (:class:`TokenPuller`). Some time after a partner registered, and every
  :data:`PULL_INTERVAL_S` after that, Strom GETs the partner's tokens Sender endpoint, page
  after page (``Link: <…>; rel="next"``), from the start of its last complete pull
  (``date_from``), and stores them. A token of another party, or one that is not a valid
  Token object, is skipped and logged; a failed page ends the pull (tried again later).
* **Real-time authorization** (POST ``…/authorize`` at the eMSP) is not used: Strom answers
  OCPP Authorize from its whitelist (see :mod:`strom_core.roaming` for ``ALLOWED``,
  ``ALLOWED_OFFLINE`` and ``NEVER``).

The in-memory token index (the card desk the OCPP core reads) is rebuilt after every change
in this process; other processes of a cluster rebuild theirs on each tick of their pull loop
(:meth:`TokenPuller.run`), and their database checks refuse a token revoked meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ocpi_server.client import OcpiClient, OcpiRequestFailed
from ocpi_server.protocol import (
    InterfaceRole,
    ModuleId,
    OcpiError,
    StatusCode,
    check_cistring,
    check_string,
    format_datetime,
    parse_datetime,
    parse_model,
)
from ocpi_server.server import Answer, Module, OcpiRequest, OcpiServer
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.roaming import RoamingToken, TokenType, Whitelist
from strom_services.roaming import RoamingService
from strom_storage.db import Database
from strom_storage.ocpi import OcpiPartnerRow, OcpiStore
from strom_storage.roaming import upsert_token
from strom_storage.roaming_commands import record_token_pull, token_pulled_at
from strom_storage.sealing import Sealer

__all__ = [
    "PULL_INTERVAL_S",
    "OcpiToken",
    "TokenPuller",
    "Tokens",
    "token_object",
]

log = logging.getLogger(__name__)

PULL_INTERVAL_S = 6 * 3600  # a partner's full token list is fetched again after this
FIRST_PULL_DELAY_S = 2.0  # after a registration: the partner stores its new token first
TICK_S = 60.0  # how often the pull loop looks for partners due (and refreshes the index)
RETRY_S = 300.0  # a failed pull is tried again after this
MAX_PAGES = 10_000
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?', re.IGNORECASE)


def _datetime(value: Any) -> Any:
    return parse_datetime(value) if isinstance(value, str) else value


OcpiDateTime = Annotated[datetime, BeforeValidator(_datetime)]
CiString2 = Annotated[
    str, Field(min_length=1), AfterValidator(partial(check_cistring, max_length=2))
]
CiString3 = Annotated[
    str, Field(min_length=1), AfterValidator(partial(check_cistring, max_length=3))
]
CiString36 = Annotated[
    str, Field(min_length=1), AfterValidator(partial(check_cistring, max_length=36))
]
String64 = Annotated[str, AfterValidator(partial(check_string, max_length=64))]


class OcpiToken(BaseModel):
    """An OCPI Token object as a partner sends it (fields Strom does not use are ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    country_code: CiString2
    party_id: CiString3
    uid: CiString36
    type: TokenType
    contract_id: CiString36
    visual_number: String64 | None = None
    issuer: String64
    group_id: CiString36 | None = None
    valid: bool
    whitelist: Whitelist
    last_updated: OcpiDateTime

    def roaming(self, partner_id: str) -> RoamingToken:
        """The token as the roaming core stores it for ``partner_id``."""
        return RoamingToken(
            partner_id=partner_id,
            uid=self.uid,
            type=self.type,
            contract_id=self.contract_id,
            last_updated=self.last_updated,
            visual_number=self.visual_number or "",
            issuer=self.issuer,
            group_id=self.group_id or "",
            valid=self.valid,
            whitelist=self.whitelist,
        )


class _TokenPatch(BaseModel):
    """The fields a PATCH may change (``last_updated`` required); the rest is ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    country_code: CiString2 | None = None
    party_id: CiString3 | None = None
    uid: CiString36 | None = None
    type: TokenType | None = None
    contract_id: CiString36 | None = None
    visual_number: String64 | None = None
    issuer: String64 | None = None
    group_id: CiString36 | None = None
    valid: bool | None = None
    whitelist: Whitelist | None = None
    last_updated: OcpiDateTime


_PATCHED = ("contract_id", "visual_number", "issuer", "group_id", "valid", "whitelist")


def token_object(token: RoamingToken, country_code: str, party_id: str) -> dict[str, Any]:
    """A stored token as the OCPI Token object of its party."""
    data: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "uid": token.uid,
        "type": token.type.value,
        "contract_id": token.contract_id,
        "issuer": token.issuer,
        "valid": token.valid,
        "whitelist": token.whitelist.value,
        "last_updated": format_datetime(token.last_updated),
    }
    if token.visual_number:
        data["visual_number"] = token.visual_number
    if token.group_id:
        data["group_id"] = token.group_id
    return data


class Tokens:
    """The tokens Receiver endpoint (GET, PUT, PATCH), registered on the server.

    Args:
        server: the OCPI server.
        roaming: where partners' tokens are stored.
    """

    def __init__(self, server: OcpiServer, roaming: RoamingService) -> None:
        self.roaming = roaming
        server.register(
            Module(
                ModuleId.TOKENS.value,
                (InterfaceRole.RECEIVER,),
                {"GET": self._get, "PUT": self._put, "PATCH": self._patch},
            )
        )

    async def _get(self, call: OcpiRequest) -> Answer:
        uid, token_type = _address(call)
        found = await self.roaming.token(str(call.partner.id), uid, token_type)
        if found is None:
            raise OcpiError(StatusCode.UNKNOWN_TOKEN, f"no token {uid} ({token_type})", 404)
        return Answer(token_object(found, *_party(call.partner)))

    async def _put(self, call: OcpiRequest) -> Answer:
        uid, token_type = _address(call)
        sent = parse_model(OcpiToken, call.json(), "token")
        country, party = _party(call.partner)
        if (sent.country_code.upper(), sent.party_id.upper()) != (country, party):
            raise OcpiError(
                StatusCode.INVALID_PARAMETERS, "the token's country_code/party_id are not the URL's"
            )
        if sent.uid.lower() != uid.lower() or sent.type is not token_type:
            raise OcpiError(StatusCode.INVALID_PARAMETERS, "the token's uid/type are not the URL's")
        partner_id = str(call.partner.id)
        try:
            token = sent.roaming(partner_id)
        except ValueError as exc:
            raise OcpiError(StatusCode.INVALID_PARAMETERS, f"token: {exc}") from None
        existed = await self.roaming.token(partner_id, uid, token_type) is not None
        changed = await self.roaming.upsert_token(token)
        log.info(
            "ocpi: partner %s token %s (%s) %s",
            partner_id,
            uid,
            token_type,
            "stored" if changed else "unchanged (not newer)",
        )
        return Answer(http_status=200 if existed else 201)

    async def _patch(self, call: OcpiRequest) -> Answer:
        uid, token_type = _address(call)
        patch = parse_model(_TokenPatch, call.json(), "token patch")
        country, party = _party(call.partner)
        same = (
            (patch.country_code is None or patch.country_code.upper() == country)
            and (patch.party_id is None or patch.party_id.upper() == party)
            and (patch.uid is None or patch.uid.lower() == uid.lower())
            and (patch.type is None or patch.type is token_type)
        )
        if not same:
            raise OcpiError(
                StatusCode.INVALID_PARAMETERS, "a patch cannot change the party, uid or type"
            )
        changes: dict[str, Any] = {
            name: getattr(patch, name) for name in _PATCHED if name in patch.model_fields_set
        }
        changes = {k: ("" if v is None else v) for k, v in changes.items()}
        if changes.get("contract_id") == "" or changes.get("valid") == "":
            raise OcpiError(StatusCode.INVALID_PARAMETERS, "contract_id and valid cannot be null")
        changes["last_updated"] = patch.last_updated
        try:
            patched = await self.roaming.patch_token(str(call.partner.id), uid, token_type, changes)
        except ValueError as exc:
            raise OcpiError(StatusCode.INVALID_PARAMETERS, f"token patch: {exc}") from None
        if patched is None:
            raise OcpiError(StatusCode.UNKNOWN_TOKEN, f"no token {uid} ({token_type})", 404)
        return Answer()


def _party(partner: OcpiPartnerRow) -> tuple[str, str]:
    return (partner.country_code or "").upper(), (partner.party_id or "").upper()


def _address(call: OcpiRequest) -> tuple[str, TokenType]:
    """The uid and type a request names, once its country code and party id are the caller's.

    Raises:
        OcpiError: 404 for another party's path or a path of another shape; 2001 for a bad
            uid or type.
    """
    parts = call.tail.strip("/").split("/")
    if len(parts) != 3:
        raise OcpiError(
            StatusCode.CLIENT_ERROR, "expected /tokens/{country_code}/{party_id}/{uid}", 404
        )
    country, party, uid = parts
    if (country.upper(), party.upper()) != _party(call.partner):
        raise OcpiError(StatusCode.CLIENT_ERROR, "not your country_code/party_id", 404)
    try:
        check_cistring(uid, 36)
    except ValueError as exc:
        raise OcpiError(StatusCode.INVALID_PARAMETERS, f"token uid: {exc}") from None
    if not uid:
        raise OcpiError(StatusCode.INVALID_PARAMETERS, "token uid: empty")
    text = call.request.query.get("type", TokenType.RFID.value)
    try:
        return uid, TokenType(text)
    except ValueError:
        raise OcpiError(StatusCode.INVALID_PARAMETERS, f"type: no token type {text!r}") from None


# --- the pull --------------------------------------------------------------------------------


class TokenPuller:
    """Fetches registered partners' token lists and stores them.

    Args:
        store: the partners.
        db: the database (token upserts and pull times).
        roaming: the token index to refresh.
        client: requests to partners.
        sealer: opens the token Strom uses on a partner.
        clock: the time of pulls.
    """

    def __init__(
        self,
        store: OcpiStore,
        db: Database,
        roaming: RoamingService,
        client: OcpiClient,
        sealer: Sealer,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.db = db
        self.roaming = roaming
        self.client = client
        self.sealer = sealer
        self.clock = clock
        self._wake = asyncio.Event()
        self._failed_at: dict[int, float] = {}

    def registered(self, partner_id: int) -> None:
        """A partner just registered: pull its tokens soon."""
        log.info("ocpi: partner %s registered; its tokens are pulled soon", partner_id)
        self._wake.set()

    async def run(self) -> None:
        """Pull the tokens of every partner due, until cancelled."""
        while True:
            self._wake.clear()
            try:
                await self.pull_due()
                await self.roaming.load_tokens()  # other processes' changes, in a cluster
            except Exception:  # the loop's supervisor: log and carry on next tick
                log.exception("ocpi: the token pull failed")
            try:
                await asyncio.wait_for(self._wake.wait(), TICK_S)
                await asyncio.sleep(FIRST_PULL_DELAY_S)
            except TimeoutError:
                pass

    async def pull_due(self) -> None:
        """Pull every registered partner whose last pull is older than the interval."""
        now = self.clock.now()
        for partner in await self.store.all():
            if partner.state != "registered" or partner.blocked:
                continue
            if _tokens_url(partner) is None:
                continue
            last = await self.db.read(partial(token_pulled_at, partner_id=partner.id))
            if last is not None and (now - last).total_seconds() < PULL_INTERVAL_S:
                continue
            failed = self._failed_at.get(partner.id)
            if failed is not None and self.clock.monotonic() - failed < RETRY_S:
                continue
            try:
                await self.pull(partner, since=last)
            except OcpiRequestFailed as exc:
                self._failed_at[partner.id] = self.clock.monotonic()
                log.warning("ocpi: tokens of partner %s not pulled: %s", partner.id, exc)

    async def pull(self, partner: OcpiPartnerRow, since: datetime | None = None) -> int:
        """Fetch the partner's tokens (last updated from ``since``) and store them.

        Returns:
            How many tokens were stored or changed.

        Raises:
            OcpiRequestFailed: a page could not be fetched (what came before is kept).
        """
        url = _tokens_url(partner)
        if url is None or partner.their_token is None:
            return 0
        token = self.sealer.open(f"ocpi-partner:{partner.id}", partner.their_token)
        began = self.clock.now()
        if since is not None:
            url = f"{url}?date_from={format_datetime(since)}"
        changed, seen, pages = 0, set(), 0
        next_url: str | None = url
        while next_url is not None and pages < MAX_PAGES and next_url not in seen:
            seen.add(next_url)
            reply = await self.client.request("GET", next_url, token, partner_id=partner.id)
            pages += 1
            changed += await self._store(partner, reply.data)
            next_url = _next_link(reply.headers.get("link"))
        await self.db.write(partial(record_token_pull, partner_id=partner.id, began_at=began))
        self._failed_at.pop(partner.id, None)
        if changed:
            await self.roaming.load_tokens()
        log.info(
            "ocpi: pulled the tokens of partner %s: %s page(s), %s stored",
            partner.id,
            pages,
            changed,
        )
        return changed

    async def _store(self, partner: OcpiPartnerRow, data: Any) -> int:
        if not isinstance(data, list):
            raise OcpiRequestFailed(f"partner {partner.id}: the tokens page is not a list")
        country, party = _party(partner)
        tokens: list[RoamingToken] = []
        for index, item in enumerate(data):
            try:
                sent = parse_model(OcpiToken, item, "token")
                if (sent.country_code.upper(), sent.party_id.upper()) != (country, party):
                    raise ValueError(f"a token of {sent.country_code}-{sent.party_id}")
                tokens.append(sent.roaming(str(partner.id)))
            except (OcpiError, ValueError) as exc:
                log.warning("ocpi: partner %s token #%s skipped: %s", partner.id, index, exc)

        def work(conn: Any) -> int:
            return sum(upsert_token(conn, token) for token in tokens)

        return await self.db.write(work) if tokens else 0


def _tokens_url(partner: OcpiPartnerRow) -> str | None:
    for endpoint in partner.endpoints:
        if endpoint.get("identifier") == ModuleId.TOKENS.value and endpoint.get("role") in (
            InterfaceRole.SENDER.value,
            None,
        ):
            url = endpoint.get("url")
            return url if isinstance(url, str) else None
    return None


def _next_link(header: str | None) -> str | None:
    if not header:
        return None
    found = _LINK_NEXT.search(header)
    return found.group(1) if found else None
