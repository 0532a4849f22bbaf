"""In-memory implementations of the core's OCPP seams, for tests, benchmarks and the demo.

:class:`InMemoryOcppCore` follows the same rules as the database-backed core:

* idTags are accepted only when Strom issued them (:meth:`InMemoryOcppCore.issue_id_tag`) for
  this charger (and connector, when given), once: a tag whose transaction has stopped is
  ``EXPIRED``; a tag in an open transaction is ``IN_USE``; anything else is ``INVALID``;
* every StartTransaction.req gets a reference from a monotonic allocator (never the clock),
  ``"1"``, ``"2"``…, also a refused one, because OCPP 1.6 requires a transactionId in every
  StartTransaction.conf; a
  refused one is closed at once (the station sends no StopTransaction for it), so it is never
  among the open transactions;
* an OCPP 2.0.1 start brings the charger's own reference, kept as it is (per charger: two
  chargers may choose the same one);
* a replay - the same charger, connector, idTag, meterStart and timestamp, or a charger's own
  reference seen before (open, or ended with the start within its lifetime) - returns the
  recorded answer with ``replayed=True`` and changes nothing; the same holds for a repeated
  stop;
* a charger's own reference reused after its transaction ended (a start outside that one's
  lifetime, :func:`strom_core.ports.within_lifetime`) is a new transaction; the ended one is
  kept as ``<reference>~<n>`` (``n`` counts the archived ones); a stop or sample of the
  reference from before the new one started, within an archived one's lifetime, is that
  one's late message and changes nothing;
* a StopTransaction.req for a reference this charger never got is recorded as unknown, never
  matched to a connector;
* meter samples are kept per transaction, deduplicated on (timestamp, register);
* with a price (``msat_per_wh``) the first stop of an accepted transaction is billed: its
  decision carries ``cost_msat``, the energy times the price (without one nothing is billed).

:class:`MemoryEventSink` keeps every event and lets a test wait for one (no sleeps).
"""

from __future__ import annotations

import asyncio
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Final, TypeVar

from strom_core.ports import (
    Authorization,
    EventSink,
    MeterSample,
    OcppCore,
    OcppEvent,
    StartDecision,
    StopDecision,
    within_lifetime,
)

__all__ = [
    "InMemoryOcppCore",
    "IssuedTag",
    "MemoryEventSink",
    "RecordedStop",
    "RecordedTransaction",
]

_TAG_ALPHABET: Final = string.ascii_uppercase + string.digits
_TAG_LENGTH: Final = 16  # some chargers corrupt 20-character tags (lbbrhzn/ocpp#2075)


@dataclass(frozen=True, slots=True)
class IssuedTag:
    """An idTag Strom issued for a paid session on one charger."""

    id_tag: str
    charger_id: str
    connector_id: int | None


@dataclass(frozen=True, slots=True)
class RecordedStop:
    """The first StopTransaction.req recorded for a transaction (or an unknown one)."""

    charger_id: str
    transaction: str
    meter_stop_wh: int
    timestamp: datetime
    reason: str
    id_tag: str | None


@dataclass(frozen=True, slots=True)
class RecordedTransaction:
    """One StartTransaction.req as recorded, with its stop once known."""

    transaction: str
    charger_id: str
    connector_id: int
    id_tag: str
    meter_start_wh: int
    started_at: datetime
    status: Authorization
    stop: RecordedStop | None = None

    @property
    def open(self) -> bool:
        """Whether a StopTransaction is still expected: accepted and not stopped yet."""
        return self.status is Authorization.ACCEPTED and self.stop is None

    @property
    def ended_at(self) -> datetime | None:
        """When it ended: its stop, its start when refused, None while open."""
        if self.stop is not None:
            return self.stop.timestamp
        return None if self.status is Authorization.ACCEPTED else self.started_at

    def lived_at(self, at: datetime) -> bool:
        """Whether ``at`` lies within its lifetime, once ended (see ``within_lifetime``)."""
        ended_at = self.ended_at
        return ended_at is not None and within_lifetime(self.started_at, ended_at, at)

    @property
    def energy_wh(self) -> int | None:
        """``meterStop - meterStart`` once stopped (never negative), else None."""
        if self.stop is None:
            return None
        return max(self.stop.meter_stop_wh - self.meter_start_wh, 0)


_ReplayKey = tuple[str, int, str, int, datetime]


@dataclass
class _Samples:
    seen: set[tuple[datetime, int]] = field(default_factory=set)
    samples: list[MeterSample] = field(default_factory=list)


class InMemoryOcppCore:
    """The OcppCore rules over dictionaries (see the module docstring)."""

    def __init__(self, *, first_transaction_id: int = 1, msat_per_wh: int | None = None) -> None:
        if first_transaction_id < 1:
            raise ValueError("transaction ids start at 1 (0 means 'none' to many chargers)")
        self._msat_per_wh = msat_per_wh
        self._next_id = first_transaction_id
        self._issued: dict[str, IssuedTag] = {}
        # (charger id, reference, chosen by the charger) -> transaction, in allocation order:
        # a 2.0.1 reference "1" and an allocated 1.6 "1" of one charger are two transactions
        self._transactions: dict[tuple[str, str, bool], RecordedTransaction] = {}
        self._by_replay_key: dict[_ReplayKey, str] = {}
        self._open_by_tag: dict[str, str] = {}
        self._used_tags: set[str] = set()
        self._unknown_stops: list[RecordedStop] = []
        self._samples: dict[tuple[str, str], _Samples] = {}
        # (charger id, reference) -> its earlier, ended transactions (reused after a reboot)
        self._archived: dict[tuple[str, str], list[RecordedTransaction]] = {}
        self._archive_count = 0
        self._lock = asyncio.Lock()

    # --- what the rest of Strom does -----------------------------------------------------------

    def issue_id_tag(
        self, charger_id: str, connector_id: int | None = None, id_tag: str | None = None
    ) -> str:
        """Issue an idTag for a paid session (16 random characters unless given)."""
        tag = id_tag or "".join(secrets.choice(_TAG_ALPHABET) for _ in range(_TAG_LENGTH))
        if len(tag) > 20:
            raise ValueError("OCPP idTags are at most 20 characters")
        self._issued[tag] = IssuedTag(tag, charger_id, connector_id)
        return tag

    def transactions(self) -> list[RecordedTransaction]:
        """Every recorded StartTransaction, in the order of their references."""
        return list(self._transactions.values())

    def open_transactions(self, charger_id: str) -> list[RecordedTransaction]:
        """The charger's transactions still waiting for their StopTransaction."""
        return [t for t in self.transactions() if t.charger_id == charger_id and t.open]

    def transaction(
        self, transaction: str, charger_id: str | None = None
    ) -> RecordedTransaction | None:
        """One recorded transaction, by reference (and charger, for charger-chosen ones)."""
        if charger_id is not None:
            return self._find(charger_id, transaction)
        return next((t for t in self._transactions.values() if t.transaction == transaction), None)

    def _find(self, charger_id: str, transaction: str) -> RecordedTransaction | None:
        """The charger's own reference first, then an allocated one (the database's rule)."""
        chosen = self._transactions.get((charger_id, transaction, True))
        return chosen or self._transactions.get((charger_id, transaction, False))

    def unknown_stops(self) -> list[RecordedStop]:
        """StopTransaction.req for ids no StartTransaction of that charger got."""
        return list(self._unknown_stops)

    def samples(self, charger_id: str, transaction: str) -> list[MeterSample]:
        """Meter samples recorded for a transaction, deduplicated, in arrival order."""
        entry = self._samples.get((charger_id, transaction))
        return list(entry.samples) if entry else []

    def latest_register_wh(self, charger_id: str, transaction: str) -> int | None:
        """The highest register recorded for a transaction (a register only grows)."""
        samples = self.samples(charger_id, transaction)
        return max((s.register_wh for s in samples), default=None)

    # --- OcppCore ----------------------------------------------------------------------------

    def _tag_status(self, charger_id: str, connector_id: int | None, id_tag: str) -> Authorization:
        issued = self._issued.get(id_tag)
        if issued is None or issued.charger_id != charger_id:
            return Authorization.INVALID
        if connector_id is not None and issued.connector_id not in (None, connector_id):
            return Authorization.INVALID
        if id_tag in self._open_by_tag:
            return Authorization.IN_USE
        if id_tag in self._used_tags:
            return Authorization.EXPIRED
        return Authorization.ACCEPTED

    async def authorize(self, charger_id: str, id_tag: str) -> Authorization:
        """Accepted only for an idTag issued for this charger and not used yet."""
        return self._tag_status(charger_id, None, id_tag)

    async def start_transaction(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        meter_start_wh: int,
        timestamp: datetime,
        *,
        transaction: str | None = None,
    ) -> StartDecision:
        """Record a started transaction; a replay returns the recorded answer."""
        async with self._lock:
            key: _ReplayKey = (charger_id, connector_id, id_tag, meter_start_wh, timestamp)
            chosen = transaction is not None
            known = transaction if chosen else self._by_replay_key.get(key)
            recorded = (
                None if known is None else self._transactions.get((charger_id, known, chosen))
            )
            if recorded is not None and chosen and self._reused(recorded, timestamp):
                self._archive(recorded)
            elif recorded is not None:
                return StartDecision(recorded.transaction, recorded.status, replayed=True)
            status = self._tag_status(charger_id, connector_id, id_tag)
            if transaction is None:
                transaction = str(self._next_id)
                self._next_id += 1
                self._by_replay_key[key] = transaction
            self._transactions[charger_id, transaction, chosen] = RecordedTransaction(
                transaction,
                charger_id,
                connector_id,
                id_tag,
                meter_start_wh,
                timestamp,
                status,
            )
            if status is Authorization.ACCEPTED:
                self._open_by_tag[id_tag] = transaction
            return StartDecision(transaction, status)

    @staticmethod
    def _reused(recorded: RecordedTransaction, at: datetime) -> bool:
        return recorded.ended_at is not None and not recorded.lived_at(at)

    def _archive(self, recorded: RecordedTransaction) -> None:
        """Free a reference for its new transaction; the ended one keeps ``<reference>~<n>``."""
        self._archive_count += 1
        name = f"{recorded.transaction}~{self._archive_count}"
        charger_id, reference = recorded.charger_id, recorded.transaction
        del self._transactions[charger_id, reference, True]
        self._transactions[charger_id, name, True] = replace(recorded, transaction=name)
        self._archived.setdefault((charger_id, reference), []).append(recorded)

    def _of_earlier(self, recorded: RecordedTransaction, at: datetime) -> bool:
        """Whether ``at`` is before ``recorded`` started, within an archived one's lifetime."""
        if at >= recorded.started_at:
            return False
        earlier = self._archived.get((recorded.charger_id, recorded.transaction), [])
        return any(t.lived_at(at) for t in earlier)

    async def stop_transaction(
        self,
        charger_id: str,
        transaction: str,
        meter_stop_wh: int,
        timestamp: datetime,
        reason: str,
        id_tag: str | None,
    ) -> StopDecision:
        """Record a StopTransaction.req; the first stop of a transaction wins."""
        async with self._lock:
            stop = RecordedStop(charger_id, transaction, meter_stop_wh, timestamp, reason, id_tag)
            recorded = self._find(charger_id, transaction)
            if recorded is None:
                if stop in self._unknown_stops:
                    return StopDecision(known=False, replayed=True)
                self._unknown_stops.append(stop)
                return StopDecision(known=False)
            if recorded.stop is not None or self._of_earlier(recorded, timestamp):
                return StopDecision(known=True, replayed=True)
            chosen = (charger_id, transaction, True) in self._transactions
            stopped = self._transactions[charger_id, transaction, chosen] = replace(
                recorded, stop=stop
            )
            if self._open_by_tag.get(recorded.id_tag) == transaction:
                del self._open_by_tag[recorded.id_tag]
                self._used_tags.add(recorded.id_tag)
            billed = self._msat_per_wh is not None and recorded.status is Authorization.ACCEPTED
            cost = (stopped.energy_wh or 0) * (self._msat_per_wh or 0) if billed else None
            return StopDecision(known=True, cost_msat=cost)

    async def record_meter(self, sample: MeterSample) -> None:
        """Keep a sample once per (timestamp, register), except an archived transaction's."""
        recorded = self._find(sample.charger_id, sample.transaction)
        if recorded is not None and self._of_earlier(recorded, sample.at):
            return
        entry = self._samples.setdefault((sample.charger_id, sample.transaction), _Samples())
        key = (sample.at, sample.register_wh)
        if key not in entry.seen:
            entry.seen.add(key)
            entry.samples.append(sample)


_Event = TypeVar("_Event", bound=OcppEvent)


class MemoryEventSink:
    """An EventSink that keeps every event and lets callers wait for one."""

    def __init__(self) -> None:
        self.events: list[OcppEvent] = []
        self._changed = asyncio.Condition()

    async def publish(self, event: OcppEvent) -> None:
        """Keep the event and wake waiters."""
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def of_type(self, kind: type[_Event]) -> list[_Event]:
        """The events of one type, in order."""
        return [event for event in self.events if isinstance(event, kind)]

    async def wait_for(
        self,
        kind: type[_Event],
        predicate: Callable[[_Event], bool] = lambda _event: True,
        *,
        within_s: float = 10.0,
        after: int = 0,
    ) -> _Event:
        """Wait until an event of ``kind`` matching ``predicate`` was published.

        Args:
            kind: the event type.
            predicate: a further condition on the event.
            within_s: seconds to wait.
            after: only consider events at index ``after`` or later in :attr:`events`.

        Raises:
            TimeoutError: when no such event came in time.
        """

        def found() -> _Event | None:
            for event in self.events[after:]:
                if isinstance(event, kind) and predicate(event):
                    return event
            return None

        async with asyncio.timeout(within_s), self._changed:
            while (event := found()) is None:
                await self._changed.wait()
            return event


if TYPE_CHECKING:
    _IS_OCPP_CORE: type[OcppCore] = InMemoryOcppCore
    _IS_EVENT_SINK: type[EventSink] = MemoryEventSink
