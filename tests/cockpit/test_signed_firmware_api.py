"""``POST /chargers/{id}/commands/signed-update-firmware`` and the signed status on the firmware
page, against a running Strom with its simulated OCPP 1.6 charger."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from ocpp_server.certificates import new_ca
from strom_storage.schema import audit_log
from tests.cockpit.conftest import CHARGER, Cockpit
from tests.waits import until

pytestmark = pytest.mark.slow

PATH = f"/chargers/{CHARGER}/commands/signed-update-firmware"


def signed_calls(cockpit: Cockpit) -> list[dict[str, object]]:
    charger = cockpit.stack.charger
    return [c.payload for c in charger.received_calls if c.action == "SignedUpdateFirmware"]


async def test_a_signed_update_reaches_the_charger_and_its_last_status_is_shown(
    cockpit: Cockpit,
) -> None:
    certificate = new_ca("Firmware signer", now=datetime.now(UTC))[0].decode()
    body = {
        "location": "ftp://fw.example/f.bin",  # the simulator takes FTP as fetched
        "signing_certificate": certificate,
        "signature": "c2lnbmF0dXJl",
        "retrieve_at": "2020-01-01T00:00:00Z",
        "request_id": 77,
    }
    answer = await cockpit.call("POST", PATH, json=body)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["detail"]) == ("Accepted", "")
    [sent] = signed_calls(cockpit)
    assert sent["requestId"] == 77

    async def shown() -> bool:
        page = await cockpit.call("GET", f"/chargers/{CHARGER}/firmware")
        return bool(page.json()["signed_firmware_status"] == "Installed")

    await until(shown, "the firmware page shows the signed status")
    async with cockpit.stack.strom.db.reader() as conn:
        actions = list(await conn.scalars(select(audit_log.c.action)))
    assert "api.charger.signed_update_firmware" in actions


@pytest.mark.parametrize(
    "change",
    [
        {"signing_certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"},
        {"signature": "not base64!"},
        {"location": "file:///etc/passwd"},
        {"request_id": -1},
        {"retrieve_at": 1700000000},
        {"install_at": "tomorrow"},
        {"extra": 1},
    ],
)
async def test_bad_input_is_refused_and_nothing_is_sent(
    cockpit: Cockpit, change: dict[str, object]
) -> None:
    certificate = new_ca("Firmware signer", now=datetime.now(UTC))[0].decode()
    body = {
        "location": "https://fw.example/f.bin",
        "signing_certificate": certificate,
        "signature": "c2lnbmF0dXJl",
        **change,
    }
    answer = await cockpit.call("POST", PATH, json=body)
    assert answer.status_code == 400, answer.text
    assert signed_calls(cockpit) == []
