"""``/me``: who the caller is."""

from __future__ import annotations

from cockpit import models as m
from cockpit.endpoint import Call, Endpoint

__all__ = ["MeResource"]


class MeResource:
    """The caller's identity, scope and sign-in method."""

    async def me(self, call: Call) -> m.Me:
        """``GET /me``."""
        principal = call.principal
        return m.Me(actor=principal.actor, scope=principal.scope.value, method=principal.method)

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        return [Endpoint("GET", "/me", self.me, "Who the caller is", "auth", m.Me, not_found=False)]
