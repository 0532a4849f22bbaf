"""``/chargers/{charger_id}/firmware…`` and ``…/uploads``: firmware updates and uploaded files.

An operator tells a charger to fetch new firmware (UpdateFirmware) or to upload its
diagnostics (GetDiagnostics) through :class:`strom_core.ports.firmware.FirmwareCommands`; for
an upload Strom makes a one-time URL (:class:`cockpit.uploads.ChargerUploads`). The firmware
page shows the charger's version, the last FirmwareStatusNotification,
DiagnosticsStatusNotification, LogStatusNotification and SignedFirmwareStatusNotification it
sent, and the files it uploaded, which are downloaded and deleted here. A signed update (the
security edition's SignedUpdateFirmware) is :class:`SignedFirmwareResource`'s. Every call but
the page is audited.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from aiohttp import web
from cryptography import x509

from cockpit import models as m
from cockpit.api.context import ApiContext
from cockpit.endpoint import ApiError, Call, Endpoint
from cockpit.uploads import ChargerUploads, UploadRefused

__all__ = ["FirmwareResource", "SignedFirmwareResource"]


class FirmwareResource:
    """Firmware updates, diagnostics uploads and the uploaded files of each charger.

    Args:
        ctx: Strom's parts.
        uploads: the upload URLs and files.
    """

    def __init__(self, ctx: ApiContext, uploads: ChargerUploads) -> None:
        self.ctx = ctx
        self.uploads = uploads

    async def firmware(self, call: Call) -> m.FirmwareOut:
        """``GET /chargers/{charger_id}/firmware``."""
        profile = self.ctx.profile(call)
        info = self.ctx.station.charger_info(profile.id)
        notes = info.notifications if info is not None else {}
        boot = info.boot if info is not None else None
        return m.FirmwareOut(
            charger_id=profile.id,
            firmware_version=boot.firmware_version if boot is not None else None,
            firmware_status=notes.get("FirmwareStatusNotification"),
            diagnostics_status=notes.get("DiagnosticsStatusNotification"),
            log_status=notes.get("LogStatusNotification"),
            signed_firmware_status=notes.get("SignedFirmwareStatusNotification"),
            files=[
                m.UploadedFileOut(name=f.name, size=f.size, modified=f.modified)
                for f in self.uploads.files(profile.id)
            ],
        )

    async def update_firmware(self, call: Call) -> m.CommandAnswer:
        """``POST /chargers/{charger_id}/commands/update-firmware``."""
        profile = self.ctx.profile(call)
        body: m.UpdateFirmwareIn = call.body
        retrieve_at = body.retrieve_at or self.ctx.clock.now()
        result = await self.ctx.station.firmware.update_firmware(
            profile.id,
            body.location,
            retrieve_at,
            retries=body.retries,
            retry_interval_s=body.retry_interval_s,
        )
        call.audit_detail.update(
            location=body.location,
            retrieve_at=retrieve_at.isoformat(),
            charger=result.status.value,
        )
        return m.CommandAnswer(status=result.status.value, detail=result.detail)

    async def get_diagnostics(self, call: Call) -> m.UploadAnswer:
        """``POST /chargers/{charger_id}/commands/get-diagnostics``."""
        profile = self.ctx.profile(call)
        body: m.GetDiagnosticsIn = call.body
        location = self.uploads.grant(profile.id)
        answer = await self.ctx.station.firmware.get_diagnostics(
            profile.id,
            location,
            start=body.start,
            stop=body.stop,
            retries=body.retries,
            retry_interval_s=body.retry_interval_s,
        )
        call.audit_detail.update(charger=answer.result.status.value, file=answer.file_name)
        return m.UploadAnswer(
            status=answer.result.status.value,
            detail=answer.result.detail,
            file_name=answer.file_name,
        )

    async def download(self, call: Call) -> web.StreamResponse:
        """``GET /chargers/{charger_id}/uploads/{name}``."""
        profile = self.ctx.profile(call)
        name = call.path("name")
        try:
            path = self.uploads.path(profile.id, name)
        except UploadRefused as exc:
            raise ApiError(exc.status, _code(exc.status), str(exc)) from None
        call.audit_detail.update(file=name)
        return web.FileResponse(
            path,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            },
        )

    async def delete(self, call: Call) -> m.CommandAnswer:
        """``DELETE /chargers/{charger_id}/uploads/{name}``."""
        profile = self.ctx.profile(call)
        name = call.path("name")
        try:
            self.uploads.delete(profile.id, name)
        except UploadRefused as exc:
            raise ApiError(exc.status, _code(exc.status), str(exc)) from None
        call.audit_detail.update(file=name)
        return m.CommandAnswer(status="Accepted", detail=f"{name} deleted")

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        e = Endpoint
        return [
            e(
                "GET",
                "/chargers/{charger_id}/firmware",
                self.firmware,
                "Firmware version, the last firmware/diagnostics/log statuses, uploaded files",
                "chargers",
                m.FirmwareOut,
            ),
            e(
                "POST",
                "/chargers/{charger_id}/commands/update-firmware",
                self.update_firmware,
                "UpdateFirmware: fetch and install firmware from a URL",
                "chargers",
                m.CommandAnswer,
                body=m.UpdateFirmwareIn,
                action="charger.update_firmware",
                target="charger_id",
            ),
            e(
                "POST",
                "/chargers/{charger_id}/commands/get-diagnostics",
                self.get_diagnostics,
                "GetDiagnostics: upload diagnostics to a one-time URL of Strom",
                "chargers",
                m.UploadAnswer,
                body=m.GetDiagnosticsIn,
                action="charger.get_diagnostics",
                target="charger_id",
            ),
            e(
                "GET",
                "/chargers/{charger_id}/uploads/{name}",
                self.download,
                "Download a file the charger uploaded",
                "chargers",
                None,
                action="charger.upload_download",
                target="charger_id",
                media=("application/octet-stream",),
            ),
            e(
                "DELETE",
                "/chargers/{charger_id}/uploads/{name}",
                self.delete,
                "Delete a file the charger uploaded",
                "chargers",
                m.CommandAnswer,
                action="charger.upload_delete",
                target="charger_id",
            ),
        ]


def _code(status: int) -> str:
    return {400: "bad_request", 404: "not_found"}.get(status, "error")


# --- SignedUpdateFirmware (OCPP 1.6 security edition) ----------------------------------------


class SignedFirmwareResource:
    """Signed firmware updates: the charger verifies the signature before it installs.

    Args:
        ctx: Strom's parts.
        request_ids: a new request id (the charger repeats it in its status notifications)
            when the body names none.
    """

    def __init__(
        self, ctx: ApiContext, request_ids: Callable[[], int] = lambda: secrets.randbelow(2**31)
    ) -> None:
        self.ctx = ctx
        self._request_ids = request_ids

    async def signed_update_firmware(self, call: Call) -> m.CommandAnswer:
        """``POST /chargers/{charger_id}/commands/signed-update-firmware``."""
        profile = self.ctx.profile(call)
        body: m.SignedUpdateFirmwareIn = call.body
        try:
            x509.load_pem_x509_certificate(body.signing_certificate.encode())
        except ValueError:
            raise ApiError(
                400, "bad_request", "signing_certificate: not a PEM X.509 certificate"
            ) from None
        retrieve_at = body.retrieve_at or self.ctx.clock.now()
        request_id = self._request_ids() if body.request_id is None else body.request_id
        result = await self.ctx.station.firmware.signed_update_firmware(
            profile.id,
            body.location,
            retrieve_at,
            request_id=request_id,
            signing_certificate=body.signing_certificate,
            signature=body.signature,
            install_at=body.install_at,
            retries=body.retries,
            retry_interval_s=body.retry_interval_s,
        )
        call.audit_detail.update(
            location=body.location,
            retrieve_at=retrieve_at.isoformat(),
            request_id=request_id,
            charger=result.status.value,
        )
        return m.CommandAnswer(status=result.status.value, detail=result.detail)

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        return [
            Endpoint(
                "POST",
                "/chargers/{charger_id}/commands/signed-update-firmware",
                self.signed_update_firmware,
                "SignedUpdateFirmware: fetch, verify and install signed firmware from a URL",
                "chargers",
                m.CommandAnswer,
                body=m.SignedUpdateFirmwareIn,
                action="charger.signed_update_firmware",
                target="charger_id",
            ),
        ]
