"""A tariff priced in euros: paid, charged and refunded exactly; refused without a fresh rate.

Over real HTTP and a real OCPP websocket with the simulated charger (both OCPP versions). The
charger's profile gives its energy price and session fee in EUR; the BTC rate is ``[rates]
fixed`` (90,000 EUR/BTC). The LNURL metadata and the charger page show the prices as written with
their sat values; the bill is the static bill of the converted tariff, the refund the rest to the
msat, and the ledger's rate record recomputes the bill. Without a fresh rate (the only source
answered two hours ago and is down now) the payment is refused with the reason and nothing is
created.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from strom_core.config import TariffConfig
from strom_core.fiat import FiatRate
from strom_core.tariff import Tariff
from strom_lightning import decode_invoice
from strom_prices import RateBook
from strom_prices.errors import ProviderError
from strom_storage.schema import ledger_rates, sessions
from strom_storage.sessions import fiat_from_json
from tests.e2e.conftest import BOTH_VERSIONS, CHARGER, Stack, running_stack
from tests.e2e.test_pay_charge_refund import claim_refund

pytestmark = BOTH_VERSIONS

RATE = {"STROM_RATES__FIXED": "90000", "STROM_RATES__CURRENCY": '"EUR"'}
PER_KWH_MSAT, FEE_MSAT = 400_000, 10_000  # 0.36 EUR and 0.009 EUR at 90,000 EUR/BTC


async def price_in_euros(stack: Stack, convert: str) -> None:
    profile = stack.strom.config.profile(CHARGER)
    tariff = TariffConfig.model_validate(
        {
            **profile.tariff.model_dump(by_alias=True, exclude_none=True),
            "per_kwh_sat": 0,
            "currency": "EUR",
            "per_kwh": "0.36",
            "session_fee": "0.009",
            "convert": convert,
        }
    )
    await stack.strom.apply_profile(profile.model_copy(update={"tariff": tariff}))


@pytest.mark.parametrize("convert", ["at_payment", "at_billing"])
async def test_a_euro_tariff_is_paid_charged_billed_and_refunded_exactly(
    tmp_path: Path, ocpp_version: str, convert: str
) -> None:
    async with running_stack(tmp_path, RATE, ocpp_version=ocpp_version) as stack:
        await price_in_euros(stack, convert)
        offer = await stack.get(stack.pay_url)
        assert "0.36 EUR/kWh (about 400 sat at the current rate)" in offer["metadata"]
        assert "0.009 EUR per session" in offer["metadata"]
        page = (await stack.http.get(f"{stack.base}/c/{CHARGER}")).text
        assert "0.36 EUR/kWh (about 400 sat at the current rate)" in page
        status_url, page_url = await stack.pay(20_000_000)
        charging = await stack.wait_state(status_url, "charging")
        # The session page: the euro prices as written, the sats the session was frozen at, and
        # the rate (at_billing: the planning rate, 10 % below the payment's, while charging).
        frozen, fee = ("400", "10") if convert == "at_payment" else ("444.444", "11.111")
        assert charging["fiat"]["prices"][0] == f"0.36 EUR/kWh = {frozen} sat/kWh"
        page = (await stack.http.get(page_url)).text
        assert (
            f"Priced in EUR: 0.36 EUR/kWh = {frozen} sat/kWh, 0.009 EUR per session = {fee} sat"
            in page
        )
        assert "90000 EUR/BTC" in page
        while charging["energy_wh"] < 300:
            await asyncio.sleep(0.1)
            charging = await stack.get(status_url)
        offer, before = await claim_refund(stack, status_url)
        final = await stack.wait_state(status_url, "refunded")
        receipt = (await stack.http.get(page_url)).text
        assert "0.36 EUR/kWh = 400 sat/kWh" in receipt  # the bill's conversion
        rate_used = {
            "at_payment": "converted at 90000 EUR/BTC, the rate when you paid",
            "at_billing": "billed at 90000 EUR/BTC, the rate when the session was billed",
        }
        assert rate_used[convert] in receipt
        bill = FEE_MSAT + final["energy_wh"] * PER_KWH_MSAT // 1000
        # the bill, less the sub-sat remainder given to the driver so the refund is whole sats
        assert bill - 1000 < final["consumed_msat"] <= bill
        assert final["refunded_msat"] == offer["maxWithdrawable"]
        assert final["refunded_msat"] == 20_000_000 - final["consumed_msat"]
        assert await stack.wallet.received_msat() - before == final["refunded_msat"]
        async with stack.strom.db.reader() as conn:
            (row,) = (await conn.execute(select(ledger_rates))).mappings().all()
        assert row["session_id"] == final["id"]
        assert (row["basis"], row["currency"], row["rate"]) == (convert, "EUR", "90000")
        assert row["rate_source"] == "fixed=90000 EUR/BTC"
        # recompute the bill from the ledger record alone
        fiat = fiat_from_json(row["terms"])
        rate = FiatRate(row["currency"], Decimal(row["rate"]), row["rate_source"], row["rate_at"])
        assert fiat.terms.to_msat(rate) == row["prices_msat"]
        tariff = Tariff(energy_msat_per_kwh=0, min_prepay_msat=10**6, max_prepay_msat=10**12)
        tariff = fiat.terms.apply(tariff, rate, billing=True)
        recomputed = tariff.cost(row["energy_wh"], row["elapsed_s"]) + tariff.idle_cost(
            row["idle_s"]
        )
        assert recomputed == bill
        await stack.ledgers_balance()


class KrakenThenDown:
    """A rate source that answered once (90,000 EUR/BTC) and is down since."""

    def __init__(self) -> None:
        self.answered = False

    async def get(
        self, source: str, url: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> bytes:
        if self.answered:
            raise ProviderError("kraken: HTTP 503")
        self.answered = True
        return b'{"error": [], "result": {"XXBTZEUR": {"c": ["90000.0", "0.01"]}}}'


async def test_without_a_fresh_rate_a_euro_tariff_is_refused_and_nothing_is_created(
    stack: Stack,
) -> None:
    await price_in_euros(stack, "at_payment")
    now = [datetime.now(UTC)]
    book = RateBook(KrakenThenDown(), ["kraken"], now=lambda: now[0], max_age_s=900)
    await book.refresh("EUR")  # the one answer
    stack.strom.payments.rates = book
    now[0] += timedelta(hours=2)  # it is stale now, and the source is down
    offer = await stack.get(stack.pay_url)
    assert "0.36 EUR/kWh" in offer["metadata"]
    assert "about" not in offer["metadata"]  # no sat value without a fresh rate
    answer = await stack.get(offer["callback"], amount="2000000")
    assert answer["status"] == "ERROR"
    assert "no fresh BTC/EUR rate (newest 2 h old)" in answer["reason"]
    assert "nothing was charged" in answer["reason"]
    assert "pr" not in answer
    async with stack.strom.db.reader() as conn:
        assert (await conn.execute(select(func.count()).select_from(sessions))).scalar() == 0


class MovedRate:
    """The BTC rate after it moved: every source agrees on ``value`` now."""

    def __init__(self, value: Decimal) -> None:
        self.fiat = FiatRate("EUR", value, f"fixed={value} EUR/BTC", datetime.now(UTC))

    async def rate(self, currency: str) -> FiatRate:
        return self.fiat

    def fresh_rates(self) -> tuple[FiatRate, ...]:
        return (self.fiat,)


async def test_the_invoice_commits_to_the_metadata_offered_though_the_rate_moved_since(
    tmp_path: Path, ocpp_version: str
) -> None:
    async with running_stack(tmp_path, RATE, ocpp_version=ocpp_version) as stack:
        await price_in_euros(stack, "at_payment")
        offer = await stack.get(stack.pay_url)
        assert "about 400 sat at the current rate" in offer["metadata"]
        stack.strom.payments.rates = MovedRate(Decimal(100_000))
        assert "about 360 sat" in (await stack.get(stack.pay_url))["metadata"]

        # LUD-06: the wallet checks the invoice's description hash against what it was offered.
        answer = await stack.get(offer["callback"], amount="2000000")
        offered = hashlib.sha256(offer["metadata"].encode()).hexdigest()
        assert decode_invoice(answer["pr"]).description_hash == offered

        # After the operator changed the tariff, the old offer's text no longer binds an
        # invoice: the invoice commits to the new terms (the wallet refuses it; the driver
        # sees the new price before paying).
        await _change_price(stack)
        again = await stack.get(offer["callback"], amount="2000000")
        assert decode_invoice(again["pr"]).description_hash != offered


async def _change_price(stack: Stack) -> None:
    profile = stack.strom.config.profile(CHARGER)
    tariff = profile.tariff.model_copy(update={"per_kwh": Decimal("0.5")})
    await stack.strom.apply_profile(profile.model_copy(update={"tariff": tariff}))
