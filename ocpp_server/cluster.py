"""Chargers spread over several Strom processes: leases held, commands routed to the owner.

Theory of operation
-------------------
:class:`ClusterChargers` is both seams of :mod:`ocpp_server.ownership` for a process of a
cluster. Everything it needs is injected: the bus (:mod:`strom_core.ports.cluster`), the lease
store (``charger:<id>`` leases with fencing tokens, :mod:`strom_storage.leases`), this process's
id, the lease's time to live.

* **Claim.** When this process admits a charger's connection it takes the charger's lease over
  (a reconnect to another process moves the lease at once, with a new token) and announces it
  on the ``ocpp-owners`` topic. When the connection ends it releases the lease (if it still
  holds it) and announces that.
* **Loss.** The node's heartbeat renews all of the process's leases in one statement and tells
  :meth:`ClusterChargers.renewed` which came back; a charger lease that did not (it expired, or
  another process took it over) is lost, and so is one another process announces with a newer
  token. A lost charger's connection is closed at once (it connects again somewhere): a process
  never commands a charger whose lease it lost.
* **Routing.** A command for a charger without a connection here goes, as a remote call of
  :mod:`ocpp_server.remote_calls`, over the bus to the process holding its lease (subject
  ``ocpp``), which runs it on its own connection and returns the typed result. The owner is
  looked up in the directory (announcements and :meth:`ClusterChargers.refresh`) or, when not
  there, in the lease table. A process that no longer has the charger refuses the call before
  sending anything, and the caller looks the owner up again once. No owner: ``OFFLINE``.
  No reply (timeout, the process is gone, the bus is down): ``TIMEOUT``, the outcome unknown,
  exactly as a charger that did not answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

import orjson

from ocpp_server.ownership import Located
from ocpp_server.remote_calls import METHODS, BadCall, Method, decode_result, encode_result
from strom_core.errors import NoReply, PayloadTooLarge
from strom_core.ports import CommandResult, CommandStatus, ScreenCapabilities
from strom_core.ports.cluster import Bus, Subscription

if TYPE_CHECKING:
    from ocpp_server.commands import OcppCommands

__all__ = ["OWNERS_TOPIC", "SUBJECT", "ChargerLeases", "ClusterChargers", "HeldLease"]

log = logging.getLogger("ocpp_server.cluster")

SUBJECT: Final = "ocpp"
"""The bus subject of commands for chargers (serve it with :meth:`ClusterChargers.handle`)."""
OWNERS_TOPIC: Final = "ocpp-owners"
CHARGER_PREFIX: Final = "charger:"
_DESCRIBE: Final = "describe"


class HeldLease(Protocol):
    """A lease as the store returns it (:class:`strom_storage.leases.Lease`)."""

    @property
    def name(self) -> str: ...

    @property
    def owner(self) -> str: ...

    @property
    def token(self) -> int: ...


class ChargerLeases(Protocol):
    """The lease operations used here (:class:`strom_storage.leases.LeaseStore` has them)."""

    async def take_over(self, name: str, owner: str, ttl_s: float) -> HeldLease: ...

    async def release(self, lease: Any) -> bool: ...

    async def holder(self, name: str) -> HeldLease | None: ...

    async def holders(self, prefix: str) -> list[Any]: ...


def _screen(value: Any) -> ScreenCapabilities:
    if isinstance(value, list) and len(value) == 3 and all(isinstance(v, bool) for v in value):
        return ScreenCapabilities(*value)
    return ScreenCapabilities()


def _details(located: Located) -> list[Any]:
    screen = located.screen
    return [
        located.subprotocol,
        sorted(located.lacking),
        [screen.messages, screen.qr, screen.cost],
    ]


class ClusterChargers:
    """Charger ownership and command routing for one process of a cluster.

    Args:
        bus: the bus between the processes.
        leases: the lease store on the shared PostgreSQL.
        process_id: this process's id (unique per process start; a bus name).
        ttl_s: how long a charger lease holds unless the heartbeat renews it.
        request_timeout_s: how long a caller waits for the owner's answer (longer than the
            owner's own command timeout, which it includes).
    """

    def __init__(
        self,
        bus: Bus,
        leases: ChargerLeases,
        process_id: str,
        *,
        ttl_s: float,
        request_timeout_s: float,
    ) -> None:
        self.process_id = process_id
        self._bus = bus
        self._leases = leases
        self._ttl_s = ttl_s
        self._timeout_s = request_timeout_s
        self._held: dict[str, HeldLease] = {}
        self._where: dict[str, tuple[int, Located]] = {}
        self._lost: list[Callable[[str], None]] = []
        self._commands: OcppCommands | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def attach(self, commands: OcppCommands) -> None:
        """Run the calls other processes send on ``commands``' live connections (the server's)."""
        self._commands = commands
        commands.on_screen_reported(self._screen_reported)

    async def start(self) -> None:
        """Listen to the other processes' claims and load the directory from the lease table."""
        self._subscription = await self._bus.subscribe(OWNERS_TOPIC)
        self._spawn(self._listen(self._subscription), "ocpp-owners")
        await self.refresh()

    async def aclose(self) -> None:
        """Stop listening (the leases are released by the connections as they close)."""
        if self._subscription is not None:
            await self._subscription.aclose()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(_supervised(work, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- ownership (ChargerOwnership) ------------------------------------------------------

    async def claim(self, charger_id: str, subprotocol: str) -> None:
        """Take the charger's lease over for this process and tell the others."""
        lease = await self._leases.take_over(
            f"{CHARGER_PREFIX}{charger_id}", self.process_id, self._ttl_s
        )
        self._held[charger_id] = lease
        self._where.pop(charger_id, None)
        log.info("cp_id=%s: lease taken (token %d)", charger_id, lease.token)
        await self._announce(charger_id, lease.token, Located(self.process_id, subprotocol))

    async def release(self, charger_id: str) -> None:
        """Give the charger's lease up, if this process still holds it; never raises."""
        lease = self._held.pop(charger_id, None)
        if lease is None:
            return
        try:
            released = await self._leases.release(lease)
        except Exception:
            # The connection's last step: a database that is down lets the lease expire.
            log.exception("cp_id=%s: releasing the lease failed; it expires", charger_id)
            return
        if released:
            await self._announce(charger_id, lease.token, None)

    def on_lost(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with each charger whose lease this process lost."""
        self._lost.append(listener)

    def held(self) -> dict[str, int]:
        """The charger leases this process holds: lease name -> token (before a renewal)."""
        return {f"{CHARGER_PREFIX}{cid}": lease.token for cid, lease in self._held.items()}

    def renewed(self, before: Mapping[str, int], leases: Iterable[HeldLease]) -> list[str]:
        """The heartbeat renewed ``leases``: lose each charger of ``before`` not among them.

        Args:
            before: :meth:`held`, taken just before the renewal (a charger claimed while it
                ran is not judged by it).
            leases: what ``renew_all`` returned for this process (any kind of lease).

        Returns:
            The ids of the chargers lost.
        """
        kept = {lease.name: lease.token for lease in leases if lease.owner == self.process_id}
        lost = []
        for name, token in before.items():
            charger_id = name[len(CHARGER_PREFIX) :]
            current = self._held.get(charger_id)
            if current is not None and current.token == token and kept.get(name) != token:
                lost.append(charger_id)
        for charger_id in lost:
            self._lose(charger_id, "the heartbeat could not renew its lease")
        return lost

    def lost_all(self) -> list[str]:
        """The heartbeat has not renewed within the lease's time: every charger is lost."""
        lost = list(self._held)
        for charger_id in lost:
            self._lose(charger_id, "no renewal within the lease's time")
        return lost

    def _lose(self, charger_id: str, why: str) -> None:
        if self._held.pop(charger_id, None) is None:
            return
        log.warning("cp_id=%s: lease lost (%s); its connection is closed", charger_id, why)
        for listener in self._lost:
            listener(charger_id)

    # --- the directory ---------------------------------------------------------------------

    def located(self, charger_id: str) -> Located | None:
        """Where another process holds the charger, as last heard; None: not elsewhere."""
        entry = self._where.get(charger_id)
        return None if entry is None else entry[1]

    async def refresh(self) -> None:
        """Reload who holds which charger from the lease table; ask new owners for details."""
        leases = await self._leases.holders(CHARGER_PREFIX)
        fresh: dict[str, tuple[int, Located]] = {}
        unknown: dict[str, list[str]] = {}
        for lease in leases:
            charger_id = lease.name[len(CHARGER_PREFIX) :]
            if lease.owner == self.process_id:
                continue
            known = self._where.get(charger_id)
            if known is not None and known[0] == lease.token and known[1].owner == lease.owner:
                fresh[charger_id] = known
            else:
                fresh[charger_id] = (lease.token, Located(lease.owner))
                unknown.setdefault(lease.owner, []).append(charger_id)
        self._where = fresh
        for owner, charger_ids in unknown.items():
            await self._describe(owner, charger_ids)

    async def _describe(self, owner: str, charger_ids: list[str]) -> None:
        body = orjson.dumps({"m": _DESCRIBE, "c": charger_ids})
        try:
            answer = orjson.loads(await self._bus.request(owner, SUBJECT, body, self._timeout_s))
        except (NoReply, PayloadTooLarge, orjson.JSONDecodeError) as exc:
            log.info("process %s did not describe its chargers: %s", owner, exc)
            return
        for charger_id, details in dict(answer.get("d", {})).items():
            entry = self._where.get(charger_id)
            if entry is not None and entry[1].owner == owner:
                self._where[charger_id] = (entry[0], _located(owner, details))

    async def _announce(self, charger_id: str, token: int, located: Located | None) -> None:
        body: dict[str, Any] = {"c": charger_id, "t": token, "p": self.process_id}
        if located is not None:
            body["d"] = _details(located)
        try:
            await self._bus.publish(OWNERS_TOPIC, orjson.dumps(body))
        except Exception:
            # An announcement is a hint: the directory's refresh reads the lease table.
            log.warning("cp_id=%s: the claim was not announced", charger_id, exc_info=True)

    def _screen_reported(self, charger_id: str) -> None:
        lease = self._held.get(charger_id)
        if lease is None or self._commands is None:
            return
        self._spawn(
            self._announce(charger_id, lease.token, self._describe_local(charger_id)),
            f"ocpp-announce-{charger_id}",
        )

    def _describe_local(self, charger_id: str) -> Located | None:
        if self._commands is None:
            return None
        details = self._commands.local_details(charger_id)
        if details is None:
            return None
        return Located(
            self.process_id, details[0], self._commands.screen_of(charger_id), details[1]
        )

    async def _listen(self, subscription: Subscription) -> None:
        async for payload in subscription:
            try:
                self._heard(orjson.loads(payload))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                log.warning("a malformed owner announcement was ignored: %r", payload[:200])

    def _heard(self, message: dict[str, Any]) -> None:
        charger_id, token, owner = str(message["c"]), int(message["t"]), str(message["p"])
        if owner == self.process_id:
            return
        claimed = "d" in message
        held = self._held.get(charger_id)
        if claimed and held is not None and token > held.token:
            self._lose(charger_id, f"process {owner} took it over")
        known = self._where.get(charger_id)
        if claimed:
            if known is None or token >= known[0]:
                self._where[charger_id] = (token, _located(owner, message["d"]))
        elif known is not None and known[0] <= token and known[1].owner == owner:
            del self._where[charger_id]

    # --- routing (Elsewhere) ---------------------------------------------------------------

    def proxy(self, charger_id: str) -> RemoteCharger:
        """The charger's commands, sent to the process holding it."""
        return RemoteCharger(self, charger_id)

    async def _owner(self, charger_id: str) -> str | None:
        lease = await self._leases.holder(f"{CHARGER_PREFIX}{charger_id}")
        if lease is None:
            self._where.pop(charger_id, None)
            return None
        if lease.owner != self.process_id:
            known = self._where.get(charger_id)
            if known is None or known[0] != lease.token:
                self._where[charger_id] = (lease.token, Located(lease.owner))
        return lease.owner

    async def send(self, charger_id: str, name: str, args: Mapping[str, Any]) -> Any:
        """Run the command ``name`` on the charger's owner and return its typed result.

        Raises:
            ValueError: the owner's command set refused the arguments (as it would here).
        """
        method = METHODS[name]
        payload = orjson.dumps({"m": name, "c": charger_id, "a": method.encode_args(args)})
        known = self.located(charger_id)
        owner = known.owner if known is not None else await self._owner(charger_id)
        asked: set[str] = set()
        while owner is not None and owner != self.process_id and owner not in asked:
            asked.add(owner)
            try:
                raw = await self._bus.request(owner, SUBJECT, payload, self._timeout_s)
            except PayloadTooLarge as exc:
                return _failed(method, args, CommandStatus.ERROR, f"{exc}: nothing was sent")
            except NoReply as exc:
                detail = f"process {owner} did not answer ({exc}): the outcome is unknown"
                return _failed(method, args, CommandStatus.TIMEOUT, detail)
            answer = _answer(raw)
            if "x" in answer:  # not (or no longer) there: nothing was sent
                owner = await self._owner(charger_id)
                continue
            if "v" in answer:
                raise ValueError(str(answer["v"]))
            if "e" in answer:
                return _failed(method, args, CommandStatus.ERROR, str(answer["e"]))
            try:
                return decode_result(method, answer.get("r"))
            except BadCall as exc:
                return _failed(method, args, CommandStatus.TIMEOUT, f"unreadable answer: {exc}")
        return _failed(method, args, CommandStatus.OFFLINE, "the charger is not connected")

    # --- serving other processes -----------------------------------------------------------

    async def handle(self, subject: str, payload: bytes) -> bytes:
        """Serve a call another process sent to this one (the bus handler of :data:`SUBJECT`)."""
        try:
            request = orjson.loads(payload)
            name = request["m"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return orjson.dumps({"e": "a malformed call"})
        if name == _DESCRIBE:
            return self._described(request.get("c"))
        method = METHODS.get(name) if isinstance(name, str) else None
        charger_id = request.get("c")
        if method is None or not isinstance(charger_id, str):
            return orjson.dumps({"e": f"no such call: {str(name)[:60]!r}"})
        try:
            args = method.decode_args(request.get("a"))
        except BadCall as exc:
            return orjson.dumps({"e": str(exc)})
        result = await self._run(method, charger_id, args)
        if isinstance(result, bytes):
            return result
        reply = orjson.dumps({"r": encode_result(method, result)})
        if len(reply) > self._bus.max_payload:
            detail = "the answer is larger than the bus carries"
            failed = method.result.failed(CommandResult(CommandStatus.ERROR, detail), args)
            reply = orjson.dumps({"r": encode_result(method, failed)})
        return reply

    async def _run(self, method: Method, charger_id: str, args: dict[str, Any]) -> Any:
        target = None
        if charger_id in self._held and self._commands is not None:
            target = self._commands.local_target(charger_id, screen=method.screen)
        if target is None:
            return orjson.dumps({"x": "this process does not hold the charger"})
        command = getattr(target, method.name, None)  # a name from METHODS, not from the wire
        if command is None:
            detail = "its OCPP version carries no such command in Strom"
            return method.result.failed(CommandResult(CommandStatus.NOT_SUPPORTED, detail), args)
        try:
            return await command(charger_id, **args)
        except ValueError as exc:
            return orjson.dumps({"v": str(exc)})

    def _described(self, charger_ids: object) -> bytes:
        details: dict[str, Any] = {}
        if isinstance(charger_ids, list):
            for charger_id in charger_ids[:10_000]:
                if isinstance(charger_id, str) and charger_id in self._held:
                    located = self._describe_local(charger_id)
                    if located is not None:
                        details[charger_id] = _details(located)
        return orjson.dumps({"d": details})


def _located(owner: str, details: Any) -> Located:
    subprotocol, lacking, screen = details
    return Located(
        owner,
        subprotocol if isinstance(subprotocol, str) else None,
        _screen(screen),
        frozenset(str(each) for each in lacking) if isinstance(lacking, list) else frozenset(),
    )


def _answer(raw: bytes) -> dict[str, Any]:
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        return {"r": None}  # decoding fails: the outcome is unknown
    return answer


def _failed(method: Method, args: Mapping[str, Any], status: CommandStatus, detail: str) -> Any:
    return method.result.failed(CommandResult(status, detail), args)


async def _supervised(work: Awaitable[None], name: str) -> None:
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception:  # the supervisor of the cluster's own tasks
        log.exception("cluster task %s failed", name)


class RemoteCharger:
    """Every command of every port, for one charger, sent to the process that holds it."""

    def __init__(self, cluster: ClusterChargers, charger_id: str) -> None:
        self._cluster = cluster
        self._charger_id = charger_id

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name not in METHODS:
            raise AttributeError(name)
        method = METHODS[name]

        async def call(charger_id: str, *args: Any, **kwargs: Any) -> Any:
            names = list(method.args)
            given = dict(zip(names, args, strict=False))
            given.update(kwargs)
            complete = {key: given.get(key, _DEFAULTS.get((name, key))) for key in names}
            return await self._cluster.send(charger_id, name, complete)

        return call

    def is_online(self, charger_id: str) -> bool:
        """Whether another process holds the charger, as last heard."""
        return self._cluster.located(charger_id) is not None

    def screen_of(self, charger_id: str) -> ScreenCapabilities:
        """What its screen can show, as its owner said."""
        located = self._cluster.located(charger_id)
        return ScreenCapabilities() if located is None else located.screen


# The default values of the ports' optional arguments, filled in when a caller leaves them out.
_DEFAULTS: Final[Mapping[tuple[str, str], Any]] = {
    ("install_certificate", "certificate_type"): "CentralSystemRootCertificate",
    ("get_installed_certificate_ids", "certificate_type"): "CentralSystemRootCertificate",
    ("get_base_report", "report"): "FullInventory",
    ("get_log", "security_log"): False,
    ("get_configuration", "keys"): (),
}
