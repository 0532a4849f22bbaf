"""Firmware updates and diagnostics uploads, as the cockpit asks them of a charger.

An operator tells a charger where to fetch new firmware (an ``http(s)://`` or ``ftp://`` URL the
charger downloads from itself, from a time on, with a number of retries) and asks it to upload
its diagnostics (or, with the OCPP 1.6 security extension, its logs) to a URL Strom serves
(:mod:`cockpit.uploads`). The charger answers at once; how the download, installation or upload
goes it reports later in status notifications, which the OCPP server keeps per charger.

A *signed* firmware update (the OCPP 1.6 security edition's SignedUpdateFirmware) carries the
firmware's signature and the certificate of the key that made it, and a request id the
charger's status notifications repeat: the charger checks the signing certificate at once
(an invalid or revoked one is refused in the answer) and the signature after the download,
before it installs (an invalid signature is reported, and nothing is installed).

OCPP 1.6 calls these the FirmwareManagement profile (UpdateFirmware, GetDiagnostics) and the
security edition adds GetLog and SignedUpdateFirmware; OCPP 2.0.1 has UpdateFirmware and
GetLog of its own. The port is
version-neutral: a version that does not implement a command answers ``NOT_SUPPORTED`` and
sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from strom_core.ports.chargers import CommandResult

__all__ = ["FirmwareCommands", "UploadResult"]


@dataclass(frozen=True, slots=True)
class UploadResult:
    """The answer to a request for an upload: the command result and the file name, if any.

    ``file_name`` is the name the charger says it will upload (None when it has nothing).
    """

    result: CommandResult
    file_name: str | None = None


@runtime_checkable
class FirmwareCommands(Protocol):
    """Firmware updates and uploads of diagnostics and logs, by charger id."""

    async def update_firmware(
        self,
        charger_id: str,
        location: str,
        retrieve_at: datetime,
        *,
        retries: int | None = None,
        retry_interval_s: int | None = None,
    ) -> CommandResult:
        """Have the charger fetch and install the firmware at ``location`` from ``retrieve_at``."""
        ...

    async def signed_update_firmware(
        self,
        charger_id: str,
        location: str,
        retrieve_at: datetime,
        *,
        request_id: int,
        signing_certificate: str,
        signature: str,
        install_at: datetime | None = None,
        retries: int | None = None,
        retry_interval_s: int | None = None,
    ) -> CommandResult:
        """Have the charger fetch, verify and install signed firmware from ``location``.

        ``signing_certificate`` is the PEM certificate of the key that signed the firmware,
        ``signature`` the signature (base64). ``ACCEPTED`` (detail ``AcceptedCanceled`` when
        an update in progress was cancelled for it); ``REJECTED`` with the detail
        ``InvalidCertificate``, ``RevokedCertificate`` or ``Rejected``.
        """
        ...

    async def get_diagnostics(
        self,
        charger_id: str,
        location: str,
        *,
        start: datetime | None = None,
        stop: datetime | None = None,
        retries: int | None = None,
        retry_interval_s: int | None = None,
    ) -> UploadResult:
        """Have the charger upload its diagnostics (from ``start`` to ``stop``) to ``location``."""
        ...

    async def get_log(
        self,
        charger_id: str,
        location: str,
        request_id: int,
        *,
        security_log: bool = False,
        start: datetime | None = None,
        stop: datetime | None = None,
    ) -> UploadResult:
        """Have the charger upload its diagnostics or security log to ``location``."""
        ...
