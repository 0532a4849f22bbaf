"""``/audit``: what operators did, newest first; and the writer of those rows."""

from __future__ import annotations

import logging
from typing import Any

from cockpit import models as m
from cockpit.api.context import ApiContext
from cockpit.auth import Principal
from cockpit.endpoint import Call, Endpoint
from strom_storage.agents import audit

__all__ = ["AuditResource"]

log = logging.getLogger(__name__)


class AuditResource:
    """The audit log: one row per mutating call, with who made it and the outcome."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def write(
        self, principal: Principal, action: str, target: str, detail: dict[str, Any]
    ) -> None:
        """One audit row per mutating call, with who made it."""
        await audit(
            self.ctx.db,
            actor=principal.actor,
            action=f"api.{action}",
            target=target,
            detail=detail,
            now=self.ctx.clock.unix(),
        )
        log.info("api: %s %s %s %s", principal.actor, action, target, detail)

    async def audit_log(self, call: Call) -> m.AuditPage:
        """``GET /audit``."""
        rows = await self.ctx.reports.audit_entries(call.query.limit)
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

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        return [
            Endpoint(
                "GET",
                "/audit",
                self.audit_log,
                "Recent operator actions, newest first",
                "audit",
                m.AuditPage,
                query=m.AuditQuery,
                not_found=False,
            )
        ]
