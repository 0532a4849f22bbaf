"""OCPP passwords through the API: a new one on demand; none missing beyond loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from strom.config import load_config
from tests.cockpit.conftest import CHARGER, Cockpit, start_cockpit
from tests.cockpit.test_api import PROFILE
from tests.ocpp.drivers import handshake_status


async def handshake(cockpit: Cockpit, charger_id: str, password: str | None) -> int:
    """The HTTP status of one OCPP handshake (101: admitted)."""
    port = cockpit.stack.strom.ocpp_port
    return await handshake_status(f"ws://127.0.0.1:{port}/ocpp", charger_id, password)


async def test_a_new_password_is_returned_once_and_opens_the_next_connection_at_once(
    cockpit: Cockpit,
) -> None:
    created = await cockpit.call("PUT", "/chargers/cp-rotate", json=PROFILE)
    old = created.json()["ocpp_password"]
    assert await handshake(cockpit, "cp-rotate", old) == 101

    rotated = await cockpit.call("POST", "/chargers/cp-rotate/ocpp-password")
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["Cache-Control"] == "no-store"
    new = rotated.json()["ocpp_password"]
    assert new != old
    assert rotated.json()["ocpp_password_hex"] == new.encode().hex()
    assert rotated.json()["restart_required"] is False
    assert await handshake(cockpit, "cp-rotate", old) == 401
    assert await handshake(cockpit, "cp-rotate", new) == 101

    audit = (await cockpit.call("GET", "/audit", params={"limit": "1"})).json()["items"][0]
    assert audit["action"] == "api.charger.ocpp_password"
    assert new not in str(audit)
    read_only = await cockpit.call(
        "POST", "/chargers/cp-rotate/ocpp-password", token=cockpit.read_token
    )
    assert read_only.status_code == 403


@pytest.fixture
async def open_network(tmp_path: Path) -> AsyncIterator[Cockpit]:
    """Strom with OCPP listening beyond loopback (on every interface)."""
    async for running in start_cockpit(tmp_path, env={"STROM_OCPP__HOST": '"0.0.0.0"'}):
        yield running


async def test_beyond_loopback_the_api_writes_no_charger_anyone_could_impersonate(
    open_network: Cockpit,
) -> None:
    cockpit = open_network
    # Created through the API: it has a password, so it is accepted.
    created = await cockpit.call("PUT", "/chargers/cp-api", json=PROFILE)
    assert created.status_code == 200, created.text

    # Someone emptied the password of the running charger's file by hand: changing that
    # profile through the API is refused, and the file is left as it was.
    strom = cockpit.stack.strom
    path = strom.config.paths.profiles / f"{CHARGER}.toml"
    text = path.read_text()
    start = text.index('password_hash = "') + len('password_hash = "')
    emptied = text[:start] + text[text.index('"', start) :]
    path.write_text(emptied)
    refused = await cockpit.call("PUT", f"/chargers/{CHARGER}", json=PROFILE)
    assert refused.status_code == 400
    message = refused.json()["message"]
    assert "no OCPP password" in message
    assert "allow_unauthenticated" in message
    assert path.read_text() == emptied
    assert strom.config.profile(CHARGER).name != PROFILE["name"]

    # The operator accepts the risk in the file: then it is written, and flagged.
    path.write_text(emptied.replace("[ocpp]", "[ocpp]\nallow_unauthenticated = true"))
    accepted = await cockpit.call("PUT", f"/chargers/{CHARGER}", json=PROFILE)
    assert accepted.status_code == 200, accepted.text
    on_file = load_config(strom.config.config_path)  # type: ignore[arg-type]
    assert on_file.profile(CHARGER).ocpp.allow_unauthenticated is True  # kept by the API
    detail = (await cockpit.call("GET", f"/chargers/{CHARGER}")).json()
    assert detail["ocpp_password_set"] is False
    assert detail["allow_unauthenticated"] is True
    listed = (await cockpit.call("GET", "/chargers")).json()["items"]
    flags = {c["charger_id"]: (c["ocpp_password_set"], c["allow_unauthenticated"]) for c in listed}
    assert flags == {CHARGER: (False, True), "cp-api": (True, False)}
