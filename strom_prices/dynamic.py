"""DynamicPricing: a charger's price schedule from a provider, the formula and the BTC rate.

Theory of operation
-------------------
Each charger whose profile has ``[tariff.dynamic]`` gets its prices from a *feed*: one per
(provider, area, currency, token), shared by the chargers that name the same one. A feed keeps
the last prices it fetched (all times UTC) and when it fetched them.

Fetching is rare: a feed fetches when it knows nothing, when it knows less than an hour of
prices from the time asked, or after one of the day's ``refresh_at`` times (UTC; day-ahead
markets publish the next day around noon). Never more often than every ``min_refresh_s``
on success, and after a failure only after a backoff (1 min doubling up to 3 h). A failed
fetch changes nothing it knew.

:meth:`DynamicPricing.schedule` then:

1. takes the feed's prices from the interval holding ``start`` for up to ``hours`` hours; the
   schedule may end earlier than asked when the market has not published further
   (``PriceSchedule.valid_until`` says how far prices are known);
2. no price for ``start`` itself (provider down and the last prices run out, or never fetched)
   raises :class:`~strom_core.ports.prices.NoPrice` with the reason (the provider's last error);
3. applies the operator's :class:`~strom_prices.formula.Formula` in the provider's currency;
4. converts at the :class:`~strom_prices.rates.RateBook`'s current rate (NoPrice when none is
   fresh) to integer msat/kWh, floored; the schedule names the rate used (``rate_source``).

The schedule returned is what the driver is shown and billed: billing freezes it into the
session at payment, so later fetches and rate moves never change a running session.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Final

from strom_core.config import DynamicTariffConfig
from strom_core.ports.prices import NoPrice
from strom_core.prices import PriceSchedule
from strom_prices.errors import ProviderError
from strom_prices.formula import Formula, to_schedule
from strom_prices.http import Fetcher
from strom_prices.providers import Provider, make_provider
from strom_prices.rates import RateBook
from strom_prices.spot import SpotPrice, clean

__all__ = ["DynamicPricing", "FeedHealth", "resolve_token"]

log = logging.getLogger(__name__)

_FIRST_BACKOFF: Final = timedelta(minutes=1)
_MAX_BACKOFF: Final = timedelta(hours=3)
_KEEP: Final = timedelta(days=2)  # prices older than this are forgotten
_AHEAD: Final = timedelta(hours=1)  # fewer prices known ahead of the time asked: fetch now


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """What the admin UI and API show of a charger's price source.

    Attributes:
        source: ``provider:area``.
        last_success: the last fetch that gave prices.
        last_error: the last failure's text ("" if the last fetch succeeded).
        last_error_at: when it failed.
        known_until: the end of the last price known (None: none known).
        next_attempt: no fetch before this time (backoff or the minimum interval).
    """

    source: str
    last_success: datetime | None
    last_error: str
    last_error_at: datetime | None
    known_until: datetime | None
    next_attempt: datetime | None


def resolve_token(reference: str) -> str:
    """The secret a token reference names: ``env:NAME`` or ``file:/path``; "" for none.

    Raises:
        ProviderError: the variable is unset or the file unreadable.
    """
    if not reference:
        return ""
    kind, _, name = reference.partition(":")
    if kind == "env":
        value = os.environ.get(name, "")
        if not value:
            raise ProviderError(f"the token variable {name} is not set")
        return value.strip()
    if kind == "file":
        try:
            return Path(name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ProviderError(f"the token file cannot be read: {exc.strerror}") from None
    raise ProviderError("a token reference is env:NAME or file:/path")


class _Feed:
    """One provider and area: the prices known, and when to fetch again."""

    def __init__(
        self,
        provider: Provider,
        config: DynamicTariffConfig,
        fetcher: Fetcher,
        tokens: Callable[[str], str],
        min_refresh: timedelta,
    ) -> None:
        self.provider = provider
        self.config = config
        self.source = f"{config.provider}:{config.area}"
        self._fetcher = fetcher
        self._tokens = tokens
        self._min_refresh = min_refresh
        self.rows: tuple[SpotPrice, ...] = ()
        self.fetched_at: datetime | None = None
        self.health = FeedHealth(self.source, None, "", None, None, None)
        self._failures = 0
        self._lock = asyncio.Lock()

    def _refresh_due(self, now: datetime) -> bool:
        if self.fetched_at is None:
            return True
        for moment in self.config.refresh_at:
            hour, minute = (int(part) for part in moment.split(":"))
            at = datetime.combine(now.date(), time(hour, minute), tzinfo=UTC)
            if self.fetched_at < at <= now:
                return True
        return False

    async def ensure(self, now: datetime, start: datetime) -> None:
        """Fetch if the prices from ``start`` are not known or a refresh time has passed.

        Prices beyond the known ones are not chased: the next day's are published once a
        day (``refresh_at``); asking for them earlier would only ask the provider in vain.
        """
        async with self._lock:
            known = self.rows[-1].end if self.rows else None
            short = known is None or known < start + _AHEAD
            wanted = short or self._refresh_due(now)
            waiting = self.health.next_attempt is not None and now < self.health.next_attempt
            if wanted and not waiting:
                await self._fetch(now)

    async def _fetch(self, now: datetime) -> None:
        day = datetime.combine(now.date(), time(0), tzinfo=UTC)
        try:
            request = self.provider.request(
                self.config.area, day, day + timedelta(days=2), self._tokens(self.config.token)
            )
            body = await self._fetcher.get(
                self.provider.name, request.url, request.params, request.headers
            )
            fresh = self.provider.parse(body, self.config.area)
        except ProviderError as exc:
            self._failures += 1
            backoff = min(_FIRST_BACKOFF * 2 ** (self._failures - 1), _MAX_BACKOFF)
            log.warning("prices %s: fetch failed: %s (next try in %s)", self.source, exc, backoff)
            self.health = replace(
                self.health, last_error=str(exc), last_error_at=now, next_attempt=now + backoff
            )
            return
        self._failures = 0
        kept = [
            row
            for row in self.rows
            if row.end > now - _KEEP and (row.end <= fresh[0].start or row.start >= fresh[-1].end)
        ]
        try:
            self.rows = clean(self.source, [*kept, *fresh])
        except ProviderError:
            self.rows = fresh  # the old prices do not fit the new ones: trust the new
        self.fetched_at = now
        self.health = replace(
            self.health,
            last_success=now,
            last_error="",
            known_until=self.rows[-1].end,
            next_attempt=now + self._min_refresh,
        )
        log.info("prices %s: known until %s", self.source, self.rows[-1].end.isoformat())

    def window(self, start: datetime, end: datetime) -> list[SpotPrice]:
        rows = [row for row in self.rows if row.end > start and row.start < end]
        if not rows or rows[0].start > start:
            return []
        return rows


class DynamicPricing:
    """The :class:`~strom_core.ports.prices.PriceSource` of chargers with dynamic tariffs.

    Args:
        tariffs: ``{charger id: its [tariff.dynamic] section}``.
        rates: the exchange rates.
        fetcher: how to GET a provider's answer.
        now: the clock (aware UTC).
        tokens: resolves a token reference (default :func:`resolve_token`).
        base_urls: ``{provider: base URL}`` replacing the public addresses (tests).
        min_refresh_s: the least time between two successful fetches of one feed.
    """

    def __init__(
        self,
        tariffs: Mapping[str, DynamicTariffConfig],
        rates: RateBook,
        fetcher: Fetcher,
        *,
        now: Callable[[], datetime],
        tokens: Callable[[str], str] = resolve_token,
        base_urls: Mapping[str, str] | None = None,
        min_refresh_s: float = 3600,
    ) -> None:
        self._rates = rates
        self._now = now
        self._fetcher = fetcher
        self._tokens = tokens
        self._urls = dict(base_urls or {})
        self._min_refresh = timedelta(seconds=min_refresh_s)
        self._tariffs: dict[str, DynamicTariffConfig] = {}
        self._feeds: dict[tuple[str, str, str, str], _Feed] = {}
        for charger_id, config in tariffs.items():
            self.configure(charger_id, config)

    def configure(self, charger_id: str, config: DynamicTariffConfig | None) -> None:
        """Price a charger by ``config`` from now on; None: it is no longer priced here.

        A feed no charger names any more is dropped; one already known is kept, prices and all.
        """
        if config is None:
            self._tariffs.pop(charger_id, None)
        else:
            key = _key(config)
            if key not in self._feeds:
                provider = make_provider(
                    config.provider, config.currency, self._urls.get(config.provider, "")
                )
                self._feeds[key] = _Feed(
                    provider, config, self._fetcher, self._tokens, self._min_refresh
                )
            self._tariffs[charger_id] = config
        named = {_key(c) for c in self._tariffs.values()}
        for key in [k for k in self._feeds if k not in named]:
            del self._feeds[key]

    def chargers(self) -> tuple[str, ...]:
        """The chargers priced dynamically."""
        return tuple(self._tariffs)

    def health(self, charger_id: str) -> FeedHealth | None:
        """The health of the charger's price source; None if it is not priced dynamically."""
        config = self._tariffs.get(charger_id)
        return None if config is None else self._feeds[_key(config)].health

    async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
        """The energy prices (msat/kWh) from ``start`` for up to ``hours`` hours.

        The schedule ends earlier when prices are not known that far (see ``valid_until``).

        Raises:
            NoPrice: no dynamic tariff, no price for ``start``, or no fresh exchange rate.
        """
        config = self._tariffs.get(charger_id)
        if config is None:
            raise NoPrice(f"charger {charger_id} has no dynamic tariff")
        if start.tzinfo is None or hours < 1:
            raise NoPrice("a price schedule is asked from an aware time for at least one hour")
        feed = self._feeds[_key(config)]
        end = start + timedelta(hours=hours)
        await feed.ensure(self._now(), start)
        rows = feed.window(start, end)
        if not rows or feed.fetched_at is None:
            raise NoPrice(_no_price_reason(feed, start))
        rate = await self._rates.fresh(config.currency)
        formula = Formula(
            grid_fees=config.grid_fees,
            taxes=config.taxes,
            margin=config.margin,
            minimum=config.min,
            maximum=config.max,
        )
        return to_schedule(
            rows,
            formula,
            btc_rate=rate.value,
            source=feed.source,
            fetched_at=feed.fetched_at,
            rate_source=rate.label,
        )

    async def refresh(self) -> None:
        """Fetch what is due for every feed (for a periodic task; backoff applies)."""
        now = self._now()
        for feed in list(self._feeds.values()):
            await feed.ensure(now, now)

    async def run(self, interval_s: float = 300) -> None:
        """Refresh every ``interval_s`` until cancelled (owned by the app's task group).

        Chargers configured later (:meth:`configure`) are refreshed from the next round on.
        """
        while True:
            await self.refresh()
            await asyncio.sleep(interval_s)


def _key(config: DynamicTariffConfig) -> tuple[str, str, str, str]:
    return (config.provider, config.area, config.currency, config.token)


def _no_price_reason(feed: _Feed, start: datetime) -> str:
    at = start.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    known = feed.health.known_until
    reason = f"no {feed.source} price for {at}"
    if known is not None:
        reason += f" (prices known until {known.strftime('%Y-%m-%d %H:%M UTC')})"
    if feed.health.last_error:
        reason += f": {feed.health.last_error}"
    return reason
