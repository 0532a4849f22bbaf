"""How the simulated OCPP 1.6 charge point answers firmware updates and upload requests.

* UpdateFirmware: answered at once; from the retrieve date on the charger fetches the firmware
  (an ``http(s)://`` location by GET; any other scheme, such as ``ftp://``, is taken as fetched)
  and reports each step in a FirmwareStatusNotification: Downloading, Downloaded, Installing,
  Installed, or DownloadFailed when the GET fails.
* GetDiagnostics: answered with the file name; then it reports Uploading, uploads a generated
  text file by HTTP PUT to ``<location><file name>``, and reports Uploaded or UploadFailed.
* GetLog (security extension): the same with a LogStatusNotification carrying the request id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp

from ocpp_server.client import Answer
from ocpp_server.ocppj import parse_timestamp
from ocpp_server.v16.sim_answers import ChargePoint

__all__ = ["SimulatedFirmware"]

log = logging.getLogger(__name__)

_TIMEOUT: Final = aiohttp.ClientTimeout(total=30)


class SimulatedFirmware:
    """The simulated charge point's FirmwareManagement and GetLog answers.

    Args:
        charge_point: the charge point that reports the progress.
        charger_id: its id (in the names of the files it uploads).
    """

    def __init__(self, charge_point: ChargePoint, charger_id: str) -> None:
        self._cp = charge_point
        self._charger_id = charger_id

    def table(self) -> dict[str, Callable[[Mapping[str, Any]], Answer]]:
        """Action name to answer."""
        return {
            "UpdateFirmware": self.on_update_firmware,
            "GetDiagnostics": self.on_get_diagnostics,
            "GetLog": self.on_get_log,
        }

    def on_update_firmware(self, payload: Mapping[str, Any]) -> Answer:
        """Fetch and install from the retrieve date on, reporting each step."""
        location = str(payload["location"])
        retrieve_at = parse_timestamp(str(payload["retrieveDate"]))

        async def update() -> None:
            await asyncio.sleep(max(0.0, (retrieve_at - datetime.now(UTC)).total_seconds()))
            await self._firmware_status("Downloading")
            if not await _fetch(location):
                await self._firmware_status("DownloadFailed")
                return
            for status in ("Downloaded", "Installing", "Installed"):
                await self._firmware_status(status)

        return Answer({}, then=update)

    def on_get_diagnostics(self, payload: Mapping[str, Any]) -> Answer:
        """Name the file, then upload it and report the outcome."""
        name = self._file_name("diagnostics")
        location = str(payload["location"])

        async def upload() -> None:
            await self._cp.call("DiagnosticsStatusNotification", {"status": "Uploading"})
            done = await _put(location, name, self._content("diagnostics"))
            status = "Uploaded" if done else "UploadFailed"
            await self._cp.call("DiagnosticsStatusNotification", {"status": status})

        return Answer({"fileName": name}, then=upload)

    def on_get_log(self, payload: Mapping[str, Any]) -> Answer:
        """Accept, then upload the log and report the outcome with the request id."""
        kind = "security-log" if payload["logType"] == "SecurityLog" else "diagnostics-log"
        name = self._file_name(kind)
        location = str(payload["log"]["remoteLocation"])
        request_id = int(payload["requestId"])

        async def upload() -> None:
            await self._log_status("Uploading", request_id)
            done = await _put(location, name, self._content(kind))
            await self._log_status("Uploaded" if done else "UploadFailure", request_id)

        return Answer({"status": "Accepted", "filename": name}, then=upload)

    def _file_name(self, kind: str) -> str:
        return f"{self._charger_id}-{kind}.txt"

    def _content(self, kind: str) -> bytes:
        lines = [f"{kind} of simulated charger {self._charger_id}"]
        lines += [f"{key}={value}" for key, value in sorted(self._cp.configuration.items())]
        return ("\n".join(lines) + "\n").encode()

    async def _firmware_status(self, status: str) -> None:
        await self._cp.call("FirmwareStatusNotification", {"status": status})

    async def _log_status(self, status: str, request_id: int) -> None:
        await self._cp.call("LogStatusNotification", {"status": status, "requestId": request_id})


async def _fetch(location: str) -> bool:
    if not location.startswith(("http://", "https://")):
        return True
    try:
        async with (
            aiohttp.ClientSession(timeout=_TIMEOUT) as http,
            http.get(location) as response,
        ):
            await response.read()
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.info("firmware download from %s failed: %s", location, exc)
        return False


async def _put(location: str, name: str, content: bytes) -> bool:
    url = location if location.endswith("/") else location + "/"
    try:
        async with (
            aiohttp.ClientSession(timeout=_TIMEOUT) as http,
            http.put(url + name, data=content) as response,
        ):
            return response.status in (200, 201, 204)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.info("upload to %s failed: %s", location, exc)
        return False
