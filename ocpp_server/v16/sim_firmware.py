"""How the simulated OCPP 1.6 charge point answers firmware updates and upload requests.

* UpdateFirmware: answered at once; from the retrieve date on the charger fetches the firmware
  (an ``http(s)://`` location by GET; any other scheme, such as ``ftp://``, is taken as fetched)
  and reports each step in a FirmwareStatusNotification: Downloading, Downloaded, Installing,
  Installed, or DownloadFailed when the GET fails.
* GetDiagnostics: answered with the file name; then it reports Uploading, uploads a generated
  text file by HTTP PUT to ``<location><file name>``, and reports Uploaded or UploadFailed.
* GetLog (security extension): the same with a LogStatusNotification carrying the request id.
* SignedUpdateFirmware (security extension): a signing certificate that is no PEM X.509
  certificate is answered ``InvalidCertificate``; otherwise ``Accepted``, and from the retrieve
  date on it reports, in SignedFirmwareStatusNotifications carrying the request id,
  Downloading, then Downloaded (or DownloadFailed), then SignatureVerified or
  InvalidSignature (and stops), then, from the install date on, Installing and Installed.
  The signature (base64) must be a signature of the downloaded bytes by the certificate's key
  (ECDSA or RSA PKCS#1 v1.5, SHA-256); for a location it does not fetch (not ``http(s)://``)
  any non-empty base64 signature passes. An empty or undecodable signature is invalid.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

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
            "SignedUpdateFirmware": self.on_signed_update_firmware,
        }

    def on_update_firmware(self, payload: Mapping[str, Any]) -> Answer:
        """Fetch and install from the retrieve date on, reporting each step."""
        location = str(payload["location"])
        retrieve_at = parse_timestamp(str(payload["retrieveDate"]))

        async def update() -> None:
            await _until(retrieve_at)
            await self._firmware_status("Downloading")
            if not await _fetch(location):
                await self._firmware_status("DownloadFailed")
                return
            for status in ("Downloaded", "Installing", "Installed"):
                await self._firmware_status(status)

        return Answer({}, then=update)

    def on_signed_update_firmware(self, payload: Mapping[str, Any]) -> Answer:
        """Check the certificate; then fetch, verify and install, reporting each step."""
        firmware = payload["firmware"]
        request_id = int(payload["requestId"])
        try:
            certificate = x509.load_pem_x509_certificate(
                str(firmware["signingCertificate"]).encode()
            )
        except ValueError:
            return Answer({"status": "InvalidCertificate"})
        location = str(firmware["location"])
        signature = str(firmware["signature"])
        retrieve_at = parse_timestamp(str(firmware["retrieveDateTime"]))
        install = firmware.get("installDateTime")
        install_at = None if install is None else parse_timestamp(str(install))

        async def update() -> None:
            await _until(retrieve_at)
            await self._signed_status("Downloading", request_id)
            content = await _download(location)
            if content is None:
                await self._signed_status("DownloadFailed", request_id)
                return
            await self._signed_status("Downloaded", request_id)
            if not _signed(certificate, signature, content):
                await self._signed_status("InvalidSignature", request_id)
                return
            await self._signed_status("SignatureVerified", request_id)
            if install_at is not None:
                await _until(install_at)
            for status in ("Installing", "Installed"):
                await self._signed_status(status, request_id)

        return Answer({"status": "Accepted"}, then=update)

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

    async def _signed_status(self, status: str, request_id: int) -> None:
        await self._cp.call(
            "SignedFirmwareStatusNotification", {"status": status, "requestId": request_id}
        )

    async def _log_status(self, status: str, request_id: int) -> None:
        await self._cp.call("LogStatusNotification", {"status": status, "requestId": request_id})


async def _until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


async def _fetch(location: str) -> bool:
    return await _download(location) is not None


async def _download(location: str) -> bytes | None:
    """The firmware at ``location`` (empty for a scheme it does not fetch), None on failure."""
    if not location.startswith(("http://", "https://")):
        return b""
    try:
        async with (
            aiohttp.ClientSession(timeout=_TIMEOUT) as http,
            http.get(location) as response,
        ):
            content = await response.read()
            return content if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.info("firmware download from %s failed: %s", location, exc)
        return None


def _signed(certificate: x509.Certificate, signature: str, content: bytes) -> bool:
    """Whether ``signature`` (base64) signs ``content`` with the certificate's key."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        return False
    if not raw:
        return False
    if not content:  # nothing fetched (an FTP location): a signature is all it can check
        return True
    key = certificate.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(raw, content, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(raw, content, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except InvalidSignature:
        return False
    return True


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
