"""SignedUpdateFirmware (OCPP 1.6 security edition) through ``OcppServer.firmware``.

The simulated charger fetches the firmware over real HTTP, verifies its signature with the
signing certificate's key and reports each step in SignedFirmwareStatusNotifications, the last
of which the server keeps; the strict ocpp-rpc client checks the request against the security
edition's schema, and every answer maps onto a typed result.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ocpp_server.certificates import new_ca
from strom_core.ports import CommandStatus
from tests.ocpp.conftest import Harness, HarnessFactory, boot, running
from tests.ocpp.drivers import ChargePointDriver
from tests.waits import until

FIRMWARE = b"strom firmware 2.0\n" * 100


@dataclass(frozen=True)
class Signer:
    certificate: str
    key: ec.EllipticCurvePrivateKey

    def sign(self, content: bytes) -> str:
        return base64.b64encode(self.key.sign(content, ec.ECDSA(hashes.SHA256()))).decode()


@pytest.fixture(scope="module")
def signer() -> Signer:
    certificate, key = new_ca("Firmware signer", now=datetime.now(UTC))
    private = serialization.load_pem_private_key(key, None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    return Signer(certificate.decode(), private)


@pytest.fixture
async def firmware_url() -> AsyncIterator[str]:
    app = web.Application()

    async def firmware(_request: web.Request) -> web.Response:
        return web.Response(body=FIRMWARE)

    app.router.add_get("/firmware.bin", firmware)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/firmware.bin"
    await runner.cleanup()


def last_signed_status(harness: Harness, status: str) -> Callable[[], bool]:
    def seen() -> bool:
        info = harness.server.charger_info("cp-1")
        return info is not None and info.notifications.get(SIGNED) == status

    return seen


SIGNED = "SignedFirmwareStatusNotification"


def reported(harness: Harness) -> list[tuple[str, int]]:
    """The SignedFirmwareStatusNotifications the charger sent: (status, requestId)."""
    found = []
    for message in harness.server.message_log("cp-1"):
        frame = json.loads(message.frame)
        if message.direction == "in" and frame[0] == 2 and frame[2] == SIGNED:
            found.append((frame[3]["status"], frame[3]["requestId"]))
    return found


async def test_signed_firmware_is_verified_then_installed_and_the_last_status_kept(
    start_harness: HarnessFactory, signer: Signer, firmware_url: str
) -> None:
    harness = await start_harness(message_log_size=200)
    async with running(harness) as sim:
        result = await harness.server.firmware.signed_update_firmware(
            "cp-1",
            firmware_url,
            datetime.now(UTC),
            request_id=31,
            signing_certificate=signer.certificate,
            signature=signer.sign(FIRMWARE),
            install_at=datetime.now(UTC) + timedelta(milliseconds=50),
            retries=2,
            retry_interval_s=30,
        )
        assert (result.status, result.detail) == (CommandStatus.ACCEPTED, "")
        await until(last_signed_status(harness, "Installed"), "Installed")
        assert reported(harness) == [
            ("Downloading", 31),
            ("Downloaded", 31),
            ("SignatureVerified", 31),
            ("Installing", 31),
            ("Installed", 31),
        ]
        [sent] = [c.payload for c in sim.received_calls if c.action == "SignedUpdateFirmware"]
        assert (sent["requestId"], sent["retries"], sent["retryInterval"]) == (31, 2, 30)
        assert set(sent["firmware"]) == {
            "location",
            "retrieveDateTime",
            "installDateTime",
            "signingCertificate",
            "signature",
        }


@pytest.mark.parametrize(
    "signature",
    ["", "not base64!", "c2lnbmF0dXJl", "signed by another key"],
)
async def test_an_empty_or_bad_signature_is_reported_and_nothing_installed(
    start_harness: HarnessFactory, signer: Signer, firmware_url: str, signature: str
) -> None:
    if signature == "signed by another key":
        other = ec.generate_private_key(ec.SECP256R1())
        signature = base64.b64encode(other.sign(FIRMWARE, ec.ECDSA(hashes.SHA256()))).decode()
    harness = await start_harness(message_log_size=200)
    async with running(harness):
        result = await harness.server.firmware.signed_update_firmware(
            "cp-1",
            firmware_url,
            datetime.now(UTC),
            request_id=5,
            signing_certificate=signer.certificate,
            signature=signature,
        )
        assert result.accepted
        await until(last_signed_status(harness, "InvalidSignature"), "InvalidSignature")
        assert reported(harness) == [
            ("Downloading", 5),
            ("Downloaded", 5),
            ("InvalidSignature", 5),
        ]


async def test_a_signing_certificate_that_is_none_is_refused_in_the_answer(
    harness: Harness, signer: Signer, firmware_url: str
) -> None:
    async with running(harness) as sim:
        result = await harness.server.firmware.signed_update_firmware(
            "cp-1",
            firmware_url,
            datetime.now(UTC),
            request_id=1,
            signing_certificate="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
            signature=signer.sign(FIRMWARE),
        )
        assert (result.status, result.detail) == (CommandStatus.REJECTED, "InvalidCertificate")
        assert [c.action for c in sim.received_calls].count("SignedUpdateFirmware") == 1
        assert not any(
            message.direction == "in" and SIGNED in message.frame
            for message in harness.server.message_log("cp-1")
        )


async def test_an_offline_charger_is_sent_nothing_and_naive_times_are_refused(
    harness: Harness, signer: Signer
) -> None:
    firmware = harness.server.firmware
    offline = await firmware.signed_update_firmware(
        "cp-1",
        "https://fw.example/f.bin",
        datetime.now(UTC),
        request_id=1,
        signing_certificate=signer.certificate,
        signature="c2ln",
    )
    assert offline.status is CommandStatus.OFFLINE
    async with running(harness) as sim:
        naive = await firmware.signed_update_firmware(
            "cp-1",
            "https://fw.example/f.bin",
            datetime(2030, 1, 1),
            request_id=1,
            signing_certificate=signer.certificate,
            signature="c2ln",
        )
        assert naive.status is CommandStatus.REJECTED
        assert "SignedUpdateFirmware" not in [c.action for c in sim.received_calls]


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ("Accepted", CommandStatus.ACCEPTED),
        ("AcceptedCanceled", CommandStatus.ACCEPTED),
        ("Rejected", CommandStatus.REJECTED),
        ("InvalidCertificate", CommandStatus.REJECTED),
        ("RevokedCertificate", CommandStatus.REJECTED),
    ],
)
async def test_the_strict_client_gets_a_signed_update_that_fits_the_schema(
    harness: Harness, driver: ChargePointDriver, signer: Signer, answer: str, status: CommandStatus
) -> None:
    await boot(driver, harness)
    for _ in range(3):
        await driver.server_call("ChangeConfiguration")
    for _ in range(3):
        await driver.server_call("TriggerMessage")
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    signature = signer.sign(FIRMWARE)
    await driver.answer("SignedUpdateFirmware", {"status": answer})
    result = await harness.server.firmware.signed_update_firmware(
        "cp-1",
        "https://fw.example/f.bin",
        at,
        request_id=2_147_483_647,
        signing_certificate=signer.certificate,
        signature=signature,
        install_at=at + timedelta(hours=1),
        retries=3,
        retry_interval_s=60,
    )
    assert await driver.server_call("SignedUpdateFirmware") == {
        "requestId": 2_147_483_647,
        "retries": 3,
        "retryInterval": 60,
        "firmware": {
            "location": "https://fw.example/f.bin",
            "retrieveDateTime": "2030-01-02T03:04:05.000Z",
            "installDateTime": "2030-01-02T04:04:05.000Z",
            "signingCertificate": signer.certificate,
            "signature": signature,
        },
    }
    assert (result.status, result.detail) == (status, "" if answer == "Accepted" else answer)
    assert await driver.call(SIGNED, {"status": "SignatureVerified", "requestId": 7}) == {}
    info = harness.server.charger_info("cp-1")
    assert info is not None
    assert info.notifications[SIGNED] == "SignatureVerified"
    assert driver.validation_failures == []
