"""The OCPP-J central system: websocket endpoint, charger admission, registry, supervision.

This part is version-neutral: a connection speaks the OCPP version whose websocket subprotocol
it negotiated, through that version's package (:mod:`ocpp_server.v16` for ``ocpp1.6``,
:mod:`ocpp_server.v201` for ``ocpp2.0.1``).

Theory of operation:

* **Admission** happens in the HTTP upgrade, before a websocket exists. The path must be
  ``/ocpp/<charger id>`` (404 otherwise); the client must offer a subprotocol Strom speaks,
  ``ocpp1.6`` and ``ocpp2.0.1`` by default (400 with the reason otherwise; with both offered
  the server's order of preference decides); the charger must be configured and,
  when it has a password, present HTTP Basic credentials whose user is its id and whose password
  matches the stored hash (401 otherwise, the same answer for every failure, so nothing leaks).
  A charger of security profile 3 presents no password: over ``wss://`` the TLS handshake
  asks every client for a certificate of the charger CA (one of another CA fails the handshake),
  and admission requires a certificate whose CN is the charger id (401 without one, or with
  another charger's), see :mod:`ocpp_server.certificates`.
  With auto-registration on, an unknown charger is admitted into PENDING_APPROVAL and listed for
  the operator instead; a configured id is never held, it must authenticate.
* **Password checks** are fast for generated keys (a keyed hash under the server's
  :class:`~ocpp_server.passwords.PasswordKey`) and slow for chosen ones (scrypt, at most four
  at once, in threads; a success is remembered for the life of the process), see
  :mod:`ocpp_server._passwords`. Every wrong password counts against its source address; a
  backed-off source may not start a slow check and gets 429 with ``Retry-After`` before any
  hashing (:mod:`ocpp_server.backoff`).
* **Last connection wins, once it has proved who it is.** A charger that reconnects replaces
  its older connection, which is closed in its own task; commands then go to the new one, in
  the version it negotiated (:mod:`ocpp_server.commands`). The replacement happens only after
  admission, so a connection that fails the password check never touches the live one. A
  charger without a password cannot prove anything: a connection admitted without a password
  replaces a live connection only when the live one does not answer a websocket ping within
  ``replace_probe_s`` (a half-open link after a network change); while the live one answers,
  the newcomer gets 409 and the live one keeps the charger.
* **Supervision.** One supervisor task sweeps all connections: a charger silent for 2.5
  heartbeat intervals is marked offline and disconnected; a charger that connected without
  BootNotification gets the boot backstop (TriggerMessage BootNotification).
* **Several processes** (:mod:`ocpp_server.cluster`): an admitted connection of a configured
  charger claims the charger's lease before it is served (a connection whose claim fails is
  closed, 1013, and the charger tries again) and releases it when it ends; a lost lease closes
  the connection at once; a command for a charger connected to another process goes there.
* Each connection runs in the task websockets gives its handler, with its own TaskGroup
  (:mod:`ocpp_server._connection`). No task is left unowned.
"""

from __future__ import annotations

import asyncio
import http
import logging
import math
import secrets
import ssl
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, cast
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from ocpp_server import v16, v201
from ocpp_server._connection import (
    ChargerConnection,
    ConnectionContext,
    Dialect,
    DialectContext,
    DialectFactory,
)
from ocpp_server._passwords import Check, PasswordChecks
from ocpp_server.backoff import SourceBackoff, source_of
from ocpp_server.certificates import ChargerCa, certificate_identity
from ocpp_server.charger_certificates import OcppCertificates
from ocpp_server.cluster import ClusterChargers
from ocpp_server.commands import OcppCommands, RoutedDeviceModel
from ocpp_server.connection_state import ConnectionEvent, ConnectionState
from ocpp_server.firmware import OcppFirmware
from ocpp_server.ownership import SOLE_OWNER, ChargerOwnership
from ocpp_server.passwords import PasswordKey, parse_basic_auth
from ocpp_server.records import (
    ChargerInfo,
    ChargerRecord,
    LoggedMessage,
    MessageCounters,
    PendingCharger,
)
from ocpp_server.reservations import OcppReservations
from ocpp_server.settings import (
    ChargerAuth,
    ChargerAuthLookup,
    OcppServerSettings,
    Quirk,
)
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.ids import is_charger_id
from strom_core.ports import EventSink, OcppCore
from strom_core.ports.device_model import DeviceModelCommands

__all__ = ["OcppServer"]

log = logging.getLogger("ocpp_server")

PATH_PREFIX: Final = "/ocpp/"


@dataclass(frozen=True, slots=True)
class _Admission:
    charger_id: str
    auth: ChargerAuth | None  # None: held for approval
    presented_credentials: bool


class OcppServer:
    """The OCPP-J central system (see the module docstring).

    Use as ``async with OcppServer(...) as server:`` or call :meth:`start` and :meth:`stop`.

    Args:
        settings: listening address, TLS, intervals, timeouts.
        chargers: where admitted chargers and their passwords are looked up.
        core: the core's OCPP seam (authorisation, transactions, meter records).
        events: where :mod:`strom_core.ports` OCPP events are published.
        clock: Strom's clock: monotonic time for timeouts and silence, wall time for
            timestamps.
        password_key: checks (and makes, see :attr:`password_key`) the keyed hashes of
            generated charger keys; a key of this process alone when None, so only hashes
            made with it match.
        backoff: the per-source back-off of wrong passwords; one with the defaults of
            :class:`~ocpp_server.backoff.SourceBackoff` on the clock when None.
        ssl_context: serve ``wss://`` with this context (its certificate may be reloaded
            while the server runs: new handshakes see the new one, open connections stay);
            one from ``settings.tls_cert``/``tls_key`` when None.
        dialects: the OCPP versions served, in order of preference (OCPP 1.6, then 2.0.1 by
            default); a charger that offers several speaks the first of them in this order,
            one that offers one of them speaks it.
        charger_ca: the CA that signs chargers' CSRs (SignCertificate) and whose client
            certificates admit chargers of security profile 3 over ``wss://``; None: neither.
        cluster: this process's part of a cluster (charger leases, commands routed to the
            process holding a charger); None: one process, every charger is its own.
    """

    def __init__(
        self,
        settings: OcppServerSettings,
        chargers: ChargerAuthLookup,
        core: OcppCore,
        events: EventSink,
        *,
        clock: Clock = SYSTEM_CLOCK,
        password_key: PasswordKey | None = None,
        backoff: SourceBackoff | None = None,
        ssl_context: ssl.SSLContext | None = None,
        dialects: Sequence[DialectFactory] = (v16.dialect, v201.dialect),
        charger_ca: ChargerCa | None = None,
        cluster: ClusterChargers | None = None,
    ) -> None:
        self.settings = settings
        self._ownership: ChargerOwnership = SOLE_OWNER if cluster is None else cluster
        self._cluster = cluster
        self._charger_ca = charger_ca
        self._given_ssl = ssl_context
        self._chargers = chargers
        self._monotonic = clock.monotonic
        self._now = clock.now
        self._live: dict[str, ChargerConnection] = {}
        self._pending_connections: dict[str, ChargerConnection] = {}
        self._pending: dict[str, PendingCharger] = {}
        self._records: dict[str, ChargerRecord] = {}
        self._admissions: weakref.WeakKeyDictionary[ServerConnection, _Admission] = (
            weakref.WeakKeyDictionary()
        )
        self._totals = [0, 0]
        self._passwords = PasswordChecks(
            PasswordKey(secrets.token_bytes(32)) if password_key is None else password_key,
            SourceBackoff(clock=clock.monotonic) if backoff is None else backoff,
        )
        served = DialectContext(
            settings=settings,
            core=core,
            events=events,
            chargers=chargers,
            now=clock.now,
            pending=lambda conn: self._pending.get(conn.charger_id),
            update_pending=self._update_pending,
            charger_ca=charger_ca,
        )
        # The OCPP versions served, by websocket subprotocol, in order of preference.
        self._dialects: dict[str, Dialect] = {}
        for make in dialects:
            dialect = make(served)
            self._dialects[dialect.subprotocol] = dialect
        self._context = ConnectionContext(
            settings=settings,
            events=events,
            monotonic=clock.monotonic,
            now=clock.now,
            totals=self._totals,
        )
        # Each command goes to the command set of the version the charger's connection speaks.
        self.commands = OcppCommands(self._live.get, self._dialects.values(), cluster)
        if cluster is not None:
            cluster.attach(self.commands)
        self._ownership.on_lost(self._lease_lost)
        self.firmware = OcppFirmware(self.commands)
        self.reservations = OcppReservations(self.commands)
        self.certificates = OcppCertificates(self.commands)
        self._server: Server | None = None
        self._supervisor: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen for chargers and start supervising connections."""
        if self._server is not None:
            raise RuntimeError("the OCPP server is already running")
        self._server = await serve(
            self._serve_connection,
            self.settings.host,
            self.settings.port,
            subprotocols=[Subprotocol(name) for name in self._dialects],
            process_request=self._admit,
            ssl=self._ssl_context(),
            ping_interval=self.settings.websocket_ping_interval_s,
            max_size=self.settings.max_message_bytes,
            compression="deflate" if self.settings.websocket_compression else None,
            open_timeout=self.settings.handshake_timeout_s,
            close_timeout=self.settings.close_timeout_s,
            server_header="Strom",
        )
        self._supervisor = asyncio.create_task(self._supervise(), name="ocpp-supervisor")
        log.info(
            "OCPP-J central system (%s) on %s://%s:%d%s<charger id>",
            ", ".join(self._dialects),
            "wss" if self.settings.uses_tls or self._given_ssl else "ws",
            self.settings.host,
            self.port,
            PATH_PREFIX,
        )

    async def stop(self) -> None:
        """Close every connection (1001, going away) and stop supervising; returns promptly.

        Each charger gets the close frame at once and ``close_timeout_s`` to answer it; a
        charger that does not (busy sending meter values, or not reading at all) has its TCP
        connection dropped then. Nothing it sent and Strom answered is lost: an answered CALL
        was handled before its answer went out, and a CALL still unanswered is sent again by
        the charger after it reconnects, and a repeat changes nothing (a transaction message
        gets the same answer, a meter value bills by its register).
        """
        server, self._server = self._server, None
        supervisor, self._supervisor = self._supervisor, None
        if server is not None:
            server.close(code=CloseCode.GOING_AWAY, reason="the central system is stopping")
            await server.wait_closed()
        if supervisor is not None:
            supervisor.cancel()
            # gather returns the supervisor's CancelledError; our own cancellation propagates.
            await asyncio.gather(supervisor, return_exceptions=True)
        await self._passwords.aclose()

    async def __aenter__(self) -> OcppServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The TCP port listened on (useful with port 0)."""
        if self._server is None:
            raise RuntimeError("the OCPP server is not running")
        for sock in self._server.sockets:
            return int(sock.getsockname()[1])
        raise RuntimeError("the OCPP server has no socket")

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self._given_ssl is not None:
            if self._charger_ca is not None:
                self._charger_ca.require_clients(self._given_ssl)
            return self._given_ssl
        if self.settings.tls_cert is None or self.settings.tls_key is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # The OCPP 1.6 security whitepaper requires TLS 1.2 or later for profile 2.
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
        if self._charger_ca is not None:
            self._charger_ca.require_clients(context)
        return context

    # --- admission (HTTP upgrade) ----------------------------------------------------------

    async def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        charger_id = unquote(path[len(PATH_PREFIX) :]) if path.startswith(PATH_PREFIX) else ""
        if not is_charger_id(charger_id):
            return connection.respond(http.HTTPStatus.NOT_FOUND, "Not Found\n")
        if not any(name in self._dialects for name in _offered_subprotocols(request.headers)):
            served = " or ".join(f"'{name}'" for name in self._dialects)
            return connection.respond(
                http.HTTPStatus.BAD_REQUEST,
                f"This endpoint speaks OCPP-J: offer the websocket subprotocol {served} "
                "(Sec-WebSocket-Protocol).\n",
            )
        auth = await self._chargers.charger_auth(charger_id)
        if auth is not None and auth.client_certificate:
            return self._admit_certificate(connection, auth)
        header = request.headers.get("Authorization")
        credentials = parse_basic_auth(header) if header else None
        if auth is None:
            if self.settings.auto_register and self._may_hold(charger_id):
                return await self._admit_unproven(connection, charger_id, None, credentials)
            log.warning("unknown charger %r refused (%s)", charger_id, _peer(connection))
            return _unauthorized(connection)
        if auth.parsed_hash is None:
            return await self._admit_unproven(connection, charger_id, auth, credentials)
        if credentials is None or (
            credentials[0] != charger_id and not auth.has(Quirk.ANY_BASIC_AUTH_USERNAME)
        ):
            why = (
                "no Basic credentials (the charger has a password)"
                if credentials is None
                else f"Basic user name {credentials[0][:48]!r} is not the charger id"
            )
            log.warning("cp_id=%s: refused: %s (%s)", charger_id, why, _peer(connection))
            return _unauthorized(connection)
        source = source_of(_host(connection))
        check, retry_after = await self._passwords.check(auth, credentials[1], source)
        if check is Check.BACKED_OFF:
            log.debug("cp_id=%s: %s is backed off for %.0f s", charger_id, source, retry_after)
            return _backed_off(connection, retry_after)
        if check is Check.WRONG:
            return _unauthorized(connection)
        self._admissions[connection] = _Admission(charger_id, auth, True)
        return None

    def _admit_certificate(
        self, connection: ServerConnection, auth: ChargerAuth
    ) -> Response | None:
        """Admit a profile-3 charger on its TLS client certificate (CN = its id) alone.

        The handshake already checked that the certificate, if any, is the charger CA's.
        """
        identity = certificate_identity(connection.transport.get_extra_info("peercert"))
        if identity != auth.charger_id:
            why = (
                "no client certificate"
                if identity is None
                else f"the client certificate is {identity[:48]!r}'s"
            )
            log.warning(
                "cp_id=%s: refused: %s (security profile 3) (%s)",
                auth.charger_id,
                why,
                _peer(connection),
            )
            return _unauthorized(connection)
        self._admissions[connection] = _Admission(auth.charger_id, auth, True)
        return None

    async def _admit_unproven(
        self,
        connection: ServerConnection,
        charger_id: str,
        auth: ChargerAuth | None,
        credentials: tuple[str, bytes] | None,
    ) -> Response | None:
        """Admit a connection nobody checked a password for (no password, or held unknown).

        It must not take a charger away from a connection that is alive: only a live connection
        that does not answer a ping in time (half-open) is replaced.
        """
        registry = self._live if auth is not None else self._pending_connections
        current = registry.get(charger_id)
        if (
            current is not None
            and current.state is not ConnectionState.DISCONNECTED
            and await current.responsive(self.settings.replace_probe_s)
        ):
            log.warning(
                "cp_id=%s: a second connection without a password (%s) was refused: the live "
                "connection (%s) answers; a charger with a password can be replaced by itself",
                charger_id,
                _peer(connection),
                current.remote_address,
            )
            return connection.respond(http.HTTPStatus.CONFLICT, "Conflict\n")
        self._admissions[connection] = _Admission(charger_id, auth, credentials is not None)
        return None

    @property
    def password_key(self) -> PasswordKey:
        """The key generated charger keys are hashed under (``password_key.new_password()``)."""
        return self._passwords.key

    def _may_hold(self, charger_id: str) -> bool:
        return (
            charger_id in self._pending or len(self._pending) < self.settings.max_pending_chargers
        )

    # --- connections -----------------------------------------------------------------------

    async def _serve_connection(self, websocket: ServerConnection) -> None:
        admission = self._admissions.pop(websocket, None)
        if admission is None:  # pragma: no cover - every accepted handshake was admitted
            await websocket.close(1011, "not admitted")
            return
        charger_id = admission.charger_id
        dialect = self._dialects.get(websocket.subprotocol or "")
        if dialect is None:  # pragma: no cover - admission refused every other subprotocol
            await websocket.close(1002, "no OCPP subprotocol negotiated")
            return
        record = self._records.get(charger_id)
        if record is None:
            record = ChargerRecord(charger_id, self.settings.message_log_size)
            self._records[charger_id] = record
        conn = ChargerConnection(
            charger_id=charger_id,
            transport=websocket,
            record=record,
            auth=admission.auth,
            context=self._context,
            dialect=dialect,
            remote_address=_peer(websocket),
        )
        registry = self._live if admission.auth is not None else self._pending_connections
        old = registry.get(charger_id)
        registry[charger_id] = conn
        if old is not None and old.state is not ConnectionState.DISCONNECTED:
            log.info("cp_id=%s: reconnected; the older connection is closed", charger_id)
            old.fire_background(ConnectionEvent.REPLACED)
        if admission.auth is None:
            self._hold(conn, admission)
        elif not await self._claim(conn):
            return
        try:
            await conn.run()
        except Exception:
            # The per-connection supervisor: a bug in one charger's handling is logged with
            # its id and ends that connection only.
            log.exception("cp_id=%s: connection failed", charger_id)
        finally:
            if registry.get(charger_id) is conn:
                del registry[charger_id]
                if admission.auth is not None:
                    await self._ownership.release(charger_id)

    async def _claim(self, conn: ChargerConnection) -> bool:
        """Claim a configured charger for this process (a cluster's lease); False: closed."""
        try:
            await self._ownership.claim(conn.charger_id, conn.dialect.subprotocol)
        except Exception:
            # The database is out of reach: without the lease nobody could route to this
            # connection, so the charger is sent to try again (here or at another process).
            log.exception("cp_id=%s: the charger could not be claimed", conn.charger_id)
            if self._live.get(conn.charger_id) is conn:
                del self._live[conn.charger_id]
            await conn.refuse(1013, "try again later")
            return False
        return True

    def _lease_lost(self, charger_id: str) -> None:
        """Another process holds the charger now (or nobody could renew it): close it here."""
        conn = self._live.get(charger_id)
        if conn is not None and conn.state is not ConnectionState.DISCONNECTED:
            conn.fire_background(ConnectionEvent.LEASE_LOST)

    def _hold(self, conn: ChargerConnection, admission: _Admission) -> None:
        now = self._now()
        known = self._pending.get(conn.charger_id)
        self._pending[conn.charger_id] = PendingCharger(
            conn.charger_id,
            conn.remote_address,
            known.first_seen if known else now,
            now,
            admission.presented_credentials,
            known.boot if known else None,
        )
        log.warning(
            "cp_id=%s: unknown charger held for operator approval (%s)",
            conn.charger_id,
            conn.remote_address,
        )

    def _update_pending(self, pending: PendingCharger) -> None:
        if pending.charger_id in self._pending:
            self._pending[pending.charger_id] = pending

    # --- supervision -----------------------------------------------------------------------

    def _tick(self) -> float:
        settings = self.settings
        return max(
            0.05, min(1.0, settings.offline_after_s / 10, settings.boot_backstop_delay_s / 4)
        )

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(self._tick())
            try:
                self.sweep()
            except Exception:
                # The supervisor outlives a bug in one sweep; the next tick tries again.
                log.exception("OCPP supervisor sweep failed")

    def sweep(self) -> None:
        """Mark silent chargers offline and fire due boot backstops (one supervisor tick)."""
        now = self._monotonic()
        settings = self.settings
        silent_after = settings.offline_after_s
        for conn in list(self._live.values()):
            if not conn.online:
                continue
            if now - conn.last_seen > silent_after:
                log.warning("cp_id=%s: silent; marked offline", conn.charger_id)
                conn.fire_background(ConnectionEvent.SILENT)
            elif (
                conn.state is ConnectionState.CONNECTED
                and now - conn.connected_at >= settings.boot_backstop_delay_s
            ):
                conn.fire_background(ConnectionEvent.BACKSTOP_DUE)
        pending_silent = max(silent_after, settings.pending_retry_interval_s * 2.5)
        for conn in list(self._pending_connections.values()):
            if (
                conn.state is ConnectionState.PENDING_APPROVAL
                and now - conn.last_seen > pending_silent
            ):
                conn.fire_background(ConnectionEvent.SILENT)

    # --- views for the admin UI ------------------------------------------------------------

    def online_chargers(self) -> list[str]:
        """Ids of configured chargers with a live connection, sorted."""
        return sorted(cid for cid, conn in self._live.items() if conn.online)

    def pending_chargers(self) -> list[PendingCharger]:
        """Unknown chargers that connected while auto-registration was on, oldest first."""
        return sorted(self._pending.values(), key=lambda pending: pending.first_seen)

    def forget_pending(self, charger_id: str) -> bool:
        """Drop a charger from the pending list (and its connection); True if it was there."""
        conn = self._pending_connections.get(charger_id)
        if conn is not None and conn.state is ConnectionState.PENDING_APPROVAL:
            conn.fire_background(ConnectionEvent.REPLACED)
        return self._pending.pop(charger_id, None) is not None

    def message_log(self, charger_id: str) -> tuple[LoggedMessage, ...]:
        """The recent OCPP frames of one charger, oldest first (bounded)."""
        record = self._records.get(charger_id)
        return record.messages() if record else ()

    def counters(self, charger_id: str | None = None) -> MessageCounters:
        """Websocket messages received and sent, for one charger or the whole server."""
        if charger_id is None:
            return MessageCounters(self._totals[0], self._totals[1])
        record = self._records.get(charger_id)
        return record.counters() if record else MessageCounters(0, 0)

    def device_model(self) -> DeviceModelCommands | None:
        """GetVariables, SetVariables and GetBaseReport, when OCPP 2.0.1 is served."""
        try:
            commands = self.commands.command_set(v201.SUBPROTOCOL)
        except KeyError:
            return None
        if self._cluster is not None:
            return RoutedDeviceModel(self.commands, cast(DeviceModelCommands, commands))
        return cast(DeviceModelCommands, commands)

    def charger_info(self, charger_id: str) -> ChargerInfo | None:
        """What the server knows about a charger, or None if it never connected."""
        record = self._records.get(charger_id)
        if record is None:
            return None
        conn = self._live.get(charger_id) or self._pending_connections.get(charger_id)
        state = conn.state if conn is not None else ConnectionState.DISCONNECTED
        return ChargerInfo(
            charger_id=charger_id,
            online=conn is not None and conn.online,
            state=state.value,
            connected_since=record.connected_since,
            boot=record.boot,
            connector_status=dict(record.connector_status),
            notifications=dict(record.notifications),
            counters=record.counters(),
            variables=dict(record.variables),
            ocpp_version=record.ocpp_version,
            security_events=tuple(record.security_events),
        )


def _offered_subprotocols(headers: Headers) -> list[str]:
    offered: list[str] = []
    for value in headers.get_all("Sec-WebSocket-Protocol"):
        offered.extend(part.strip() for part in value.split(","))
    return offered


def _unauthorized(connection: ServerConnection) -> Response:
    response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
    response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
    return response


def _backed_off(connection: ServerConnection, retry_after: float) -> Response:
    response = connection.respond(http.HTTPStatus.TOO_MANY_REQUESTS, "Too Many Requests\n")
    response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


def _host(connection: ServerConnection) -> str:
    address = connection.remote_address
    if isinstance(address, tuple) and address:
        return str(address[0])
    return str(address)


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)
