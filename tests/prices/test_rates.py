"""The RateBook: each ticker's answer, the median, outliers, max age and refusal."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from strom_core.ports.prices import NoPrice
from strom_prices import ProviderError, RateBook, parse_rate
from tests.prices.fixtures import fixture

ANSWERS = {
    "kraken": "rate_kraken_xbteur.json",
    "coinbase": "rate_coinbase_btc-eur.json",
    "bitstamp": "rate_bitstamp_btceur.json",
    "coingecko": "rate_coingecko_eur.json",
    "bitfinex": "rate_bitfinex_tbtceur.json",
}


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2025, 10, 25, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


class Scripted:
    """A fetcher answering each source from a recorded file, or failing it."""

    def __init__(self, answers: Mapping[str, bytes | ProviderError]) -> None:
        self.answers = dict(answers)
        self.calls: list[str] = []

    async def get(
        self, source: str, url: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> bytes:
        self.calls.append(source)
        answer = self.answers[source]
        if isinstance(answer, ProviderError):
            raise answer
        return answer


def _recorded() -> dict[str, bytes | ProviderError]:
    return {source: fixture(name) for source, name in ANSWERS.items()}


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("kraken", "91234.50000"),
        ("coinbase", "91250.12"),
        ("bitstamp", "91201"),
        ("coingecko", "91190"),
        ("bitfinex", "91205"),
    ],
)
def test_each_ticker_is_read_from_its_recorded_answer(source: str, value: str) -> None:
    assert parse_rate(source, "EUR", fixture(ANSWERS[source])) == Decimal(value)


def test_error_answers_and_other_shapes_are_provider_errors() -> None:
    with pytest.raises(ProviderError, match="EQuery:Unknown asset pair"):
        parse_rate("kraken", "EUR", fixture("rate_kraken_error.json"))
    with pytest.raises(ProviderError, match="bitfinex: unexpected answer shape"):
        parse_rate("bitfinex", "EUR", fixture("rate_bitfinex_error.json"))
    with pytest.raises(ProviderError, match="coingecko: unexpected answer shape"):
        parse_rate("coingecko", "USD", fixture("rate_coingecko_eur.json"))
    with pytest.raises(ProviderError, match="not BTC/USD"):
        parse_rate("coinbase", "USD", fixture("rate_coinbase_btc-eur.json"))
    with pytest.raises(ProviderError, match="not positive"):
        parse_rate("bitstamp", "EUR", b'{"last": "0"}')


async def test_the_rate_is_the_median_of_the_sources_that_answered() -> None:
    answers = _recorded()
    answers["coingecko"] = ProviderError("coingecko: HTTP 429")
    clock = Clock()
    book = RateBook(Scripted(answers), list(ANSWERS), now=clock)
    rate = await book.fresh("EUR")
    # kraken 91234.5, coinbase 91250.12, bitstamp 91201, bitfinex 91205 -> median 91219.75
    assert rate.value == Decimal("91219.75")
    assert rate.sources == ("bitfinex", "bitstamp", "coinbase", "kraken")
    assert book.health("EUR")["coingecko"].last_error == "coingecko: HTTP 429"
    assert "median(bitfinex,bitstamp,coinbase,kraken)" in rate.label


async def test_an_outlier_is_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    answers = _recorded()
    answers["bitstamp"] = b'{"last": "101000"}'  # 10 % above the others
    book = RateBook(Scripted(answers), list(ANSWERS), now=Clock(), outlier_percent=Decimal(5))
    with caplog.at_level(logging.WARNING):
        rate = await book.fresh("EUR")
    assert "bitstamp" not in rate.sources
    assert rate.value == Decimal("91219.75")  # median of the four others
    assert "rate bitstamp BTC/EUR = 101000 dropped" in caplog.text


async def test_all_stale_quotes_refuse_with_their_age() -> None:
    clock = Clock()
    fetcher = Scripted(_recorded())
    book = RateBook(fetcher, list(ANSWERS), now=clock, max_age_s=900)
    await book.refresh("EUR")
    clock.at += timedelta(hours=2)
    with pytest.raises(NoPrice, match=r"no fresh BTC/EUR rate \(newest 2 h old\)"):
        book.current("EUR")
    # every source down now: the refresh does not help, the refusal stays
    fetcher.answers = {s: ProviderError(f"{s}: no answer in time") for s in ANSWERS}
    with pytest.raises(NoPrice, match=r"newest 2 h old"):
        await book.fresh("EUR")


async def test_no_source_ever_answered() -> None:
    fetcher = Scripted({s: ProviderError(f"{s}: HTTP 503") for s in ANSWERS})
    book = RateBook(fetcher, list(ANSWERS), now=Clock())
    with pytest.raises(NoPrice, match=r"no fresh BTC/EUR rate \(no source answered\)"):
        await book.fresh("EUR")


async def test_a_fixed_rate_is_always_fresh_and_asks_nobody() -> None:
    fetcher = Scripted({})
    book = RateBook(fetcher, [], now=Clock(), fixed={"EUR": Decimal(90_000)})
    rate = await book.fresh("EUR")
    assert (rate.value, rate.sources) == (Decimal(90_000), ("fixed",))
    assert fetcher.calls == []
    with pytest.raises(NoPrice, match="no BTC/GBP rate source configured"):
        await book.fresh("GBP")


async def test_a_fresh_rate_is_not_fetched_again() -> None:
    fetcher = Scripted(_recorded())
    book = RateBook(fetcher, ["kraken"], now=Clock())
    await book.fresh("EUR")
    await book.fresh("EUR")
    assert fetcher.calls == ["kraken"]


class Silent(Scripted):
    """A fetcher whose ``silent`` source never answers."""

    def __init__(self, answers: Mapping[str, bytes | ProviderError], silent: str) -> None:
        super().__init__(answers)
        self.silent = silent

    async def get(
        self, source: str, url: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> bytes:
        if source == self.silent:
            never = asyncio.Event()
            await never.wait()
        return await super().get(source, url, params, headers)


async def test_a_source_that_does_not_answer_in_time_is_left_out() -> None:
    book = RateBook(
        Silent(_recorded(), "kraken"), ["kraken", "coinbase"], now=Clock(), timeout_s=0.05
    )
    rate = await book.fresh("EUR")
    assert rate.sources == ("coinbase",)
    assert book.health("EUR")["kraken"].last_error == "no answer in time"


async def test_a_refresh_cancelled_midway_leaves_no_source_running_or_unread() -> None:
    """A payer who hangs up (or a stop) cancels the refresh: the source that already failed
    has its error read, the one still asking is cancelled; nothing is left to be logged as
    'Task exception was never retrieved' (seen in CI)."""
    answers = _recorded()
    answers["coinbase"] = ProviderError("coinbase: HTTP 503")
    book = RateBook(Silent(answers, "kraken"), ["kraken", "coinbase"], now=Clock(), timeout_s=30)
    unread: list[str] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, ctx: unread.append(ctx["message"]))
    before = asyncio.all_tasks()
    refresh = asyncio.create_task(book.refresh("EUR"))
    await asyncio.sleep(0.05)  # coinbase has failed, kraken is still waiting
    refresh.cancel()
    with pytest.raises(asyncio.CancelledError):
        await refresh
    left = asyncio.all_tasks() - before - {refresh}
    assert left == set()
    del refresh, left
    gc.collect()
    assert unread == []
