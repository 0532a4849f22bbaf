"""Every endpoint of the REST API: success, 401, 403 and bad input, against a running Strom.

The tables below name every operation; ``test_the_tables_cover_every_endpoint`` fails when an
endpoint is added without its cases. Success cases run against a real session (paid with the
fake backend's wallet, charged by the simulated charger over OCPP).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from sqlalchemy import func, select

from ocpp_server.certificates import new_ca
from strom_storage.roaming import open_receivable
from strom_storage.schema import audit_log, sessions
from tests.cockpit.conftest import (
    CHARGER,
    STRANGER_SECRET,
    Cockpit,
    nip98,
    simulated,
    start_cockpit,
)
from tests.ocpi.conftest import Emsp, serve
from tests.ocpi.test_api import OCPI_ON

pytestmark = pytest.mark.slow


@pytest.fixture
async def cockpit(tmp_path: Path) -> AsyncIterator[Cockpit]:
    """Strom with OCPI on, so its routes are checked like every other."""
    async for running in start_cockpit(tmp_path, OCPI_ON):
        yield running


SESSION = "{session}"
NOW = datetime(2026, 11, 3, tzinfo=UTC)
ROOT_PEM = new_ca("API test root", now=datetime.now(UTC))[0].decode()
TARIFF = {"per_kwh_sat": 300, "per_minute_sat": "0.5", "session_fee_sat": 10}
SIGNING_CERTIFICATE = new_ca("Firmware signer", now=datetime.now(UTC))[0].decode()
SIGNED_FIRMWARE = {
    "location": "https://fw.example/f.bin",
    "signing_certificate": SIGNING_CERTIFICATE,
    "signature": "c2lnbmF0dXJl",
}
PROFILE = {
    "name": "Renamed charger",
    "location": {"lat": 52.5, "lon": 13.4, "address": "Somewhere 1"},
    "connectors": [{"id": 1, "type": "Type2", "max_power_kw": 11}],
    "tariff": {"per_kwh_sat": 250},
}

REPORT_WINDOW = {"since": "2026-11-01T00:00:00Z", "until": "2026-11-08T00:00:00Z"}

# (method, path): the request with good input (body, params), for 401/403 and success.
REQUESTS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/me"): {},
    ("GET", "/lightning"): {},
    ("GET", "/chargers"): {},
    ("GET", "/pending-chargers"): {},
    ("POST", "/pending-chargers/{charger_id}/dismiss"): {},
    ("GET", "/chargers/{charger_id}"): {},
    ("PUT", "/chargers/{charger_id}"): {"json": PROFILE},
    ("POST", "/chargers/{charger_id}/ocpp-password"): {},
    ("POST", "/chargers/{charger_id}/connectors/{connector_id}/availability"): {
        "json": {"enabled": True}
    },
    ("POST", "/chargers/{charger_id}/commands/unlock"): {"json": {"connector_id": 1}},
    ("POST", "/chargers/{charger_id}/commands/reset"): {"json": {"kind": "soft"}},
    ("POST", "/chargers/{charger_id}/commands/trigger-status"): {"json": {"connector_id": 1}},
    ("POST", "/chargers/{charger_id}/commands/remote-stop"): {"json": {"connector_id": 1}},
    ("POST", "/chargers/{charger_id}/variables/get"): {
        "json": {"variables": [{"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"}]}
    },
    ("POST", "/chargers/{charger_id}/variables/set"): {
        "json": {
            "variables": [
                {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "300"}
            ]
        }
    },
    ("POST", "/chargers/{charger_id}/commands/get-base-report"): {
        "json": {"report": "SummaryInventory"}
    },
    ("GET", "/chargers/{charger_id}/ocpp-log"): {"params": {"limit": "5"}},
    ("GET", "/chargers/{charger_id}/firmware"): {},
    ("POST", "/chargers/{charger_id}/commands/update-firmware"): {
        "json": {"location": "https://fw.example/f.bin"}
    },
    ("POST", "/chargers/{charger_id}/commands/signed-update-firmware"): {"json": SIGNED_FIRMWARE},
    ("PUT", "/chargers/{charger_id}/site-limit"): {"json": {"limit_kw": 7.4}},
    ("GET", "/chargers/{charger_id}/composite-schedule"): {"params": {"connector_id": "1"}},
    ("GET", "/chargers/{charger_id}/prices"): {"params": {"hours": "6"}},
    ("POST", "/chargers/{charger_id}/commands/get-diagnostics"): {"json": {}},
    ("GET", "/chargers/{charger_id}/uploads/{name}"): {},
    ("DELETE", "/chargers/{charger_id}/uploads/{name}"): {},
    ("POST", "/chargers/{charger_id}/log"): {"json": {"log_type": "diagnostics"}},
    ("GET", "/chargers/{charger_id}/certificates"): {},
    ("POST", "/chargers/{charger_id}/certificates"): {"json": {"pem": ROOT_PEM}},
    ("DELETE", "/chargers/{charger_id}/certificates/{serial}"): {},
    ("POST", "/chargers/{charger_id}/commands/renew-certificate"): {},
    ("GET", "/chargers/{charger_id}/cards"): {},
    ("PUT", "/chargers/{charger_id}/cards"): {"json": {"cards": [{"id_tag": "STAFF-1"}]}},
    ("GET", "/chargers/{charger_id}/sticker.svg"): {"params": {"connector": "1"}},
    ("GET", "/chargers/{charger_id}/sticker.pdf"): {"params": {"connector": "1"}},
    ("GET", "/chargers/{charger_id}/tariff"): {},
    ("PUT", "/chargers/{charger_id}/tariff"): {"json": TARIFF},
    ("POST", "/chargers/{charger_id}/tariff/preview"): {"json": TARIFF},
    ("GET", "/sessions"): {"params": {"limit": "10"}},
    ("GET", "/sessions/{session_id}"): {},
    ("POST", "/sessions/{session_id}/stop"): {},
    ("GET", "/ledger/payments"): {"params": {"limit": "10"}},
    ("GET", "/ledger/refunds"): {},
    ("GET", "/ledger/totals"): {"params": {"period": "month"}},
    ("GET", "/reports/daily"): {"params": REPORT_WINDOW},
    ("GET", "/reports/monthly"): {"params": REPORT_WINDOW},
    ("GET", "/reports/daily.svg"): {"params": REPORT_WINDOW},
    ("GET", "/reports/monthly.svg"): {"params": REPORT_WINDOW},
    ("GET", "/reports/availability"): {"params": REPORT_WINDOW},
    ("GET", "/reports/availability.svg"): {"params": REPORT_WINDOW},
    ("GET", "/chargers/{charger_id}/reports/sold"): {"params": {"day": "2026-11-03"}},
    ("GET", "/chargers/{charger_id}/reports/sold.svg"): {"params": {"day": "2026-11-03"}},
    ("GET", "/nostr"): {},
    ("GET", "/nostr/chargers/{charger_id}/status-event"): {},
    ("POST", "/nostr/chargers/{charger_id}/publish-status"): {},
    ("GET", "/audit"): {"params": {"limit": "5"}},
    # With [ocpi] off these answer 409 ocpi_disabled (tests/ocpi/test_api.py).
    ("GET", "/ocpi/partners"): {},
    ("POST", "/ocpi/partners"): {"json": {"name": "Roaming One"}},
    ("GET", "/ocpi/partners/{partner_id}"): {},
    ("DELETE", "/ocpi/partners/{partner_id}"): {},
    ("PATCH", "/ocpi/partners/{partner_id}"): {"json": {"blocked": True}},
    ("POST", "/ocpi/partners/{partner_id}/register"): {
        "json": {"versions_url": "https://emsp.example/versions", "token": "token-a"}
    },
    ("POST", "/ocpi/partners/{partner_id}/rotate"): {},
    ("GET", "/ocpi/log"): {"params": {"limit": "5"}},
    ("GET", "/ocpi/receivables"): {"params": {"partner_id": "1"}},
    ("POST", "/ocpi/receivables/{receivable_id}/invoice"): {},
    ("POST", "/ocpi/receivables/{receivable_id}/write-off"): {},
}

# (method, path): a bad request and the status it must get. Bad input changes nothing.
BAD: dict[tuple[str, str], tuple[dict[str, Any], int]] = {
    ("GET", "/me"): ({"params": {"x": "1"}}, 400),
    ("GET", "/lightning"): ({"params": {"x": "1"}}, 400),
    ("GET", "/chargers"): ({"params": {"state": "on"}}, 400),
    ("GET", "/pending-chargers"): ({"params": {"limit": "1"}}, 400),
    ("POST", "/pending-chargers/{charger_id}/dismiss"): ({"charger": "nobody-waits"}, 404),
    ("GET", "/chargers/{charger_id}"): ({"charger": "no-such"}, 404),
    ("PUT", "/chargers/{charger_id}"): (
        {"json": {**PROFILE, "connectors": [{"id": 0, "max_power_kw": 11}]}},
        400,
    ),
    ("POST", "/chargers/{charger_id}/ocpp-password"): ({"charger": "no-such"}, 404),
    ("POST", "/chargers/{charger_id}/connectors/{connector_id}/availability"): (
        {"json": {"enabled": "yes"}},
        400,
    ),
    ("POST", "/chargers/{charger_id}/commands/unlock"): ({"json": {"connector_id": 7}}, 404),
    ("POST", "/chargers/{charger_id}/commands/reset"): ({"json": {"kind": "gentle"}}, 400),
    ("POST", "/chargers/{charger_id}/commands/trigger-status"): (
        {"json": {"connector_id": "1"}},
        400,
    ),
    ("POST", "/chargers/{charger_id}/commands/remote-stop"): ({"json": {}}, 400),
    ("POST", "/chargers/{charger_id}/variables/get"): ({"json": {"variables": []}}, 400),
    ("POST", "/chargers/{charger_id}/variables/set"): (
        {"json": {"variables": [{"component": "OCPPCommCtrlr", "variable": "X"}]}},
        400,
    ),
    ("POST", "/chargers/{charger_id}/commands/get-base-report"): (
        {"json": {"report": "Everything"}},
        400,
    ),
    ("GET", "/chargers/{charger_id}/ocpp-log"): ({"params": {"limit": "0"}}, 400),
    ("GET", "/chargers/{charger_id}/sticker.svg"): ({"params": {"connector": "9"}}, 404),
    ("GET", "/chargers/{charger_id}/sticker.pdf"): ({"params": {"connector": "x"}}, 400),
    ("GET", "/chargers/{charger_id}/tariff"): ({"charger": "../etc"}, 404),
    ("PUT", "/chargers/{charger_id}/tariff"): (
        {"json": {"per_kwh_sat": 300, "min_prepay_sat": 10, "max_prepay_sat": 5}},
        400,
    ),
    ("POST", "/chargers/{charger_id}/tariff/preview"): ({"json": {"per_kwh_sat": -1}}, 400),
    ("GET", "/sessions"): ({"params": {"cursor": "bm90IG91cnM"}}, 400),
    ("GET", "/sessions/{session_id}"): ({"session": "nope"}, 404),
    ("POST", "/sessions/{session_id}/stop"): ({"session": "nope"}, 404),
    ("GET", "/ledger/payments"): ({"params": {"since": "yesterday"}}, 400),
    ("GET", "/ledger/refunds"): ({"params": {"since": "2026-01-01T00:00:00"}}, 400),
    ("GET", "/ledger/totals"): ({"params": {"period": "hour"}}, 400),
    ("GET", "/reports/daily"): (
        {"params": {**REPORT_WINDOW, "since": "2027-01-01T00:00:00Z"}},
        400,
    ),
    ("GET", "/reports/monthly"): ({"params": {"since": "2026-01-01T00:00:00Z"}}, 400),
    ("GET", "/reports/daily.svg"): ({"params": {**REPORT_WINDOW, "measure": "volts"}}, 400),
    ("GET", "/reports/monthly.svg"): ({"params": {**REPORT_WINDOW, "until": "soon"}}, 400),
    ("GET", "/reports/availability"): ({"params": {**REPORT_WINDOW, "charger_id": "a b"}}, 400),
    ("GET", "/reports/availability.svg"): (
        {"params": {"since": "2026-01-01T00:00:00Z", "until": "2026-12-01T00:00:00Z"}},
        400,
    ),
    ("GET", "/chargers/{charger_id}/reports/sold"): ({"params": {"day": "2026-13-01"}}, 400),
    ("GET", "/chargers/{charger_id}/reports/sold.svg"): (
        {"charger": "nobody", "params": {"day": "2026-11-03"}},
        404,
    ),
    ("GET", "/nostr"): ({"params": {"relay": "x"}}, 400),
    ("GET", "/nostr/chargers/{charger_id}/status-event"): ({"charger": "nobody"}, 404),
    ("POST", "/nostr/chargers/{charger_id}/publish-status"): ({"charger": "nobody"}, 404),
    ("GET", "/audit"): ({"params": {"limit": "many"}}, 400),
    ("GET", "/chargers/{charger_id}/firmware"): ({"charger": "no-such"}, 404),
    ("PUT", "/chargers/{charger_id}/site-limit"): ({"json": {"limit_kw": 0.5}}, 400),
    ("GET", "/chargers/{charger_id}/composite-schedule"): (
        {"params": {"connector_id": "7"}},
        404,
    ),
    ("GET", "/chargers/{charger_id}/prices"): ({"params": {"hours": "49"}}, 400),
    ("POST", "/chargers/{charger_id}/commands/update-firmware"): (
        {"json": {"location": "file:///etc/passwd"}},
        400,
    ),
    ("POST", "/chargers/{charger_id}/commands/signed-update-firmware"): (
        {
            "json": {
                **SIGNED_FIRMWARE,
                "signing_certificate": "-----BEGIN CERTIFICATE-----AAAA-----END CERTIFICATE-----",
            }
        },
        400,
    ),
    ("POST", "/chargers/{charger_id}/commands/get-diagnostics"): (
        {"json": {"start": "yesterday"}},
        400,
    ),
    ("GET", "/chargers/{charger_id}/uploads/{name}"): ({"name": "..%2Fstrom.toml"}, 400),
    ("DELETE", "/chargers/{charger_id}/uploads/{name}"): ({"name": ".hidden"}, 400),
    ("POST", "/chargers/{charger_id}/log"): ({"json": {"log_type": "all"}}, 400),
    ("GET", "/chargers/{charger_id}/certificates"): ({"charger": "no-such"}, 404),
    ("POST", "/chargers/{charger_id}/certificates"): ({"json": {"pem": "no PEM"}}, 400),
    ("DELETE", "/chargers/{charger_id}/certificates/{serial}"): ({"serial": "xyz"}, 400),
    ("POST", "/chargers/{charger_id}/commands/renew-certificate"): ({"charger": "no-such"}, 404),
    ("GET", "/chargers/{charger_id}/cards"): ({"params": {"all": "1"}}, 400),
    ("PUT", "/chargers/{charger_id}/cards"): (
        {"json": {"cards": [{"id_tag": "A"}, {"id_tag": "a"}]}},
        400,
    ),
    ("GET", "/ocpi/partners"): ({"params": {"all": "1"}}, 400),
    ("POST", "/ocpi/partners"): ({"json": {"name": "x", "token": "no url"}}, 400),
    ("GET", "/ocpi/partners/{partner_id}"): ({"params": {"x": "1"}}, 400),
    ("DELETE", "/ocpi/partners/{partner_id}"): ({"params": {"x": "1"}}, 400),
    ("PATCH", "/ocpi/partners/{partner_id}"): ({"json": {}}, 400),
    ("POST", "/ocpi/partners/{partner_id}/register"): ({"json": {"token": "t"}}, 400),
    ("POST", "/ocpi/partners/{partner_id}/rotate"): ({"params": {"x": "1"}}, 400),
    ("GET", "/ocpi/log"): ({"params": {"limit": "0"}}, 400),
    ("GET", "/ocpi/receivables"): ({"params": {"state": "lost"}}, 400),
    ("POST", "/ocpi/receivables/{receivable_id}/invoice"): ({"params": {"x": "1"}}, 400),
    ("POST", "/ocpi/receivables/{receivable_id}/write-off"): ({"params": {"why": "x"}}, 400),
}

# Downloads of uploaded files are audited too (and need the admin scope).
MUTATING = {
    key
    for key in REQUESTS
    if (key[0] in ("PUT", "POST", "PATCH", "DELETE") and "preview" not in key[1])
    or key[1].endswith("/uploads/{name}")
}


def fill(
    path: str,
    *,
    charger: str = CHARGER,
    session: str = "s0",
    connector: str = "1",
    name: str = "none.txt",
    serial: str = "1f",
) -> str:
    return (
        path.replace("{charger_id}", charger)
        .replace("{session_id}", session)
        .replace("{connector_id}", connector)
        .replace("{name}", name)
        .replace("{serial}", serial)
        .replace("{partner_id}", "1")
        .replace("{receivable_id}", "1")
    )


def endpoint_keys(cockpit: Cockpit) -> set[tuple[str, str]]:
    return {(e.method, e.path) for e in cockpit.stack.strom.cockpit.endpoints}


async def audit_rows(cockpit: Cockpit) -> int:
    async with cockpit.stack.strom.db.reader() as conn:
        return int(await conn.scalar(select(func.count()).select_from(audit_log)) or 0)


async def test_the_tables_cover_every_endpoint(cockpit: Cockpit) -> None:
    keys = endpoint_keys(cockpit)
    assert set(REQUESTS) == keys
    assert set(BAD) == keys
    declared_mutating = {
        (e.method, e.path) for e in cockpit.stack.strom.cockpit.endpoints if e.action
    }
    assert declared_mutating == MUTATING


async def test_every_endpoint_refuses_missing_or_invalid_credentials_with_401(
    cockpit: Cockpit,
) -> None:
    for (method, path), request in REQUESTS.items():
        url = fill(path)
        for headers in (
            {},
            {"Authorization": "Bearer strom_not-a-token"},
            {"Authorization": "Basic b3BzOm9wcw=="},
            {"Authorization": "Nostr bm90IGFuIGV2ZW50"},
        ):
            response = await cockpit.call(method, url, headers=headers, **request)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["error"] == "unauthorized"
            assert "Bearer" in response.headers["WWW-Authenticate"]
    assert await audit_rows(cockpit) == 0  # nobody authenticated, nothing audited


async def test_every_endpoint_refuses_a_non_admin_npub_with_403(cockpit: Cockpit) -> None:
    for (method, path), request in REQUESTS.items():
        url = fill(path)
        json = request.get("json")
        body = None if json is None else orjson.dumps(json)
        query = "?" + urlencode(request.get("params", {}))  # as the client encodes it
        full = cockpit.api + url + (query if request.get("params") else "")
        headers = {"Authorization": nip98(STRANGER_SECRET, full, method, body)}
        response = await cockpit.call(method, url, headers=headers, **request)
        assert response.status_code == 403, (method, path, response.text)
        assert "not an admin" in response.json()["message"]


async def test_a_read_only_token_reads_everything_but_changes_nothing(cockpit: Cockpit) -> None:
    before = cockpit.stack.strom.config.paths.profiles.joinpath(f"{CHARGER}.toml").read_text()
    for (method, path), request in REQUESTS.items():
        response = await cockpit.call(method, fill(path), token=cockpit.read_token, **request)
        if (method, path) in MUTATING:
            assert response.status_code == 403, (method, path, response.text)
            assert "read-only" in response.json()["message"]
        else:
            assert response.status_code in (200, 404), (method, path, response.text)
    after = cockpit.stack.strom.config.paths.profiles.joinpath(f"{CHARGER}.toml").read_text()
    assert after == before
    assert await audit_rows(cockpit) == 0


async def test_a_revoked_token_is_refused_at_once(cockpit: Cockpit) -> None:
    assert (await cockpit.call("GET", "/me")).status_code == 200
    assert await cockpit.stack.strom.cockpit.tokens.revoke("ops")
    response = await cockpit.call("GET", "/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["message"]


async def test_bad_input_gets_a_clear_error_and_changes_nothing(cockpit: Cockpit) -> None:
    profile = cockpit.stack.strom.config.paths.profiles / f"{CHARGER}.toml"
    before = profile.read_text()
    for (method, path), (request, status) in BAD.items():
        request = dict(request)
        url = fill(
            path,
            charger=request.pop("charger", CHARGER),
            session=request.pop("session", "s0"),
            name=request.pop("name", "none.txt"),
            serial=request.pop("serial", "1f"),
        )
        response = await cockpit.call(method, url, **request)
        assert response.status_code == status, (method, path, response.text)
        body = response.json()
        assert body["error"], body
        assert body["message"], body
    assert profile.read_text() == before
    async with cockpit.stack.strom.db.reader() as conn:
        assert await conn.scalar(select(func.count()).select_from(sessions)) == 0
    # Refused calls that were authenticated are audited with their outcome, never applied.
    response = await cockpit.call("GET", "/audit", params={"limit": "100"})
    outcomes = {entry["detail"]["http"] for entry in response.json()["items"]}
    assert outcomes <= {400, 404, 409}


async def test_a_body_too_large_is_refused_with_413(cockpit: Cockpit) -> None:
    big = {**TARIFF, "padding": "x" * 70_000}
    response = await cockpit.call("PUT", f"/chargers/{CHARGER}/tariff", json=big)
    assert response.status_code == 413


async def test_unknown_paths_and_methods_answer_json_errors(cockpit: Cockpit) -> None:
    missing = await cockpit.call("GET", "/nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong = await cockpit.call("DELETE", "/chargers")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method_not_allowed"
    assert "GET" in wrong.headers["Allow"]


async def wait_connector(cockpit: Cockpit, *states: str, within_s: float = 20) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        while True:
            charger = (await cockpit.call("GET", f"/chargers/{CHARGER}")).json()
            connector: dict[str, Any] = charger["connectors"][0]
            if connector["status"] in states:
                return connector
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), within_s)


async def charging_session(cockpit: Cockpit) -> tuple[str, str]:
    """Pay 20,000 sats and wait until charging; (session id, its status URL with the secret)."""
    status_url, _ = await cockpit.stack.pay(20_000_000)
    status = await cockpit.stack.wait_state(status_url, "charging")
    return status["id"], status_url


async def reports_answer(ok: Any) -> None:
    for kind in ("daily", "monthly"):
        report = await ok("GET", f"/reports/{kind}")
        assert report["total"]["period"] == "total"
        chart = await ok("GET", f"/reports/{kind}.svg")
        assert chart.headers["Content-Type"].startswith("image/svg+xml")
    assert (await ok("GET", "/reports/availability"))["connectors"]
    timeline = await ok("GET", "/reports/availability.svg")
    assert timeline.text.startswith("<svg")


async def test_every_endpoint_succeeds_for_an_admin(cockpit: Cockpit) -> None:
    """The success path of every operation, in an order that keeps a session running where
    one is needed (session stop, then a new session for remote stop)."""
    done: set[tuple[str, str]] = set()

    async def ok(method: str, path: str, session: str = "s0", **extra: Any) -> Any:
        request = {**REQUESTS[(method, path)], **extra}
        response = await cockpit.call(method, fill(path, session=session), **request)
        assert response.status_code == 200, (method, path, response.text)
        done.add((method, path))
        if response.headers["Content-Type"].startswith("application/json"):
            return response.json()
        return response

    uploaded = cockpit.stack.strom.cockpit.uploads.folder(CHARGER)
    uploaded.mkdir(parents=True, exist_ok=True)
    (uploaded / "none.txt").write_bytes(b"diagnostics")
    prices = await ok("GET", "/chargers/{charger_id}/prices")
    assert (prices["dynamic"], prices["source"], prices["health"]) == (False, "static", None)
    assert len(prices["intervals"]) == 6  # a static tariff: one flat price per hour
    sold = await ok("GET", "/chargers/{charger_id}/reports/sold")
    assert (sold["source"], len(sold["intervals"]), sold["energy_wh"]) == ("static", 24, 0)
    chart = await ok("GET", "/chargers/{charger_id}/reports/sold.svg")
    assert chart.text.startswith("<svg")
    firmware = await ok("GET", "/chargers/{charger_id}/firmware")
    assert [f["name"] for f in firmware["files"]] == ["none.txt"]
    download = await ok("GET", "/chargers/{charger_id}/uploads/{name}")
    assert download.content == b"diagnostics"
    await ok("DELETE", "/chargers/{charger_id}/uploads/{name}")
    assert not (uploaded / "none.txt").exists()
    for command in ("update-firmware", "get-diagnostics", "signed-update-firmware"):
        answered = await ok("POST", f"/chargers/{{charger_id}}/commands/{command}")
        assert answered["status"] in ("Accepted", "Offline", "Rejected"), answered
    logged = await ok("POST", "/chargers/{charger_id}/log")
    assert logged["status"] == "Accepted", logged
    cards = await ok("PUT", "/chargers/{charger_id}/cards")
    assert [c["id_tag"] for c in cards["cards"]] == ["STAFF-1"]
    assert (await ok("GET", "/chargers/{charger_id}/cards"))["cards"] == cards["cards"]
    installed = await ok("POST", "/chargers/{charger_id}/certificates")
    assert installed["status"] == "Accepted", installed
    listed = await ok("GET", "/chargers/{charger_id}/certificates")
    assert [c["serial_number"] for c in listed["certificates"]] == [installed["serial_number"]]
    serial = installed["serial_number"]
    deleted = await cockpit.call("DELETE", fill(f"/chargers/{{charger_id}}/certificates/{serial}"))
    assert deleted.json()["status"] == "Accepted", deleted.text
    done.add(("DELETE", "/chargers/{charger_id}/certificates/{serial}"))
    renewed = await ok("POST", "/chargers/{charger_id}/commands/renew-certificate")
    assert renewed["status"] == "Accepted", renewed

    stranger = simulated(cockpit, "cp-unknown")
    waiting = asyncio.create_task(stranger.run())
    try:

        async def pending() -> dict[str, Any]:
            while True:
                listed: dict[str, Any] = await ok("GET", "/pending-chargers")
                if listed["items"]:
                    return listed
                await asyncio.sleep(0.05)

        listed = await asyncio.wait_for(pending(), 20)
        assert [p["charger_id"] for p in listed["items"]] == ["cp-unknown"]
        request = REQUESTS[("POST", "/pending-chargers/{charger_id}/dismiss")]
        dismissed = await cockpit.call("POST", "/pending-chargers/cp-unknown/dismiss", **request)
        assert dismissed.status_code == 200, dismissed.text
        done.add(("POST", "/pending-chargers/{charger_id}/dismiss"))
    finally:
        waiting.cancel()

    session_id, status_url = await charging_session(cockpit)
    me = await ok("GET", "/me")
    assert me == {"actor": "token:ops", "scope": "admin", "method": "token"}
    node = await ok("GET", "/lightning")
    assert (node["backend"], node["state"], node["reason"]) == ("fake", "up", "")
    assert node["network"] == "bcrt"
    assert node["real_money"] is False
    chargers = await ok("GET", "/chargers")
    assert chargers["items"][0]["connectors"][0]["session_id"] == session_id
    detail = await ok("GET", "/chargers/{charger_id}")
    assert detail["online"] is True
    assert detail["recent_sessions"][0]["session_id"] == session_id
    assert detail["pay_urls"]["1"].endswith(f"/lnurlp/{CHARGER}/1")
    log = await ok("GET", "/chargers/{charger_id}/ocpp-log")
    assert 0 < len(log["frames"]) <= 5
    svg = await ok("GET", "/chargers/{charger_id}/sticker.svg")
    assert svg.text.startswith("<?xml")
    assert "Connector 1" in svg.text
    pdf = await ok("GET", "/chargers/{charger_id}/sticker.pdf")
    assert pdf.content.startswith(b"%PDF")
    tariff = await ok("GET", "/chargers/{charger_id}/tariff")
    assert tariff["per_kwh_sat"] == "250"
    page = await ok("GET", "/sessions")
    assert [s["session_id"] for s in page["items"]] == [session_id]
    one = await ok("GET", "/sessions/{session_id}", session=session_id)
    assert one["state"] == "charging"
    assert one["payments"][0]["state"] == "settled"
    payments = await ok("GET", "/ledger/payments")
    assert payments["items"][0]["amount_msat"] == 20_000_000
    await ok("GET", "/ledger/refunds")
    await ok("GET", "/nostr")
    await ok("GET", "/nostr/chargers/{charger_id}/status-event")
    published = await ok("POST", "/nostr/chargers/{charger_id}/publish-status")
    assert published["accepted"] is True
    for key in [
        ("POST", "/chargers/{charger_id}/commands/trigger-status"),
        ("POST", "/chargers/{charger_id}/connectors/{connector_id}/availability"),
    ]:
        answer = await ok(*key)
        assert answer["status"] == "Accepted", (key, answer)
    preview = await ok("POST", "/chargers/{charger_id}/tariff/preview")
    assert preview["saved"] is False

    stopped = await ok("POST", "/sessions/{session_id}/stop", session=session_id)
    assert stopped["state"] in ("stopping", "stopped")
    final = await cockpit.stack.wait_state(status_url, "stopped")
    assert final["stop_reason"] == "admin"
    assert final["refundable_msat"] > 0

    second, second_url = await charging_session(cockpit)
    answer = await ok("POST", "/chargers/{charger_id}/commands/remote-stop")
    assert answer["session_id"] == second
    await cockpit.stack.wait_state(second_url, "stopped")  # the charger is done with it
    for key in [
        ("POST", "/chargers/{charger_id}/commands/unlock"),
        ("POST", "/chargers/{charger_id}/commands/reset"),
    ]:
        answer = await ok(*key)
        assert answer["status"] in ("Accepted", "Unlocked"), (key, answer)
    for key in [
        ("POST", "/chargers/{charger_id}/variables/get"),
        ("POST", "/chargers/{charger_id}/variables/set"),
        ("POST", "/chargers/{charger_id}/commands/get-base-report"),
    ]:
        # The device model is OCPP 2.0.1's: this charger speaks 1.6, so it is a conflict.
        refused = await cockpit.call(key[0], fill(key[1]), **REQUESTS[key])
        assert refused.status_code == 409, (key, refused.text)
        assert "ocpp1.6" in refused.json()["message"]
        done.add(key)
    detail = await ok("GET", "/chargers/{charger_id}")
    assert detail["ocpp_version"] == "ocpp1.6"
    # A 1.6 charger's variables: the configuration keys read after its boot, nothing else.
    assert list(detail["variables"]) in ([], ["SupportedFeatureProfiles"])
    saved = await ok("PUT", "/chargers/{charger_id}/tariff")
    assert saved["saved"] is True
    assert saved["session_fee_msat"] == 10_000
    limited = await ok("PUT", "/chargers/{charger_id}/site-limit")
    assert limited["limit_kw"] == "7.4"  # written whether or not the charger is connected now
    schedule = await ok("GET", "/chargers/{charger_id}/composite-schedule")
    assert schedule["site_limit_kw"] == "7.4"
    written = await ok("PUT", "/chargers/{charger_id}")
    assert written["created"] is False
    assert written["restart_required"] is False
    assert written["ocpp_password"] is None
    rotated = await ok("POST", "/chargers/{charger_id}/ocpp-password")
    assert len(rotated["ocpp_password"]) == 20
    totals = await ok("GET", "/ledger/totals")
    assert totals["totals"][0]["paid_msat"] == 40_000_000
    await reports_answer(ok)
    await ocpi_answers(ok, cockpit, session_id)
    audit = await ok("GET", "/audit")
    assert audit["items"][0]["actor"] == "token:ops"
    assert done == set(REQUESTS)


async def ocpi_answers(ok: Any, cockpit: Cockpit, session_id: str) -> None:
    """The OCPI routes' success paths, against a minimal eMSP on 127.0.0.1.

    The receivable is opened on an operator's session as the session store opens a partner's
    bill (tests/cockpit/test_ocpi_receivables.py bills a real partner session).
    """
    emsp = Emsp()
    runner, emsp.base = await serve(emsp.app())
    try:
        emsp.accepted = {"token-a"}
        offer = await ok("POST", "/ocpi/partners")
        assert offer["partner"]["id"] == 1
        assert offer["token_a"]
        assert (await ok("GET", "/ocpi/partners"))["partners"][0]["state"] == "offered"
        assert (await ok("GET", "/ocpi/partners/{partner_id}"))["name"] == "Roaming One"
        assert (await ok("PATCH", "/ocpi/partners/{partner_id}"))["blocked"] is True
        versions_url = f"{emsp.base}/emsp/versions"
        body = {"versions_url": versions_url, "token": "token-a"}
        registered = await ok("POST", "/ocpi/partners/{partner_id}/register", json=body)
        assert registered["partner"]["state"] == "registered"
        rotated = await ok("POST", "/ocpi/partners/{partner_id}/rotate")
        assert rotated["token_a"] is None  # registered: a credentials PUT, no token shown
        assert (await ok("GET", "/ocpi/log"))["lines"]
        bill = partial(
            open_receivable, session_id=session_id, partner_id="1", amount_msat=1_234_567, now=NOW
        )
        assert await cockpit.stack.strom.db.write(bill)
        owed = (await ok("GET", "/ocpi/receivables"))["receivables"]
        assert [(r["id"], r["amount_sat"], r["partner_name"]) for r in owed] == [
            (1, "1234.567", "Roaming One")
        ]
        assert (await ok("POST", "/ocpi/receivables/{receivable_id}/invoice"))["bolt11"]
        written = await ok("POST", "/ocpi/receivables/{receivable_id}/write-off")
        assert written["state"] == "written_off"
        assert (await ok("DELETE", "/ocpi/partners/{partner_id}"))["removed"] is True
    finally:
        await runner.cleanup()


async def test_the_openapi_document_describes_exactly_the_served_operations(
    cockpit: Cockpit,
) -> None:
    response = await cockpit.http.get(cockpit.api + "/openapi.json")  # no sign-in needed
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": cockpit.api}]
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert documented == endpoint_keys(cockpit)
    schemas = document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                for media in answer.get("content", {}).values():
                    ref = media["schema"].get("$ref", "")
                    assert ref == "" or ref.split("/")[-1] in schemas, (method, path, status)
            assert "401" in operation["responses"]
            assert "403" in operation["responses"]
