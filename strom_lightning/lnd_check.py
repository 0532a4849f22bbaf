"""Whether Strom's LND macaroon can do what Strom asks of the node (for ``strom doctor``).

LND answers ``POST /v1/macaroon/checkpermissions`` (``CheckMacaroonPermissions``, LND 0.13 and
newer) with ``{"valid": true}`` when the macaroon it is given holds the permissions named
for the method, and with gRPC InvalidArgument (HTTP 400) and the reason when it does not. The
call itself needs the permission ``macaroon:read``; a macaroon without it (an invoice
macaroon, for instance) gets a refusal of the call, which says nothing about the rest: then
the permissions are reported as not checked.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx

from strom_lightning._http import pinned_ssl_context
from strom_lightning.lnd_credentials import LndCredentials

__all__ = ["NEEDED", "Needed", "PermissionCheck", "check_permissions"]


@dataclass(frozen=True, slots=True)
class Needed:
    """One call Strom makes on LND and the permission it takes."""

    method: str
    entity: str
    action: str
    purpose: str

    @property
    def permission(self) -> str:
        """As LND names it, ``entity:action``."""
        return f"{self.entity}:{self.action}"


NEEDED = (
    Needed("/lnrpc.Lightning/GetInfo", "info", "read", "checking the node"),
    Needed("/lnrpc.Lightning/AddInvoice", "invoices", "write", "selling charging (invoices)"),
    Needed("/lnrpc.Lightning/SubscribeInvoices", "invoices", "read", "seeing payments arrive"),
    Needed("/routerrpc.Router/SendPaymentV2", "offchain", "write", "paying refunds"),
    Needed("/routerrpc.Router/TrackPaymentV2", "offchain", "read", "following refunds"),
)
"""What Strom's LND backend calls (see :mod:`strom_lightning.lnd`)."""


@dataclass(frozen=True, slots=True)
class PermissionCheck:
    """The answer: the permissions missing, or why they could not be checked."""

    missing: tuple[Needed, ...]
    unchecked: str | None = None


async def check_permissions(
    credentials: LndCredentials, *, timeout_s: float = 10.0
) -> PermissionCheck:
    """Ask LND whether the macaroon holds every permission in :data:`NEEDED`.

    Raises:
        httpx.HTTPError: the node cannot be reached.
    """
    base_url = credentials.base_url
    if not base_url.startswith(("https://", "http://")):
        base_url = f"https://{base_url}"
    verify = (
        pinned_ssl_context(credentials.cert_pem, what="LND tls cert")
        if credentials.cert_pem
        else True
    )
    macaroon = base64.b64encode(credentials.macaroon).decode("ascii")
    missing: list[Needed] = []
    async with httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        headers={"Grpc-Metadata-macaroon": credentials.macaroon.hex()},
        verify=verify,
        timeout=timeout_s,
    ) as client:
        for needed in NEEDED:
            body = {
                "macaroon": macaroon,
                "permissions": [{"entity": needed.entity, "action": needed.action}],
                "fullMethod": needed.method,
            }
            response = await client.post("/v1/macaroon/checkpermissions", json=body)
            if response.status_code == httpx.codes.OK and response.json().get("valid") is True:
                continue
            if response.status_code == httpx.codes.BAD_REQUEST:
                missing.append(needed)
                continue
            return PermissionCheck((), unchecked=_reason(response))
    return PermissionCheck(tuple(missing))


def _reason(response: httpx.Response) -> str:
    try:
        message = response.json().get("message")
    except ValueError:
        message = None
    return f"HTTP {response.status_code}: {message or response.text[:200]}"
