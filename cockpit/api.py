"""The REST API under ``/api/v1``: chargers, sessions, ledger, tariffs, nostr, audit.

Every operation is declared once in :meth:`Api.endpoints` (see :mod:`cockpit.endpoint`);
routes and the OpenAPI document come from that list. Handlers read through the core's stores
and act through the same paths the other front doors use: a stop is a ``StopRequested``
applied to the session's state machine (so it is billed and refunded like any stop), charger
commands go through :class:`strom_core.ports.ChargerCommands`, connector availability through the
same query the operator's DM uses.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from agent.agent import Agent
from agent.relays import PublishResult
from agent.runtime import AgentRuntime
from cockpit import models as m
from cockpit import queries
from cockpit.auth import Principal
from cockpit.endpoint import ApiError, Call, Endpoint, validation_text
from cockpit.profiles import ProfileFiles
from cockpit.sticker import sticker_pdf, sticker_svg
from ocpp_server import OcppServer, parse_quirks
from strom_core.config import (
    ConnectorConfig,
    OcppProfileConfig,
    ProfileConfig,
    StromConfig,
    TariffConfig,
    require_ocpp_password,
)
from strom_core.errors import AgentUnavailable, ConfigError, IllegalTransition
from strom_core.ports import ChargerLink
from strom_core.session import State, StopReason, StopRequested
from strom_core.tariff import Tariff
from strom_core.units import WH_PER_KWH, format_kwh, format_sat
from strom_lightning import NodeWatch
from strom_nostr.discovery import STATUS_KIND
from strom_nostr.keys import encode_npub
from strom_services.effects import RetryLater
from strom_services.payments import PaymentService
from strom_storage.agents import audit, set_connector_enabled
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.sessions import SessionNotFound, SessionStore, row_to_session
from strom_web.lnurl import connector_fallback_url

__all__ = ["Api", "quotes", "session_out"]

log = logging.getLogger(__name__)

_STOPPABLE = (State.PAID, State.STARTING, State.CHARGING)
_QUOTE_KWH = (10, 30)


def _refuse_case_twin(config: StromConfig, charger_id: str) -> None:
    """A new id must not differ from an existing one only in case (one lightning address)."""
    try:
        twin = config.profile_by_name(charger_id)
    except KeyError:
        return
    if twin.id != charger_id:
        raise ApiError(
            409,
            "conflict",
            f"charger {twin.id!r} exists; ids that differ only in case share one lightning "
            "address and page",
        )


def _sat(amount_msat: int) -> str:
    return format_sat(amount_msat).removesuffix(" sat").replace(",", "")


def _kwh(energy_wh: int) -> str:
    return format_kwh(energy_wh).removesuffix(" kWh")


def session_out(row: Any) -> m.SessionOut:
    """A session row as the API shows it."""
    session = row_to_session(row)
    return m.SessionOut(
        session_id=session.id,
        charger_id=session.charger_id,
        connector_id=session.connector_id,
        state=session.state.value,
        initiator=row.initiator,
        paid_msat=session.paid_msat,
        consumed_msat=session.consumed_msat,
        refunded_msat=session.refunded_msat,
        refundable_msat=session.refundable_msat,
        refund_in_flight_msat=session.refund_in_flight_msat,
        energy_wh=session.energy_wh,
        elapsed_s=session.elapsed_s,
        stop_reason=session.stop_reason,
        created_at=row.created_at,
        started_at=session.started_at,
        stopped_at=session.stopped_at,
    )


def _payment_out(row: Any) -> m.PaymentOut:
    return m.PaymentOut(
        payment_hash=row.payment_hash,
        session_id=row.session_id,
        kind=row.kind,
        state=row.state,
        amount_msat=row.amount_msat,
        zap=row.zap_request is not None,
        created_at=row.created_at,
        settled_at=row.settled_at,
    )


def _refund_out(row: Any) -> m.RefundOut:
    return m.RefundOut(
        refund_id=row.id,
        session_id=row.session_id,
        state=row.state,
        amount_msat=row.amount_msat,
        fee_msat=row.fee_msat,
        detail=row.detail,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def quotes(tariff: Tariff, power_w: int) -> list[m.Quote]:
    """What a driver pays for 10 and 30 kWh at ``power_w`` (time price and fee included)."""
    answer = []
    for kwh in _QUOTE_KWH:
        energy_wh = kwh * WH_PER_KWH
        seconds = -(-energy_wh * 3600 // max(power_w, 1))
        total = tariff.quote(energy_wh, seconds)
        answer.append(
            m.Quote(
                energy_wh=energy_wh,
                minutes=-(-seconds // 60),
                total_msat=total,
                total_sat=_sat(total),
            )
        )
    return answer


def _publish_answer(result: PublishResult | None) -> m.PublishAnswer | None:
    if result is None:
        return None
    return m.PublishAnswer(
        event_id=result.event_id, accepted=result.accepted, ok=result.ok, failed=result.failed
    )


def csv_response(rows: Iterable[BaseModel], model: type[BaseModel], name: str) -> web.Response:
    """Rows as a CSV download (header from the model's fields)."""
    out = io.StringIO()
    fields = list(model.model_fields)
    writer = csv.writer(out)
    writer.writerow(fields)
    for row in rows:
        data = row.model_dump(mode="json")
        writer.writerow([_csv_cell(data[name]) for name in fields])
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


_Item = TypeVar("_Item", bound=BaseModel)
_Page = TypeVar("_Page", bound=BaseModel)


async def _paged(
    page: Awaitable[tuple[list[Any], str | None]],
    convert: Callable[[Any], _Item],
    item: type[_Item],
    answer: type[_Page],
    form: str,
    name: str,
) -> _Page | web.Response:
    """A page of rows as JSON (``items``, ``next_cursor``) or as a CSV download.

    Raises:
        ApiError: 400 for a cursor this API did not hand out.
    """
    try:
        rows, cursor = await page
    except queries.BadCursor as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    items = [convert(row) for row in rows]
    if form == "csv":
        return csv_response(items, item, name)
    return answer(items=items, next_cursor=cursor)


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell a spreadsheet would run as a formula is quoted as text (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


@dataclass
class Api:
    """The API's handlers over Strom's parts."""

    config: StromConfig
    db: Database
    sessions: SessionStore
    chargers: ChargerStore
    payments: PaymentService
    ocpp: OcppServer
    agents: AgentRuntime
    node: NodeWatch | None = None  # the lightning node's reachability
    # Applies a written profile to the running Strom (set by the composition root); without
    # it a changed profile takes effect at the next start.
    apply_profile: Callable[[ProfileConfig], Awaitable[None]] | None = None

    @property
    def files(self) -> ProfileFiles:
        return ProfileFiles(self.config.paths.profiles)

    async def write_audit(
        self, principal: Principal, action: str, target: str, detail: dict[str, Any]
    ) -> None:
        """One audit row per mutating call, with who made it."""
        await audit(
            self.db,
            actor=principal.actor,
            action=f"api.{action}",
            target=target,
            detail=detail,
            now=self.agents.services.clock.unix(),
        )
        log.info("api: %s %s %s %s", principal.actor, action, target, detail)

    # --- lookups ---------------------------------------------------------------------------

    def _profile(self, call: Call) -> ProfileConfig:
        try:
            return self.config.profile(call.path("charger_id"))
        except KeyError:
            raise ApiError(404, "not_found", "there is no such charger") from None

    def _connector(self, profile: ProfileConfig, text: str) -> int:
        if not text.isdigit() or not any(c.id == int(text) for c in profile.connectors):
            raise ApiError(404, "not_found", f"charger {profile.id} has no connector {text!r}")
        return int(text)

    async def _session_row(self, session_id: str) -> Any:
        row = await queries.session_row(self.db, session_id)
        if row is None:
            raise ApiError(404, "not_found", "there is no such session")
        return row

    def _agent(self, charger_id: str) -> Agent:
        try:
            return self.agents.agent(charger_id)
        except AgentUnavailable:
            raise ApiError(
                503, "agent_unavailable", f"the nostr agent of {charger_id} is not running"
            ) from None

    # --- who -------------------------------------------------------------------------------

    async def me(self, call: Call) -> m.Me:
        principal = call.principal
        return m.Me(actor=principal.actor, scope=principal.scope.value, method=principal.method)

    # --- lightning -------------------------------------------------------------------------

    async def lightning(self, call: Call) -> m.LightningOut:
        if self.node is None:
            raise ApiError(503, "unavailable", "the lightning node is not watched")
        state = self.node.state
        info = state.info
        up: Literal["up", "down", "unknown"] = (
            "unknown" if state.up is None else "up" if state.up else "down"
        )
        return m.LightningOut(
            backend=self.node.backend.name,
            state=up,
            since=state.since,
            reason=state.reason,
            checked_at=state.checked_at,
            next_retry_s=self.node.next_retry_s if state.up is False else None,
            alias=info.alias if info else None,
            pubkey=info.pubkey if info else None,
            network=info.network if info else None,
            real_money=info.real_money if info else None,
            notes=list(info.notes) if info else [],
        )

    # --- chargers --------------------------------------------------------------------------

    async def _summary(
        self,
        profile: ProfileConfig,
        running: dict[tuple[str, int], str],
        links: dict[str, ChargerLink],
    ) -> dict[str, Any]:
        rows = {row.connector_id: row for row in await self.chargers.connectors(profile.id)}
        connectors = []
        for connector in profile.connectors:
            row = rows.get(connector.id)
            connectors.append(
                m.ConnectorOut(
                    connector_id=connector.id,
                    type=connector.type,
                    max_power_kw=str(connector.max_power_kw),
                    status=row.status if row else "Unknown",
                    error_code=row.error_code if row else "NoError",
                    enabled=row.enabled if row else True,
                    session_id=running.get((profile.id, connector.id)),
                )
            )
        pubkey = self.agents.pubkey(profile.id)
        return {
            "charger_id": profile.id,
            "name": profile.name,
            # Both from the database, as offers read them (the OCPP server's own view of the
            # connection is ``connection`` in the detail).
            "online": links.get(profile.id) is ChargerLink.ONLINE,
            "link": links.get(profile.id, ChargerLink.OFFLINE).value,
            "connectors": connectors,
            "energy_msat_per_kwh": self.payments.tariff_for(profile).energy_msat_per_kwh,
            "npub": encode_npub(pubkey) if pubkey else None,
            "ocpp_password_set": bool(profile.ocpp.password_hash),
            "allow_unauthenticated": profile.ocpp.allow_unauthenticated,
        }

    async def _running(self, charger_id: str | None = None) -> dict[tuple[str, int], str]:
        rows = await queries.running_sessions(self.db, charger_id)
        return {(row.charger_id, row.connector_id): row.id for row in rows}

    async def list_chargers(self, call: Call) -> m.ChargerList:
        running = await self._running()
        links = await self.chargers.links()
        items = [
            m.ChargerSummary(**await self._summary(p, running, links)) for p in self.config.profiles
        ]
        return m.ChargerList(items=items)

    async def get_charger(self, call: Call) -> m.ChargerDetail:
        profile = self._profile(call)
        running = await self._running(profile.id)
        info = self.ocpp.charger_info(profile.id)
        counters = self.ocpp.counters(profile.id)
        recent, _ = await queries.page_sessions(
            self.db, charger=profile.id, state=None, since=None, until=None, limit=10, cursor=None
        )
        boot = info.boot if info else None
        base = self.config.server.public_url
        return m.ChargerDetail(
            **await self._summary(profile, running, await self.chargers.links()),
            description=profile.description,
            address=profile.location.address,
            lat=profile.location.lat,
            lon=profile.location.lon,
            connection=info.state if info else "never connected",
            connected_since=info.connected_since if info else None,
            boot=self._boot(boot),
            messages_received=counters.received,
            messages_sent=counters.sent,
            pay_urls={str(c.id): f"{base}/lnurlp/{profile.id}/{c.id}" for c in profile.connectors},
            recent_sessions=[session_out(row) for row in recent],
        )

    @staticmethod
    def _boot(boot: Any) -> m.BootOut | None:
        if boot is None:
            return None
        return m.BootOut(
            vendor=boot.vendor,
            model=boot.model,
            serial=boot.charge_box_serial_number or boot.serial_number,
            firmware=boot.firmware_version,
        )

    async def pending_chargers(self, call: Call) -> m.PendingList:
        return m.PendingList(
            items=[
                m.PendingOut(
                    charger_id=p.charger_id,
                    remote_address=p.remote_address,
                    first_seen=p.first_seen,
                    last_seen=p.last_seen,
                    presented_credentials=p.presented_credentials,
                    boot=self._boot(p.boot),
                )
                for p in self.ocpp.pending_chargers()
            ]
        )

    async def dismiss_pending(self, call: Call) -> m.CommandAnswer:
        charger_id = call.path("charger_id")
        if not self.ocpp.forget_pending(charger_id):
            raise ApiError(404, "not_found", f"no charger {charger_id!r} is waiting for approval")
        return m.CommandAnswer(status="Dismissed", detail="its connection is closed")

    async def put_charger(self, call: Call) -> m.ProfileWritten:
        charger_id = call.path("charger_id")
        body: m.ProfileIn = call.body
        try:
            parse_quirks(tuple(body.quirks))
        except ValueError as exc:
            raise ApiError(400, "bad_request", f"quirks: {exc}") from None
        try:
            existing: ProfileConfig | None = self.config.profile(charger_id)
        except KeyError:
            existing = None
        _refuse_case_twin(self.config, charger_id)
        try:
            profile = ProfileConfig(
                id=charger_id,
                name=body.name,
                description=body.description,
                location=body.location,
                connectors=tuple(ConnectorConfig(**c.model_dump()) for c in body.connectors),
                tariff=self._tariff_config(body.tariff),
                branding=body.branding,
                ocpp=OcppProfileConfig(quirks=tuple(body.quirks)),
            )
        except ValidationError as exc:
            raise ApiError(400, "bad_request", f"profile: {validation_text(exc)}") from None
        # A new charger gets a generated OCPP password, shown in this answer only.
        created = existing is None
        new = self.ocpp.password_key.new_password() if created else None
        try:
            written = self.files.write_profile(
                profile,
                password_hash=new.password_hash if new else None,
                check=lambda written: require_ocpp_password(self.config, written),
            )
        except ConfigError as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
        applied, restart = await self._apply(charger_id, written)
        if not restart:
            # The tariff sent is the operator's newest decision, even where it equals the file's
            # (a price set by DM since is replaced).
            await self.payments.tariffs.set(
                written, written.tariff.to_tariff(), source=f"api:{call.principal.actor}"
            )
        call.audit_detail.update(
            created=created, restart_required=restart, ocpp_password_generated=new is not None
        )
        return m.ProfileWritten(
            charger_id=charger_id,
            created=created,
            file=self.files.path(charger_id).name,
            applied_now=applied,
            restart_required=restart,
            ocpp_password=new.key if new else None,
            ocpp_password_hex=new.key_hex if new else None,
        )

    async def _apply(self, charger_id: str, written: ProfileConfig) -> tuple[list[str], bool]:
        """Apply a written profile now, when the composition root allows it."""
        if self.apply_profile is None:
            return [], True
        try:
            await self.apply_profile(written)
        except ConfigError as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
        return ["profile"], False

    async def new_ocpp_password(self, call: Call) -> m.OcppPasswordOut:
        profile = self._profile(call)
        new = self.ocpp.password_key.new_password()
        try:
            written = self.files.write_password_hash(profile.id, new.password_hash)
        except ConfigError as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        _, restart = await self._apply(profile.id, written)
        call.audit_detail.update(restart_required=restart)
        return m.OcppPasswordOut(
            charger_id=profile.id,
            ocpp_password=new.key,
            ocpp_password_hex=new.key_hex,
            restart_required=restart,
        )

    async def set_availability(self, call: Call) -> m.CommandAnswer:
        profile = self._profile(call)
        connector_id = self._connector(profile, call.path("connector_id"))
        enabled = call.body.enabled
        result = await self.ocpp.commands.change_availability(
            profile.id, connector_id, operative=enabled
        )
        await set_connector_enabled(self.db, profile.id, connector_id, enabled=enabled)
        self.payments.forget_view()  # offers see it at once
        self._agent(profile.id).set_enabled(connector_id, enabled)
        call.audit_detail.update(
            connector=connector_id, enabled=enabled, charger=result.status.value
        )
        return m.CommandAnswer(status=result.status.value, detail=result.detail)

    async def unlock(self, call: Call) -> m.CommandAnswer:
        profile = self._profile(call)
        connector_id = self._connector(profile, str(call.body.connector_id))
        result = await self.ocpp.commands.unlock(profile.id, connector_id)
        call.audit_detail.update(connector=connector_id, charger=result.status.value)
        return m.CommandAnswer(status=result.status.value, detail=result.detail)

    async def reset(self, call: Call) -> m.CommandAnswer:
        profile = self._profile(call)
        result = await self.ocpp.commands.reset(profile.id, hard=call.body.kind == "hard")
        call.audit_detail.update(kind=call.body.kind, charger=result.status.value)
        return m.CommandAnswer(status=result.status.value, detail=result.detail)

    async def trigger_status(self, call: Call) -> m.CommandAnswer:
        profile = self._profile(call)
        connector_id = call.body.connector_id
        if connector_id is not None:
            self._connector(profile, str(connector_id))
        result = await self.ocpp.commands.trigger_status(profile.id, connector_id)
        call.audit_detail.update(connector=connector_id, charger=result.status.value)
        return m.CommandAnswer(status=result.status.value, detail=result.detail)

    async def remote_stop(self, call: Call) -> m.CommandAnswer:
        profile = self._profile(call)
        connector_id = self._connector(profile, str(call.body.connector_id))
        running = await self._running(profile.id)
        session_id = running.get((profile.id, connector_id))
        if session_id is None:
            raise ApiError(409, "conflict", f"no session is running on connector {connector_id}")
        await self._stop(session_id)
        call.audit_detail.update(connector=connector_id, session=session_id)
        return m.CommandAnswer(status="Accepted", detail="stopping", session_id=session_id)

    async def ocpp_log(self, call: Call) -> m.OcppLog:
        profile = self._profile(call)
        limit = call.query.limit
        frames = self.ocpp.message_log(profile.id)[-limit:]
        return m.OcppLog(
            charger_id=profile.id,
            frames=[
                m.OcppFrame(at=f.at, direction=str(f.direction), frame=f.frame) for f in frames
            ],
        )

    def _sticker_target(self, call: Call) -> tuple[ProfileConfig, int, str]:
        """The charger, the connector and what its QR code holds (its LUD-01 fallback URL)."""
        profile = self._profile(call)
        connector_id = self._connector(profile, str(call.query.connector))
        url = connector_fallback_url(self.config.server.public_url, profile.id, connector_id)
        return profile, connector_id, url

    async def sticker_svg(self, call: Call) -> web.Response:
        profile, connector_id, url = self._sticker_target(call)
        tariff = self.payments.tariff_for(profile)
        svg = sticker_svg(profile, connector_id, url, tariff)
        return web.Response(text=svg, content_type="image/svg+xml")

    async def sticker_pdf(self, call: Call) -> web.Response:
        profile, connector_id, url = self._sticker_target(call)
        pdf = sticker_pdf(profile, connector_id, url, self.payments.tariff_for(profile))
        return web.Response(
            body=pdf,
            content_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{profile.id}-{connector_id}.pdf"'},
        )

    # --- tariffs ---------------------------------------------------------------------------

    def _tariff_out(
        self, charger_id: str, tariff: Tariff, power_w: int, saved: bool
    ) -> m.TariffOut:
        return m.TariffOut(
            charger_id=charger_id,
            per_kwh_sat=_sat(tariff.energy_msat_per_kwh),
            per_minute_sat=_sat(tariff.time_msat_per_minute),
            session_fee_sat=_sat(tariff.session_fee_msat),
            min_prepay_sat=_sat(tariff.min_prepay_msat),
            max_prepay_sat=_sat(tariff.max_prepay_msat),
            energy_msat_per_kwh=tariff.energy_msat_per_kwh,
            time_msat_per_minute=tariff.time_msat_per_minute,
            session_fee_msat=tariff.session_fee_msat,
            min_prepay_msat=tariff.min_prepay_msat,
            max_prepay_msat=tariff.max_prepay_msat,
            quotes=quotes(tariff, power_w),
            saved=saved,
        )

    @staticmethod
    def _power_w(profile: ProfileConfig) -> int:
        return max(c.max_power_w for c in profile.connectors)

    async def get_tariff(self, call: Call) -> m.TariffOut:
        profile = self._profile(call)
        tariff = self.payments.tariff_for(profile)
        return self._tariff_out(profile.id, tariff, self._power_w(profile), saved=True)

    def _tariff_config(self, body: m.TariffIn) -> TariffConfig:
        try:
            return TariffConfig(**body.model_dump())
        except ValidationError as exc:
            raise ApiError(400, "bad_request", f"tariff: {validation_text(exc)}") from None

    def _patched_tariff(self, profile: ProfileConfig, patch: m.TariffPatch) -> TariffConfig:
        """The tariff in force with the fields ``patch`` names replaced (the rest unchanged)."""
        current = self.payments.tariff_for(profile)
        fields = {
            "per_kwh_sat": current.energy_msat_per_kwh,
            "per_minute_sat": current.time_msat_per_minute,
            "session_fee_sat": current.session_fee_msat,
            "min_prepay_sat": current.min_prepay_msat,
            "max_prepay_sat": current.max_prepay_msat,
        }
        merged = {name: Decimal(msat) / 1000 for name, msat in fields.items()}
        merged.update(patch.model_dump(exclude_none=True))
        try:
            return TariffConfig(**merged)
        except ValidationError as exc:
            raise ApiError(400, "bad_request", f"tariff: {validation_text(exc)}") from None

    async def preview_tariff(self, call: Call) -> m.TariffOut:
        profile = self._profile(call)
        tariff = self._patched_tariff(profile, call.body).to_tariff()
        return self._tariff_out(profile.id, tariff, self._power_w(profile), saved=False)

    async def put_tariff(self, call: Call) -> m.TariffOut:
        profile = self._profile(call)
        config = self._patched_tariff(profile, call.body)
        try:
            written = self.files.write_tariff(profile.id, config)
        except ConfigError as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        if self.apply_profile is not None:
            await self.apply_profile(written)
        tariff = config.to_tariff()
        await self.payments.tariffs.set(
            self.config.profile(profile.id), tariff, source=f"api:{call.principal.actor}"
        )
        self.payments.forget_view()
        self._agent(profile.id).mark_dirty()  # the status event shows the new price
        call.audit_detail.update(
            energy_msat_per_kwh=tariff.energy_msat_per_kwh,
            time_msat_per_minute=tariff.time_msat_per_minute,
            session_fee_msat=tariff.session_fee_msat,
        )
        return self._tariff_out(profile.id, tariff, self._power_w(profile), saved=True)

    # --- sessions --------------------------------------------------------------------------

    async def list_sessions(self, call: Call) -> m.SessionPage | web.Response:
        query: m.SessionQuery = call.query
        page = queries.page_sessions(
            self.db,
            charger=query.charger,
            state=query.state.value if query.state else None,
            since=query.since,
            until=query.until,
            limit=query.limit,
            cursor=query.cursor,
        )
        return await _paged(
            page, session_out, m.SessionOut, m.SessionPage, query.format, "sessions"
        )

    async def get_session(self, call: Call) -> m.SessionDetail:
        row = await self._session_row(call.path("session_id"))
        base = session_out(row)
        return m.SessionDetail(
            **base.model_dump(),
            energy_msat_per_kwh=row_to_session(row).tariff.energy_msat_per_kwh,
            payments=[_payment_out(p) for p in await queries.payments_of(self.db, row.id)],
            refunds=[_refund_out(r) for r in await queries.refunds_of(self.db, row.id)],
        )

    async def _stop(self, session_id: str) -> None:
        try:
            session = await self.sessions.get(session_id)
        except SessionNotFound:
            raise ApiError(404, "not_found", "there is no such session") from None
        if session.state not in _STOPPABLE:
            raise ApiError(409, "conflict", f"the session is {session.state.value}; not stoppable")
        try:
            await self.sessions.apply(session_id, StopRequested(StopReason.ADMIN))
        except IllegalTransition:
            raise ApiError(409, "conflict", "the session can no longer be stopped") from None

    async def stop_session(self, call: Call) -> m.SessionOut:
        session_id = call.path("session_id")
        await self._stop(session_id)
        return session_out(await self._session_row(session_id))

    # --- ledger ----------------------------------------------------------------------------

    async def ledger_payments(self, call: Call) -> m.PaymentPage | web.Response:
        query: m.LedgerQuery = call.query
        page = queries.page_payments(
            self.db, since=query.since, until=query.until, limit=query.limit, cursor=query.cursor
        )
        return await _paged(
            page, _payment_out, m.PaymentOut, m.PaymentPage, query.format, "payments"
        )

    async def ledger_refunds(self, call: Call) -> m.RefundPage | web.Response:
        query: m.LedgerQuery = call.query
        page = queries.page_refunds(
            self.db, since=query.since, until=query.until, limit=query.limit, cursor=query.cursor
        )
        return await _paged(page, _refund_out, m.RefundOut, m.RefundPage, query.format, "refunds")

    async def ledger_totals(self, call: Call) -> m.LedgerTotals:
        query: m.TotalsQuery = call.query
        totals = await queries.period_totals(
            self.db, period=query.period, since=query.since, until=query.until
        )
        return m.LedgerTotals(
            period=query.period,
            totals=[
                m.PeriodTotal(
                    period=period,
                    sessions=entry.sessions,
                    paid_msat=entry.paid_msat,
                    paid_sat=_sat(entry.paid_msat),
                    refunded_msat=entry.refunded_msat,
                    refunded_sat=_sat(entry.refunded_msat),
                    refund_fees_msat=entry.refund_fees_msat,
                    energy_wh=entry.energy_wh,
                    energy_kwh=_kwh(entry.energy_wh),
                )
                for period, entry in totals.items()
            ],
        )

    # --- nostr -----------------------------------------------------------------------------

    async def nostr(self, call: Call) -> m.NostrOverview:
        pool = self.agents.pool
        try:
            states = await pool.states()
        except Exception as exc:  # a pool not started yet reads as "no states"
            log.info("api: relay states unavailable: %s", exc)
            states = {}
        relays = sorted(set(pool.read_relays) | set(pool.write_relays) | set(states))
        chargers = []
        for profile in self.config.profiles:
            agent = self.agents.supervisor.get(profile.id)
            if agent is None:
                continue
            chargers.append(
                m.NostrCharger(
                    charger_id=profile.id,
                    pubkey=agent.pubkey,
                    npub=encode_npub(agent.pubkey),
                    last_status=_publish_answer(agent.last_status),
                )
            )
        return m.NostrOverview(
            relays=[
                m.RelayOut(
                    url=url,
                    state=states.get(url, "unknown"),
                    read=url in pool.read_relays,
                    write=url in pool.write_relays,
                )
                for url in relays
            ],
            chargers=chargers,
        )

    async def status_event(self, call: Call) -> m.StatusEventOut:
        profile = self._profile(call)
        agent = self._agent(profile.id)
        try:
            events = await self.agents.pool.fetch(
                [{"kinds": [STATUS_KIND], "authors": [agent.pubkey], "limit": 1}], timeout_s=3.0
            )
        except Exception as exc:  # whatever the relay client raises is a 503
            log.warning("api: relays unavailable for %s: %s", profile.id, exc)
            raise ApiError(503, "relays_unavailable", "no relay answered; try again") from None
        newest = max(events, key=lambda e: e.created_at, default=None)
        return m.StatusEventOut(
            charger_id=profile.id,
            npub=encode_npub(agent.pubkey),
            event=newest.to_dict() if newest is not None else None,
        )

    async def publish_status(self, call: Call) -> m.PublishAnswer:
        profile = self._profile(call)
        agent = self._agent(profile.id)
        try:
            result: PublishResult = await agent.call(agent.publish_status, timeout_s=30.0)
        except RetryLater as exc:
            raise ApiError(503, "agent_busy", str(exc)) from None
        call.audit_detail.update(event=result.event_id, accepted=result.accepted)
        answer = _publish_answer(result)
        assert answer is not None
        return answer

    # --- audit -----------------------------------------------------------------------------

    async def audit_log(self, call: Call) -> m.AuditPage:
        rows = await queries.audit_entries(self.db, call.query.limit)
        return m.AuditPage(
            items=[
                m.AuditEntry(
                    at=row.at,
                    actor=row.actor,
                    action=row.action,
                    target=row.target,
                    detail=row.detail,
                )
                for row in rows
            ]
        )

    # --- the table -------------------------------------------------------------------------

    def endpoints(self) -> list[Endpoint]:
        """Every operation of the API."""
        e = Endpoint
        return [
            e("GET", "/me", self.me, "Who the caller is", "auth", m.Me, not_found=False),
            e(
                "GET",
                "/lightning",
                self.lightning,
                "The lightning node: up, or down since when and why (payments are refused "
                "while it is down)",
                "lightning",
                m.LightningOut,
                not_found=False,
            ),
            e(
                "GET",
                "/chargers",
                self.list_chargers,
                "List chargers with live connector state",
                "chargers",
                m.ChargerList,
                not_found=False,
            ),
            e(
                "GET",
                "/pending-chargers",
                self.pending_chargers,
                "Unknown chargers that connected and wait for approval (ocpp.auto_register); "
                "approve one by creating it with PUT /chargers/{charger_id}",
                "chargers",
                m.PendingList,
                not_found=False,
            ),
            e(
                "POST",
                "/pending-chargers/{charger_id}/dismiss",
                self.dismiss_pending,
                "Forget a waiting charger and close its connection",
                "chargers",
                m.CommandAnswer,
                action="charger.dismiss",
                target="charger_id",
            ),
            e(
                "GET",
                "/chargers/{charger_id}",
                self.get_charger,
                "One charger in detail",
                "chargers",
                m.ChargerDetail,
            ),
            e(
                "PUT",
                "/chargers/{charger_id}",
                self.put_charger,
                "Create or update a charger from a profile",
                "chargers",
                m.ProfileWritten,
                body=m.ProfileIn,
                action="charger.write",
                target="charger_id",
                not_found=False,
                conflict=True,
            ),
            e(
                "POST",
                "/chargers/{charger_id}/ocpp-password",
                self.new_ocpp_password,
                "Give the charger a new OCPP password (returned once; its next connection "
                "needs it, the live one stays)",
                "chargers",
                m.OcppPasswordOut,
                action="charger.ocpp_password",
                target="charger_id",
            ),
            e(
                "POST",
                "/chargers/{charger_id}/connectors/{connector_id}/availability",
                self.set_availability,
                "Enable or disable a connector for new sessions",
                "chargers",
                m.CommandAnswer,
                body=m.Availability,
                action="connector.availability",
                target="charger_id",
            ),
            e(
                "POST",
                "/chargers/{charger_id}/commands/unlock",
                self.unlock,
                "UnlockConnector",
                "chargers",
                m.CommandAnswer,
                body=m.UnlockIn,
                action="charger.unlock",
                target="charger_id",
            ),
            e(
                "POST",
                "/chargers/{charger_id}/commands/reset",
                self.reset,
                "Reset (soft or hard)",
                "chargers",
                m.CommandAnswer,
                body=m.ResetIn,
                action="charger.reset",
                target="charger_id",
            ),
            e(
                "POST",
                "/chargers/{charger_id}/commands/trigger-status",
                self.trigger_status,
                "TriggerMessage StatusNotification",
                "chargers",
                m.CommandAnswer,
                body=m.TriggerIn,
                action="charger.trigger_status",
                target="charger_id",
            ),
            e(
                "POST",
                "/chargers/{charger_id}/commands/remote-stop",
                self.remote_stop,
                "Stop the session running on a connector (billed and refunded as usual)",
                "chargers",
                m.CommandAnswer,
                body=m.UnlockIn,
                action="charger.remote_stop",
                target="charger_id",
                conflict=True,
            ),
            e(
                "GET",
                "/chargers/{charger_id}/ocpp-log",
                self.ocpp_log,
                "The charger's recent OCPP frames",
                "chargers",
                m.OcppLog,
                query=m.LogQuery,
            ),
            e(
                "GET",
                "/chargers/{charger_id}/sticker.svg",
                self.sticker_svg,
                "The printable QR sticker of a connector (SVG)",
                "chargers",
                query=m.StickerQuery,
                media=("image/svg+xml",),
            ),
            e(
                "GET",
                "/chargers/{charger_id}/sticker.pdf",
                self.sticker_pdf,
                "The printable QR sticker of a connector (PDF)",
                "chargers",
                query=m.StickerQuery,
                media=("application/pdf",),
            ),
            e(
                "GET",
                "/chargers/{charger_id}/tariff",
                self.get_tariff,
                "The tariff new sessions get, with what 10 and 30 kWh cost",
                "tariffs",
                m.TariffOut,
            ),
            e(
                "PUT",
                "/chargers/{charger_id}/tariff",
                self.put_tariff,
                "Change the tariff: the prices given replace those in force, the rest stay "
                "(saved to the profile file; new sessions get it at once)",
                "tariffs",
                m.TariffOut,
                body=m.TariffPatch,
                action="tariff.set",
                target="charger_id",
            ),
            e(
                "POST",
                "/chargers/{charger_id}/tariff/preview",
                self.preview_tariff,
                "What a driver would pay for 10 and 30 kWh under the tariff in force with the "
                "prices given replaced (changes nothing)",
                "tariffs",
                m.TariffOut,
                body=m.TariffPatch,
            ),
            e(
                "GET",
                "/sessions",
                self.list_sessions,
                "Sessions, newest first, with filters",
                "sessions",
                m.SessionPage,
                query=m.SessionQuery,
                not_found=False,
                media=("application/json", "text/csv"),
            ),
            e(
                "GET",
                "/sessions/{session_id}",
                self.get_session,
                "One session with its payments and refunds",
                "sessions",
                m.SessionDetail,
            ),
            e(
                "POST",
                "/sessions/{session_id}/stop",
                self.stop_session,
                "Stop a session (billed and refunded as usual)",
                "sessions",
                m.SessionOut,
                action="session.stop",
                target="session_id",
                conflict=True,
            ),
            e(
                "GET",
                "/ledger/payments",
                self.ledger_payments,
                "Settled payments, newest first",
                "ledger",
                m.PaymentPage,
                query=m.LedgerQuery,
                not_found=False,
                media=("application/json", "text/csv"),
            ),
            e(
                "GET",
                "/ledger/refunds",
                self.ledger_refunds,
                "Refunds, newest first",
                "ledger",
                m.RefundPage,
                query=m.LedgerQuery,
                not_found=False,
                media=("application/json", "text/csv"),
            ),
            e(
                "GET",
                "/ledger/totals",
                self.ledger_totals,
                "Money in, out and energy per UTC day or month",
                "ledger",
                m.LedgerTotals,
                query=m.TotalsQuery,
                not_found=False,
            ),
            e(
                "GET",
                "/nostr",
                self.nostr,
                "Relays and their state; each charger's npub",
                "nostr",
                m.NostrOverview,
                not_found=False,
            ),
            e(
                "GET",
                "/nostr/chargers/{charger_id}/status-event",
                self.status_event,
                "The charger's newest status event as the relays hold it",
                "nostr",
                m.StatusEventOut,
            ),
            e(
                "POST",
                "/nostr/chargers/{charger_id}/publish-status",
                self.publish_status,
                "Publish the charger's status event now",
                "nostr",
                m.PublishAnswer,
                action="nostr.publish_status",
                target="charger_id",
            ),
            e(
                "GET",
                "/audit",
                self.audit_log,
                "Recent operator actions, newest first",
                "audit",
                m.AuditPage,
                query=m.AuditQuery,
                not_found=False,
            ),
        ]
