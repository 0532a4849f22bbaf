"""BTC exchange rates: several public tickers, their median, and how old it may be.

Theory of operation
-------------------
:class:`RateBook` asks every configured source (:data:`RATE_SOURCES`: Kraken, Coinbase,
Bitstamp, CoinGecko, Bitfinex public tickers; no keys) in parallel, each within ``timeout_s``,
and keeps each answer with the time it arrived. :meth:`RateBook.current` then uses only the
quotes younger than ``max_age_s``:

1. the median of the fresh quotes;
2. quotes more than ``outlier_percent`` from that median are dropped (and logged);
3. the median of the rest is the rate, with the names of the sources that made it.

No fresh quote raises :class:`~strom_core.ports.prices.NoPrice` ("no fresh BTC/EUR rate
(newest 2 h old)"): a payment that needs a conversion is refused rather than priced at an old
rate. A source failing is logged and counted in :meth:`RateBook.health`, never raised.

A fixed rate (``[rates] fixed``, or the older ``server.fiat_per_btc``) replaces the live
sources: it is always fresh and is the only rate used.

Parsing each ticker is a pure function over bytes (:func:`parse_rate`), tested from recorded
answers.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from strom_core.fiat import FiatRate
from strom_core.ports.prices import NoPrice
from strom_prices.errors import ProviderError
from strom_prices.http import Fetcher
from strom_prices.spot import decimal_of, json_of

__all__ = [
    "RATE_SOURCES",
    "Quote",
    "Rate",
    "RateBook",
    "RateHealth",
    "parse_rate",
    "rate_request",
]

log = logging.getLogger(__name__)

RATE_SOURCES: Final = ("kraken", "coinbase", "bitstamp", "coingecko", "bitfinex")
"""The live sources ``[rates] sources`` may name."""

_BASES: Final = {
    "kraken": "https://api.kraken.com",
    "coinbase": "https://api.coinbase.com",
    "bitstamp": "https://www.bitstamp.net",
    "coingecko": "https://api.coingecko.com",
    "bitfinex": "https://api-pub.bitfinex.com",
}


def rate_request(source: str, currency: str, base_url: str = "") -> tuple[str, dict[str, str]]:
    """The URL and query of ``source``'s BTC/``currency`` ticker.

    Raises:
        ProviderError: an unknown source.
    """
    if source not in _BASES:
        raise ProviderError(f"unknown rate source {source!r}; expected one of {RATE_SOURCES}")
    base = base_url or _BASES[source]
    upper, lower = currency.upper(), currency.lower()
    if source == "kraken":
        return f"{base}/0/public/Ticker", {"pair": f"XBT{upper}"}
    if source == "coinbase":
        return f"{base}/v2/prices/BTC-{upper}/spot", {}
    if source == "bitstamp":
        return f"{base}/api/v2/ticker/btc{lower}/", {}
    if source == "coingecko":
        return f"{base}/api/v3/simple/price", {"ids": "bitcoin", "vs_currencies": lower}
    return f"{base}/v2/ticker/tBTC{upper}", {}


def parse_rate(source: str, currency: str, body: bytes) -> Decimal:
    """The BTC price in ``currency`` from ``source``'s ticker answer.

    Shapes (public APIs, no key):

    - kraken: ``{"error": [], "result": {"XXBTZEUR": {"c": ["91234.5", "0.01"], ...}}}``
      (``c`` = last trade price, lot volume);
    - coinbase: ``{"data": {"amount": "91234.56", "base": "BTC", "currency": "EUR"}}``;
    - bitstamp: ``{"last": "91234", "timestamp": "1765100000", ...}``;
    - coingecko: ``{"bitcoin": {"eur": 91234}}``;
    - bitfinex: ``[BID, BID_SIZE, ASK, ASK_SIZE, CHANGE, CHANGE_REL, LAST_PRICE, ...]``.

    Raises:
        ProviderError: an error answer, another shape, or a price that is not positive.
    """
    answer = json_of(source, body)
    value = _PICKERS[source](answer, currency) if source in _PICKERS else None
    if value is None:
        raise ProviderError(f"{source}: unexpected answer shape")
    price = decimal_of(source, value, "price")
    if price <= 0:
        raise ProviderError(f"{source}: a price that is not positive: {price}")
    return price


def _kraken(answer: object, currency: str) -> object:
    if not isinstance(answer, dict):
        return None
    if answer.get("error"):
        raise ProviderError(f"kraken: {answer['error']}")
    result = answer.get("result")
    if not isinstance(result, dict) or len(result) != 1:
        return None
    ticker = next(iter(result.values()))
    last = ticker.get("c") if isinstance(ticker, dict) else None
    return last[0] if isinstance(last, list) and last else None


def _coinbase(answer: object, currency: str) -> object:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        return None
    pair = f"{data.get('base', 'BTC')}/{data.get('currency', currency)}"
    if pair != f"BTC/{currency}":
        raise ProviderError(f"coinbase: a price of {pair}, not BTC/{currency}")
    return data.get("amount")


def _bitstamp(answer: object, currency: str) -> object:
    return answer.get("last") if isinstance(answer, dict) else None


def _coingecko(answer: object, currency: str) -> object:
    coin = answer.get("bitcoin") if isinstance(answer, dict) else None
    return coin.get(currency.lower()) if isinstance(coin, dict) else None


def _bitfinex(answer: object, currency: str) -> object:
    if isinstance(answer, list) and len(answer) >= 7 and not isinstance(answer[0], str):
        return answer[6]
    return None  # an error comes as ["error", code, "text"]


_PICKERS: Final[dict[str, Callable[[object, str], object]]] = {
    "kraken": _kraken,
    "coinbase": _coinbase,
    "bitstamp": _bitstamp,
    "coingecko": _coingecko,
    "bitfinex": _bitfinex,
}


@dataclass(frozen=True, slots=True)
class Quote:
    """One source's answer: ``value`` fiat per BTC, received ``at``."""

    source: str
    value: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class Rate:
    """The BTC rate in force.

    Attributes:
        currency: ISO 4217 code.
        value: fiat per BTC (the median of ``sources``).
        sources: the sources the median was taken over.
        at: the time of the oldest quote used.
    """

    currency: str
    value: Decimal
    sources: tuple[str, ...]
    at: datetime

    def frozen(self) -> FiatRate:
        """The rate as a session and the ledger keep it."""
        return FiatRate(self.currency, self.value, self.label, self.at)

    @property
    def label(self) -> str:
        """For the ledger and receipts, e.g. ``median(bitstamp,kraken)=91234.5 EUR/BTC``."""
        if self.sources == ("fixed",):
            return f"fixed={self.value} {self.currency}/BTC"
        return f"median({','.join(self.sources)})={self.value} {self.currency}/BTC"


@dataclass(slots=True)
class RateHealth:
    """What the admin UI shows of one rate source."""

    last_success: datetime | None = None
    last_value: Decimal | None = None
    last_error: str = ""
    last_error_at: datetime | None = None


@dataclass(slots=True)
class _Book:
    quotes: dict[str, Quote] = field(default_factory=dict)
    health: dict[str, RateHealth] = field(default_factory=dict)


class RateBook:
    """The exchange rates from several sources, with their median, outliers and age.

    Args:
        fetcher: how to GET a ticker.
        sources: names from :data:`RATE_SOURCES`.
        now: the clock (aware UTC).
        max_age_s: a quote older than this is not used.
        timeout_s: the time each refresh waits for all sources.
        outlier_percent: quotes farther than this from the median are dropped.
        fixed: ``{currency: rate}`` used instead of the live sources (a fixed rate).
        base_urls: ``{source: base URL}`` replacing the public addresses (tests).
    """

    def __init__(
        self,
        fetcher: Fetcher | None,
        sources: Sequence[str],
        *,
        now: Callable[[], datetime],
        max_age_s: float = 900,
        timeout_s: float = 5,
        outlier_percent: Decimal = Decimal(5),
        fixed: Mapping[str, Decimal] | None = None,
        base_urls: Mapping[str, str] | None = None,
    ) -> None:
        for source in sources:
            if source not in RATE_SOURCES:
                raise ProviderError(f"unknown rate source {source!r}; expected {RATE_SOURCES}")
        self._fetcher = fetcher
        self._sources = tuple(sources)
        self._now = now
        self._max_age = timedelta(seconds=max_age_s)
        self._timeout_s = timeout_s
        self._outlier = outlier_percent / 100
        self._fixed = dict(fixed or {})
        self._base_urls = dict(base_urls or {})
        self._books: dict[str, _Book] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def enabled(self) -> bool:
        """Whether any rate can ever be given (live sources or a fixed rate)."""
        return bool(self._sources or self._fixed)

    def health(self, currency: str) -> dict[str, RateHealth]:
        """Each live source's last success and error for ``currency``."""
        return dict(self._books.get(currency, _Book()).health)

    def current(self, currency: str) -> Rate:
        """The rate from the fresh quotes; no I/O (see :meth:`fresh`).

        Raises:
            NoPrice: no fixed rate and no fresh quote.
        """
        now = self._now()
        if currency in self._fixed:
            return Rate(currency, self._fixed[currency], ("fixed",), now)
        if not self._sources:
            raise NoPrice(f"no BTC/{currency} rate source configured")
        quotes = list(self._books.get(currency, _Book()).quotes.values())
        fresh = [quote for quote in quotes if now - quote.at <= self._max_age]
        if not fresh:
            if not quotes:
                raise NoPrice(f"no fresh BTC/{currency} rate (no source answered)")
            newest = max(quote.at for quote in quotes)
            raise NoPrice(f"no fresh BTC/{currency} rate (newest {_age(now - newest)} old)")
        middle = statistics.median(quote.value for quote in fresh)
        kept = [q for q in fresh if abs(q.value - middle) <= middle * self._outlier]
        for quote in fresh:
            if quote not in kept:
                log.warning(
                    "rate %s BTC/%s = %s dropped: more than %s%% from the median %s",
                    quote.source,
                    currency,
                    quote.value,
                    self._outlier * 100,
                    middle,
                )
        value = statistics.median(quote.value for quote in kept)
        sources = tuple(sorted(quote.source for quote in kept))
        return Rate(currency, Decimal(value), sources, min(quote.at for quote in kept))

    async def rate(self, currency: str) -> FiatRate:
        """:meth:`fresh` as the :class:`~strom_core.ports.prices.RateSource` port gives it.

        Raises:
            NoPrice: no fresh quote, even after asking the sources.
        """
        return (await self.fresh(currency)).frozen()

    def fresh_rates(self) -> tuple[FiatRate, ...]:
        """Every currency's rate that is fresh now, from memory (no I/O)."""
        found = []
        for currency in sorted({*self._fixed, *self._books}):
            try:
                found.append(self.current(currency).frozen())
            except NoPrice:
                continue
        return tuple(found)

    async def fresh(self, currency: str) -> Rate:
        """The current rate, refreshing first when no quote is fresh.

        Raises:
            NoPrice: still no fresh quote after the refresh.
        """
        try:
            return self.current(currency)
        except NoPrice:
            if not self._sources:
                raise
        await self.refresh(currency)
        return self.current(currency)

    async def refresh(self, currency: str) -> None:
        """Ask every source in parallel; keep what answered within ``timeout_s``."""
        if not self._sources or self._fetcher is None:
            return
        lock = self._locks.setdefault(currency, asyncio.Lock())
        async with lock:
            book = self._books.setdefault(currency, _Book())
            tasks = {
                source: asyncio.create_task(self._ask(source, currency)) for source in self._sources
            }
            try:
                done, _ = await asyncio.wait(tasks.values(), timeout=self._timeout_s)
            finally:
                # Also when this refresh is itself cancelled (a payer who hung up, a stop):
                # no source's task is left running or with its error never looked at.
                for task in tasks.values():
                    task.cancel()
                await asyncio.gather(*tasks.values(), return_exceptions=True)
            now = self._now()
            for source, task in tasks.items():
                health = book.health.setdefault(source, RateHealth())
                problem = _problem(task, done)
                if problem:
                    log.warning("rate source %s BTC/%s failed: %s", source, currency, problem)
                    health.last_error, health.last_error_at = problem, now
                    continue
                value = task.result()
                book.quotes[source] = Quote(source, value, now)
                health.last_success, health.last_value = now, value

    async def _ask(self, source: str, currency: str) -> Decimal:
        assert self._fetcher is not None
        url, params = rate_request(source, currency, self._base_urls.get(source, ""))
        body = await self._fetcher.get(source, url, params, {})
        return parse_rate(source, currency, body)


def _problem(task: asyncio.Task[Decimal], done: set[asyncio.Task[Decimal]]) -> str:
    if task not in done:
        return "no answer in time"
    error = task.exception()
    if error is None:
        return ""
    if isinstance(error, ProviderError):
        return str(error)
    raise error


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} h"
    if seconds >= 120:
        return f"{seconds // 60} min"
    return f"{seconds} s"
