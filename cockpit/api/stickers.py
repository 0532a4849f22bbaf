"""``/chargers/{charger_id}/sticker.svg|pdf``: a connector's printable QR sticker."""

from __future__ import annotations

from aiohttp import web

from cockpit import models as m
from cockpit.api.context import ApiContext
from cockpit.endpoint import Call, Endpoint
from cockpit.sticker import sticker_pdf, sticker_svg
from strom_core.config import ProfileConfig
from strom_web.lnurl import connector_fallback_url

__all__ = ["StickersResource"]


class StickersResource:
    """The stickers: the connector's LUD-01 fallback URL as a QR code, name and price."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def _target(self, call: Call) -> tuple[ProfileConfig, int, str]:
        """The charger, the connector and what its QR code holds (its LUD-01 fallback URL)."""
        ctx = self.ctx
        profile = ctx.profile(call)
        connector_id = ctx.connector(profile, str(call.query.connector))
        url = connector_fallback_url(ctx.config.server.public_url, profile.id, connector_id)
        return profile, connector_id, url

    async def sticker_svg(self, call: Call) -> web.Response:
        """``GET /chargers/{charger_id}/sticker.svg``."""
        profile, connector_id, url = self._target(call)
        svg = sticker_svg(profile, connector_id, url, self.ctx.payments.shown_tariff(profile))
        return web.Response(text=svg, content_type="image/svg+xml")

    async def sticker_pdf(self, call: Call) -> web.Response:
        """``GET /chargers/{charger_id}/sticker.pdf``."""
        profile, connector_id, url = self._target(call)
        pdf = sticker_pdf(profile, connector_id, url, self.ctx.payments.shown_tariff(profile))
        return web.Response(
            body=pdf,
            content_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{profile.id}-{connector_id}.pdf"'},
        )

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        e = Endpoint
        return [
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
        ]
