"""What the API's calls do: NIP-98 rules, tariffs that reach drivers, availability, paging,
CSV, metrics and the audit trail."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from agent.nostr_sdk_adapter import SdkClient
from ocpp_server import SimulatedChargePoint, SimulatorOptions
from strom.config import load_config
from strom_nostr.dm import nip04_message, open_dm
from strom_nostr.event import parse_event
from strom_nostr.keys import encode_npub, public_key_hex
from strom_storage.agents import claim_event
from strom_storage.schema import audit_log, nostr_events
from tests.cockpit.conftest import ADMIN_SECRET, CHARGER, Cockpit, nip98, simulated

pytestmark = pytest.mark.slow


async def audit_trail(cockpit: Cockpit) -> list[Any]:
    async with cockpit.stack.strom.db.reader() as conn:
        return list(await conn.execute(select(audit_log).order_by(audit_log.c.id)))


# --- NIP-98 ------------------------------------------------------------------------------------


async def test_an_admin_npub_signs_requests_with_nip98_and_is_audited_by_npub(
    cockpit: Cockpit,
) -> None:
    me = await cockpit.call("GET", "/me", headers=cockpit.signed("GET", "/me"))
    assert me.status_code == 200, me.text
    npub = encode_npub(public_key_hex(ADMIN_SECRET))
    assert me.json() == {"actor": npub, "scope": "admin", "method": "nip98"}

    path = f"/chargers/{CHARGER}/tariff"
    body = orjson.dumps({"per_kwh_sat": 321})
    response = await cockpit.http.put(
        cockpit.api + path, content=body, headers=cockpit.signed("PUT", path, body)
    )
    assert response.status_code == 200, response.text
    rows = await audit_trail(cockpit)
    assert [(r.actor, r.action, r.target) for r in rows] == [(npub, "api.tariff.set", CHARGER)]
    assert rows[0].detail["energy_msat_per_kwh"] == 321_000


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("replayed", "replay"),
        ("other_url", "'u' tag"),
        ("other_method", "'method' tag"),
        ("stale", "created_at"),
        ("future", "created_at"),
        ("tampered_body", "'payload' tag is not the sha256"),
        ("missing_payload", "needs a 'payload' tag"),
        ("wrong_kind", "kind 27235"),
        ("query_changed", "'u' tag"),
    ],
)
async def test_nip98_refuses_anything_that_does_not_authorise_exactly_this_request(
    cockpit: Cockpit, case: str, expected: str
) -> None:
    path = f"/chargers/{CHARGER}/tariff"
    body = orjson.dumps({"per_kwh_sat": 999})
    url = cockpit.api + path
    now = int(time.time())
    header = {
        "replayed": lambda: nip98(ADMIN_SECRET, url, "PUT", body),
        "other_url": lambda: nip98(ADMIN_SECRET, cockpit.api + "/chargers", "PUT", body),
        "other_method": lambda: nip98(ADMIN_SECRET, url, "POST", body),
        "stale": lambda: nip98(ADMIN_SECRET, url, "PUT", body, created_at=now - 120),
        "future": lambda: nip98(ADMIN_SECRET, url, "PUT", body, created_at=now + 120),
        "tampered_body": lambda: nip98(ADMIN_SECRET, url, "PUT", orjson.dumps({"x": 1})),
        "missing_payload": lambda: nip98(
            ADMIN_SECRET, url, "PUT", tags=[["u", url], ["method", "PUT"]]
        ),
        "wrong_kind": lambda: nip98(ADMIN_SECRET, url, "PUT", body, kind=27236),
        "query_changed": lambda: nip98(ADMIN_SECRET, url + "?dry=1", "PUT", body),
    }[case]()
    if case == "replayed":
        first = await cockpit.http.put(url, content=body, headers={"Authorization": header})
        assert first.status_code == 200, first.text
    audited = len(await audit_trail(cockpit))
    profile = (cockpit.stack.strom.config.paths.profiles / f"{CHARGER}.toml").read_text()
    response = await cockpit.http.put(url, content=body, headers={"Authorization": header})
    assert response.status_code == 401, response.text
    assert expected in response.json()["message"]
    assert len(await audit_trail(cockpit)) == audited
    assert (cockpit.stack.strom.config.paths.profiles / f"{CHARGER}.toml").read_text() == profile


# --- tariffs -----------------------------------------------------------------------------------


async def test_a_new_tariff_reaches_the_next_driver_and_survives_a_restart(
    cockpit: Cockpit,
) -> None:
    preview = await cockpit.call(
        "POST", f"/chargers/{CHARGER}/tariff/preview", json={"per_kwh_sat": 400}
    )
    assert preview.json()["quotes"][0]["total_msat"] == 4_000_000  # 10 kWh x 400 sat
    offer = await cockpit.stack.get(cockpit.stack.pay_url)
    assert "250 sat/kWh" in offer["metadata"]  # a preview changes nothing

    tariff = {"per_kwh_sat": 400, "per_minute_sat": "0.5", "session_fee_sat": 20}
    saved = await cockpit.call("PUT", f"/chargers/{CHARGER}/tariff", json=tariff)
    assert saved.status_code == 200, saved.text
    quotes = {q["energy_wh"]: q for q in saved.json()["quotes"]}
    # 30 kWh at 11 kW take 9,819 s (rounded up): 9,819 s x 0.5 sat/min = 81.825 sat, plus
    # 30 x 400 sat and the 20 sat fee.
    assert quotes[30_000]["minutes"] == 164
    assert quotes[30_000]["total_sat"] == "12101.825"

    offer = await cockpit.stack.get(cockpit.stack.pay_url)
    assert "400 sat/kWh" in offer["metadata"]
    status_url, _ = await cockpit.stack.pay(5_000_000)
    status = await cockpit.stack.wait_state(status_url, "charging", "starting", "paid")
    detail = (await cockpit.call("GET", f"/sessions/{status['id']}")).json()
    assert detail["energy_msat_per_kwh"] == 400_000

    config = cockpit.stack.strom.config
    text = (config.paths.profiles / f"{CHARGER}.toml").read_text()
    assert "# sats per kWh" in text  # the operator's comments stay
    reloaded = load_config(config.config_path)  # type: ignore[arg-type]
    assert reloaded.profile(CHARGER).tariff.to_tariff().session_fee_msat == 20_000


async def test_a_partial_tariff_change_changes_only_the_prices_it_names(
    cockpit: Cockpit,
) -> None:
    # docs/api.md's example sends only the energy price; the rest of the tariff must stay.
    full = {
        "per_kwh_sat": 250,
        "per_minute_sat": "0.5",
        "session_fee_sat": 20,
        "min_prepay_sat": 2_000,
        "max_prepay_sat": 50_000,
    }
    assert (await cockpit.call("PUT", f"/chargers/{CHARGER}/tariff", json=full)).status_code == 200

    preview = await cockpit.call(
        "POST", f"/chargers/{CHARGER}/tariff/preview", json={"per_kwh_sat": 300}
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["per_minute_sat"] == "0.500"
    assert preview.json()["max_prepay_sat"] == "50000"

    saved = await cockpit.call("PUT", f"/chargers/{CHARGER}/tariff", json={"per_kwh_sat": 300})
    assert saved.status_code == 200, saved.text
    tariff = (await cockpit.call("GET", f"/chargers/{CHARGER}/tariff")).json()
    assert {k: tariff[k] for k in full} == {
        "per_kwh_sat": "300",
        "per_minute_sat": "0.500",
        "session_fee_sat": "20",
        "min_prepay_sat": "2000",
        "max_prepay_sat": "50000",
    }
    offer = await cockpit.stack.get(cockpit.stack.pay_url)
    assert offer["maxSendable"] == 50_000_000  # the prepayment limits stayed

    # A change that does not add up with the prices in force is refused and changes nothing.
    refused = await cockpit.call("PUT", f"/chargers/{CHARGER}/tariff", json={"max_prepay_sat": 5})
    assert refused.status_code == 400
    assert "prepay" in refused.json()["message"]
    after = (await cockpit.call("GET", f"/chargers/{CHARGER}/tariff")).json()
    assert after["max_prepay_sat"] == "50000"


async def test_disabling_a_connector_stops_offers_until_it_is_enabled(cockpit: Cockpit) -> None:
    path = f"/chargers/{CHARGER}/connectors/1/availability"
    off = await cockpit.call("POST", path, json={"enabled": False})
    assert off.status_code == 200, off.text
    offer = await cockpit.stack.get(cockpit.stack.pay_url)
    assert offer["status"] == "ERROR"
    charger = (await cockpit.call("GET", f"/chargers/{CHARGER}")).json()
    assert charger["connectors"][0]["enabled"] is False
    on = await cockpit.call("POST", path, json={"enabled": True})
    assert on.status_code == 200
    offer = await cockpit.stack.get(cockpit.stack.pay_url)
    assert offer["tag"] == "payRequest"
    actions = [(r.actor, r.action, r.detail["enabled"]) for r in await audit_trail(cockpit)]
    assert actions == [
        ("token:ops", "api.connector.availability", False),
        ("token:ops", "api.connector.availability", True),
    ]


async def test_remote_stop_without_a_running_session_is_a_conflict(cockpit: Cockpit) -> None:
    response = await cockpit.call(
        "POST", f"/chargers/{CHARGER}/commands/remote-stop", json={"connector_id": 1}
    )
    assert response.status_code == 409
    assert "no session is running" in response.json()["message"]
    (row,) = await audit_trail(cockpit)
    assert row.detail["http"] == 409


async def operator_asks_status(cockpit: Cockpit, charger_id: str) -> str:
    """DM ``status`` to a charger as the admin, over the relay; the charger's answer."""
    strom = cockpit.stack.strom
    pubkey = strom.agents.pubkey(charger_id)
    assert pubkey is not None
    relay = strom.agents.pool.read_relays[0]
    client = SdkClient()
    try:
        await client.add_relay(relay, read=True, write=True, retry_interval_s=0.5)
        command = nip04_message(ADMIN_SECRET, pubkey, "status", created_at=int(time.time()))
        sent = await client.send_event(command, [relay], timeout_s=5)
        assert sent.ok, sent

        async def answer() -> str:
            while True:
                texts = await client.fetch(
                    [{"kinds": [4], "authors": [pubkey], "#p": [public_key_hex(ADMIN_SECRET)]}],
                    [relay],
                    timeout_s=2,
                )
                if texts:
                    return open_dm(ADMIN_SECRET, parse_event(texts[0])).text
                await asyncio.sleep(0.1)

        return await asyncio.wait_for(answer(), 20)
    finally:
        await client.shutdown()


async def test_a_charger_created_through_the_api_works_without_a_restart(
    cockpit: Cockpit,
) -> None:
    profile = {
        "name": "Second charger",
        "location": {"lat": 48.1, "lon": 11.5},
        "connectors": [{"id": 1, "max_power_kw": "22"}, {"id": 2, "max_power_kw": 22}],
        "tariff": {"per_kwh_sat": "199.5"},
    }
    response = await cockpit.call("PUT", "/chargers/cp-two", json=profile)
    assert response.status_code == 200, response.text
    assert response.json()["created"] is True
    assert response.json()["restart_required"] is False
    assert response.headers["Cache-Control"] == "no-store"
    # Its OCPP password is generated and shown in this answer only; the file has its hash.
    key = response.json()["ocpp_password"]
    assert len(key) == 20
    assert response.json()["ocpp_password_hex"] == key.encode().hex()
    config = load_config(cockpit.stack.strom.config.config_path)  # type: ignore[arg-type]
    written = config.profile("cp-two")
    assert written.tariff.to_tariff().energy_msat_per_kwh == 199_500
    assert [c.max_power_w for c in written.connectors] == [22_000, 22_000]
    assert written.ocpp.password_hash.startswith("hmac-sha256$")
    assert key not in config.paths.profiles.joinpath("cp-two.toml").read_text()

    # The new charger connects over OCPP with it, gets a nostr identity and takes payments.
    strom = cockpit.stack.strom
    charger = SimulatedChargePoint(
        SimulatorOptions(
            url=f"ws://127.0.0.1:{strom.ocpp_port}/ocpp",
            charger_id="cp-two",
            password=key,
            connectors=2,
            power_kw=Decimal(22),
            speed=120.0,
            plugged=(2,),
        )
    )
    running = asyncio.create_task(charger.run())
    try:

        async def online() -> dict[str, Any]:
            while True:
                detail = (await cockpit.call("GET", "/chargers/cp-two")).json()
                if detail["online"] and detail["connectors"][1]["status"] != "Unknown":
                    return detail
                await asyncio.sleep(0.1)

        detail = await asyncio.wait_for(online(), 20)
        assert detail["name"] == "Second charger"
        assert detail["npub"].startswith("npub1")
        offer = await cockpit.stack.get(f"{cockpit.base}/lnurlp/cp-two/2")
        assert "199.500 sat/kWh" in offer["metadata"]
        answer = await cockpit.stack.get(offer["callback"], amount="3000000")
        await cockpit.stack.wallet.pay(answer["pr"])
        status_url = answer["successAction"]["url"].replace("?", ".json?", 1)
        status = await cockpit.stack.wait_state(status_url, "charging")
        assert status["charger_id"] == "cp-two"
        nostr = (await cockpit.call("GET", "/nostr")).json()
        assert "cp-two" in {c["charger_id"] for c in nostr["chargers"]}
        # Its agent hears its DMs: the relays were asked for the new key's inbox too.
        assert await operator_asks_status(cockpit, "cp-two")
    finally:
        running.cancel()

    # Changing it later shows no password, keeps the hash, and never reveals either.
    changed = await cockpit.call("PUT", "/chargers/cp-two", json={**profile, "name": "Two"})
    assert changed.json()["created"] is False
    assert changed.json()["ocpp_password"] is None
    config = load_config(cockpit.stack.strom.config.config_path)  # type: ignore[arg-type]
    assert config.profile("cp-two").ocpp.password_hash == written.ocpp.password_hash
    shown = (await cockpit.call("GET", "/chargers/cp-two")).text
    listed = (await cockpit.call("GET", "/chargers")).text
    for text in (shown, listed):
        assert key not in text
        assert "hmac-sha256" not in text
    assert (await cockpit.call("GET", "/chargers/cp-two")).json()["ocpp_password_set"] is True

    bad = await cockpit.call("PUT", "/chargers/bad%20id", json=profile)
    assert bad.status_code == 400
    quirky = await cockpit.call("PUT", "/chargers/cp-three", json={**profile, "quirks": ["x"]})
    assert quirky.status_code == 400
    assert "quirks" in quirky.json()["message"]
    assert not list(strom.config.paths.profiles.glob("bad*"))
    assert not list(strom.config.paths.profiles.glob("cp-three*"))


async def test_an_unknown_charger_waits_for_approval_and_works_once_it_is_added(
    cockpit: Cockpit,
) -> None:
    charger = simulated(cockpit, "cp-new", connectors=2)
    running = asyncio.create_task(charger.run())
    try:

        async def listed() -> dict[str, Any]:
            while True:
                items = (await cockpit.call("GET", "/pending-chargers")).json()["items"]
                if items and items[0]["boot"] is not None:
                    return dict(items[0])
                await asyncio.sleep(0.05)

        waiting = await asyncio.wait_for(listed(), 20)
        assert waiting["charger_id"] == "cp-new"
        assert waiting["boot"]["vendor"]  # what its BootNotification said
        assert (await cockpit.call("GET", "/chargers/cp-new")).status_code == 404
        unknown = await cockpit.http.get(f"{cockpit.base}/lnurlp/cp-new/1")
        assert unknown.status_code == 404  # nobody pays a charger the operator never approved

        profile = {
            "name": "New charger",
            "location": {"lat": 48.1, "lon": 11.5},
            "connectors": [{"id": 1, "max_power_kw": 22}, {"id": 2, "max_power_kw": 22}],
            "tariff": {"per_kwh_sat": 300},
        }
        added = await cockpit.call("PUT", "/chargers/cp-new", json=profile)
        assert added.status_code == 200, added.text  # its held connection is let go
        key = added.json()["ocpp_password"]
        assert key  # approving makes its password, shown once
        # The operator enters the key in the charger, which comes back with it.
        running.cancel()
        charger = simulated(cockpit, "cp-new", connectors=2, password=key)
        running = asyncio.create_task(charger.run())

        async def online() -> dict[str, Any]:
            while True:
                detail = (await cockpit.call("GET", "/chargers/cp-new")).json()
                if detail["online"]:
                    return detail
                await asyncio.sleep(0.05)

        await asyncio.wait_for(online(), 20)
        assert (await cockpit.call("GET", "/pending-chargers")).json()["items"] == []
        offer = await cockpit.stack.get(f"{cockpit.base}/lnurlp/cp-new/2")
        assert offer["tag"] == "payRequest"
    finally:
        running.cancel()


async def test_a_changed_profile_shows_on_the_charger_page_and_in_its_nostr_profile(
    cockpit: Cockpit,
) -> None:
    profile = {
        "name": "Renamed charger",
        "description": "Now with a new name",
        "location": {"lat": 52.52, "lon": 13.40, "address": "Neue Strasse 1"},
        "connectors": [{"id": 1, "max_power_kw": 11}],
        "tariff": {"per_kwh_sat": 250},
    }
    response = await cockpit.call("PUT", f"/chargers/{CHARGER}", json=profile)
    assert response.status_code == 200, response.text
    assert response.json()["restart_required"] is False
    page = await cockpit.http.get(f"{cockpit.base}/c/{CHARGER}")
    assert "Renamed charger" in page.text
    offer = await cockpit.stack.get(cockpit.stack.pay_url)
    assert "Renamed charger" in offer["metadata"]
    strom = cockpit.stack.strom
    agent = strom.agents.agent(CHARGER)

    async def published_name() -> str:
        while True:
            events = await strom.agents.pool.fetch(
                [{"kinds": [0], "authors": [agent.pubkey]}], timeout_s=2
            )
            names = [orjson.loads(e.content).get("display_name") for e in events]
            if "Renamed charger" in names:
                return "Renamed charger"
            await asyncio.sleep(0.2)

    assert await asyncio.wait_for(published_name(), 20) == "Renamed charger"


# --- sessions, paging, CSV ---------------------------------------------------------------------


async def open_invoices(cockpit: Cockpit, count: int) -> list[str]:
    """Ask for ``count`` invoices (sessions awaiting payment) through the LNURL callback."""
    invoices = []
    for _ in range(count):
        offer = await cockpit.stack.get(cockpit.stack.pay_url)
        answer = await cockpit.stack.get(offer["callback"], amount="2000000")
        invoices.append(answer["pr"])
    return invoices


async def test_sessions_page_newest_first_with_filters_and_csv(cockpit: Cockpit) -> None:
    await open_invoices(cockpit, 5)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await cockpit.call("GET", "/sessions", params=params)).json()
        seen += [item["session_id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    everything = (await cockpit.call("GET", "/sessions", params={"limit": "50"})).json()
    assert [item["session_id"] for item in everything["items"]] == seen
    stamps = [item["created_at"] for item in everything["items"]]
    assert stamps == sorted(stamps, reverse=True)

    waiting = await cockpit.call("GET", "/sessions", params={"state": "awaiting_payment"})
    assert len(waiting.json()["items"]) == 5
    none = await cockpit.call("GET", "/sessions", params={"state": "charging"})
    assert none.json()["items"] == []
    typo = await cockpit.call("GET", "/sessions", params={"state": "chargin"})
    assert typo.status_code == 400
    later = await cockpit.call("GET", "/sessions", params={"since": "2999-01-01T00:00:00Z"})
    assert later.json()["items"] == []

    exported = await cockpit.call("GET", "/sessions", params={"format": "csv"})
    assert exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [row["session_id"] for row in rows] == seen
    assert rows[0]["state"] == "awaiting_payment"


async def test_ledger_shows_payments_refunds_and_totals(cockpit: Cockpit) -> None:
    status_url, _ = await cockpit.stack.pay(8_000_000)
    status = await cockpit.stack.wait_state(status_url, "charging")
    stop = await cockpit.call("POST", f"/sessions/{status['id']}/stop")
    assert stop.status_code == 200
    stopped = await cockpit.stack.wait_state(status_url, "stopped")
    invoice = await cockpit.stack.wallet.create_invoice(stopped["refundable_msat"])
    withdraw = await cockpit.stack.get(stopped["withdraw_url"].replace("lnurlw://", "http://"))
    await cockpit.stack.get(withdraw["callback"], k1=withdraw["k1"], pr=invoice.bolt11)
    final = await cockpit.stack.wait_state(status_url, "refunded", "closed")

    payments = (await cockpit.call("GET", "/ledger/payments")).json()["items"]
    assert [(p["session_id"], p["amount_msat"]) for p in payments] == [(status["id"], 8_000_000)]

    async def refund_paid() -> list[dict[str, Any]]:
        while True:
            items: list[dict[str, Any]] = (await cockpit.call("GET", "/ledger/refunds")).json()[
                "items"
            ]
            if items and items[0]["state"] == "paid":
                return items
            await asyncio.sleep(0.05)

    refunds = await asyncio.wait_for(refund_paid(), 10)
    assert refunds[0]["amount_msat"] == final["refunded_msat"]
    totals = (await cockpit.call("GET", "/ledger/totals")).json()["totals"]
    assert len(totals) == 1
    day = totals[0]
    assert day["paid_msat"] == 8_000_000
    assert day["refunded_msat"] == final["refunded_msat"]
    assert day["energy_wh"] == final["energy_wh"] > 0
    assert day["sessions"] == 1
    csv_text = (await cockpit.call("GET", "/ledger/refunds", params={"format": "csv"})).text
    assert csv_text.splitlines()[0].startswith("refund_id,session_id,state")


# --- metrics -----------------------------------------------------------------------------------


async def test_metrics_need_a_token_and_count_money_sessions_and_messages(
    cockpit: Cockpit,
) -> None:
    url = cockpit.base + "/metrics"
    assert (await cockpit.http.get(url)).status_code == 401
    status_url, _ = await cockpit.stack.pay(3_000_000)
    await cockpit.stack.wait_state(status_url, "charging")
    response = await cockpit.http.get(url, headers=cockpit.bearer(cockpit.read_token))
    assert response.status_code == 200
    text = response.text
    assert "strom_chargers_online 1.0" in text
    assert 'strom_sessions{state="charging"} 1.0' in text
    assert "strom_received_msat_total 3e+06" in text or "strom_received_msat_total 3000000.0" in (
        text
    )
    assert "strom_lightning_backend_up 1.0" in text
    received = next(
        line
        for line in text.splitlines()
        if 'strom_ocpp_messages_total{direction="received"}' in line
    )
    assert float(received.split()[-1]) > 0
    assert "strom_relays_connected 1.0" in text


async def test_old_nip98_claims_are_swept_but_a_fresh_event_still_works_only_once(
    cockpit: Cockpit,
) -> None:
    db = cockpit.stack.strom.db
    old = time.time() - 600
    assert await claim_event(db, "a" * 64, 27235, "b" * 64, old)  # a NIP-98 event, long stale
    assert await claim_event(db, "c" * 64, 4, "b" * 64, old)  # a DM, still within its window
    headers = cockpit.signed("GET", "/me")
    assert (await cockpit.call("GET", "/me", headers=headers)).status_code == 200
    await cockpit.stack.strom.retention.sweep()
    async with db.reader() as conn:
        ids = set((await conn.execute(select(nostr_events.c.event_id))).scalars())
    assert "a" * 64 not in ids
    assert "c" * 64 in ids
    replay = await cockpit.call("GET", "/me", headers=headers)
    assert replay.status_code == 401


async def test_a_new_charger_whose_id_differs_only_in_case_is_refused(cockpit: Cockpit) -> None:
    # One lightning address and one page URL would mean two chargers.
    twin = CHARGER.upper()
    assert twin != CHARGER
    profile = {
        "name": "Twin",
        "location": {"lat": 52.5, "lon": 13.4},
        "connectors": [{"id": 1, "max_power_kw": 11}],
        "tariff": {"per_kwh_sat": 250},
    }
    response = await cockpit.call("PUT", f"/chargers/{twin}", json=profile)
    assert response.status_code == 409, response.text
    assert "differ only in case" in response.json()["message"]
    assert not (cockpit.stack.strom.config.paths.profiles / f"{twin}.toml").exists()


async def test_reservation_terms_are_set_through_the_tariff_and_kept_by_price_changes(
    cockpit: Cockpit,
) -> None:
    before = (await cockpit.call("GET", f"/chargers/{CHARGER}/tariff")).json()
    assert before["reservation_max_minutes"] == 0
    terms = {
        "reservation_fee_sat": 100,
        "reservation_fee_per_minute_sat": "2",
        "reservation_max_minutes": 60,
        "reservation_kept_percent": 50,
    }
    saved = await cockpit.call("PUT", f"/chargers/{CHARGER}/tariff", json=terms)
    assert saved.status_code == 200, saved.text
    assert {k: saved.json()[k] for k in terms} == {
        "reservation_fee_sat": "100",
        "reservation_fee_per_minute_sat": "2",
        "reservation_max_minutes": 60,
        "reservation_kept_percent": 50,
    }
    again = await cockpit.call("PUT", f"/chargers/{CHARGER}/tariff", json={"per_kwh_sat": 300})
    assert again.json()["reservation_max_minutes"] == 60  # a price change keeps the terms
    text = (cockpit.stack.strom.config.paths.profiles / f"{CHARGER}.toml").read_text()
    assert "reservation_max_minutes = 60" in text
    for bad in (
        {"reservation_kept_percent": 101},
        {"reservation_max_minutes": "30"},
        {"reservation_max_minutes": 1441},
        {"reservation_fee_per_minute_sat": 100_000},  # 60 min of it is above the maximum
    ):
        refused = await cockpit.call("PUT", f"/chargers/{CHARGER}/tariff", json=bad)
        assert refused.status_code == 400, (bad, refused.text)
    after = (await cockpit.call("GET", f"/chargers/{CHARGER}/tariff")).json()
    assert after["reservation_kept_percent"] == 50
