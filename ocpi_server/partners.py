"""The credentials exchange, both ways, and the operator's port over the partners.

Theory of operation (credentials.asciidoc, "Registration"):

* **A partner registers with Strom** (Strom is the Receiver). The operator makes an offer
  (:meth:`Partners.offer`): a partner row in state ``offered`` and a token A, handed to the
  partner with Strom's versions URL. The partner fetches versions and details with token A and
  POSTs its credentials (its token B and versions URL). Strom fetches the partner's versions
  and 2.2.1 details with token B, and only then stores everything at once — token B sealed,
  a new token C hashed, token A forgotten — and answers with token C. Any failure before that
  answers an OCPI error (2001 bad credentials, 3001 the partner's API unusable, 3002 no 2.2.1,
  3003 no credentials endpoint) and stores nothing. PUT does the same for a registered partner
  (new token C, the old one refused from then on); DELETE unregisters; POST when registered,
  and PUT/DELETE when not, are HTTP 405.
* **Strom registers with a partner** (Strom is the Sender): the operator gives the partner's
  versions URL and the token A it issued (:meth:`Partners.register_with`). Strom fetches
  versions (picks 2.2.1) and details with token A, makes a token B, accepts it from then on
  (the partner calls back with it while handling the POST), POSTs its credentials, and stores
  the partner's token C (sealed) and the hash of B. A failure forgets B (and a row made for
  this attempt). :meth:`Partners.rotate` does the same with PUT, :meth:`Partners.remove`
  sends DELETE.

The partner's tokens are stored as sha256 hashes only; the token Strom uses on the partner is
sealed with the master key (:mod:`strom_storage.sealing`), as it is when none is set.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from ocpi_server.client import OcpiClient, OcpiRequestFailed
from ocpi_server.protocol import (
    OCPI_VERSION,
    Credentials,
    InterfaceRole,
    ModuleId,
    OcpiError,
    StatusCode,
    Version,
    VersionDetails,
    new_id,
    parse_model,
)
from ocpi_server.server import Access, Answer, Module, OcpiRequest, OcpiServer, token_hash
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.ports.ocpi import (
    OcpiLogLine,
    OcpiOffer,
    OcpiPartner,
    PartnerConflict,
    PartnerNotFound,
    PartnerUnreachable,
    Settlement,
)
from strom_storage import ocpi as rows
from strom_storage.ocpi import OcpiPartnerRow, OcpiStore
from strom_storage.sealing import Sealer

__all__ = ["Partners", "new_token"]

log = logging.getLogger(__name__)

_NOT_REGISTERED = ("offered", "unregistered")


def new_token() -> str:
    """A fresh credentials token: 43 URL-safe characters (256 bits)."""
    return secrets.token_urlsafe(32)


def _seal_name(partner_id: int) -> str:
    return f"ocpi-partner:{partner_id}"


class Partners:
    """The credentials module and the operator's port (:class:`strom_core.ports.ocpi.OcpiPartners`).

    Args:
        server: the OCPI server (Strom's URLs, its configuration); the credentials module is
            registered on it here.
        store: partners and the log.
        client: requests to partners.
        sealer: seals the tokens Strom uses on partners.
        clock: the time of changes.
    """

    def __init__(
        self,
        server: OcpiServer,
        store: OcpiStore,
        client: OcpiClient,
        sealer: Sealer,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.server = server
        self.store = store
        self.client = client
        self.sealer = sealer
        self.clock = clock
        self._registered: list[Callable[[int], None]] = []
        server.register(
            Module(
                ModuleId.CREDENTIALS.value,
                (InterfaceRole.SENDER, InterfaceRole.RECEIVER),
                {
                    "GET": self._get,
                    "POST": self._post,
                    "PUT": self._put,
                    "DELETE": self._delete,
                },
                Access.CREDENTIALS,
            )
        )

    def on_registered(self, listener: Callable[[int], None]) -> None:
        """Call ``listener`` with a partner's id after it registered or rotated (must not raise)."""
        self._registered.append(listener)

    def _tell_registered(self, partner_id: int) -> None:
        for listener in self._registered:
            listener(partner_id)

    def ours(self, token: str) -> dict[str, Any]:
        """Strom's credentials object with ``token`` for the partner to use."""
        ocpi = self.server.live.current.ocpi
        details: dict[str, Any] = {"name": ocpi.business_name}
        if ocpi.website:
            details["website"] = ocpi.website
        return {
            "token": token,
            "url": self.server.versions_url,
            "roles": [
                {
                    "role": "CPO",
                    "business_details": details,
                    "party_id": ocpi.party_id,
                    "country_code": ocpi.country_code,
                }
            ],
        }

    # --- Strom as the Receiver: the credentials endpoint ------------------------------------

    async def _get(self, call: OcpiRequest) -> Answer:
        if call.standing != "registered":
            raise OcpiError(StatusCode.CLIENT_ERROR, "not registered", 405)
        return Answer(self.ours(call.token))  # the token it called with is its token C

    async def _post(self, call: OcpiRequest) -> Answer:
        if call.standing != "a":
            raise OcpiError(StatusCode.CLIENT_ERROR, "registered already: use PUT", 405)
        theirs = parse_model(Credentials, call.json(), "credentials")
        return await self._accept(call, theirs, states=_NOT_REGISTERED, replacing=None)

    async def _put(self, call: OcpiRequest) -> Answer:
        if call.standing != "registered":
            raise OcpiError(StatusCode.CLIENT_ERROR, "not registered: use POST", 405)
        theirs = parse_model(Credentials, call.json(), "credentials")
        return await self._accept(
            call, theirs, states=("registered",), replacing=call.partner.token_hash
        )

    async def _delete(self, call: OcpiRequest) -> Answer:
        if call.standing != "registered":
            raise OcpiError(StatusCode.CLIENT_ERROR, "not registered", 405)
        await self.store.unregister(call.partner.id, self.clock.now())
        log.info("ocpi: partner %s unregistered itself", call.partner.id)
        return Answer()

    async def _accept(
        self,
        call: OcpiRequest,
        theirs: Credentials,
        *,
        states: Sequence[str],
        replacing: str | None,
    ) -> Answer:
        partner = call.partner
        try:
            details = await self._discover(theirs.url, theirs.token, partner.id, call.ids)
        except OcpiRequestFailed as exc:
            raise OcpiError(StatusCode.CLIENT_API_UNUSABLE, str(exc)) from None
        token_c = new_token()
        creds = self._credentials(partner.id, token_c, theirs, details)
        now = self.clock.now()
        if replacing is None:
            stored = await self.store.register(partner.id, creds, now, states=states)
        else:
            stored = await self.store.rotate(partner.id, replacing, creds, now)
        if not stored:  # another request changed the partner meanwhile
            raise OcpiError(StatusCode.CLIENT_ERROR, "the registration changed meanwhile", 405)
        log.info("ocpi: partner %s %s", partner.id, "rotated" if replacing else "registered")
        self._tell_registered(partner.id)
        return Answer(self.ours(token_c))

    def _credentials(
        self, partner_id: int, token_hash_of: str, theirs: Credentials, details: VersionDetails
    ) -> rows.Credentials:
        """What to store; ``token_hash_of`` is the token the partner will use on Strom."""
        return rows.Credentials(
            token_hash=token_hash(token_hash_of),
            their_token=self.sealer.seal(_seal_name(partner_id), theirs.token),
            versions_url=theirs.url,
            version=details.version,
            endpoints=[e.model_dump(mode="json") for e in details.endpoints],
            roles=[
                {
                    "role": r.role.value,
                    "party_id": r.party_id,
                    "country_code": r.country_code,
                    "name": r.business_details.name,
                }
                for r in theirs.roles
            ],
        )

    async def _discover(
        self, versions_url: str, token: str, partner_id: int, ids: dict[str, str]
    ) -> VersionDetails:
        """The partner's 2.2.1 details, fetched with ``token``.

        Raises:
            OcpiRequestFailed: a request failed.
            OcpiError: 3002 no 2.2.1 offered, 3003 no credentials endpoint, 3001 malformed.
        """
        correlation = ids.get("X-Correlation-ID")
        reply = await self.client.request(
            "GET", versions_url, token, partner_id=partner_id, correlation_id=correlation
        )
        if not isinstance(reply.data, list):
            raise OcpiError(StatusCode.CLIENT_API_UNUSABLE, "the versions answer is not a list")
        try:
            versions = [parse_model(Version, v, "versions") for v in reply.data]
        except OcpiError as exc:
            raise OcpiError(StatusCode.CLIENT_API_UNUSABLE, exc.message) from None
        chosen = next((v for v in versions if v.version == OCPI_VERSION), None)
        if chosen is None:
            offered = ", ".join(v.version for v in versions) or "none"
            raise OcpiError(
                StatusCode.UNSUPPORTED_VERSION, f"no version {OCPI_VERSION} (offered: {offered})"
            )
        reply = await self.client.request(
            "GET", chosen.url, token, partner_id=partner_id, correlation_id=correlation
        )
        try:
            details = parse_model(VersionDetails, reply.data, "version details")
        except OcpiError as exc:
            raise OcpiError(StatusCode.CLIENT_API_UNUSABLE, exc.message) from None
        if details.version != OCPI_VERSION:
            raise OcpiError(
                StatusCode.UNSUPPORTED_VERSION, f"the details are of version {details.version}"
            )
        if not any(e.identifier == ModuleId.CREDENTIALS for e in details.endpoints):
            raise OcpiError(StatusCode.NO_MATCHING_ENDPOINTS, "no credentials endpoint")
        return details

    # --- Strom as the Sender: the operator's port --------------------------------------------

    async def partners(self) -> list[OcpiPartner]:
        """Every partner, oldest first."""
        return [_view(row) for row in await self.store.all()]

    async def partner(self, partner_id: int) -> OcpiPartner:
        """One partner; raises PartnerNotFound."""
        return _view(await self._row(partner_id))

    async def offer(self, name: str) -> OcpiOffer:
        """A new partner, offered a fresh token A."""
        token_a = new_token()
        row = await self.store.create(name, token_hash(token_a), self.clock.now())
        log.info("ocpi: partner %s (%s) offered a token A", row.id, name)
        return OcpiOffer(_view(row), token_a, self.server.versions_url)

    async def register_with(
        self, versions_url: str, token_a: str, name: str, partner_id: int | None = None
    ) -> OcpiPartner:
        """Register Strom with a partner; see the module's docstring."""
        if partner_id is None:
            row = await self.store.create(name, None, self.clock.now())
            made = True
        else:
            row = await self._row(partner_id)
            made = False
            if row.state == "registered":
                raise PartnerConflict(f"partner {row.id} is registered already")
        try:
            await self._exchange(row, versions_url, token_a, "POST", _NOT_REGISTERED)
        except PartnerUnreachable:
            if made:
                await self.store.delete(row.id)
            raise
        return _view(await self._row(row.id))

    async def rotate(self, partner_id: int) -> OcpiOffer | OcpiPartner:
        """New tokens: a PUT to a registered partner, else a new token A."""
        row = await self._row(partner_id)
        if row.state != "registered":
            token_a = new_token()
            if not await self.store.reoffer(row.id, token_hash(token_a), self.clock.now()):
                raise PartnerConflict(f"partner {row.id} registered meanwhile")
            return OcpiOffer(_view(await self._row(row.id)), token_a, self.server.versions_url)
        if row.versions_url is None:
            raise PartnerConflict(f"partner {row.id} has no versions URL")
        await self._exchange(row, row.versions_url, self._their_token(row), "PUT", ("registered",))
        return _view(await self._row(row.id))

    async def remove(self, partner_id: int) -> None:
        """Unregister (tell a registered partner, whatever it answers) and delete the row."""
        row = await self._row(partner_id)
        url = _endpoint(row, ModuleId.CREDENTIALS)
        if row.state == "registered" and url is not None:
            try:
                await self.client.request("DELETE", url, self._their_token(row), partner_id=row.id)
            except OcpiRequestFailed as exc:
                log.warning("ocpi: partner %s did not take the unregistration: %s", row.id, exc)
        await self.store.unregister(row.id, self.clock.now())
        await self.store.delete(row.id)
        log.info("ocpi: partner %s removed", row.id)

    async def set_flags(
        self, partner_id: int, *, settlement: Settlement | None, blocked: bool | None
    ) -> OcpiPartner:
        """Change the settlement mode or the blocked flag."""
        if not await self.store.set_flags(
            partner_id, self.clock.now(), settlement=settlement, blocked=blocked
        ):
            raise PartnerNotFound(f"no OCPI partner {partner_id}")
        return await self.partner(partner_id)

    async def log(self, limit: int, partner_id: int | None = None) -> list[OcpiLogLine]:
        """The newest OCPI requests, newest first."""
        return [
            OcpiLogLine(id=row.id, **{k: getattr(row.entry, k) for k in _LOG_FIELDS})
            for row in await self.store.log_rows(limit, partner_id)
        ]

    async def _exchange(
        self,
        row: OcpiPartnerRow,
        versions_url: str,
        token: str,
        method: str,
        states: Sequence[str],
    ) -> None:
        """Discover, send Strom's credentials with a new token, store the partner's answer.

        Raises:
            PartnerUnreachable: a step failed; the new token is not accepted any more.
        """
        ids = {"X-Correlation-ID": new_id()}
        token_b = new_token()
        if not await self.store.set_next_token(
            row.id, token_hash(token_b), self.clock.now(), states=states
        ):
            raise PartnerConflict(f"partner {row.id} changed meanwhile")
        try:
            details = await self._discover(versions_url, token, row.id, ids)
            url = next(e.url for e in details.endpoints if e.identifier == ModuleId.CREDENTIALS)
            reply = await self.client.request(
                method,
                url,
                token,
                partner_id=row.id,
                body=self.ours(token_b),
                correlation_id=ids["X-Correlation-ID"],
            )
            theirs = parse_model(Credentials, reply.data, "the partner's credentials")
        except (OcpiRequestFailed, OcpiError) as exc:
            await self.store.set_next_token(row.id, None, self.clock.now(), states=states)
            message = exc.message if isinstance(exc, OcpiError) else str(exc)
            raise PartnerUnreachable(message) from None
        creds = self._credentials(row.id, token_b, theirs, details)
        now = self.clock.now()
        if method == "POST":
            stored = await self.store.register(row.id, creds, now, states=states)
        else:
            stored = await self.store.rotate(row.id, row.token_hash or "", creds, now)
        if not stored:
            raise PartnerConflict(f"partner {row.id} changed meanwhile")
        log.info("ocpi: registered with partner %s (%s)", row.id, method)
        self._tell_registered(row.id)

    async def _row(self, partner_id: int) -> OcpiPartnerRow:
        row = await self.store.get(partner_id)
        if row is None:
            raise PartnerNotFound(f"no OCPI partner {partner_id}")
        return row

    def token_for(self, row: OcpiPartnerRow) -> str:
        """The token Strom uses on a registered partner (for its pushes).

        Raises:
            PartnerConflict: the partner gave Strom no token.
        """
        return self._their_token(row)

    def _their_token(self, row: OcpiPartnerRow) -> str:
        if row.their_token is None:
            raise PartnerConflict(f"partner {row.id} gave Strom no token")
        return self.sealer.open(_seal_name(row.id), row.their_token)


_LOG_FIELDS = (
    "partner_id",
    "direction",
    "method",
    "url",
    "http_status",
    "status_code",
    "request_id",
    "correlation_id",
    "at",
    "excerpt",
)


def _endpoint(row: OcpiPartnerRow, module: ModuleId) -> str | None:
    for endpoint in row.endpoints:
        if endpoint.get("identifier") == module.value:
            url = endpoint.get("url")
            return url if isinstance(url, str) else None
    return None


def _view(row: OcpiPartnerRow) -> OcpiPartner:
    return OcpiPartner(
        id=row.id,
        name=row.name,
        country_code=row.country_code,
        party_id=row.party_id,
        roles=tuple(str(r.get("role", "")) for r in row.roles),
        state=row.state,
        versions_url=row.versions_url,
        version=row.version,
        modules=tuple(f"{e.get('identifier')}:{e.get('role')}" for e in row.endpoints),
        settlement="streaming" if row.settlement == "streaming" else "after_cdr",
        blocked=row.blocked,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
