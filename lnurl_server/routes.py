"""The HTTP front door: LNURL-pay, LNURL-withdraw and the pages behind the QR code.

Endpoints (see docs/lnurl.md):

==================================================  =============================================
``GET /c/{charger}[/{connector}]``                  charger page (HTML; the sticker's fallback URL)
``GET /lnurlp/{charger}/{connector}``               LUD-06 payRequest (LUD-17 ``lnurlp://`` too)
``GET /.well-known/lnurlp/{charger}``               LUD-16 address ``<charger>@host``
``GET /lnurlp/{charger}/{connector}/callback``      invoice for ``amount`` (msat), LUD-12 comment
``GET /s/{session}?secret=…``                       session page (HTML), ``/s/{session}.json`` data
``GET /lnurlw/{session}?secret=…``                  LUD-03 withdrawRequest: stop + refund
``GET /lnurlw/{session}/callback?k1=…&pr=…``        pay the refund invoice
``GET /s/{session}/topup?secret=…``                 payRequest to add budget (+ ``/callback``)
``POST /s/{session}/power`` (form: secret, kw)      charge slower (:mod:`lnurl_server.power`)
``POST /s/{session}/start`` | ``/cancel`` (secret)  a reservation's payer starts or cancels it
``POST /s/{session}/cheap`` (form: secret, by, kwh) charge when cheap (:mod:`lnurl_server.cheap`)
``GET /map``                                        the network map (HTML; :mod:`lnurl_server.map`)
==================================================  =============================================

The state switch: while a connector is free its static LNURL answers a payRequest; while it
is busy, or its charger is not connected (offline, or reconnecting after a restart of Strom),
it answers every wallet with a LUD error and nothing is paid. The callback asks again (a wallet
may call it a minute later), and so do the lightning address, zaps and top-ups. A withdraw
link exists only per session and carries the session secret: the static sticker never hands
one out.

Reservations (:mod:`lnurl_server.reservations`): the same pay endpoint with ``reserve=<minutes>``
reserves the connector (a paid hold until the payer starts); while a connector is reserved its
sticker refuses everyone with "reserved until HH:MM UTC".
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from lnurl_server.cheap import CheapOutcome, plan_from_form
from lnurl_server.map import NetworkMap
from lnurl_server.pages import Pages
from lnurl_server.power import PowerOutcome, lower_from_form
from lnurl_server.ratelimit import RateLimiter
from lnurl_server.reservations import (
    ReservationOutcome,
    act_from_form,
    parse_reserve,
    reservation_text,
    reserve_choices,
)
from strom_core.billing import session_interval_bills
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import LiveConfig, ProfileConfig, StromConfig
from strom_core.errors import BackendError, StorageError
from strom_core.ids import is_charger_id
from strom_core.ports import ChargerIdentities
from strom_core.ports.prices import NoPrice, PriceSource
from strom_core.prices import PriceSchedule
from strom_core.session import Session
from strom_core.tariff import Tariff
from strom_core.units import UnitError, format_sat
from strom_lightning import Invoice, NodeWatch
from strom_nostr.discovery import STATUS_KIND, status_coordinate
from strom_nostr.errors import Bech32Error
from strom_nostr.keys import decode_naddr
from strom_nostr.zap_errors import ZapRequestError, ZapRequestMalformed
from strom_nostr.zap_request import ValidZapRequest, validate_zap_request
from strom_services.cheap import CheapCharging
from strom_services.payments import (
    ConnectorUnavailable,
    OpenedSession,
    PaymentService,
    ReservationRefused,
    ZapRequestUsed,
)
from strom_services.power import PowerService
from strom_services.refunds import RefundError, RefundService, min_refund
from strom_services.reservations import PayerReservations
from strom_storage.chargers import ChargerStore
from strom_storage.sessions import SessionNotFound, SessionStore
from strom_web.clients import client_of
from strom_web.csp import page_headers
from strom_web.lnurl import (
    LnurlError,
    PayMetadata,
    bech32_lnurl,
    connector_fallback_url,
    connector_pay_url,
    error,
    lud17_url,
    parse_amount_msat,
    parse_comment,
    pay_request,
    success_action,
    withdraw_request,
)

__all__ = ["FrontDoor", "storage_errors"]

log = logging.getLogger(__name__)


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(
        body,
        status=status,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


STORAGE_FAILED = (
    "Strom cannot record anything right now (its storage failed); nothing was charged — "
    "please try again later"
)


@web.middleware
async def storage_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A failing database (a full disk, say) gets a clear answer, never a 500."""
    try:
        return await handler(request)
    except StorageError as exc:
        log.error("%s %s: %s", request.method, request.path, exc)
        if request.path.startswith(("/lnurlp/", "/lnurlw/", "/.well-known/lnurlp/")):
            return _lud_error(STORAGE_FAILED)
        return web.Response(status=503, text=STORAGE_FAILED, headers={"Retry-After": "30"})


CHART_HOURS = 24  # the charger page's price chart: this hour and the next 23

NODE_DOWN = "the lightning node of this charger is unreachable right now; nothing was charged"
NODE_DOWN_REFUND = (
    "the lightning node of this charger is unreachable right now; nothing was debited: scan "
    "the refund link again later"
)


def _lud_error(reason: str) -> web.Response:
    # LUD errors travel with HTTP 200 so that every wallet reads the reason.
    return _json(error(reason))


def _callback_terms(request: web.Request, tariff: Tariff) -> tuple[int, int]:
    """A pay callback's reservation minutes (0: none) and amount, each within the tariff.

    Raises:
        LnurlError: a bad ``reserve``, ``amount`` or ``comment``, or a zap with ``reserve``.
    """
    minutes = parse_reserve(request.query.get("reserve"), tariff)
    if minutes and "nostr" in request.query:
        raise LnurlError(
            "a zap reserves with a reserve tag in its zap request, not the reserve parameter; "
            "nothing was charged"
        )
    amount = parse_amount_msat(
        request.query.get("amount"),
        min_msat=tariff.reservation_min_msat(minutes) if minutes else tariff.min_prepay_msat,
        max_msat=tariff.max_prepay_msat,
    )
    parse_comment(request.query.get("comment"))
    return minutes, amount


_SERVED_KEPT = 2048  # payRequests whose metadata a callback may still name
_SERVED_FOR_S = 600.0  # how long: a wallet asks for the invoice within seconds of the offer


class ServedMetadata:
    """The metadata of recent payRequests, by a short digest the callback URL carries (``m``).

    The metadata states prices that move (a dynamic tariff's price now, the sats of a fiat
    price at the current rate), and LUD-06 has the wallet check the invoice's description hash
    against the metadata it was offered. So the callback hashes the metadata the wallet saw,
    not one rebuilt a moment later, when the price may have moved on — as long as the tariff
    is the one it was offered under: after the operator changed it, the metadata now is
    hashed, the wallet refuses the invoice, and the driver sees the new price before paying.
    An unknown or expired digest (another process, a restart, a stale offer) falls back to the
    metadata now too.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._served: OrderedDict[str, tuple[float, str, str]] = OrderedDict()

    def remember(self, metadata: str, terms: str) -> str:
        """Keep ``metadata``, offered under the tariff ``terms``, as served now; its digest."""
        digest = hashlib.sha256(metadata.encode()).hexdigest()[:24]
        self._served[digest] = (self._clock(), metadata, terms)
        self._served.move_to_end(digest)
        while len(self._served) > _SERVED_KEPT:
            self._served.popitem(last=False)
        return digest

    def recall(self, digest: str | None, terms: str) -> str | None:
        """The metadata served under ``digest`` in the last ten minutes under ``terms``."""
        if digest is None:
            return None
        served = self._served.get(digest)
        if served is None or self._clock() - served[0] > _SERVED_FOR_S or served[2] != terms:
            return None
        return served[1]


def _amount_refused(charger_id: str, amount_msat: int, exc: UnitError) -> web.Response:
    """The backend cannot invoice this amount (LNbits: whole sats only); nothing was stored."""
    log.info("charger %s: no invoice for %s msat: %s", charger_id, amount_msat, exc)
    return _lud_error(f"{exc}; nothing was charged")


def _fiat_view(session: Session) -> dict[str, Any] | None:
    """A fiat-priced session's prices as written, the sats they became, and the rate."""
    if session.fiat is None:
        return None
    prices, rate = session.fiat.describe(session.tariff)
    return {"currency": session.fiat.terms.currency, "prices": prices, "rate": rate}


@dataclass
class FrontDoor:
    """The aiohttp routes of the public front door.

    ``live`` is the configuration in force: the front door reads it at every request, so a
    profile applied while Strom runs is served at once.
    """

    live: LiveConfig
    store: SessionStore
    chargers: ChargerStore
    payments: PaymentService
    refunds: RefundService
    pages: Pages
    per_client: RateLimiter
    per_charger: RateLimiter
    identities: ChargerIdentities | None = None
    zap_max_age_s: int = 600
    node: NodeWatch | None = None  # while its node is down, Strom refuses to take money
    clock: Clock = SYSTEM_CLOCK  # zap request freshness
    network_map: NetworkMap | None = None  # /map and its relay bridge
    power: PowerService | None = None  # the driver's "charge slower"; without it, no form
    reservations: PayerReservations | None = None  # a reservation's start and cancel buttons
    cheap: CheapCharging | None = None  # "charge when cheap"; without it, no form
    prices: PriceSource | None = None  # the charger page's price chart; None: the static price
    served: ServedMetadata = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.served = ServedMetadata(self.clock.monotonic)

    async def price_schedule(self, profile: ProfileConfig, tariff: Tariff) -> PriceSchedule | str:
        """The energy prices the charger page shows, from the start of this hour for a day.

        The one seam between the page and where prices come from: a static tariff's (or with
        no ``prices`` source wired, any tariff's) schedule is its energy price in force, flat
        (:meth:`PriceSchedule.flat`), as billed; a dynamic one's is the source's
        :meth:`PriceSource.schedule`, the prices a payment now would freeze.

        Returns:
            The schedule, or the reason no price can be given (:class:`NoPrice`).
        """
        start = self.clock.now().replace(minute=0, second=0, microsecond=0)
        if self.prices is None or not profile.tariff.dynamic:
            try:  # an energy price in fiat: converted at the fresh rate, as a payment now
                return self.payments.static_schedule(profile, start, CHART_HOURS)
            except NoPrice as exc:
                return exc.reason
        try:
            return await self.prices.schedule(profile.id, start, CHART_HOURS)
        except NoPrice as exc:
            return exc.reason

    @property
    def config(self) -> StromConfig:
        """The configuration in force now."""
        return self.live.current

    def _node_down(self) -> bool:
        return self.node is not None and not self.node.up

    def _node_failed(self) -> web.Response:
        """A call to the node failed: have the watch look now; the wallet is told in words."""
        if self.node is not None:
            self.node.check_soon()
        return _lud_error(NODE_DOWN)

    @property
    def base(self) -> str:
        return self.config.server.public_url

    def routes(self) -> list[web.RouteDef]:
        """Every route of the front door."""
        return [
            web.get("/c/{charger}", self.charger_page),
            web.get("/c/{charger}/{connector:\\d+}", self.charger_page),
            web.get("/lnurlp/{charger}/{connector:\\d+}", self.pay_request),
            web.get("/.well-known/lnurlp/{charger}", self.lightning_address),
            web.get("/lnurlp/{charger}/{connector:\\d+}/callback", self.pay_callback),
            web.get("/s/{session}.json", self.session_json),
            web.get("/s/{session}", self.session_page),
            web.get("/s/{session}/topup", self.topup_request),
            web.post("/s/{session}/power", self.lower_power),
            web.post("/s/{session}/start", self.reservation_start),
            web.post("/s/{session}/cheap", self.charge_when_cheap),
            web.post("/s/{session}/cancel", self.reservation_cancel),
            web.get("/s/{session}/topup/callback", self.topup_callback),
            web.get("/lnurlw/{session}", self.withdraw_request),
            web.get("/lnurlw/{session}/callback", self.withdraw_callback),
            *(self.network_map.routes() if self.network_map is not None else []),
        ]

    # --- helpers ---------------------------------------------------------------------------

    def _profile(self, request: web.Request) -> ProfileConfig:
        charger_id = request.match_info["charger"]
        if charger_id.startswith("naddr1"):  # a NIP-89 client opening a status event
            try:
                pointer = decode_naddr(charger_id)
            except Bech32Error:
                raise self._not_found("There is no such charger here.") from None
            charger_id = pointer.identifier if pointer.kind == STATUS_KIND else ""
        if not is_charger_id(charger_id):
            raise self._not_found("There is no such charger here.")
        try:
            return self.config.profile_by_name(charger_id)
        except KeyError:
            raise self._not_found("There is no such charger here.") from None

    def _not_found(self, message: str) -> web.HTTPNotFound:
        return web.HTTPNotFound(
            text=self.pages.not_found(message),
            content_type="text/html",
            headers=self._page_headers(),
        )

    def _page_headers(self) -> dict[str, str]:
        """The headers of every HTML page: its CSP, no sniffing, no referrer."""
        return page_headers(self.pages.content_security_policy(self.base))

    def _html(self, text: str, *, no_store: bool = False) -> web.Response:
        headers = self._page_headers()
        if no_store:
            headers["Cache-Control"] = "no-store"
        return web.Response(text=text, content_type="text/html", headers=headers)

    def pay_url(self, charger_id: str, connector_id: int) -> str:
        """The URL behind a connector's static LNURL-pay."""
        return connector_pay_url(self.base, charger_id, connector_id)

    def metadata(self, profile: ProfileConfig, connector_id: int) -> PayMetadata:
        """The LUD-06 metadata of a connector's payRequest."""
        tariff = self.payments.tariff_for(profile)
        price = format_sat(tariff.energy_msat_per_kwh) + "/kWh"
        if profile.tariff.dynamic:
            now = self.payments.price_now(profile)
            price = (
                "energy price changes by the hour"
                if now is None
                else f"{format_sat(now)}/kWh now, changing by the hour"
            )
        fiat = self.payments.fiat_lines(profile)  # components priced in fiat, as written
        price = fiat.get("per_kwh", price)
        extras = []
        if "per_minute" in fiat or tariff.time_msat_per_minute:
            per_minute = format_sat(tariff.time_msat_per_minute) + "/min"
            extras.append(fiat.get("per_minute", per_minute))
        if "session_fee" in fiat or tariff.session_fee_msat:
            extras.append(
                fiat.get("session_fee", format_sat(tariff.session_fee_msat) + " per session")
            )
        if "idle_per_minute" in fiat:
            extras.append(fiat["idle_per_minute"])
        text = f"Charging at {profile.name}, connector {connector_id}: {price}"
        if extras:
            text += " + " + " + ".join(extras)
        terms = profile.tariff.to_fiat()
        if terms is not None:
            text += f". {terms.when}"
        text += ". Unused budget is refunded."
        return PayMetadata(text=text, identifier=f"{profile.id}@{urlsplit(self.base).netloc}")

    def reservation_metadata(
        self, profile: ProfileConfig, connector_id: int, minutes: int
    ) -> PayMetadata:
        """The LUD-06 metadata of a connector's reservation for ``minutes``."""
        tariff = self.payments.tariff_for(profile)
        # A price in fiat as written, without its sats now: the callback makes this text again
        # for the invoice's description hash, and the rate may have moved in between.
        shown = replace(self.payments.shown_tariff(profile), rate=None)
        return PayMetadata(
            text=reservation_text(
                profile, connector_id, tariff, minutes, price=shown.text("per_kwh")
            ),
            identifier=f"{profile.id}@{urlsplit(self.base).netloc}",
        )

    def session_url(self, session_id: str, secret: str) -> str:
        """The session page URL given to the payer only."""
        return f"{self.base}/s/{session_id}?secret={quote(secret)}"

    # --- pay -------------------------------------------------------------------------------

    async def pay_request(self, request: web.Request) -> web.Response:
        """LUD-06 first step for one connector, or a LUD error while it is busy."""
        profile = self._profile(request)
        connector_id = int(request.match_info["connector"])
        tariff = self.payments.tariff_for(profile)
        try:
            minutes = parse_reserve(request.query.get("reserve"), tariff)
        except LnurlError as exc:
            return _lud_error(exc.reason)
        if self._node_down():
            return _lud_error(NODE_DOWN)
        try:
            if minutes:
                await self.payments.offers.reserve_check(profile, connector_id, tariff)
            else:
                await self.payments.offer_check(profile, connector_id)
        except ConnectorUnavailable as exc:
            return _lud_error(exc.reason)
        if minutes:
            return _json(self._reserve_request_body(profile, connector_id, minutes))
        return _json(self._pay_request_body(profile, connector_id))

    def _reserve_request_body(
        self, profile: ProfileConfig, connector_id: int, minutes: int
    ) -> dict[str, Any]:
        """The payRequest of a reservation: at least the fee, at most the tariff's maximum."""
        tariff = self.payments.tariff_for(profile)
        return pay_request(
            callback=f"{self.pay_url(profile.id, connector_id)}/callback?reserve={minutes}",
            metadata=self.reservation_metadata(profile, connector_id, minutes).serialise(),
            min_msat=tariff.reservation_min_msat(minutes),
            max_msat=tariff.max_prepay_msat,
        )

    def reserve_lnurl(self, charger_id: str, connector_id: int, minutes: int) -> str:
        """The LNURL of a connector's reservation for ``minutes``."""
        return bech32_lnurl(f"{self.pay_url(charger_id, connector_id)}?reserve={minutes}")

    def _pubkey(self, charger_id: str) -> str | None:
        return None if self.identities is None else self.identities.pubkey(charger_id)

    def _terms(self, profile: ProfileConfig) -> str:
        """The tariff a payment would be priced under, as a stamp (:class:`ServedMetadata`)."""
        return repr((self.payments.tariff_for(profile), profile.tariff))

    def _pay_request_body(self, profile: ProfileConfig, connector_id: int) -> dict[str, Any]:
        tariff = self.payments.tariff_for(profile)
        metadata = self.metadata(profile, connector_id).serialise()
        digest = self.served.remember(metadata, self._terms(profile))
        return pay_request(
            callback=f"{self.pay_url(profile.id, connector_id)}/callback?m={digest}",
            metadata=metadata,
            min_msat=tariff.min_prepay_msat,
            max_msat=tariff.max_prepay_msat,
            nostr_pubkey=self._pubkey(profile.id),
        )

    async def lightning_address(self, request: web.Request) -> web.Response:
        """LUD-16: ``<charger>@host`` pays the first free connector."""
        profile = self._profile(request)
        if self._node_down():
            return _lud_error(NODE_DOWN)
        reason = "this charger has no free connector right now; nothing was charged"
        for connector in profile.connectors:
            try:
                await self.payments.offer_check(profile, connector.id)
            except ConnectorUnavailable as exc:
                reason = exc.reason
                continue
            return _json(self._pay_request_body(profile, connector.id))
        return _lud_error(reason)

    async def pay_callback(self, request: web.Request) -> web.Response:
        """LUD-06 second step: check the amount, make the invoice, open the session."""
        profile = self._profile(request)
        connector_id = int(request.match_info["connector"])
        try:
            minutes, amount = _callback_terms(request, self.payments.tariff_for(profile))
        except LnurlError as exc:
            return _lud_error(exc.reason)
        if self._node_down():
            return _lud_error(NODE_DOWN)
        client = client_of(request)
        if not self.per_client.allow(client.key) or not self.per_charger.allow(profile.id):
            log.info("charger %s: invoice refused to %s: rate limit", profile.id, client.address)
            return _lud_error("too many invoice requests; wait a minute and try again")
        zap_text = request.query.get("nostr")
        try:
            if zap_text is not None:
                zap = self._validate_zap(profile, zap_text, amount)
                # A zap with a reserve tag reserves (never a top-up); see docs/nostr.md.
                top_up = (
                    None
                    if zap.reserve_minutes
                    else await self._zap_top_up(profile, connector_id, zap)
                )
                if top_up is not None:
                    return _json({"pr": top_up.bolt11, "routes": []})
                opened = await self.payments.open_session(
                    profile,
                    zap.connector or connector_id,
                    amount,
                    description_hash=hashlib.sha256(zap.description.encode()).digest(),
                    initiator="zap",
                    initiator_pubkey=zap.sender,
                    zap_request={"description": zap.description, "relays": list(zap.relays)},
                    zap_request_id=zap.event_id,
                    reserve_minutes=zap.reserve_minutes,
                    fee_at_settlement=True,  # a zap below the fee is refunded by the core
                )
            else:
                served = (
                    None
                    if minutes
                    else self.served.recall(request.query.get("m"), self._terms(profile))
                )
                opened = await self._open_lnurl(profile, connector_id, amount, minutes, served)
        except ZapRequestError as exc:
            return _lud_error(exc.reason)
        except (ConnectorUnavailable, ZapRequestUsed, ReservationRefused, NoPrice) as exc:
            return _lud_error(exc.reason)  # NoPrice: a dynamic tariff without a price now
        except UnitError as exc:
            return _amount_refused(profile.id, amount, exc)
        except BackendError as exc:
            log.warning("charger %s: no invoice: lightning backend: %s", profile.id, exc)
            return self._node_failed()
        url = self.session_url(opened.session_id, opened.secret)
        action = success_action(
            url,
            "Open your charging session: live progress, stop and refund of unused budget.",
            callback_url=self.base,
        )
        return _json({"pr": opened.invoice.bolt11, "routes": [], "successAction": action})

    async def _open_lnurl(
        self,
        profile: ProfileConfig,
        connector_id: int,
        amount: int,
        minutes: int,
        served: str | None = None,
    ) -> OpenedSession:
        """A session (a reservation when ``minutes``) paid through the connector's LNURL.

        ``served``: the metadata the wallet was offered (:class:`ServedMetadata`), if known.
        """
        if served is not None:
            description_hash = hashlib.sha256(served.encode()).digest()
        elif minutes:
            description_hash = self.reservation_metadata(
                profile, connector_id, minutes
            ).description_hash()
        else:
            description_hash = self.metadata(profile, connector_id).description_hash()
        return await self.payments.open_session(
            profile,
            connector_id,
            amount,
            description_hash=description_hash,
            initiator="lnurl",
            reserve_minutes=minutes,
        )

    async def _zap_top_up(
        self, profile: ProfileConfig, connector_id: int, zap: ValidZapRequest
    ) -> Invoice | None:
        """A zap from the person charging right now adds to their budget (the DMs say so)."""
        session_id = await self.payments.running_session_of(
            profile.id, zap.connector or connector_id, zap.sender
        )
        if session_id is None:
            return None
        return await self.payments.open_top_up(
            session_id,
            zap.amount_msat,
            charger_id=profile.id,
            description_hash=hashlib.sha256(zap.description.encode()).digest(),
            zap_request={"description": zap.description, "relays": list(zap.relays)},
            zap_request_id=zap.event_id,
            initiator_pubkey=zap.sender,
        )

    def _validate_zap(self, profile: ProfileConfig, text: str, amount: int) -> ValidZapRequest:
        pubkey = self._pubkey(profile.id)
        if pubkey is None:
            raise ZapRequestMalformed("this charger does not accept zaps")
        return validate_zap_request(
            text,
            amount_msat_query=amount,
            charger_pubkey=pubkey,
            charger_status_coordinate=status_coordinate(pubkey, profile.id),
            now=int(self.clock.unix()),
            max_age_s=self.zap_max_age_s,
            connector_ids=[c.id for c in profile.connectors],
        )

    # --- session ---------------------------------------------------------------------------

    async def _session(self, request: web.Request) -> Session:
        try:
            return await self.refunds.authenticate(
                request.match_info["session"], request.query.get("secret")
            )
        except RefundError:
            raise self._not_found("No such charging session, or the link is incomplete.") from None

    def session_view(self, session: Session, secret: str) -> dict[str, Any]:
        """What the session page and its JSON show."""
        withdraw = f"{self.base}/lnurlw/{session.id}?secret={quote(secret)}"
        topup = f"{self.base}/s/{session.id}/topup?secret={quote(secret)}"
        return {
            "id": session.id,
            "state": session.state.value,
            "charger_id": session.charger_id,
            "connector_id": session.connector_id,
            "paid_msat": session.paid_msat,
            "consumed_msat": session.consumed_msat,
            "refundable_msat": session.refundable_msat,
            "refunded_msat": session.refunded_msat,
            "refund_in_flight_msat": session.refund_in_flight_msat,
            "refund_fee_msat": session.refund_fee_msat,
            "energy_wh": session.energy_wh,
            "elapsed_s": session.elapsed_s,
            "power_w": session.power_w,
            "stop_reason": session.stop_reason,
            "reserve_minutes": session.reserve_minutes,
            "reservation_fee_msat": session.reservation_fee_msat,
            "reserved_until": (
                None if session.reserved_until is None else session.reserved_until.isoformat()
            ),
            # A dynamic tariff's bill, interval by interval (empty for a static tariff).
            "price_source": "" if session.schedule is None else session.schedule.source,
            "intervals": [
                {
                    "start": bill.start.isoformat(),
                    "end": bill.end.isoformat(),
                    "energy_wh": bill.energy_wh,
                    "price_msat_per_kwh": bill.energy_msat_per_kwh,
                    "cost_msat": bill.cost_msat,
                }
                for bill in session_interval_bills(session)
            ],
            "idle_s": session.idle_seconds,
            "idle_msat": session.idle_msat,
            # A tariff in fiat: its prices as written, the sats they were frozen at, the rate.
            "fiat": _fiat_view(session),
            "withdraw_lnurl": bech32_lnurl(withdraw),
            "withdraw_url": lud17_url(withdraw, "w"),
            "topup_lnurl": bech32_lnurl(topup),
        }

    async def session_json(self, request: web.Request) -> web.Response:
        """Live data of one session (for the page's script)."""
        session = await self._session(request)
        return _json(self.session_view(session, request.query["secret"]))

    async def session_page(self, request: web.Request) -> web.Response:
        """The payer's session page."""
        session = await self._session(request)
        view = self.session_view(session, request.query["secret"])
        profile = self.config.profile(session.charger_id)
        try:
            outcome = PowerOutcome(request.query.get("power", ""))
        except ValueError:
            outcome = None
        try:
            reserved = ReservationOutcome(request.query.get("reservation", ""))
        except ValueError:
            reserved = None
        cheap = self.cheap
        try:
            cheap_outcome: CheapOutcome | None = CheapOutcome(request.query.get("cheap", ""))
        except ValueError:
            cheap_outcome = None
        page = self.pages.session(
            profile,
            session,
            view,
            can_lower=self.power is not None,
            secret=request.query["secret"],
            power_outcome=outcome,
            reservation_outcome=reserved,
            can_plan=cheap is not None and cheap.offered(session),
            plan=None if cheap is None else await cheap.plan_in_force(session.id),
            cheap_outcome=cheap_outcome,
        )
        return self._html(page, no_store=True)

    async def _session_form(
        self, request: web.Request
    ) -> tuple[MultiDictProxy[str | bytes | bytearray | FileField], Session, str]:
        """A session page form's fields, its session, and the secret that proved the payer.

        Raises:
            HTTPNotFound: no such session, or not its secret.
        """
        form = await request.post()
        secret = form.get("secret")
        try:
            session = await self.refunds.authenticate(
                request.match_info["session"], secret if isinstance(secret, str) else None
            )
        except RefundError:
            raise self._not_found("No such charging session, or the link is incomplete.") from None
        return form, session, str(secret)

    async def lower_power(self, request: web.Request) -> web.Response:
        """The session page's "charge slower" form: lower the power, back to the page (303)."""
        form, session, secret = await self._session_form(request)
        kw = form.get("kw")
        if self.power is None:
            outcome = PowerOutcome.REFUSED
        elif not self.per_client.allow(client_of(request).key):
            outcome = PowerOutcome.BUSY
        else:
            outcome = await lower_from_form(
                self.power, session.id, kw if isinstance(kw, str) else None
            )
        page = f"/s/{session.id}?secret={quote(secret)}&power={outcome.value}"
        raise web.HTTPSeeOther(page, headers={"Cache-Control": "no-store"})

    async def charge_when_cheap(self, request: web.Request) -> web.Response:
        """The session page's "Charge when cheap": plan and send, back to the page (303)."""
        form, session, secret = await self._session_form(request)
        by, kwh = form.get("by"), form.get("kwh")
        if self.cheap is None:
            outcome = CheapOutcome.NOT_OFFERED
        elif not self.per_client.allow(client_of(request).key):
            outcome = CheapOutcome.BUSY
        else:
            outcome = await plan_from_form(
                self.cheap,
                session.id,
                by if isinstance(by, str) else None,
                kwh if isinstance(kwh, str) else None,
                self.clock.now(),
            )
        page = f"/s/{session.id}?secret={quote(secret)}&cheap={outcome.value}"
        raise web.HTTPSeeOther(page, headers={"Cache-Control": "no-store"})

    async def reservation_start(self, request: web.Request) -> web.Response:
        """The session page's "Start charging" of a reservation; back to the page (303)."""
        return await self._reservation_action(request, "start")

    async def reservation_cancel(self, request: web.Request) -> web.Response:
        """The session page's "Cancel reservation"; back to the page (303)."""
        return await self._reservation_action(request, "cancel")

    async def _reservation_action(self, request: web.Request, action: str) -> web.Response:
        _, session, secret = await self._session_form(request)
        if not self.per_client.allow(client_of(request).key):
            outcome = ReservationOutcome.BUSY
        else:
            outcome = await act_from_form(self.reservations, session.id, action)
        page = f"/s/{session.id}?secret={quote(secret)}&reservation={outcome.value}"
        raise web.HTTPSeeOther(page, headers={"Cache-Control": "no-store"})

    async def charger_page(self, request: web.Request) -> web.Response:
        """The public page of a charger: connectors, status, price, QR codes."""
        profile = self._profile(request)
        only = request.match_info.get("connector")
        shown = [c for c in profile.connectors if only is None or c.id == int(only)]
        if not shown:  # /c/<charger>/<n>, the sticker's page, of a connector it does not have
            raise self._not_found(f"This charger has no connector {int(only or 0)}.")
        rows = await self.chargers.connectors(profile.id)
        status = {row.connector_id: row for row in rows}
        link = await self.payments.link_of(profile.id)
        tariff = self.payments.tariff_for(profile)
        items = []
        for connector in shown:
            lnurl = bech32_lnurl(self.pay_url(profile.id, connector.id))
            busy = ""
            try:
                await self.payments.offer_check(profile, connector.id)
            except ConnectorUnavailable as exc:
                busy = exc.reason
            row = status.get(connector.id)
            reserve = []
            reservable = self.payments.offers.reservable(profile.id)
            if not busy and reservable and row is not None and row.status == "Available":
                reserve = [
                    {
                        "minutes": minutes,
                        "fee_msat": tariff.reservation_fee(minutes),
                        "lnurl": self.reserve_lnurl(profile.id, connector.id, minutes),
                    }
                    for minutes in reserve_choices(tariff)
                ]
            items.append(
                {
                    "connector": connector,
                    "lnurl": lnurl,
                    "fallback_url": connector_fallback_url(self.base, profile.id, connector.id),
                    "status": row.status if row else "Unknown",
                    "busy": busy,
                    "reserve": reserve,
                    "kept_percent": tariff.reservation_kept_percent,
                }
            )
        fiat = self.payments.fiat_lines(profile)
        # An energy price in fiat is charted at its sats at the fresh rate, and written above.
        schedule = await self.price_schedule(profile, tariff)
        terms = profile.tariff.to_fiat()
        return self._html(
            self.pages.charger(
                profile,
                items,
                single=only is not None,
                link=link,
                schedule=schedule,
                now=self.clock.now(),
                fiat=fiat,
                fiat_when=terms.when if terms is not None else "",
            )
        )

    # --- top-up ----------------------------------------------------------------------------

    async def topup_request(self, request: web.Request) -> web.Response:
        """A payRequest that adds budget to the payer's own session."""
        try:
            session = await self.refunds.authenticate(
                request.match_info["session"], request.query.get("secret")
            )
        except RefundError as exc:
            return _lud_error(exc.reason)
        if self._node_down():
            return _lud_error(NODE_DOWN)
        try:
            await self.payments.top_up_check(session.charger_id)
        except ConnectorUnavailable as exc:
            return _lud_error(exc.reason)
        profile = self.config.profile(session.charger_id)
        tariff = session.tariff
        metadata = PayMetadata(text=f"Top up charging session {session.id} at {profile.name}")
        callback = (
            f"{self.base}/s/{session.id}/topup/callback?secret={quote(request.query['secret'])}"
        )
        return _json(
            pay_request(
                callback=callback,
                metadata=metadata.serialise(),
                min_msat=1_000,
                max_msat=tariff.max_prepay_msat,
            )
        )

    async def topup_callback(self, request: web.Request) -> web.Response:
        """Invoice for a top-up."""
        try:
            session = await self.refunds.authenticate(
                request.match_info["session"], request.query.get("secret")
            )
            amount = parse_amount_msat(
                request.query.get("amount"), min_msat=1_000, max_msat=session.tariff.max_prepay_msat
            )
        except (RefundError, LnurlError) as exc:
            return _lud_error(exc.reason)
        if self._node_down():
            return _lud_error(NODE_DOWN)
        client = client_of(request)
        if not self.per_client.allow(client.key):
            log.info("session %s: top-up refused to %s: rate limit", session.id, client.address)
            return _lud_error("too many invoice requests; wait a minute and try again")
        profile = self.config.profile(session.charger_id)
        metadata = PayMetadata(text=f"Top up charging session {session.id} at {profile.name}")
        try:
            invoice = await self.payments.open_top_up(
                session.id,
                amount,
                charger_id=session.charger_id,
                description_hash=metadata.description_hash(),
            )
        except ConnectorUnavailable as exc:
            return _lud_error(exc.reason)
        except UnitError as exc:
            return _amount_refused(profile.id, amount, exc)
        except BackendError as exc:
            log.warning("session %s: no top-up invoice: lightning backend: %s", session.id, exc)
            return self._node_failed()
        return _json({"pr": invoice.bolt11, "routes": []})

    # --- withdraw --------------------------------------------------------------------------

    async def withdraw_request(self, request: web.Request) -> web.Response:
        """LUD-03 first step: stops a running charge, then offers the refundable balance."""
        session_id = request.match_info["session"]
        try:
            offer = await self.refunds.request(session_id, request.query.get("secret"))
        except RefundError as exc:
            return _lud_error(exc.reason)
        return _json(
            withdraw_request(
                callback=f"{self.base}/lnurlw/{session_id}/callback",
                k1=offer.k1,
                min_msat=min_refund(offer.amount_msat),
                max_msat=offer.amount_msat,
                description=f"Strom refund for charging session {session_id}",
            )
        )

    async def withdraw_callback(self, request: web.Request) -> web.Response:
        """LUD-03 second step: the wallet's invoice is checked and paid once."""
        if self._node_down():
            return _lud_error(NODE_DOWN_REFUND)
        try:
            await self.refunds.claim(
                request.match_info["session"], request.query.get("k1"), request.query.get("pr")
            )
        except (RefundError, SessionNotFound) as exc:
            return _lud_error(getattr(exc, "reason", "unknown session"))
        return _json({"status": "OK"})
