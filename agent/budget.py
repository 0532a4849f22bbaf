"""The reply budget: how much a flood of DMs from strangers can make the agents do.

Theory of operation
-------------------
Anyone on nostr can DM a charger. Each DM read costs an ECDH (two for a gift wrap), and each
one answered costs a row in ``nostr_events`` (its claim) and an event signed with the
charger's key — a flood from fresh keys would grow the database and make relays see spam
signed by the charger. So the DMs are sorted by who sent them, cheapest check first:

1. Too old or dated in the future: dropped (no cost; :mod:`agent.conversations`).
2. A gift wrap (NIP-17) hides its sender until it is unwrapped: at most
   ``gift_wraps_per_minute`` are unwrapped by all agents together; more are dropped unopened.
3. The sender (known from a NIP-04 event's signature before decrypting, from the seal after
   unwrapping) is an admin of ``nostr.admin_npubs``, or paid for a session on this charger
   in the last 30 days (known in memory, :mod:`agent.payers`): always read and answered.
4. Anyone else is a stranger: each agent answers at most ``stranger_dm_burst`` at once and
   ``stranger_dms_per_hour`` per hour; more are dropped before anything is decrypted, claimed
   or signed. Drops are counted and logged at most once a minute per charger.

So during a flood the operator and the drivers are still answered (over NIP-04 always; over
NIP-17 while the gift-wrap budget lasts), and the charger answers strangers at its usual pace.
"""

from __future__ import annotations

import logging
from collections import Counter

from strom_core.clock import Clock
from strom_core.ratelimit import RateLimiter

__all__ = ["DmBudget"]

log = logging.getLogger(__name__)

_LOG_EVERY_S = 60.0
_ALL_AGENTS = ""


class DmBudget:
    """Token buckets for strangers' DMs (per agent) and for unwrapping gift wraps (all agents).

    Args:
        stranger_dms_per_hour: strangers' DMs answered per agent and hour.
        stranger_dm_burst: strangers' DMs answered at once per agent.
        gift_wraps_per_minute: gift wraps unwrapped per minute by all agents.
        gift_wrap_burst: gift wraps unwrapped at once.
        clock: the clock (its monotonic time paces the buckets).
    """

    def __init__(
        self,
        *,
        stranger_dms_per_hour: float,
        stranger_dm_burst: int,
        gift_wraps_per_minute: float,
        gift_wrap_burst: int,
        clock: Clock,
    ) -> None:
        self._strangers = RateLimiter(
            per_minute=stranger_dms_per_hour / 60, burst=stranger_dm_burst, clock=clock.monotonic
        )
        self._unwraps = RateLimiter(
            per_minute=gift_wraps_per_minute, burst=gift_wrap_burst, clock=clock.monotonic
        )
        self._clock = clock
        self.dropped: Counter[str] = Counter()
        """DMs dropped since the start, per charger id (for health pages and tests)."""
        self._unlogged: Counter[str] = Counter()
        self._logged_at: dict[str, float] = {}

    def answer_stranger(self, charger_id: str) -> bool:
        """Take one token of this agent's budget for strangers; False (and counted) if none."""
        if self._strangers.allow(charger_id):
            return True
        self._drop(charger_id, "from strangers over the reply budget")
        return False

    def unwrap(self, charger_id: str) -> bool:
        """Take one token of the gift-wrap budget of all agents; False (and counted) if none."""
        if self._unwraps.allow(_ALL_AGENTS):
            return True
        self._drop(charger_id, "gift-wrapped, over the unwrapping budget of all agents")
        return False

    def _drop(self, charger_id: str, why: str) -> None:
        self.dropped[charger_id] += 1
        self._unlogged[charger_id] += 1
        now = self._clock.monotonic()
        if now - self._logged_at.get(charger_id, float("-inf")) < _LOG_EVERY_S:
            return
        self._logged_at[charger_id] = now
        count = self._unlogged.pop(charger_id)
        log.warning(
            "charger %s: %d DM(s) dropped unread (latest: %s); %d since start",
            charger_id,
            count,
            why,
            self.dropped[charger_id],
        )
