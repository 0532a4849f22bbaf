"""A whole Strom with OCPI on, its simulated charger, and a partner registered with it.

The partner here is the small in-test eMSP of ``tests/ocpi/conftest.py`` (it lists no
RECEIVER endpoints, so nothing is pushed to it): for the Sender interfaces, which the partner
calls. The independent eMSP (py_ocpi) is in ``test_pushes_peer.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ocpi_server import OcpiFrontDoor
from ocpi_server.protocol import authorization_header
from strom_core.roaming import RoamingToken, TokenType
from strom_core.session import State
from strom_services.roaming import RoamingService
from tests.e2e.conftest import CHARGER, Stack, running_stack
from tests.ocpi.conftest import Emsp, serve
from tests.waits import until

OCPI_ON = {
    "STROM_OCPI__ENABLED": "true",
    "STROM_OCPI__COUNTRY_CODE": "DE",
    "STROM_OCPI__PARTY_ID": "STR",
    "STROM_OCPI__BUSINESS_NAME": "Strom OCPI Test",
}
T0 = datetime(2027, 1, 1, tzinfo=UTC)


def ocpi_of(stack: Stack) -> OcpiFrontDoor:
    assert stack.strom.ocpi is not None
    return stack.strom.ocpi


def roaming_of(stack: Stack) -> RoamingService:
    assert stack.strom.roaming is not None
    return stack.strom.roaming


def app_token(partner_id: int, uid: str = "app-user-0001") -> RoamingToken:
    return RoamingToken(
        partner_id=str(partner_id),
        uid=uid,
        type=TokenType.APP_USER,
        contract_id=f"NL-EMP-C{uid[-4:]}",
        last_updated=T0,
    )


async def wait_state(stack: Stack, session_id: str, *states: State) -> None:
    async def reached() -> bool:
        return (await stack.strom.sessions.get(session_id)).state in states

    await until(reached, f"session {session_id} in {states}", within_s=20)


async def charge_for_partner(stack: Stack, partner_id: int, reference: str) -> str:
    """A partner's remote start that charges, is stopped and billed; its session id.

    The cable is unplugged and plugged in again at the end: the connector is free for the next.
    """
    roaming = roaming_of(stack)
    session_id = await roaming.start_for_partner(
        str(partner_id), app_token(partner_id), CHARGER, 1, reference
    )
    await wait_state(stack, session_id, State.CHARGING)
    await until(lambda: stack.charger.connectors[1].meter_wh > 0, "energy flows")
    await roaming.stop_for_partner(str(partner_id), session_id)
    await wait_state(stack, session_id, State.CLOSED)
    # The driver unplugs and the next one plugs in: the connector is free again.
    await stack.charger.unplug(1)
    await stack.charger.plug(1)

    async def free() -> bool:
        return await stack.strom.chargers.status(CHARGER, 1) == "Preparing"

    await until(free, "the connector is free again")
    return session_id


@dataclass
class Cpo:
    """Strom (OCPI on, a charger), the in-test eMSP registered with it, and its token C."""

    stack: Stack
    emsp: Emsp
    partner_id: int
    token: str

    @property
    def base(self) -> str:
        return f"{self.stack.base}/ocpi/2.2.1"

    async def get(self, path: str, token: str | None = "", **params: str) -> httpx.Response:
        """GET ``path`` (below /ocpi/2.2.1, or a whole URL) with the partner's token."""
        used = self.token if token == "" else token
        headers = {} if used is None else {"Authorization": authorization_header(used)}
        url = path if path.startswith("http") else self.base + path
        return await self.stack.http.get(url, headers=headers, params=params or None)

    async def crawl(self, path: str, **params: str) -> tuple[list[Any], list[httpx.Response]]:
        """Every object of a list, following ``Link`` to the end; the objects and the pages."""
        answers = [await self.get(path, **params)]
        while "Link" in answers[-1].headers:
            link = answers[-1].headers["Link"]
            assert link.endswith('>; rel="next"'), link
            answers.append(await self.get(link[1 : link.index(">")]))
        objects = []
        for answer in answers:
            assert answer.status_code == 200, answer.text
            assert answer.json()["status_code"] == 1000, answer.text
            objects += answer.json()["data"]
        return objects, answers


async def register(stack: Stack, emsp: Emsp) -> tuple[int, str]:
    """The eMSP registers with Strom (token A from an offer); its partner id and token C."""
    offer = await ocpi_of(stack).partners.offer("Example eMSP")
    emsp.accepted = {"token-b-of-emsp"}
    answer = await stack.http.post(
        f"{stack.base}/ocpi/2.2.1/credentials",
        json=emsp.credentials("token-b-of-emsp"),
        headers={"Authorization": authorization_header(offer.token_a)},
    )
    assert answer.json()["status_code"] == 1000, answer.text
    return offer.partner.id, answer.json()["data"]["token"]


@asynccontextmanager
async def strom_cpo(folder: Path, env: dict[str, str] | None = None) -> AsyncIterator[Cpo]:
    """Strom with OCPI on and a charger, and the in-test eMSP registered with it."""
    async with running_stack(folder, env={**OCPI_ON, **(env or {})}) as stack:
        emsp = Emsp()
        runner, emsp.base = await serve(emsp.app())
        try:
            partner_id, token = await register(stack, emsp)
            yield Cpo(stack, emsp, partner_id, token)
        finally:
            await runner.cleanup()
