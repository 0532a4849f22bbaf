"""The Commands module, Strom as its Receiver: a partner starts, stops and unlocks.

Theory of operation (mod_commands.asciidoc): ``POST /ocpi/2.2.1/commands/{command}`` is
answered at once with a CommandResponse (``ACCEPTED`` with a ``timeout``, or ``REJECTED`` /
``UNKNOWN_SESSION`` / ``NOT_SUPPORTED`` with a message, nothing done), and an accepted
command's outcome is POSTed later, once, as a CommandResult to its ``response_url``:

* ``START_SESSION``: the Location id is the charger id, the EVSE uid ``<charger>-<connector>``
  (:func:`ocpi_server.objects.evse_uid`), the Connector id ``1``. The token is the partner's
  word (the spec: the CPO does not check it); it must be the partner's own party's.
  :meth:`~strom_services.roaming.RoamingService.start_for_partner` opens the post-paid
  session and queues the RemoteStart; its refusal (a busy connector, an offline charger, an
  overdue partner) is ``REJECTED`` with the reason. Without an ``authorization_reference``,
  one is derived from the ``response_url``, so the same request sent twice starts once.
* ``STOP_SESSION``: the partner's own session only (else ``UNKNOWN_SESSION``).
* ``UNLOCK_CONNECTOR``: UnlockConnector, sent where the charger is connected.
* ``START_SESSION`` for a token the partner reserved the EVSE for starts that reservation
  (:meth:`~strom_services.roaming.RoamingService.start_reserved`) instead of a new session.
* ``RESERVE_NOW``: a post-paid reservation
  (:meth:`~strom_services.roaming.RoamingService.reserve_for_partner`): the connector is
  held until ``expiry_date`` for the token's uid (an RFID token of at most 20 characters:
  the driver presents it at the charger). An expiry beyond the tariff's
  ``reservation_max_minutes`` is ``REJECTED`` with the limit in the message (not capped: a
  driver told "reserved until 18:00" must not find it gone at 17:30). The partner's
  ``reservation_id`` is kept; the same id again is ``REJECTED`` (a reservation's end time is
  frozen with its fee: to change it, cancel and reserve under a new id). The command is
  recorded in the transaction that creates the session and ends with the charger's answer
  to ReserveNow (:mod:`strom_core.roaming_commands`).
* ``CANCEL_RESERVATION``: the partner's reservation, while reserved (else ``REJECTED``);
  the tariff's share of the fee is owed, as for a prepaid payer's cancel.

The outcome is durable: the command is stored (:mod:`strom_storage.roaming_commands`), the
session transition that answers it ends it in its own transaction and queues the outbox row
that posts the CommandResult (:meth:`Commands.handlers`), and a timer row ends it
``TIMEOUT`` if nothing did. A CommandResult the partner does not take is retried a few
times, then given up (the spec asks for no retries; the partner knows the timeout).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ocpi_server.client import OcpiClient, OcpiRequestFailed
from ocpi_server.protocol import (
    InterfaceRole,
    ModuleId,
    OcpiError,
    StatusCode,
    Url,
    check_cistring,
    parse_datetime,
    parse_model,
)
from ocpi_server.server import Answer, Module, OcpiRequest, OcpiServer
from ocpi_server.tokens import OcpiToken
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import ProfileConfig
from strom_core.ports import ChargerCommands
from strom_core.roaming import PartnerRefused
from strom_core.roaming_commands import (
    CommandKind,
    CommandOutcome,
    Outcome,
    unlock_outcome,
)
from strom_services.effects import Handler, RetryLater
from strom_services.roaming import RoamingService
from strom_storage.db import Database
from strom_storage.ocpi import OcpiStore
from strom_storage.outbox import OutboxRow
from strom_storage.roaming_commands import (
    RESULT_KIND,
    TIMEOUT_KIND,
    UNLOCK_KIND,
    end_command,
    load_command,
    open_command,
)
from strom_storage.sealing import Sealer

__all__ = ["RESERVE_TIMEOUT_S", "STOP_TIMEOUT_S", "UNLOCK_TIMEOUT_S", "Commands"]

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 120  # a stop the charger has not confirmed by then: TIMEOUT
RESERVE_TIMEOUT_S = 60  # a ReserveNow the charger has not answered by then: TIMEOUT
CANCEL_TIMEOUT_S = 60  # (a cancel ends at once; its timer is a guard)
UNLOCK_TIMEOUT_S = 60
START_MARGIN_S = 30  # a start's timeout: the session's start timeout and this margin
RESULT_ATTEMPTS = 5  # posts of a CommandResult before it is given up

CiString36 = Annotated[
    str, Field(min_length=1), AfterValidator(partial(check_cistring, max_length=36))
]


def _datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected an OCPI DateTime string")
    return parse_datetime(value)


OcpiDateTime = Annotated[datetime, BeforeValidator(_datetime)]


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    response_url: Url


class StartSession(_Command):
    """OCPI StartSession."""

    token: OcpiToken
    location_id: CiString36
    evse_uid: CiString36 | None = None
    connector_id: CiString36 | None = None
    authorization_reference: CiString36 | None = None


class StopSession(_Command):
    """OCPI StopSession."""

    session_id: CiString36


class ReserveNow(_Command):
    """OCPI ReserveNow."""

    token: OcpiToken
    expiry_date: OcpiDateTime
    reservation_id: CiString36
    location_id: CiString36
    evse_uid: CiString36 | None = None
    authorization_reference: CiString36 | None = None


class CancelReservation(_Command):
    """OCPI CancelReservation."""

    reservation_id: CiString36


class UnlockConnector(_Command):
    """OCPI UnlockConnector."""

    location_id: CiString36
    evse_uid: CiString36
    connector_id: CiString36


def _text(message: str) -> list[dict[str, str]]:
    """A DisplayText list (English), empty for no message."""
    return [{"language": "en", "text": message[:512]}] if message else []


def _response(result: str, timeout: int = 0, message: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {"result": result, "timeout": timeout}
    if message:
        data["message"] = _text(message)
    return data


class Commands:
    """The commands Receiver endpoint and the outbox handlers that finish its commands.

    Args:
        server: the OCPI server (the module is registered on it; its live configuration).
        store: the partners.
        db: the database (commands, their outcomes).
        roaming: partners' sessions.
        chargers: commands to chargers (UnlockConnector).
        client: requests to partners (the CommandResults).
        sealer: opens the token Strom uses on a partner.
        clock: the time of commands.
    """

    def __init__(
        self,
        server: OcpiServer,
        store: OcpiStore,
        db: Database,
        roaming: RoamingService,
        chargers: ChargerCommands,
        client: OcpiClient,
        sealer: Sealer,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.server = server
        self.store = store
        self.db = db
        self.roaming = roaming
        self.chargers = chargers
        self.client = client
        self.sealer = sealer
        self.clock = clock
        server.register(
            Module(ModuleId.COMMANDS.value, (InterfaceRole.RECEIVER,), {"POST": self._post})
        )

    def handlers(self) -> dict[str, Handler]:
        """The outbox handlers of partners' commands (post the result, time out, unlock)."""
        return {
            RESULT_KIND: self.post_result,
            TIMEOUT_KIND: self.time_out,
            UNLOCK_KIND: self.unlock,
        }

    # --- the endpoint ------------------------------------------------------------------------

    async def _post(self, call: OcpiRequest) -> Answer:
        command = call.tail.strip("/")
        if command == CommandKind.START.value:
            return await self._start(call, parse_model(StartSession, call.json(), "StartSession"))
        if command == CommandKind.STOP.value:
            return await self._stop(call, parse_model(StopSession, call.json(), "StopSession"))
        if command == CommandKind.UNLOCK.value:
            body = parse_model(UnlockConnector, call.json(), "UnlockConnector")
            return await self._unlock(call, body)
        if command == CommandKind.RESERVE.value:
            return await self._reserve(call, parse_model(ReserveNow, call.json(), "ReserveNow"))
        if command == CommandKind.CANCEL.value:
            cancel = parse_model(CancelReservation, call.json(), "CancelReservation")
            return await self._cancel(call, cancel)
        raise OcpiError(StatusCode.CLIENT_ERROR, f"no command {command!r}", 404)

    async def _start(self, call: OcpiRequest, body: StartSession) -> Answer:
        partner_id = str(call.partner.id)
        own = ((call.partner.country_code or "").upper(), (call.partner.party_id or "").upper())
        if (body.token.country_code.upper(), body.token.party_id.upper()) != own:
            return Answer(_response("REJECTED", message="the token is not of your party"))
        try:
            charger_id, connector_id = self._place(
                body.location_id, body.evse_uid, body.connector_id
            )
            token = body.token.roaming(partner_id)
        except ValueError as exc:
            return Answer(
                _response("REJECTED", message=str(exc)),
                status=StatusCode.UNKNOWN_LOCATION,
                message=str(exc),
            )
        reference = body.authorization_reference or _reference(body.response_url)
        try:
            session_id = await self.roaming.start_reserved(
                partner_id, token, charger_id, connector_id
            ) or await self.roaming.start_for_partner(
                partner_id, token, charger_id, connector_id, reference
            )
        except PartnerRefused as exc:
            log.info("ocpi: partner %s START_SESSION refused: %s", partner_id, exc.reason)
            return Answer(_response("REJECTED", message=exc.reason))
        timeout = self.server.live.current.sessions.start_timeout_s + START_MARGIN_S
        await self._record(
            partner_id, CommandKind.START, body.response_url, timeout, session_id=session_id
        )
        return Answer(_response("ACCEPTED", timeout))

    async def _reserve(self, call: OcpiRequest, body: ReserveNow) -> Answer:
        partner_id = str(call.partner.id)
        if not self._own_token(call, body.token):
            return Answer(_response("REJECTED", message="the token is not of your party"))
        try:
            charger_id, connector_id = self._place(body.location_id, body.evse_uid, None)
            token = body.token.roaming(partner_id)
        except ValueError as exc:
            return Answer(
                _response("REJECTED", message=str(exc)),
                status=StatusCode.UNKNOWN_LOCATION,
                message=str(exc),
            )
        record = partial(
            open_command,
            partner_id=partner_id,
            kind=CommandKind.RESERVE,
            response_url=body.response_url,
            timeout_s=RESERVE_TIMEOUT_S,
            now=self.clock.now(),
        )
        try:
            session_id = await self.roaming.reserve_for_partner(
                partner_id,
                token,
                charger_id,
                connector_id,
                body.expiry_date,
                body.reservation_id,
                within=lambda conn, session_id: record(conn, session_id=session_id),
            )
        except PartnerRefused as exc:
            log.info("ocpi: partner %s RESERVE_NOW refused: %s", partner_id, exc.reason)
            return Answer(_response("REJECTED", message=exc.reason))
        log.info("ocpi: partner %s RESERVE_NOW accepted: session %s", partner_id, session_id)
        return Answer(_response("ACCEPTED", RESERVE_TIMEOUT_S))

    async def _cancel(self, call: OcpiRequest, body: CancelReservation) -> Answer:
        partner_id = str(call.partner.id)
        try:
            session_id = await self.roaming.cancel_reservation(partner_id, body.reservation_id)
        except PartnerRefused as exc:
            return Answer(_response("REJECTED", message=exc.reason))
        await self._record(
            partner_id,
            CommandKind.CANCEL,
            body.response_url,
            CANCEL_TIMEOUT_S,
            session_id=session_id,
        )
        return Answer(_response("ACCEPTED", CANCEL_TIMEOUT_S))

    @staticmethod
    def _own_token(call: OcpiRequest, token: OcpiToken) -> bool:
        own = ((call.partner.country_code or "").upper(), (call.partner.party_id or "").upper())
        return (token.country_code.upper(), token.party_id.upper()) == own

    async def _stop(self, call: OcpiRequest, body: StopSession) -> Answer:
        partner_id = str(call.partner.id)
        session_id = await self._partner_session(partner_id, body.session_id)
        if session_id is None:
            return Answer(_response("UNKNOWN_SESSION", message="no such session of yours"))
        try:
            await self.roaming.stop_for_partner(partner_id, session_id)
        except PartnerRefused as exc:
            return Answer(_response("REJECTED", message=exc.reason))
        await self._record(
            partner_id, CommandKind.STOP, body.response_url, STOP_TIMEOUT_S, session_id=session_id
        )
        return Answer(_response("ACCEPTED", STOP_TIMEOUT_S))

    async def _unlock(self, call: OcpiRequest, body: UnlockConnector) -> Answer:
        try:
            charger_id, connector_id = self._place(
                body.location_id, body.evse_uid, body.connector_id
            )
        except ValueError as exc:
            return Answer(
                _response("REJECTED", message=str(exc)),
                status=StatusCode.UNKNOWN_LOCATION,
                message=str(exc),
            )
        assert connector_id is not None  # an EVSE uid is required here
        await self._record(
            str(call.partner.id),
            CommandKind.UNLOCK,
            body.response_url,
            UNLOCK_TIMEOUT_S,
            charger_id=charger_id,
            connector_id=connector_id,
        )
        return Answer(_response("ACCEPTED", UNLOCK_TIMEOUT_S))

    async def _record(
        self,
        partner_id: str,
        kind: CommandKind,
        response_url: str,
        timeout_s: int,
        **where: Any,
    ) -> int:
        work = partial(
            open_command,
            partner_id=partner_id,
            kind=kind,
            response_url=response_url,
            timeout_s=timeout_s,
            now=self.clock.now(),
            **where,
        )
        command_id: int = await self.db.write(work)
        log.info("ocpi: partner %s %s accepted as command %s", partner_id, kind, command_id)
        return command_id

    async def _partner_session(self, partner_id: str, given: str) -> str | None:
        """The id of the partner's session ``given`` names (ids compare case-insensitively)."""
        for candidate in dict.fromkeys((given, given.lower())):
            start = await self.roaming.records.roaming_start(candidate)
            if start is not None and start.partner_id == partner_id:
                return start.session_id
        return None

    def _place(
        self, location_id: str, evse_uid: str | None, connector_id: str | None
    ) -> tuple[str, int | None]:
        """The charger and connector an OCPI Location, EVSE and Connector name.

        Raises:
            ValueError: an unknown location, EVSE or connector (the message says which).
        """
        profile = _profile(self.server.live.current.profiles, location_id)
        if profile is None:
            raise ValueError(f"unknown location {location_id}")
        if evse_uid is None:
            if connector_id is not None:
                raise ValueError("a connector_id needs an evse_uid")
            return profile.id, None
        prefix, _, number = evse_uid.rpartition("-")
        connectors = {c.id for c in profile.connectors}
        if prefix.lower() != profile.id.lower() or not number.isdigit():
            raise ValueError(f"unknown EVSE {evse_uid} at location {location_id}")
        if int(number) not in connectors:
            raise ValueError(f"unknown EVSE {evse_uid} at location {location_id}")
        if connector_id is not None and connector_id != "1":
            raise ValueError(f"unknown connector {connector_id} of EVSE {evse_uid}")
        return profile.id, int(number)

    # --- the outbox handlers ------------------------------------------------------------------

    async def post_result(self, row: OutboxRow) -> None:
        """POST an ended command's CommandResult to its ``response_url``."""
        command = await self.db.read(partial(load_command, command_id=row.payload["command_id"]))
        if command is None or command.result is None:
            return
        partner = await self.store.get(int(command.partner_id))
        if partner is None or partner.state != "registered" or partner.their_token is None:
            log.warning("ocpi: command %s: partner %s gone", command.id, command.partner_id)
            return
        token = self.sealer.open(f"ocpi-partner:{partner.id}", partner.their_token)
        body: dict[str, Any] = {"result": command.result.value}
        if command.message:
            body["message"] = _text(command.message)
        try:
            await self.client.request(
                "POST", command.response_url, token, partner_id=partner.id, body=body
            )
        except OcpiRequestFailed as exc:
            if row.attempts + 1 < RESULT_ATTEMPTS:
                raise RetryLater(f"command {command.id}: {exc}") from None
            log.warning("ocpi: command %s: CommandResult given up: %s", command.id, exc)
            return
        log.info("ocpi: partner %s told: %s %s", partner.id, command.kind, command.result.value)

    async def time_out(self, row: OutboxRow) -> None:
        """End a command nothing ended in time: TIMEOUT."""
        outcome = Outcome(CommandOutcome.TIMEOUT, "no answer from the charger in time")
        work = partial(
            end_command, command_id=row.payload["command_id"], outcome=outcome, now=self.clock.now()
        )
        if await self.db.write(work):
            log.info("ocpi: command %s timed out", row.payload["command_id"])

    async def unlock(self, row: OutboxRow) -> None:
        """Send UnlockConnector for an open unlock command; end it with the charger's answer.

        Raises:
            RetryLater: the charger is not connected here (yet); the timer ends it otherwise.
        """
        command = await self.db.read(partial(load_command, command_id=row.payload["command_id"]))
        if command is None or command.ended:
            return
        assert command.charger_id is not None
        assert command.connector_id is not None
        answer = await self.chargers.unlock(command.charger_id, command.connector_id)
        outcome = unlock_outcome(answer)
        if outcome is None:
            raise RetryLater(f"charger {command.charger_id} is offline")
        await self.db.write(
            partial(end_command, command_id=command.id, outcome=outcome, now=self.clock.now())
        )


def _reference(response_url: str) -> str:
    """An authorization reference for a start that gave none: the same request, the same one."""
    return "U" + hashlib.sha256(response_url.encode()).hexdigest()[:35]


def _profile(profiles: tuple[ProfileConfig, ...], location_id: str) -> ProfileConfig | None:
    exact = next((p for p in profiles if p.id == location_id), None)
    if exact is not None:
        return exact
    return next((p for p in profiles if p.id.lower() == location_id.lower()), None)
