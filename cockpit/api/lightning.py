"""``/lightning``: the lightning node, up or down since when and why."""

from __future__ import annotations

from typing import Literal

from cockpit import models as m
from cockpit.api.context import ApiContext
from cockpit.endpoint import ApiError, Call, Endpoint

__all__ = ["LightningResource"]


class LightningResource:
    """The lightning node's reachability, as the node watch sees it."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def lightning(self, call: Call) -> m.LightningOut:
        """``GET /lightning``."""
        node = self.ctx.node
        if node is None:
            raise ApiError(503, "unavailable", "the lightning node is not watched")
        state = node.state
        info = state.info
        up: Literal["up", "down", "unknown"] = (
            "unknown" if state.up is None else "up" if state.up else "down"
        )
        return m.LightningOut(
            backend=node.backend.name,
            state=up,
            since=state.since,
            reason=state.reason,
            checked_at=state.checked_at,
            next_retry_s=node.next_retry_s if state.up is False else None,
            alias=info.alias if info else None,
            pubkey=info.pubkey if info else None,
            network=info.network if info else None,
            real_money=info.real_money if info else None,
            notes=list(info.notes) if info else [],
        )

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        return [
            Endpoint(
                "GET",
                "/lightning",
                self.lightning,
                "The lightning node: up, or down since when and why (payments are refused "
                "while it is down)",
                "lightning",
                m.LightningOut,
                not_found=False,
            )
        ]
