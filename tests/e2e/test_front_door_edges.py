"""The front door's edges: https only for public hosts, TLS serving, invoice rate limits."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import httpx
import pytest

from lnurl_server.ratelimit import RateLimiter
from strom.app import Strom, check_public_url
from strom.cli import main
from strom.config import load_config
from strom.errors import ConfigError
from strom.scaffold import write_scaffold
from tests.e2e.conftest import CHARGER, Stack, free_port, running_stack
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
    port = free_port()
    config = load_config(
        tmp_path / "strom.toml",
        environ={
            "STROM_SERVER__PORT": str(port),
            "STROM_SERVER__PUBLIC_URL": f'"https://localhost:{port}"',
            "STROM_SERVER__TLS_CERT": f'"{cert}"',
            "STROM_SERVER__TLS_KEY": f'"{key}"',
            "STROM_OCPP__PORT": str(free_port()),
            "STROM_OCPP__HOST": '"127.0.0.1"',
        },
    )
    strom = await Strom.open(config)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(strom.serve(stop))
        await asyncio.wait_for(strom.ready.wait(), 20)
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
