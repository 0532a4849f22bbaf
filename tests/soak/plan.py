"""The soak's size and its seeded schedule of kills: everything random comes from one seed.

A :class:`Plan` is a pure function of the size and the seed, so a failing run is replayed with
the same ``--seed``. What happens between the planned events (which driver gets which charger
first, where a kill lands in a session) depends on timing, as it does in production.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

STROM = "strom"


class Kind(StrEnum):
    """What one event of the schedule does to its target."""

    KILL = "kill"  # Strom: SIGKILL, restarted on the same database after ``down_s``
    REBOOT = "reboot"  # a charger loses power, stays off ``down_s`` and boots again
    NETWORK = "network"  # a charger loses its connection and reconnects (no reboot)


@dataclass(frozen=True, slots=True)
class Event:
    """One planned fault: at ``at_s`` seconds into the soak, ``kind`` hits ``target``."""

    at_s: float
    target: str
    kind: Kind
    down_s: float = 0.0

    def __str__(self) -> str:
        down = f" for {self.down_s:.1f} s" if self.down_s else ""
        return f"{self.at_s:6.1f} s  {self.kind} {self.target}{down}"


@dataclass(frozen=True, slots=True)
class SoakSize:
    """How big a soak is.

    Attributes:
        seconds: how long drivers start sessions and faults are injected.
        chargers: simulated chargers (one connector each); the last forgets its transactions.
        drivers: drivers paying at once (one more than chargers makes them queue).
        sessions: paid sessions to start at most (None: as many as fit in ``seconds``).
        strom_kills: SIGKILLs of Strom.
        charger_faults: charger reboots and connection losses.
        arrival_s: a new session starts at most this often (drivers arrive over time).
        quiet_s: how long drivers may take to finish once the faults stop (they need a few
            seconds; a session stuck for good fails the soak after this long).
    """

    seconds: float
    chargers: int = 3
    drivers: int = 4
    sessions: int | None = None
    strom_kills: int = 3
    charger_faults: int = 3
    arrival_s: float = 2.5
    quiet_s: float = 60

    @classmethod
    def ci(cls) -> SoakSize:
        """The size CI runs: about a minute and a half of wall time on two cores."""
        return cls(seconds=35, chargers=3, drivers=4, sessions=12, strom_kills=3, charger_faults=3)

    @classmethod
    def full(cls, minutes: float) -> SoakSize:
        """The size of the soak run by hand: a Strom kill every ~20 s, a charger fault every
        ~12 s, five chargers and seven drivers."""
        seconds = minutes * 60
        return cls(
            seconds=seconds,
            chargers=5,
            drivers=7,
            sessions=None,
            strom_kills=max(3, round(seconds / 20)),
            charger_faults=max(3, round(seconds / 12)),
            arrival_s=1.0,
            quiet_s=240,
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """The chargers and the faults of one soak."""

    seed: int
    size: SoakSize
    chargers: tuple[str, ...]
    forgetful: str
    events: tuple[Event, ...] = field(default=())

    def strom_events(self) -> list[Event]:
        """The kills of Strom, in time order."""
        return [e for e in self.events if e.target == STROM]

    def charger_events(self, charger_id: str) -> list[Event]:
        """The faults of one charger, in time order."""
        return [e for e in self.events if e.target == charger_id]


def make_plan(size: SoakSize, seed: int) -> Plan:
    """The seeded schedule: Strom kills spread over the soak (one per slot, at a random point
    of it), charger faults at random times; the forgetful charger's first fault is a reboot
    early in the soak, so that the soak always sees a charger come back without its
    transaction."""
    rng = random.Random(seed)
    chargers = tuple(f"soak-{n}" for n in range(1, size.chargers + 1))
    forgetful = chargers[-1]
    events: list[Event] = []
    slot = size.seconds / size.strom_kills
    for n in range(size.strom_kills):
        at = max(3.0, slot * n + rng.uniform(0.2, 0.8) * slot)
        events.append(Event(round(at, 2), STROM, Kind.KILL, round(rng.uniform(0.2, 2.0), 2)))
    for n in range(size.charger_faults):
        target = forgetful if n == 0 else rng.choice(chargers)
        kind = Kind.REBOOT if n == 0 or rng.random() < 0.7 else Kind.NETWORK
        down = round(rng.uniform(0.3, 3.0), 2) if kind is Kind.REBOOT else 0.0
        # The forgetful charger's first reboot comes early: it waits for a charge to forget.
        early = (0.1 * size.seconds, 0.4 * size.seconds)
        at = rng.uniform(*early) if n == 0 else rng.uniform(2.0, max(2.5, size.seconds - 2.0))
        events.append(Event(round(at, 2), target, kind, down))
    events.sort(key=lambda e: e.at_s)
    return Plan(seed, size, chargers, forgetful, tuple(events))
