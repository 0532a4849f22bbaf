"""The operator's cards, the charger's root certificates and GetLog over the API.

Against a running Strom and its simulated OCPP 1.6 charger over a real websocket: a card saved
through the API is accepted by Authorize and lands on the charger's local list without a
restart (the second change as a differential update), a removed card is refused; a root
certificate is checked, installed, listed and deleted; a log is requested and uploaded to
Strom. Bad input and read-only tokens change nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ocpp_server.certificates import certificate_hash_data, new_ca
from ocpp_server.v16.charge_point import SimulatedChargePoint
from strom_services.local_list import LocalListService
from tests.cockpit.conftest import CHARGER, Cockpit, start_cockpit

pytestmark = pytest.mark.slow

CARDS = f"/chargers/{CHARGER}/cards"
CERTIFICATES = f"/chargers/{CHARGER}/certificates"


def charge_point(cockpit: Cockpit) -> SimulatedChargePoint:
    return cast(SimulatedChargePoint, cockpit.stack.charger)


def local_lists(cockpit: Cockpit) -> LocalListService:
    service = cockpit.stack.strom.cockpit.api.ctx.local_lists
    assert service is not None
    return service


async def authorize(cockpit: Cockpit, id_tag: str) -> str:
    answer = await charge_point(cockpit).call("Authorize", {"idTag": id_tag})
    return str(answer["idTagInfo"]["status"])


def sent_lists(cockpit: Cockpit) -> list[dict[str, Any]]:
    return [c.payload for c in charge_point(cockpit).received_calls if c.action == "SendLocalList"]


async def audit_actions(cockpit: Cockpit) -> list[str]:
    audit = await cockpit.call("GET", "/audit", params={"limit": "50"})
    return [row["action"] for row in audit.json()["items"]]


# --- cards -------------------------------------------------------------------------------------


async def test_a_card_saved_through_the_api_is_accepted_and_reaches_the_chargers_list_at_once(
    cockpit: Cockpit,
) -> None:
    strom = cockpit.stack.strom
    sim = charge_point(cockpit)
    await local_lists(cockpit).settled()  # the boot's sync is done: the charger holds none
    assert await authorize(cockpit, "STAFF-1") == "Invalid"
    profile = strom.config.paths.profiles / f"{CHARGER}.toml"
    profile.write_text("# the operator's note\n" + profile.read_text(), encoding="utf-8")

    first = await cockpit.call(
        "PUT", CARDS, json={"cards": [{"id_tag": "STAFF-1", "label": "Anna"}]}
    )
    assert first.status_code == 200, first.text
    assert first.json()["local_list"] == {
        "status": "Accepted",
        "detail": "",
        "update": "Full",
        "version": 1,
    }
    assert await authorize(cockpit, "staff-1") == "Accepted"  # CiString: any case
    assert (sim.local_list.version, sim.local_list.tags()) == (1, ["STAFF-1"])
    text = profile.read_text()
    assert "# the operator's note" in text
    assert 'id_tag = "STAFF-1"' in text

    fleet = {"id_tag": "FLEET-7", "label": "Van", "mode": "account", "account": "acme"}
    second = await cockpit.call(
        "PUT", CARDS, json={"cards": [{"id_tag": "STAFF-1", "label": "Anna"}, fleet]}
    )
    assert second.status_code == 200, second.text
    assert second.json()["local_list"]["update"] == "Differential"
    assert sent_lists(cockpit)[-1] == {
        "listVersion": 2,
        "updateType": "Differential",
        "localAuthorizationList": [{"idTag": "FLEET-7", "idTagInfo": {"status": "Accepted"}}],
    }
    assert sim.local_list.tags() == ["FLEET-7", "STAFF-1"]
    assert await authorize(cockpit, "FLEET-7") == "Accepted"
    listed = (await cockpit.call("GET", CARDS, token=cockpit.read_token)).json()
    assert listed["cards"] == [
        {"id_tag": "STAFF-1", "label": "Anna", "mode": "free", "account": ""},
        {"id_tag": "FLEET-7", "label": "Van", "mode": "account", "account": "acme"},
    ]

    removed = await cockpit.call("PUT", CARDS, json={"cards": [fleet]})
    assert removed.status_code == 200, removed.text
    assert await authorize(cockpit, "STAFF-1") == "Invalid"
    assert sim.local_list.tags() == ["FLEET-7"]
    assert [c.id_tag for c in strom.config.profile(CHARGER).cards] == ["FLEET-7"]
    assert (await audit_actions(cockpit)).count("api.charger.cards") == 3

    unchanged = await cockpit.call("PUT", CARDS, json={"cards": [fleet]})
    assert unchanged.json()["local_list"] is None  # nothing changed: nothing sent
    assert len(sent_lists(cockpit)) == 3


@pytest.mark.parametrize(
    ("cards", "says"),
    [
        ([{"id_tag": "A-1"}, {"id_tag": "a-1"}], "listed twice"),
        ([{"id_tag": "A-1", "account": "acme"}], "no account"),
        ([{"id_tag": "A-1", "mode": "account"}], "needs an account"),
        ([{"id_tag": "X" * 21}], "id_tag"),
        ([{"id_tag": "has space"}], "id_tag"),
        ([{"id_tag": "A-1", "colour": "red"}], "colour"),
    ],
)
async def test_bad_cards_are_refused_and_change_nothing(
    cockpit: Cockpit, cards: list[dict[str, str]], says: str
) -> None:
    strom = cockpit.stack.strom
    profile = strom.config.paths.profiles / f"{CHARGER}.toml"
    before = profile.read_text()
    await local_lists(cockpit).settled()
    answer = await cockpit.call("PUT", CARDS, json={"cards": cards})
    assert answer.status_code == 400, answer.text
    assert says in answer.json()["message"]
    assert profile.read_text() == before
    assert strom.config.profile(CHARGER).cards == ()
    assert sent_lists(cockpit) == []


async def test_a_read_only_token_reads_the_cards_but_cannot_change_them(cockpit: Cockpit) -> None:
    answer = await cockpit.call(
        "PUT", CARDS, json={"cards": [{"id_tag": "A-1"}]}, token=cockpit.read_token
    )
    assert answer.status_code == 403
    assert cockpit.stack.strom.config.profile(CHARGER).cards == ()
    listed = await cockpit.call("GET", CARDS, token=cockpit.read_token)
    assert listed.json() == {
        "charger_id": CHARGER,
        "cards": [],
        "local_list": None,
        "restart_required": False,
    }


# --- root certificates -------------------------------------------------------------------------


def root_pem(name: str = "Operator root") -> str:
    certificate, _key = new_ca(name, now=dt.datetime.now(dt.UTC))
    return certificate.decode()


def leaf_pem() -> str:
    """A certificate that is no CA (a charger must not take it as a root)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


async def test_a_root_certificate_is_installed_listed_and_deleted_by_its_serial(
    cockpit: Cockpit,
) -> None:
    sim = charge_point(cockpit)
    empty = await cockpit.call("GET", CERTIFICATES, token=cockpit.read_token)
    assert empty.status_code == 200, empty.text
    assert (empty.json()["status"], empty.json()["certificates"]) == ("Accepted", [])
    assert [t["detail"] for t in empty.json()["types"]] == ["NotFound", "NotFound"]

    pem = root_pem()
    installed = await cockpit.call(
        "POST",
        CERTIFICATES,
        json={"pem": pem, "certificate_type": "ManufacturerRootCertificate"},
    )
    assert installed.status_code == 200, installed.text
    answer = installed.json()
    assert (answer["status"], answer["subject"]) == ("Accepted", "CN=Operator root")
    assert sim.certificates.installed == {"ManufacturerRootCertificate": [pem]}

    listed = (await cockpit.call("GET", CERTIFICATES)).json()
    hash_data = certificate_hash_data(pem)
    assert listed["certificates"] == [
        {
            "certificate_type": "ManufacturerRootCertificate",
            "hash_algorithm": "SHA256",
            "issuer_name_hash": hash_data["issuerNameHash"],
            "issuer_key_hash": hash_data["issuerKeyHash"],
            "serial_number": answer["serial_number"],
        }
    ]

    missing = await cockpit.call("DELETE", f"{CERTIFICATES}/abc123")
    assert missing.status_code == 404, missing.text
    deleted = await cockpit.call("DELETE", f"{CERTIFICATES}/{answer['serial_number'].upper()}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["status"] == "Accepted"
    assert sim.certificates.installed == {"ManufacturerRootCertificate": []}
    delete_calls = [c.payload for c in sim.received_calls if c.action == "DeleteCertificate"]
    assert delete_calls == [{"certificateHashData": hash_data}]
    actions = await audit_actions(cockpit)
    assert actions.count("api.charger.install_certificate") == 1
    assert actions.count("api.charger.delete_certificate") == 2  # the 404 is audited too


@pytest.mark.parametrize(
    ("pem", "says"),
    [
        ("not a certificate", "exactly one PEM certificate"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a readable"),
        ("leaf", "must be a CA"),
        ("two", "exactly one"),
    ],
)
async def test_a_bad_pem_is_refused_before_anything_is_sent(
    cockpit: Cockpit, pem: str, says: str
) -> None:
    sim = charge_point(cockpit)
    body = {"leaf": leaf_pem(), "two": root_pem() + root_pem("Second")}.get(pem, pem)
    answer = await cockpit.call("POST", CERTIFICATES, json={"pem": body})
    assert answer.status_code == 400, answer.text
    assert says in answer.json()["message"]
    assert not [c for c in sim.received_calls if c.action == "InstallCertificate"]
    assert sim.certificates.installed == {}


async def test_a_read_only_token_cannot_install_or_delete_a_certificate(cockpit: Cockpit) -> None:
    sim = charge_point(cockpit)
    install = await cockpit.call(
        "POST", CERTIFICATES, json={"pem": root_pem()}, token=cockpit.read_token
    )
    delete = await cockpit.call("DELETE", f"{CERTIFICATES}/01", token=cockpit.read_token)
    assert (install.status_code, delete.status_code) == (403, 403)
    assert sim.certificates.installed == {}


async def test_the_charger_renews_its_client_certificate_signed_by_stroms_charger_ca(
    cockpit: Cockpit,
) -> None:
    sim = charge_point(cockpit)
    answer = await cockpit.call("POST", f"/chargers/{CHARGER}/commands/renew-certificate")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "Accepted"

    async def signed() -> tuple[bytes, bytes]:
        while True:  # CertificateSigned follows Strom's answer to the charger's CSR
            if sim.client_certificate is not None:
                return sim.client_certificate
            await asyncio.sleep(0.02)

    chain, _key = await asyncio.wait_for(signed(), 10)
    certificate = x509.load_pem_x509_certificates(chain)[0]
    assert certificate.subject.rfc4514_string() == f"CN={CHARGER}"
    assert sim.certificates.csr_answers == ["Accepted"]
    assert "api.charger.renew_certificate" in await audit_actions(cockpit)
    reader = await cockpit.call(
        "POST", f"/chargers/{CHARGER}/commands/renew-certificate", token=cockpit.read_token
    )
    assert reader.status_code == 403


async def test_an_ocpp_201_charger_is_told_the_certificate_commands_are_not_supported(
    tmp_path: Path,
) -> None:
    async for cockpit in start_cockpit(tmp_path, ocpp_version="2.0.1"):
        listed = await cockpit.call("GET", CERTIFICATES)
        assert listed.status_code == 200, listed.text
        assert (listed.json()["status"], listed.json()["certificates"]) == ("NotSupported", [])
        installed = await cockpit.call("POST", CERTIFICATES, json={"pem": root_pem()})
        assert installed.json()["status"] == "NotSupported"
        sent = {c.action for c in cockpit.stack.charger.received_calls}
        assert not sent & {"GetInstalledCertificateIds", "InstallCertificate"}


# --- GetLog ------------------------------------------------------------------------------------


async def test_a_security_log_is_requested_and_uploaded_to_strom(cockpit: Cockpit) -> None:
    sim = charge_point(cockpit)
    answer = await cockpit.call(
        "POST",
        f"/chargers/{CHARGER}/log",
        json={"log_type": "security", "start": "2026-01-01T00:00:00Z"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["file_name"]) == ("Accepted", f"{CHARGER}-security-log.txt")
    sent = [c.payload for c in sim.received_calls if c.action == "GetLog"][-1]
    assert sent["logType"] == "SecurityLog"
    assert sent["requestId"] == body["request_id"]
    assert sent["log"]["oldestTimestamp"].startswith("2026-01-01T00:00:00")

    async def uploaded() -> dict[str, Any]:
        while True:
            firmware: dict[str, Any] = (
                await cockpit.call("GET", f"/chargers/{CHARGER}/firmware")
            ).json()
            if firmware["log_status"] == "Uploaded" and firmware["files"]:
                return firmware
            await asyncio.sleep(0.05)

    firmware = await asyncio.wait_for(uploaded(), 20)
    [stored] = firmware["files"]  # kept under the time it arrived and the name it gave
    assert stored["name"].endswith(f"-{CHARGER}-security-log.txt")
    download = await cockpit.call("GET", f"/chargers/{CHARGER}/uploads/{stored['name']}")
    assert download.content.startswith(b"security-log of simulated charger")
    assert "api.charger.get_log" in await audit_actions(cockpit)


async def test_a_bad_log_request_is_refused_and_sends_nothing(cockpit: Cockpit) -> None:
    sim = charge_point(cockpit)
    for body in ({"log_type": "everything"}, {"start": 1700000000}, {"stop": "yesterday"}):
        answer = await cockpit.call("POST", f"/chargers/{CHARGER}/log", json=body)
        assert answer.status_code == 400, (body, answer.text)
    reader = await cockpit.call(
        "POST", f"/chargers/{CHARGER}/log", json={}, token=cockpit.read_token
    )
    assert reader.status_code == 403
    assert not [c for c in sim.received_calls if c.action == "GetLog"]
