"""In-memory implementations of the core's ports for the agent tests (real classes, no mocks).

* :class:`FakeChargerCommands` implements :class:`strom_core.ports.ChargerCommands`: it records each
  command and answers with a scripted result.
* :class:`FakeFirmware` implements :class:`strom_core.ports.firmware.FirmwareCommands` the same
  way, and :class:`FakeChargerInfo` is what the OCPP server knows of a charger (its boot and
  the last status of each notification), as the operator's ``firmware`` DM reads it.
* :class:`FakeReservations` implements :class:`strom_core.ports.reservations.ReservationCommands`:
  it records ReserveNow and CancelReservation and answers ``answer``.
* :class:`MemoryLightning` is a :class:`strom_lightning.LightningBackend` that mints real BOLT11
  invoices (signed with the BOLT 11 example node key) and keeps their state in a dict; a test
  marks an invoice paid with :meth:`MemoryLightning.mark_paid`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import bolt11
from bolt11 import Bolt11, MilliSatoshi, Tag, TagChar, Tags

from strom_core.errors import BackendUnavailable
from strom_core.ports import CommandResult, CommandStatus
from strom_core.ports.firmware import UploadResult
from strom_lightning import (
    Failed,
    Invoice,
    InvoiceNotFound,
    InvoiceState,
    InvoiceStatus,
    LightningBackend,
    NodeInfo,
    PaymentResult,
)

NODE_KEY = "e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734"


@dataclass
class FakeChargerCommands:
    """Records commands; answers ``answer`` (Accepted by default)."""

    answer: CommandStatus = CommandStatus.ACCEPTED
    online: bool = True
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def _result(self, *call: Any) -> CommandResult:
        self.calls.append(tuple(str(part) for part in call))
        return CommandResult(self.answer)

    def is_online(self, charger_id: str) -> bool:
        return self.online

    async def remote_start(self, charger_id: str, connector_id: int, id_tag: str) -> CommandResult:
        return self._result("remote_start", charger_id, connector_id, id_tag)

    async def remote_stop(self, charger_id: str, transaction: str) -> CommandResult:
        return self._result("remote_stop", charger_id, transaction)

    async def unlock(self, charger_id: str, connector_id: int) -> CommandResult:
        return self._result("unlock", charger_id, connector_id)

    async def change_availability(
        self, charger_id: str, connector_id: int, *, operative: bool
    ) -> CommandResult:
        return self._result("change_availability", charger_id, connector_id, operative)

    async def reset(self, charger_id: str, *, hard: bool) -> CommandResult:
        return self._result("reset", charger_id, "hard" if hard else "soft")

    async def trigger_status(self, charger_id: str, connector_id: int | None) -> CommandResult:
        return self._result("trigger_status", charger_id, connector_id)


@dataclass
class FakeFirmware:
    """Records firmware commands; answers ``answer`` (Accepted by default)."""

    answer: CommandStatus = CommandStatus.ACCEPTED
    calls: list[tuple[str, ...]] = field(default_factory=list)

    async def update_firmware(
        self,
        charger_id: str,
        location: str,
        retrieve_at: datetime,
        *,
        retries: int | None = None,
        retry_interval_s: int | None = None,
    ) -> CommandResult:
        self.calls.append(("update_firmware", charger_id, location, retrieve_at.isoformat()))
        return CommandResult(self.answer, "" if self.answer is CommandStatus.ACCEPTED else "no")

    async def get_diagnostics(self, charger_id: str, location: str, **_: Any) -> UploadResult:
        raise NotImplementedError

    async def get_log(
        self, charger_id: str, location: str, request_id: int, **_: Any
    ) -> UploadResult:
        raise NotImplementedError


@dataclass
class FakeReservations:
    """Records reservation commands; answers ``answer`` (Accepted by default)."""

    answer: CommandStatus = CommandStatus.ACCEPTED
    detail: str = ""
    calls: list[tuple[str, ...]] = field(default_factory=list)

    async def reserve_now(
        self,
        charger_id: str,
        connector_id: int,
        *,
        reservation_id: int,
        expires_at: datetime,
        id_tag: str,
    ) -> CommandResult:
        call = (charger_id, connector_id, reservation_id, expires_at.isoformat(), id_tag)
        self.calls.append(("reserve_now", *(str(part) for part in call)))
        return CommandResult(self.answer, self.detail)

    async def cancel_reservation(self, charger_id: str, reservation_id: int) -> CommandResult:
        self.calls.append(("cancel_reservation", charger_id, str(reservation_id)))
        return CommandResult(self.answer, self.detail)


@dataclass(frozen=True)
class FakeBoot:
    vendor: str = "Sim"
    model: str = "One"
    serial_number: str | None = None
    charge_box_serial_number: str | None = None
    firmware_version: str | None = None


@dataclass
class FakeChargerInfo:
    """What the OCPP server knows of one charger: its boot and its last notifications."""

    boot: FakeBoot | None = None
    notifications: dict[str, str] = field(default_factory=dict)


class MemoryLightning(LightningBackend):
    """Invoices in a dict; paid only when a test says so. No real money, no network."""

    name = "memory"
    real_money = False

    def __init__(self) -> None:
        super().__init__(network="bcrt")
        self.invoices: dict[str, InvoiceStatus] = {}
        self.bolt11: dict[str, str] = {}
        self.unavailable = False
        self.lookups = 0

    @classmethod
    def from_config(cls, config: Any, *, data_dir: Path) -> Self:
        raise NotImplementedError

    async def create_invoice(
        self,
        amount_msat: int,
        *,
        memo: str | None = None,
        description_hash: bytes | None = None,
        expiry_s: int,
    ) -> Invoice:
        preimage = os.urandom(32)
        payment_hash = hashlib.sha256(preimage).hexdigest()
        now = int(time.time())
        tags = Tags(
            [
                Tag(TagChar.payment_hash, payment_hash),
                Tag(TagChar.payment_secret, os.urandom(32).hex()),
                Tag(TagChar.description_hash, (description_hash or bytes(32)).hex()),
                Tag(TagChar.expire_time, expiry_s),
            ]
        )
        encoded: str = bolt11.encode(
            Bolt11(currency="bcrt", date=now, tags=tags, amount_msat=MilliSatoshi(amount_msat)),
            NODE_KEY,
        )
        expires = datetime.fromtimestamp(now, UTC) + timedelta(seconds=expiry_s)
        self.invoices[payment_hash] = InvoiceStatus(
            payment_hash,
            InvoiceState.PENDING,
            amount_msat,
            0,
            expires,  # type: ignore[arg-type]
        )
        self.bolt11[payment_hash] = encoded
        return Invoice(encoded, payment_hash, amount_msat, expires)  # type: ignore[arg-type]

    def mark_paid(self, payment_hash: str) -> None:
        status = self.invoices[payment_hash]
        self.invoices[payment_hash] = InvoiceStatus(
            payment_hash,
            InvoiceState.SETTLED,
            status.amount_msat,
            status.amount_msat,
            status.expires_at,
            datetime.now(UTC),
        )

    async def lookup_invoice(self, payment_hash: str) -> InvoiceStatus:
        self.lookups += 1
        if self.unavailable:
            raise BackendUnavailable("memory backend switched off by the test")
        try:
            return self.invoices[payment_hash]
        except KeyError:
            raise InvoiceNotFound(payment_hash, "memory") from None

    async def _listen(self, sink: Any) -> None:
        await asyncio.Event().wait()

    async def pay_invoice(
        self, bolt11: str, *, max_fee_msat: int, timeout_s: float
    ) -> PaymentResult:
        return Failed(reason="memory backend does not pay", pre_dispatch=True)

    async def lookup_payment(self, payment_hash: str) -> PaymentResult:
        return Failed(reason="unknown", pre_dispatch=True)

    async def node_info(self) -> NodeInfo:
        return NodeInfo(
            backend="memory",
            alias="memory",
            network="bcrt",
            real_money=False,
            can_receive=True,
            can_pay=False,
        )

    async def _aclose(self) -> None:
        return None
