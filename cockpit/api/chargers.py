"""``/chargers`` and ``/pending-chargers``: the chargers, their profiles and OCPP passwords.

A charger is its profile file plus what the database and the OCPP server know of it. Writing
a profile edits the file (:mod:`cockpit.profiles`) and applies it to the running Strom; a new
charger gets a generated OCPP password, shown in that answer only.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from cockpit import models as m
from cockpit.api.answers import boot_out, session_out
from cockpit.api.context import ApiContext
from cockpit.endpoint import ApiError, Call, Endpoint, validation_text
from strom_core.config import (
    ConnectorConfig,
    OcppProfileConfig,
    ProfileConfig,
    StromConfig,
    TariffConfig,
    charger_ocpp_url,
    require_ocpp_password,
)
from strom_core.errors import ConfigError
from strom_core.ports.chargers import ChargerLink
from strom_core.ports.station import ConnectionView
from strom_nostr.keys import encode_npub

__all__ = ["ChargersResource"]


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


def _tariff_config(body: m.TariffIn) -> TariffConfig:
    try:
        return TariffConfig(**body.model_dump())
    except ValidationError as exc:
        raise ApiError(400, "bad_request", f"tariff: {validation_text(exc)}") from None


def _security_events(info: ConnectionView | None) -> list[m.SecurityEventOut]:
    """The charger's kept OCPP 2.0.1 security events, oldest first (none before it connected)."""
    return [
        m.SecurityEventOut(type=e.type, timestamp=e.timestamp, tech_info=e.tech_info)
        for e in (info.security_events if info else ())
    ]


class ChargersResource:
    """The chargers: listed, in detail, written, waiting for approval, their OCPP password."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def _summary(
        self,
        profile: ProfileConfig,
        running: dict[tuple[str, int], str],
        links: dict[str, ChargerLink],
    ) -> dict[str, Any]:
        ctx = self.ctx
        rows = {row.connector_id: row for row in await ctx.chargers.connectors(profile.id)}
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
        pubkey = ctx.agents.pubkey(profile.id)
        info = ctx.station.charger_info(profile.id)
        events = _security_events(info)
        shown = ctx.payments.shown_tariff(profile)  # a price in fiat: its sats now
        return {
            "charger_id": profile.id,
            "name": profile.name,
            # Both from the database, as offers read them (the OCPP server's own view of the
            # connection is ``connection`` in the detail).
            "online": links.get(profile.id) is ChargerLink.ONLINE,
            "link": links.get(profile.id, ChargerLink.OFFLINE).value,
            "connectors": connectors,
            "energy_msat_per_kwh": (
                None if shown.tariff is None else shown.tariff.energy_msat_per_kwh
            ),
            "energy_price": shown.text("per_kwh"),
            "npub": encode_npub(pubkey) if pubkey else None,
            "ocpp_password_set": bool(profile.ocpp.password_hash),
            "allow_unauthenticated": profile.ocpp.allow_unauthenticated,
            "ocpp_version": info.ocpp_version if info else None,
            "security_event_count": len(events),
            "latest_security_event": events[-1] if events else None,
        }

    async def list_chargers(self, call: Call) -> m.ChargerList:
        """``GET /chargers``."""
        running = await self.ctx.running()
        links = await self.ctx.chargers.links()
        items = [
            m.ChargerSummary(**await self._summary(p, running, links))
            for p in self.ctx.config.profiles
        ]
        return m.ChargerList(items=items)

    async def get_charger(self, call: Call) -> m.ChargerDetail:
        """``GET /chargers/{charger_id}``."""
        ctx = self.ctx
        profile = ctx.profile(call)
        running = await ctx.running(profile.id)
        info = ctx.station.charger_info(profile.id)
        counters = ctx.station.counters(profile.id)
        recent, _ = await ctx.reports.page_sessions(
            charger=profile.id, state=None, since=None, until=None, limit=10, cursor=None
        )
        base = ctx.config.server.public_url
        return m.ChargerDetail(
            **await self._summary(profile, running, await ctx.chargers.links()),
            description=profile.description,
            address=profile.location.address,
            lat=profile.location.lat,
            lon=profile.location.lon,
            connection=info.state if info else "never connected",
            connected_since=info.connected_since if info else None,
            boot=boot_out(info.boot if info else None),
            messages_received=counters.received,
            messages_sent=counters.sent,
            pay_urls={str(c.id): f"{base}/lnurlp/{profile.id}/{c.id}" for c in profile.connectors},
            recent_sessions=[session_out(row) for row in recent],
            variables=dict(sorted(info.variables.items())) if info else {},
            security_events=_security_events(info),
        )

    async def pending_chargers(self, call: Call) -> m.PendingList:
        """``GET /pending-chargers``."""
        return m.PendingList(
            items=[
                m.PendingOut(
                    charger_id=p.charger_id,
                    remote_address=p.remote_address,
                    first_seen=p.first_seen,
                    last_seen=p.last_seen,
                    presented_credentials=p.presented_credentials,
                    boot=boot_out(p.boot),
                )
                for p in self.ctx.station.pending_chargers()
            ]
        )

    async def dismiss_pending(self, call: Call) -> m.CommandAnswer:
        """``POST /pending-chargers/{charger_id}/dismiss``."""
        charger_id = call.path("charger_id")
        if not self.ctx.station.forget_pending(charger_id):
            raise ApiError(404, "not_found", f"no charger {charger_id!r} is waiting for approval")
        return m.CommandAnswer(status="Dismissed", detail="its connection is closed")

    async def put_charger(self, call: Call) -> m.ProfileWritten:
        """``PUT /chargers/{charger_id}``."""
        ctx = self.ctx
        charger_id = call.path("charger_id")
        body: m.ProfileIn = call.body
        try:
            ctx.check_quirks(tuple(body.quirks))
        except ValueError as exc:
            raise ApiError(400, "bad_request", f"quirks: {exc}") from None
        config = ctx.config
        try:
            existing: ProfileConfig | None = config.profile(charger_id)
        except KeyError:
            existing = None
        _refuse_case_twin(config, charger_id)
        try:
            profile = ProfileConfig(
                id=charger_id,
                name=body.name,
                description=body.description,
                location=body.location,
                connectors=tuple(ConnectorConfig(**c.model_dump()) for c in body.connectors),
                tariff=_tariff_config(body.tariff),
                branding=body.branding,
                ocpp=OcppProfileConfig(quirks=tuple(body.quirks)),
            )
        except ValidationError as exc:
            raise ApiError(400, "bad_request", f"profile: {validation_text(exc)}") from None
        # A new charger gets a generated OCPP password, shown in this answer only.
        created = existing is None
        new = ctx.station.password_key.new_password() if created else None
        files = ctx.files
        try:
            written = files.write_profile(
                profile,
                password_hash=new.password_hash if new else None,
                check=lambda written: require_ocpp_password(ctx.config, written),
            )
        except ConfigError as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
        applied, restart = await ctx.apply(written)
        if not restart:
            # The tariff sent is the operator's newest decision, even where it equals the file's
            # (a price set by DM since is replaced).
            await ctx.payments.tariffs.set(
                written, written.tariff.to_tariff(), source=f"api:{call.principal.actor}"
            )
        call.audit_detail.update(
            created=created, restart_required=restart, ocpp_password_generated=new is not None
        )
        return m.ProfileWritten(
            charger_id=charger_id,
            created=created,
            file=files.path(charger_id).name,
            applied_now=applied,
            restart_required=restart,
            ocpp_password=new.key if new else None,
            ocpp_password_hex=new.key_hex if new else None,
            ocpp_url=charger_ocpp_url(ctx.config, charger_id),
        )

    async def new_ocpp_password(self, call: Call) -> m.OcppPasswordOut:
        """``POST /chargers/{charger_id}/ocpp-password``."""
        ctx = self.ctx
        profile = ctx.profile(call)
        new = ctx.station.password_key.new_password()
        try:
            written = ctx.files.write_password_hash(profile.id, new.password_hash)
        except ConfigError as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        _, restart = await ctx.apply(written)
        call.audit_detail.update(restart_required=restart)
        return m.OcppPasswordOut(
            charger_id=profile.id,
            ocpp_password=new.key,
            ocpp_password_hex=new.key_hex,
            restart_required=restart,
            ocpp_url=charger_ocpp_url(ctx.config, profile.id),
        )

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        e = Endpoint
        return [
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
        ]
