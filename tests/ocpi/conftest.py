"""Strom's OCPI server on 127.0.0.1 over a real database, and a minimal eMSP party beside it.

The eMSP here is small and written for these tests (a later peer process replaces it in the
end-to-end tests): it serves versions, 2.2.1 details and credentials, accepts the tokens it
issued or received, and records every request it got, so tests can see what Strom sent.

``ocpi_emsp``: the independent eMSP (py_ocpi in its own venv and process, see
``tests/peers/ocpi_emsp.py``), one per test module: it starts in about a second, and a module's
tests can share it (each registers afresh, or offers a new token A).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from ocpi_server.client import OcpiClient
from ocpi_server.partners import Partners
from ocpi_server.protocol import authorization_header, token_candidates
from ocpi_server.server import OcpiServer
from strom_core.config import LiveConfig, OcpiConfig, ServerConfig, StromConfig
from strom_storage.db import Database
from strom_storage.ocpi import OcpiStore
from strom_storage.sealing import Sealer
from tests.conftest import peer_missing
from tests.peers.ocpi import PeerUnavailable
from tests.peers.ocpi_emsp import OcpiEmspPeer
from tests.storage.conftest import db  # noqa: F401 - the storage tests' database, both backends

MASTER_KEY = "00" * 32


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@dataclass
class Emsp:
    """A minimal eMSP: versions, details, credentials; what it received, in ``seen``."""

    base: str = ""
    accepted: set[str] = field(default_factory=set)  # tokens others may use on it
    strom_token: str | None = None  # the token it uses on Strom
    versions: list[str] = field(default_factory=lambda: ["2.1.1", "2.2.1"])
    seen: list[web.Request] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    called_back: list[int] = field(default_factory=list)  # Strom's versions answers, by status

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/emsp/versions", self._versions)
        app.router.add_get("/emsp/2.2.1", self._details)
        app.router.add_route("*", "/emsp/2.2.1/credentials", self._credentials)
        return app

    def credentials(self, token: str) -> dict[str, Any]:
        return {
            "token": token,
            "url": f"{self.base}/emsp/versions",
            "roles": [
                {
                    "role": "EMSP",
                    "party_id": "EMS",
                    "country_code": "NL",
                    "business_details": {"name": "Example eMSP"},
                }
            ],
        }

    def _ok(self, data: Any) -> web.Response:
        body = {"status_code": 1000, "timestamp": "2027-01-10T10:00:00Z"}
        if data is not None:
            body["data"] = data
        return web.json_response(body)

    def _authorised(self, request: web.Request) -> bool:
        self.seen.append(request)
        return any(
            t in self.accepted for t in token_candidates(request.headers.get("Authorization"))
        )

    async def _versions(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"status_code": 2000, "timestamp": "x"}, status=401)
        return self._ok([{"version": v, "url": f"{self.base}/emsp/{v}"} for v in self.versions])

    async def _details(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"status_code": 2000, "timestamp": "x"}, status=401)
        url = f"{self.base}/emsp/2.2.1/credentials"
        return self._ok(
            {
                "version": "2.2.1",
                "endpoints": [
                    {"identifier": "credentials", "role": "SENDER", "url": url},
                    {"identifier": "tokens", "role": "SENDER", "url": f"{self.base}/emsp/tokens"},
                ],
            }
        )

    async def _credentials(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"status_code": 2000, "timestamp": "x"}, status=401)
        if request.method == "DELETE":
            self.strom_token = None
            return self._ok(None)
        body = await request.json()
        self.bodies.append(body)
        # Like any Receiver, it fetches the Sender's versions with the token it was given.
        async with httpx.AsyncClient() as http:
            answer = await http.get(
                body["url"], headers={"Authorization": authorization_header(body["token"])}
            )
        self.called_back.append(answer.status_code)
        self.strom_token = body["token"]
        token_c = secrets.token_urlsafe(16)
        self.accepted = {token_c}  # token A (or the old C) is no longer good
        return self._ok(self.credentials(token_c))


@dataclass
class Cpo:
    """Strom's OCPI side: server, partners (the port), store, client; and the eMSP."""

    server: OcpiServer
    partners: Partners
    store: OcpiStore
    client: OcpiClient
    base: str
    emsp: Emsp
    http: httpx.AsyncClient

    async def call(
        self, method: str, path: str, token: str | None, json: Any = None, **kw: Any
    ) -> httpx.Response:
        headers = {} if token is None else {"Authorization": authorization_header(token)}
        headers.update(kw.pop("headers", {}))
        url = path if path.startswith("http") else self.base + path
        return await self.http.request(method, url, json=json, headers=headers, **kw)


def config(public_url: str) -> StromConfig:
    return StromConfig(
        server=ServerConfig(public_url=public_url),
        ocpi=OcpiConfig(
            enabled=True, country_code="DE", party_id="STR", business_name="Strom Test CPO"
        ),
    )


@pytest.fixture
async def cpo(db: Database) -> AsyncIterator[Cpo]:  # noqa: F811
    live = LiveConfig(config("http://127.0.0.1:1"))
    store = OcpiStore(db)
    server = OcpiServer(live, store)
    client = OcpiClient(store, timeout_s=5.0)
    partners = Partners(server, store, client, Sealer(MASTER_KEY, purpose="ocpi"))
    root = web.Application()
    root.add_subapp("/ocpi", server.app())
    runner, base = await serve(root)
    live.replace(config(base))
    emsp = Emsp()
    emsp_runner, emsp.base = await serve(emsp.app())
    async with httpx.AsyncClient(timeout=10.0) as http:
        yield Cpo(server, partners, store, client, base, emsp, http)
    await client.aclose()
    await emsp_runner.cleanup()
    await runner.cleanup()


@pytest.fixture(scope="module")
def ocpi_emsp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OcpiEmspPeer]:
    """A running py_ocpi eMSP on 127.0.0.1, driven through its control API."""
    try:
        peer = OcpiEmspPeer.start(tmp_path_factory.mktemp("ocpi-emsp"))
    except PeerUnavailable as exc:
        peer_missing(f"the OCPI peer (extrawest-ocpi) is not available: {exc}")
        raise  # peer_missing skips or fails; never reached
    try:
        yield peer
    finally:
        peer.stop()
