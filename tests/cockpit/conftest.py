"""A running Strom (simulated charger, fake lightning) with an admin npub and API tokens."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cockpit.tokens import Scope
from ocpp_server import SimulatorOptions
from ocpp_server.simulator import SimulatedCharger, simulated_charge_point
from strom_nostr.event import sign_event
from strom_nostr.http_auth import HTTP_AUTH_KIND, http_auth_tags
from strom_nostr.keys import encode_npub, generate_secret_key, public_key_hex
from tests.e2e.conftest import CHARGER, Stack, running_stack

ADMIN_SECRET = bytes.fromhex("11" * 32)
STRANGER_SECRET = bytes.fromhex("22" * 32)


def nip98(
    secret: bytes,
    url: str,
    method: str,
    body: bytes | None = None,
    *,
    created_at: int | None = None,
    tags: list[list[str]] | None = None,
    kind: int = HTTP_AUTH_KIND,
) -> str:
    """An ``Authorization: Nostr …`` header value signed by ``secret``."""
    event = sign_event(
        secret,
        kind,
        tags if tags is not None else http_auth_tags(url, method, body),
        "",
        created_at if created_at is not None else int(time.time()),
    )
    return "Nostr " + base64.b64encode(event.to_json().encode()).decode()


@dataclass
class Cockpit:
    """The stack plus credentials."""

    stack: Stack
    admin_token: str
    read_token: str

    @property
    def base(self) -> str:
        return self.stack.base

    @property
    def api(self) -> str:
        return f"{self.stack.base}/api/v1"

    @property
    def http(self) -> httpx.AsyncClient:
        return self.stack.http

    def bearer(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        content = orjson.dumps(json) if json is not None else None
        return await self.http.request(
            method,
            self.api + path,
            content=content,
            params=params,
            headers=headers if headers is not None else self.bearer(token),
        )

    def signed(
        self, method: str, path: str, body: bytes | None = None, **kw: Any
    ) -> dict[str, str]:
        return {"Authorization": nip98(ADMIN_SECRET, self.api + path, method, body, **kw)}


async def start_cockpit(
    folder: Path, env: dict[str, str] | None = None, *, ocpp_version: str = "1.6"
) -> AsyncIterator[Cockpit]:
    """Strom with its simulated charger (:data:`CHARGER`, speaking ``ocpp_version``), tokens."""
    admin = encode_npub(public_key_hex(ADMIN_SECRET))
    env = {
        "STROM_NOSTR__ADMIN_NPUBS": f'["{admin}"]',
        "STROM_OCPP__AUTO_REGISTER": "true",  # unknown chargers wait for approval
        **(env or {}),
    }
    async with running_stack(folder, env=env, ocpp_version=ocpp_version) as stack:
        tokens = stack.strom.cockpit.tokens
        admin_token = await tokens.create("ops", Scope.ADMIN)
        read_token = await tokens.create("dashboard", Scope.READ)
        yield Cockpit(stack=stack, admin_token=admin_token, read_token=read_token)


@pytest.fixture
async def cockpit(tmp_path: Path) -> AsyncIterator[Cockpit]:
    async for running in start_cockpit(tmp_path):
        yield running


__all__ = [
    "ADMIN_SECRET",
    "CHARGER",
    "STRANGER_SECRET",
    "Cockpit",
    "generate_secret_key",
    "nip98",
    "simulated",
    "start_cockpit",
]


def simulated(
    cockpit: Cockpit,
    charger_id: str,
    *,
    connectors: int = 1,
    password: str | None = None,
    ocpp_version: str = "1.6",
) -> SimulatedCharger:
    """A simulated charger (not yet running) for this Strom's OCPP port."""
    return simulated_charge_point(
        SimulatorOptions(
            url=f"ws://127.0.0.1:{cockpit.stack.strom.ocpp_port}/ocpp",
            charger_id=charger_id,
            password=password,
            connectors=connectors,
            power_kw=Decimal(22),
            speed=120.0,
            plugged=(connectors,),
            reconnect_delay_s=0.1,
            ocpp_version=ocpp_version,
        )
    )
