"""Back-off of wrong charger passwords, per source address, in bounded memory.

Theory of operation: a wrong password is cheap to send and, for a scrypt hash, costs the
server about 50 ms of CPU to refuse. Without a limit a flood of wrong passwords queues in front
of the real chargers reconnecting after a restart. So every wrong password counts against its
source (an IPv4 address, or the /64 network of an IPv6 address: one host holds a whole /64).
After ``free_failures`` wrong passwords a source is backed off for ``base_delay_s``, doubling
with each further one up to ``max_delay_s``. While backed off, the source may not start a slow
check: the server refuses it before hashing. A source also never has more than
``max_in_flight`` slow checks running at once; further ones wait for a running one to end and
then ask again, so a burst of a thousand wrong passwords costs at most ``free_failures +
max_in_flight - 1`` hashes and the rest are refused once the source is backed off, while a
crowd of real chargers behind one address (a NAT, a reverse proxy) is checked as fast as the
server's hashing threads allow (the default equals their number).

What back-off limits is how much hashing a source may cost, not whether a right password is
accepted. Fast checks (keyed hashes of generated keys, and scrypt passwords this process has
verified before) are made even for a backed-off source: chargers behind one NAT share an
address, and an attacker behind that NAT must not lock them out. A person-chosen scrypt
password that was never checked since the start does wait out the back-off of its address.

Memory is bounded: at most ``max_sources`` sources are remembered (least recently used are
forgotten first), and a source that has been quiet for ``forget_after_s`` starts clean. A source
that only ever succeeds leaves no entry behind. Pure bookkeeping: no I/O, the clock is injected.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Reservation", "SourceBackoff", "source_of"]


def source_of(address: str) -> str:
    """The key a peer address is counted under: the IPv4 address or the IPv6 /64.

    Args:
        address: the peer's IP address as text (anything else is used as it is).
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True)
class Reservation:
    """The answer to :meth:`SourceBackoff.reserve`.

    Attributes:
        granted: the slow check may start; call :meth:`SourceBackoff.release` when it ends.
        retry_after: seconds the source is backed off for (refuse it); 0 when it is not.
            Neither granted nor backed off: the source has its most checks running, wait for
            one of them to end.
    """

    granted: bool
    retry_after: float = 0.0

    @property
    def backed_off(self) -> bool:
        """The source must be refused now."""
        return self.retry_after > 0


_GRANTED = Reservation(granted=True)
_BUSY = Reservation(granted=False)


@dataclass(slots=True)
class _Source:
    failures: int = 0
    blocked_until: float = 0.0
    last_failure: float = 0.0
    in_flight: int = 0


class SourceBackoff:
    """Counts wrong passwords per source and says when a slow check may start.

    Args:
        free_failures: wrong passwords a source may send before it is backed off.
        base_delay_s: the first back-off; it doubles with every further wrong password.
        max_delay_s: the longest back-off.
        max_in_flight: slow checks one source may have running at once.
        max_sources: sources remembered at most (least recently used are forgotten).
        forget_after_s: a source without a wrong password for this long starts clean.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        *,
        free_failures: int = 5,
        base_delay_s: float = 1.0,
        max_delay_s: float = 300.0,
        max_in_flight: int = 4,
        max_sources: int = 10_000,
        forget_after_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if free_failures < 0 or max_in_flight < 1 or max_sources < 1:
            raise ValueError("free_failures >= 0, max_in_flight >= 1 and max_sources >= 1")
        if not 0 < base_delay_s <= max_delay_s:
            raise ValueError("0 < base_delay_s <= max_delay_s")
        self.free_failures = free_failures
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.max_in_flight = max_in_flight
        self.max_sources = max_sources
        self.forget_after_s = forget_after_s
        self._clock = clock
        self._sources: OrderedDict[str, _Source] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sources)

    def _get(self, source: str, now: float) -> _Source | None:
        entry = self._sources.get(source)
        if entry is None:
            return None
        self._sources.move_to_end(source)
        if (
            entry.failures
            and now - entry.last_failure > self.forget_after_s
            and now >= entry.blocked_until
        ):
            entry.failures = 0
        return entry

    def _entry(self, source: str, now: float) -> _Source:
        entry = self._get(source, now)
        if entry is None:
            entry = self._sources[source] = _Source()
            while len(self._sources) > self.max_sources:
                self._sources.popitem(last=False)
        return entry

    def _drop_if_clean(self, source: str, entry: _Source) -> None:
        if entry.failures == 0 and entry.in_flight == 0 and self._sources.get(source) is entry:
            del self._sources[source]

    def retry_after(self, source: str) -> float:
        """Seconds until ``source`` may start a slow check again (0 when it may now)."""
        now = self._clock()
        entry = self._get(source, now)
        if entry is None:
            return 0.0
        return max(0.0, entry.blocked_until - now)

    def reserve(self, source: str) -> Reservation:
        """Ask to start a slow check for ``source`` (nothing is reserved unless granted)."""
        now = self._clock()
        entry = self._entry(source, now)
        if now < entry.blocked_until:
            return Reservation(granted=False, retry_after=entry.blocked_until - now)
        if entry.in_flight >= self.max_in_flight:
            return _BUSY
        entry.in_flight += 1
        return _GRANTED

    def release(self, source: str, *, failed: bool) -> int:
        """End a slow check :meth:`reserve` allowed.

        Returns:
            The source's wrong passwords so far (0 after a right one with none before).
        """
        now = self._clock()
        entry = self._get(source, now)
        if entry is None:  # forgotten meanwhile (the table was full)
            entry = self._entry(source, now)
        else:
            entry.in_flight = max(0, entry.in_flight - 1)
        if failed:
            return self._fail(entry, now)
        self._drop_if_clean(source, entry)
        return entry.failures

    def record_failure(self, source: str) -> int:
        """Count a wrong password found by a fast check.

        Returns:
            The source's wrong passwords so far.
        """
        now = self._clock()
        return self._fail(self._entry(source, now), now)

    def _fail(self, entry: _Source, now: float) -> int:
        entry.failures += 1
        entry.last_failure = now
        over = entry.failures - self.free_failures
        if over >= 0:
            delay = min(self.base_delay_s * 2 ** min(over, 62), self.max_delay_s)
            entry.blocked_until = max(entry.blocked_until, now + delay)
        return entry.failures
