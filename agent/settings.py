"""The agents' settings: one frozen object built from the configuration at the edge."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from strom_core.config import StromConfig
from strom_core.errors import ConfigError
from strom_nostr.dm import GIFT_WRAP_KIND, NIP04_DM_KIND, TWO_DAYS_S
from strom_nostr.errors import InvalidKey
from strom_nostr.keys import parse_public_key
from strom_nostr.zap_receipt import ZAP_RECEIPT_KIND

__all__ = ["AgentSettings"]


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """How the agents behave. Every duration is in seconds.

    Attributes:
        public_url: Strom's public base URL (lightning addresses and links are built on it).
        admin_pubkeys: hex keys whose DMs are operator commands.
        status_ttl_s: lifetime of a status event (NIP-40); it is re-published at half of it.
        profile_refresh_s: how often profile and relay lists are published again.
        metadata_delay_s: how long after its start an agent first publishes its profile and
            relay lists; the status goes first, so a start of thousands of agents puts every
            charger on the map before the rest.
        progress_interval_s: time between progress DMs to a charging driver (0: none).
        dm_max_age_s: DMs written longer ago than this are ignored (commands must be fresh).
        receipt_max_age_s: zap receipts older than this are ignored.
        max_future_s: events dated further ahead than this are ignored (clock skew).
        dm_relay_lookup_timeout_s: how long to look for a driver's DM inbox list (10050).
        dm_relay_cache_s: how long a driver's inbox list is remembered.
        restart_backoff_s: first wait before a failed agent is restarted (doubles each time).
        max_restart_backoff_s: the longest wait between restarts.
        secret_retention_s: how long after its creation a session secret imported from an older
            installation is kept (refund links expire).
        stranger_dms_per_hour: DMs from strangers (neither an admin nor a payer of a session
            on this charger) each agent reads and answers per hour; more are dropped before
            anything is decrypted, stored or signed (see :mod:`agent.budget`).
        stranger_dm_burst: how many of those it answers at once.
        gift_wraps_per_minute: NIP-17 gift wraps unwrapped per minute by all agents together
            (the sender is known only after unwrapping, which costs two ECDH); more are
            dropped unopened.
        gift_wrap_burst: how many gift wraps are unwrapped at once.
        maps_events_per_day: at most this many NIP-99 listings, and this many NIP-89 handler
            pairs, each charger publishes in any 24 hours (see :mod:`agent.maps`).
    """

    public_url: str
    admin_pubkeys: frozenset[str] = field(default_factory=frozenset)
    status_ttl_s: int = 3600
    profile_refresh_s: int = 86_400
    metadata_delay_s: float = 0.0
    progress_interval_s: int = 600
    dm_max_age_s: int = 600
    receipt_max_age_s: int = 7 * 86_400
    max_future_s: int = 120
    dm_relay_lookup_timeout_s: float = 3.0
    dm_relay_cache_s: int = 600
    restart_backoff_s: float = 1.0
    max_restart_backoff_s: float = 60.0
    secret_retention_s: int = 30 * 86_400
    stranger_dms_per_hour: int = 60
    stranger_dm_burst: int = 10
    gift_wraps_per_minute: int = 600
    gift_wrap_burst: int = 300
    maps_events_per_day: int = 8

    def __post_init__(self) -> None:
        if self.status_ttl_s < 60:
            raise ConfigError("agents: status_ttl_s must be at least 60 seconds")

    def claim_windows_s(self) -> dict[int, int]:
        """Per event kind, how long after its claim a replay could still pass a freshness check.

        The agents refuse older events for their age, so a claim kept this long (by
        ``strom_storage.retention``) is enough to refuse every replay.
        """
        dm = self.dm_max_age_s + self.max_future_s
        return {
            NIP04_DM_KIND: dm,
            GIFT_WRAP_KIND: dm + TWO_DAYS_S,  # a gift wrap's outer time may be 2 days early
            ZAP_RECEIPT_KIND: self.receipt_max_age_s + self.max_future_s,
        }

    @classmethod
    def from_config(cls, config: StromConfig, **overrides: Any) -> AgentSettings:
        """Settings from the configuration; ``overrides`` replace single fields.

        Raises:
            ConfigError: an admin npub is not a valid key.
        """
        admins = set()
        for npub in config.nostr.admin_npubs:
            try:
                admins.add(parse_public_key(npub))
            except InvalidKey as exc:
                raise ConfigError(f"nostr.admin_npubs: {npub}: {exc.reason}") from None
        settings = cls(
            public_url=config.server.public_url,
            admin_pubkeys=frozenset(admins),
            secret_retention_s=max(config.sessions.refund_expiry_s * 2, 86_400),
        )
        return replace(settings, **overrides)

    @property
    def host(self) -> str:
        """The host (and port) of the public URL: the domain of the lightning addresses."""
        return urlsplit(self.public_url).netloc
