"""The front door's edges: https only for public hosts, TLS serving, invoice rate limits."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from lnurl_server.ratelimit import RateLimiter
from strom.app import Strom, check_public_url
from strom.cli import main
from strom.config import load_config
from strom.scaffold import write_scaffold
from strom_core.errors import ConfigError
from strom_nostr.keys import encode_naddr
from strom_storage.schema import connectors
from tests.e2e.conftest import CHARGER, Stack, running_stack
from tests.lightning.tls import make_self_signed


@pytest.mark.parametrize(
    "url", ["http://strom.example.org", "http://192.0.2.7:8080", "http://charge.example.com/"]
)
def test_plain_http_on_a_public_host_is_refused_with_the_reason(url: str) -> None:
    with pytest.raises(ConfigError, match="LUD-01"):
        check_public_url(url.rstrip("/"))


@pytest.mark.parametrize(
    "url", ["https://strom.example.org", "http://127.0.0.1:8080", "http://abcdef.onion"]
)
def test_https_local_and_onion_urls_are_accepted(url: str) -> None:
    check_public_url(url)


def test_strom_run_says_why_it_refuses_a_public_http_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_scaffold(tmp_path)
    monkeypatch.setenv("STROM_SERVER__PUBLIC_URL", "http://strom.example.org")
    assert main(["run", "-c", str(tmp_path / "strom.toml")]) == 2
    err = capsys.readouterr().err
    assert "https://" in err
    assert "LUD-01" in err


def test_the_rate_limiter_allows_a_burst_then_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # another client has its own bucket
    now[0] += 1.0  # one token per second
    assert limiter.allow("a")
    assert not limiter.allow("a")


async def test_invoice_spam_from_one_client_is_refused_before_any_invoice(stack: Stack) -> None:
    offer = await stack.get(stack.pay_url)
    answers = [await stack.get(str(offer["callback"]), amount="1000000") for _ in range(12)]
    refused = [a for a in answers if a.get("status") == "ERROR"]
    assert refused
    assert all("too many" in str(a["reason"]) for a in refused)
    assert sum("pr" in a for a in answers) == 10  # the burst


async def test_the_front_door_serves_https_from_the_configured_certificate(tmp_path: Path) -> None:
    write_scaffold(tmp_path, charger_id=CHARGER)
    pair = make_self_signed(tmp_path / "tls", "strom")
    cert, key = pair.cert, pair.key
    config = load_config(
        tmp_path / "strom.toml",
        environ={
            "STROM_SERVER__PORT": "0",
            "STROM_SERVER__PUBLIC_URL": '"https://localhost:0"',  # Strom names the bound port
            "STROM_SERVER__TLS_CERT": f'"{cert}"',
            "STROM_SERVER__TLS_KEY": f'"{key}"',
            "STROM_OCPP__PORT": "0",
            "STROM_OCPP__HOST": '"127.0.0.1"',
        },
    )
    strom = await Strom.open(config)
    port = strom.http_port
    assert strom.config.server.public_url == f"https://localhost:{port}"
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(strom.serve(stop))
        await asyncio.wait_for(strom.ready.wait(), 20)
        # As if the charger had connected (offers refuse a charger that is not connected).
        await strom.chargers.set_online(CHARGER, True, datetime.now(UTC))
        strom.payments.forget_view()
        trust = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=trust) as client:
            response = await client.get(f"https://localhost:{port}/lnurlp/{CHARGER}/1")
        stop.set()
    body = response.json()
    assert body["tag"] == "payRequest"
    assert body["callback"].startswith(f"https://localhost:{port}/")


async def test_the_charger_page_shows_a_fiat_estimate_when_a_rate_is_configured(
    tmp_path: Path,
) -> None:
    env = {"STROM_SERVER__FIAT_PER_BTC": "100000", "STROM_SERVER__FIAT_CURRENCY": '"EUR"'}
    async with running_stack(tmp_path, env) as stack:
        page = await stack.http.get(f"{stack.base}/c/{CHARGER}")
    # 250 sat/kWh at 100,000 EUR/BTC is 0.25 EUR per kWh.
    assert "0.25 EUR" in page.text


async def test_the_charger_page_estimate_comes_from_the_rates_section(tmp_path: Path) -> None:
    """``[rates] fixed`` is the fixed rate now; it wins over the deprecated server key."""
    env = {
        "STROM_RATES__FIXED": "50000",
        "STROM_RATES__CURRENCY": '"CHF"',
        "STROM_SERVER__FIAT_PER_BTC": "100000",
    }
    async with running_stack(tmp_path, env) as stack:
        page = await stack.http.get(f"{stack.base}/c/{CHARGER}")
    # 250 sat/kWh at 50,000 CHF/BTC is 0.125 CHF per kWh.
    assert "0.12 CHF" in page.text or "0.13 CHF" in page.text
    assert "EUR" not in page.text


async def test_the_charger_page_opens_from_the_naddr_of_its_status_event(stack: Stack) -> None:
    """The NIP-89 handler of kind 30522 is ``/c/<bech32>``: a client puts the naddr there."""
    status = encode_naddr(30522, "ab" * 32, CHARGER)
    page = await stack.http.get(f"{stack.base}/c/{status}")
    assert page.status_code == 200
    assert page.text == (await stack.http.get(f"{stack.base}/c/{CHARGER}")).text
    listing = encode_naddr(30402, "ab" * 32, CHARGER)
    for path in (f"/c/{listing}", "/c/naddr1notbech32"):
        assert (await stack.http.get(f"{stack.base}{path}")).status_code == 404


async def test_the_busy_answer_follows_the_session_at_once(stack: Stack) -> None:
    """Offers answer from memory, yet the moment a payment settles the sticker says busy."""
    assert (await stack.get(stack.pay_url))["tag"] == "payRequest"  # the view is built now
    status_url, _ = await stack.pay(1_500_000)
    await stack.wait_state(status_url, "paid", "starting", "charging")
    answer = await stack.get(stack.pay_url)  # at once: no waiting for the view to age
    assert answer["status"] == "ERROR"
    assert "in use" in answer["reason"]


async def test_a_connector_disabled_by_another_process_stops_offers_within_a_second(
    stack: Stack,
) -> None:
    """A change written straight to the database (the CLI, a second process) reaches offers."""
    assert (await stack.get(stack.pay_url))["tag"] == "payRequest"
    async with stack.strom.db.transaction() as conn:
        await conn.execute(
            update(connectors)
            .where(connectors.c.charger_id == CHARGER, connectors.c.connector_id == 1)
            .values(enabled=False)
        )
    loop = asyncio.get_running_loop()
    changed_at = loop.time()
    async with asyncio.timeout(5):
        while (await stack.get(stack.pay_url)).get("status") != "ERROR":  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert loop.time() - changed_at < 1.5
    assert "out of service" in (await stack.get(stack.pay_url))["reason"]
    callback = await stack.get(f"{stack.pay_url}/callback", amount="1000000")
    assert "pr" not in callback  # and the callback, which reads the database, agrees


async def test_a_malformed_request_is_refused_and_logged_as_a_warning_not_an_error(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone can send an 8 KB URL; it gets a 400 and must not page the operator."""
    response = await stack.http.get(f"{stack.pay_url}/callback", params={"nostr": "a" * 9000})
    assert response.status_code == 400
    warnings = [r for r in caplog.records if "Error handling request" in r.getMessage()]
    assert warnings
    assert all(r.levelname == "WARNING" for r in warnings)
    assert (await stack.get(stack.pay_url))["tag"] == "payRequest"  # still serving
