"""FirmwareManagement (1.6): UpdateFirmware, GetDiagnostics, GetLog and the upload URLs.

The simulated charger uploads over real HTTP to Strom's upload route on 127.0.0.1; the strict
ocpp-rpc client checks the new actions against the 1.6 (and security edition) schemas.
"""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from cockpit.uploads import ChargerUploads
from strom_core.clock import SYSTEM_CLOCK
from strom_core.config import UploadsConfig
from strom_core.ports import CommandStatus
from tests.ocpp.conftest import ChargePointDriver, Harness, HarnessFactory, boot, running
from tests.waits import until


@dataclass
class MovableClock:
    """Wall time as it is, plus a shift the test sets."""

    shift: timedelta = timedelta()

    def now(self) -> datetime:
        return SYSTEM_CLOCK.now() + self.shift

    def unix(self) -> float:
        return SYSTEM_CLOCK.unix() + self.shift.total_seconds()

    def monotonic(self) -> float:
        return SYSTEM_CLOCK.monotonic()


@dataclass
class UploadServer:
    uploads: ChargerUploads
    root: Path
    base: str
    clock: MovableClock

    def files(self, charger_id: str) -> list[Path]:
        folder = self.root / charger_id
        return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
async def upload_server(tmp_path: Path) -> AsyncIterator[UploadServer]:
    root = tmp_path / "diagnostics"
    clock = MovableClock()
    base: list[str] = []
    settings = UploadsConfig(max_bytes=1000, window_s=600, retention_days=30)
    uploads = ChargerUploads(root, lambda: settings, lambda: base[0], clock)
    app = web.Application()
    app.add_routes(uploads.routes())

    async def firmware(_request: web.Request) -> web.Response:
        return web.Response(body=b"\x00" * 10)

    app.router.add_get("/firmware.bin", firmware)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base.append(f"http://127.0.0.1:{port}")
    yield UploadServer(uploads, root, base[0], clock)
    await runner.cleanup()


def notified(harness: Harness, action: str, status: str) -> Callable[[], bool]:
    def seen() -> bool:
        info = harness.server.charger_info("cp-1")
        return info is not None and info.notifications.get(action) == status

    return seen


async def put(url: str, body: bytes, **headers: str) -> int:
    async with aiohttp.ClientSession() as http, http.put(url, data=body, headers=headers) as r:
        return r.status


async def test_diagnostics_are_uploaded_by_the_simulator_and_kept_private(
    harness: Harness, upload_server: UploadServer
) -> None:
    async with running(harness):
        location = upload_server.uploads.grant("cp-1")
        answer = await harness.server.firmware.get_diagnostics(
            "cp-1", location, start=datetime(2024, 1, 1, tzinfo=UTC)
        )
        assert answer.result.accepted
        assert answer.file_name == "cp-1-diagnostics.txt"
        await until(notified(harness, "DiagnosticsStatusNotification", "Uploaded"), "Uploaded")
        [stored] = upload_server.files("cp-1")
        assert stored.name.endswith("-cp-1-diagnostics.txt")
        assert stored.read_text().startswith("diagnostics of simulated charger cp-1")
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
        listed = upload_server.uploads.files("cp-1")
        assert [(f.name, f.size) for f in listed] == [(stored.name, stored.stat().st_size)]
        # The URL was for one upload: the charger's second try is refused, nothing is added.
        assert await put(location + "again.txt", b"x") == 404
        assert upload_server.files("cp-1") == [stored]


async def test_the_security_log_is_uploaded_with_get_log(
    harness: Harness, upload_server: UploadServer
) -> None:
    async with running(harness):
        location = upload_server.uploads.grant("cp-1")
        answer = await harness.server.firmware.get_log("cp-1", location, 7, security_log=True)
        assert (answer.result.status, answer.file_name) == (
            CommandStatus.ACCEPTED,
            "cp-1-security-log.txt",
        )
        await until(notified(harness, "LogStatusNotification", "Uploaded"), "Uploaded")
        [stored] = upload_server.files("cp-1")
        assert stored.read_text().startswith("security-log of simulated charger cp-1")


async def test_a_firmware_update_goes_through_every_status(
    start_harness: HarnessFactory, upload_server: UploadServer
) -> None:
    harness = await start_harness(message_log_size=200)
    async with running(harness):
        result = await harness.server.firmware.update_firmware(
            "cp-1", f"{upload_server.base}/firmware.bin", datetime.now(UTC), retries=2
        )
        assert result.status is CommandStatus.ACCEPTED
        await until(notified(harness, "FirmwareStatusNotification", "Installed"), "Installed")
        statuses = [
            json.loads(m.frame)[3]["status"]
            for m in harness.server.message_log("cp-1")
            if m.direction == "in" and '"FirmwareStatusNotification"' in m.frame
        ]
        assert statuses == ["Downloading", "Downloaded", "Installing", "Installed"]

        failed = await harness.server.firmware.update_firmware(
            "cp-1", f"{upload_server.base}/missing.bin", datetime.now(UTC)
        )
        assert failed.accepted
        await until(
            notified(harness, "FirmwareStatusNotification", "DownloadFailed"), "DownloadFailed"
        )


async def test_commands_to_an_offline_charger_send_nothing(harness: Harness) -> None:
    firmware = harness.server.firmware
    now = datetime.now(UTC)
    assert (await firmware.update_firmware("cp-1", "ftp://x/f", now)).status is (
        CommandStatus.OFFLINE
    )
    assert (await firmware.get_diagnostics("cp-1", "http://x/")).result.status is (
        CommandStatus.OFFLINE
    )


async def test_wrong_used_and_expired_tokens_are_refused(upload_server: UploadServer) -> None:
    base = upload_server.base
    assert await put(f"{base}/ocpp-uploads/not-a-token/a.txt", b"x") == 404
    used = upload_server.uploads.grant("cp-1")
    assert await put(used + "a.txt", b"first") == 201
    assert await put(used + "a.txt", b"second") == 404
    expired = upload_server.uploads.grant("cp-1")
    upload_server.clock.shift = timedelta(seconds=601)
    assert await put(expired + "b.txt", b"late") == 404
    [kept] = upload_server.files("cp-1")
    assert kept.read_bytes() == b"first"


async def test_an_oversize_upload_is_refused_and_nothing_is_kept(
    upload_server: UploadServer,
) -> None:
    declared = upload_server.uploads.grant("cp-1")
    assert await put(declared + "big.txt", b"x" * 1001) == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while streamed
        for _ in range(11):
            yield b"y" * 100

    streamed = upload_server.uploads.grant("cp-1")
    async with aiohttp.ClientSession() as http, http.put(streamed + "big.txt", data=chunks()) as r:
        assert r.status == 413
    assert [p.name for p in upload_server.files("cp-1")] == []  # no partial file either
    # A refused upload releases its URL for the charger's retry.
    assert await put(streamed + "small.txt", b"ok") == 201


@pytest.mark.parametrize(
    "name",
    ["..", ".hidden", "a%2F..%2F..%2Fescape", "%2E%2E", "a%00b", "sp%20ace", "x" * 101],
)
async def test_path_tricks_in_the_file_name_are_refused(
    upload_server: UploadServer, name: str
) -> None:
    url = upload_server.uploads.grant("cp-1") + name
    status = await put(url, b"x")
    assert status in (400, 404)
    assert not any(upload_server.root.parent.rglob("escape"))
    assert upload_server.files("cp-1") == []


async def test_files_are_never_overwritten_and_a_form_upload_works(
    upload_server: UploadServer,
) -> None:
    for body in (b"one", b"two"):
        assert await put(upload_server.uploads.grant("cp-1") + "same.txt", body) == 201
    form = aiohttp.FormData()
    form.add_field("file", b"three", filename="form.txt")
    url = upload_server.uploads.grant("cp-1")
    async with aiohttp.ClientSession() as http, http.post(url, data=form) as r:
        assert r.status == 201
    contents = sorted(p.read_bytes() for p in upload_server.files("cp-1"))
    assert contents == [b"one", b"three", b"two"]


async def test_files_past_retention_are_deleted(upload_server: UploadServer) -> None:
    assert await put(upload_server.uploads.grant("cp-1") + "old.txt", b"x") == 201
    upload_server.clock.shift = timedelta(days=31)
    assert upload_server.uploads.files("cp-1") == []
    assert upload_server.files("cp-1") == []


async def test_the_strict_client_gets_firmware_commands_that_fit_the_schemas(
    harness: Harness, driver: ChargePointDriver
) -> None:
    await boot(driver, harness)
    for _ in range(3):
        await driver.server_call("ChangeConfiguration")
    for _ in range(3):
        await driver.server_call("TriggerMessage")
    firmware = harness.server.firmware
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    await driver.answer("UpdateFirmware", {})
    result = await firmware.update_firmware(
        "cp-1", "https://fw.example/f.bin", at, retries=3, retry_interval_s=60
    )
    assert await driver.server_call("UpdateFirmware") == {
        "location": "https://fw.example/f.bin",
        "retrieveDate": "2030-01-02T03:04:05.000Z",
        "retries": 3,
        "retryInterval": 60,
    }
    assert result.accepted

    await driver.answer("GetDiagnostics", {})
    nothing = await firmware.get_diagnostics("cp-1", "https://strom.example/up/", stop=at)
    assert await driver.server_call("GetDiagnostics") == {
        "location": "https://strom.example/up/",
        "stopTime": "2030-01-02T03:04:05.000Z",
    }
    assert (nothing.result.status, nothing.file_name) == (CommandStatus.REJECTED, None)

    await driver.answer("GetLog", {"status": "Rejected"})
    refused = await firmware.get_log("cp-1", "https://strom.example/up/", 5)
    assert await driver.server_call("GetLog") == {
        "logType": "DiagnosticsLog",
        "requestId": 5,
        "log": {"remoteLocation": "https://strom.example/up/"},
    }
    assert refused.result.status is CommandStatus.REJECTED

    for action, payload in (
        ("FirmwareStatusNotification", {"status": "Installing"}),
        ("DiagnosticsStatusNotification", {"status": "UploadFailed"}),
        ("LogStatusNotification", {"status": "Uploading", "requestId": 5}),
    ):
        assert await driver.call(action, payload) == {}
    info = harness.server.charger_info("cp-1")
    assert info is not None
    assert info.notifications["FirmwareStatusNotification"] == "Installing"
    assert info.notifications["DiagnosticsStatusNotification"] == "UploadFailed"
    assert driver.validation_failures == []
    await asyncio.sleep(0)
