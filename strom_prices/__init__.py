"""Prices from outside: day-ahead spot markets, energy contracts and BTC exchange rates.

An adapter: it fetches over HTTP (aiohttp) and parses each source with pure functions over
bytes. :class:`DynamicPricing` implements the core's
:class:`~strom_core.ports.prices.PriceSource`; :class:`RateBook` gives the BTC rate in a fiat
currency from several public tickers.
"""

from strom_prices.dynamic import DynamicPricing, FeedHealth, resolve_token
from strom_prices.errors import ProviderError
from strom_prices.formula import Formula, to_msat_per_kwh, to_schedule
from strom_prices.http import Fetcher, HttpFetcher
from strom_prices.providers import PROVIDERS, make_provider
from strom_prices.rates import RATE_SOURCES, Rate, RateBook, RateHealth, parse_rate
from strom_prices.spot import SpotPrice, clean

__all__ = [
    "PROVIDERS",
    "RATE_SOURCES",
    "DynamicPricing",
    "FeedHealth",
    "Fetcher",
    "Formula",
    "HttpFetcher",
    "ProviderError",
    "Rate",
    "RateBook",
    "RateHealth",
    "SpotPrice",
    "clean",
    "make_provider",
    "parse_rate",
    "resolve_token",
    "to_msat_per_kwh",
    "to_schedule",
]
