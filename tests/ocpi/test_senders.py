"""The Sender interfaces Strom serves a registered partner: locations, tariffs, sessions, CDRs.

Strom runs whole (HTTP, OCPP with its simulated charger, the fake lightning backend); the
partner is the in-test eMSP registered through the credentials handshake, calling over HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from ocpi_server.objects.money import MSAT_PER_BTC
from ocpi_server.protocol import authorization_header
from tests.e2e.conftest import CHARGER
from tests.ocpi.strom_cpo import Cpo, charge_for_partner, ocpi_of, roaming_of, strom_cpo

MODULES = ("locations", "tariffs", "sessions", "cdrs")


@pytest.fixture
async def cpo(tmp_path: Path) -> AsyncIterator[Cpo]:
    async with strom_cpo(tmp_path) as running:
        yield running


async def test_the_version_details_list_the_four_modules_as_sender(cpo: Cpo) -> None:
    details = (await cpo.get("")).json()["data"]
    roles = {(e["identifier"], e["role"]) for e in details["endpoints"]}
    assert {(m, "SENDER") for m in MODULES} <= roles


async def test_locations_serve_the_charger_with_its_live_connector_status(cpo: Cpo) -> None:
    objects, _ = await cpo.crawl("/locations")
    assert [o["id"] for o in objects] == [CHARGER]
    location = objects[0]
    assert (location["country_code"], location["party_id"]) == ("DE", "STR")
    evse = location["evses"][0]
    assert evse["uid"] == f"{CHARGER}-1"
    connector = cpo.stack.charger.connectors[1]
    assert connector.status == "Preparing"  # plugged in, waiting
    assert evse["status"] == "CHARGING"  # OCPI: in use
    one = (await cpo.get(f"/locations/{CHARGER}")).json()
    assert one["status_code"] == 1000
    assert one["data"] == location
    by_evse = (await cpo.get(f"/locations/{CHARGER}/{CHARGER}-1")).json()["data"]
    assert by_evse == evse
    by_connector = (await cpo.get(f"/locations/{CHARGER}/{CHARGER}-1/1")).json()["data"]
    assert by_connector == evse["connectors"][0]
    # Ids are CiStrings: another case finds the same location.
    assert (await cpo.get(f"/locations/{CHARGER.upper()}")).json()["data"]["id"] == CHARGER


@pytest.mark.parametrize(
    "path", ["/locations/nope", f"/locations/{CHARGER}/nope", f"/locations/{CHARGER}/{CHARGER}-1/9"]
)
async def test_an_unknown_location_evse_or_connector_is_404_with_2003(cpo: Cpo, path: str) -> None:
    answer = await cpo.get(path)
    assert answer.status_code == 404
    assert answer.json()["status_code"] == 2003
    assert "data" not in answer.json()


@pytest.mark.parametrize("module", MODULES)
async def test_without_a_token_or_with_a_wrong_one_it_is_401_with_2000(
    cpo: Cpo, module: str
) -> None:
    for token in (None, "not-a-token-of-anyone"):
        answer = await cpo.get(f"/{module}", token=token)
        assert answer.status_code == 401
        assert answer.json()["status_code"] == 2000
        assert "data" not in answer.json()


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize(
    "query",
    [
        {"offset": "-1"},
        {"offset": "x"},
        {"limit": "1.5"},
        {"date_from": "yesterday"},
        {"date_to": "2027-01-01T00:00:00+01:00"},
    ],
)
async def test_bad_paging_parameters_are_2001_and_serve_nothing(
    cpo: Cpo, module: str, query: dict[str, str]
) -> None:
    answer = await cpo.get(f"/{module}", **query)
    assert answer.json()["status_code"] == 2001
    assert "data" not in answer.json()


@pytest.mark.parametrize("module", ["tariffs", "sessions", "cdrs"])
async def test_objects_below_the_lists_are_not_served(cpo: Cpo, module: str) -> None:
    answer = await cpo.get(f"/{module}/DE/STR/x")
    assert answer.status_code == 404
    assert answer.json()["status_code"] == 2000


async def test_tariffs_are_in_btc_by_default_and_match_the_profile(cpo: Cpo) -> None:
    objects, _ = await cpo.crawl("/tariffs")
    assert [t["id"] for t in objects] == [CHARGER]
    assert objects[0]["currency"] == "BTC"
    profile = cpo.stack.strom.config.profiles[0]
    energy = next(
        c for c in objects[0]["elements"][-1]["price_components"] if c["type"] == "ENERGY"
    )
    expected = Decimal(profile.tariff.to_tariff().energy_msat_per_kwh) / MSAT_PER_BTC
    assert Decimal(str(energy["price"])) == expected


async def test_sessions_and_cdrs_are_the_partners_own_with_the_bill(cpo: Cpo) -> None:
    session_id = await charge_for_partner(cpo.stack, cpo.partner_id, "ref-1")
    session = await cpo.stack.strom.sessions.get(session_id)
    sessions, _ = await cpo.crawl("/sessions")
    assert [s["id"] for s in sessions] == [session_id]
    assert sessions[0]["status"] == "COMPLETED"
    assert sessions[0]["cdr_token"]["uid"] == "app-user-0001"
    assert (sessions[0]["cdr_token"]["country_code"], sessions[0]["auth_method"]) == (
        "NL",
        "COMMAND",
    )
    cdrs, _ = await cpo.crawl("/cdrs")
    assert [c["id"] for c in cdrs] == [session_id]
    total = Decimal(str(cdrs[0]["total_cost"]["excl_vat"]))
    assert total == Decimal(session.postpaid_msat) / MSAT_PER_BTC
    assert session.postpaid_msat > 0
    # Another partner sees none of them.
    other_id, other_token = await _second_partner(cpo)
    assert (await cpo.get("/sessions", token=other_token)).json()["data"] == []
    assert (await cpo.get("/cdrs", token=other_token)).json()["data"] == []
    assert other_id != cpo.partner_id


async def _second_partner(cpo: Cpo) -> tuple[int, str]:
    offer = await ocpi_of(cpo.stack).partners.offer("Other eMSP")
    cpo.emsp.accepted = {"token-b-other"}
    answer = await cpo.stack.http.post(
        f"{cpo.base}/credentials",
        json=cpo.emsp.credentials("token-b-other"),
        headers={"Authorization": authorization_header(offer.token_a)},
    )
    assert answer.json()["status_code"] == 1000, answer.text
    return offer.partner.id, answer.json()["data"]["token"]


async def test_every_list_pages_to_the_end_with_the_total_and_the_limit(tmp_path: Path) -> None:
    async with strom_cpo(tmp_path, {"STROM_OCPI__PAGE_LIMIT": "1"}) as cpo:
        strom = cpo.stack.strom
        second = strom.config.profiles[0].model_copy(
            update={"id": "cp-two", "name": "Second charger"}
        )
        await strom.apply_profile(second)
        first = await charge_for_partner(cpo.stack, cpo.partner_id, "ref-a")
        again = await charge_for_partner(cpo.stack, cpo.partner_id, "ref-b")
        expected = {
            "locations": [CHARGER, "cp-two"],
            "tariffs": [CHARGER, "cp-two"],
            "sessions": [first, again],
            "cdrs": [first, again],
        }
        for module, ids in expected.items():
            objects, pages = await cpo.crawl(f"/{module}", limit="5")  # above the maximum
            assert sorted(o["id"] for o in objects) == sorted(ids), module
            assert len(pages) == 2, module
            for page in pages:
                assert page.headers["X-Total-Count"] == "2"
                assert page.headers["X-Limit"] == "1"
        # date_from is inclusive on last_updated: the newest session alone.
        sessions, _ = await cpo.crawl("/sessions")
        newest = sessions[-1]
        since, _ = await cpo.crawl("/sessions", date_from=newest["last_updated"])
        assert newest["id"] in [s["id"] for s in since]
        assert await roaming_of(cpo.stack).receivable_of(first) is not None
