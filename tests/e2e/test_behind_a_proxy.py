"""Strom behind a reverse proxy, over real HTTP: rate limits per driver, never per proxy.

The "proxy" is an HTTP client bound to 127.0.0.2 (listed in ``server.trusted_proxies``) that
sets ``X-Forwarded-For`` as nginx does; a "direct" client connects from 127.0.0.1, which is not
trusted, and writes whatever it likes into the same header.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from lnurl_server.ratelimit import RateLimiter
from tests.e2e.conftest import Stack, running_stack

PROXY = "127.0.0.2"
BURST = 10  # invoices per client at once (strom.app: 20/min, burst 10)


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[Stack]:
    env = {"STROM_SERVER__TRUSTED_PROXIES": f'["{PROXY}"]'}
    async with running_stack(tmp_path, env) as stack:
        # The buckets do not refill while the test runs, however slow the machine.
        front = stack.strom.front
        front.per_client = RateLimiter(per_minute=20, burst=BURST, clock=lambda: 0.0)
        front.per_charger = RateLimiter(per_minute=120, burst=60, clock=lambda: 0.0)
        yield stack


async def invoices(http: httpx.AsyncClient, callback: str, *forwarded_for: str) -> list[bool]:
    """One invoice request per X-Forwarded-For value; True where an invoice came back."""
    made = []
    for value in forwarded_for:
        response = await http.get(
            callback, params={"amount": "1000000"}, headers={"X-Forwarded-For": value}
        )
        body = response.json()
        assert "pr" in body or "too many" in body["reason"], body
        made.append("pr" in body)
    return made


async def test_drivers_behind_a_trusted_proxy_have_their_own_buckets_and_a_spoofer_has_one(
    proxied: Stack,
) -> None:
    callback = (await proxied.get(proxied.pay_url))["callback"]
    through_proxy = httpx.AsyncHTTPTransport(local_address=PROXY)
    async with httpx.AsyncClient(transport=through_proxy, timeout=30) as proxy:
        # Two drivers behind the proxy: each gets the whole burst, then only they are refused.
        assert await invoices(proxy, callback, *["198.51.100.1"] * (BURST + 1)) == [
            True
        ] * BURST + [False]
        assert await invoices(proxy, callback, *["198.51.100.2"] * BURST) == [True] * BURST
        # A phone on IPv6 with a fresh address for every request: one bucket for its /64.
        fresh = [f"2001:db8:1:2::{n:x}" for n in range(1, BURST + 2)]
        assert await invoices(proxy, callback, *fresh) == [True] * BURST + [False]
        assert await invoices(proxy, callback, "2001:db8:1:3::1") == [True]
        # A client that prepends an address of its choice is still itself.
        spoofed = await invoices(proxy, callback, "198.51.100.77, 198.51.100.1")
        assert spoofed == [False]

    # A client connecting directly cannot leave its bucket by writing the header itself.
    spoofs = [f"198.51.100.{n}" for n in range(100, 100 + BURST + 1)]
    assert await invoices(proxied.http, callback, *spoofs) == [True] * BURST + [False]


async def test_urls_come_from_the_public_url_never_from_the_request(proxied: Stack) -> None:
    # Behind a TLS proxy the peer speaks plain http and the Host may be anything: every URL
    # Strom hands out is built from server.public_url.
    hostile = {
        "Host": "evil.example",
        "X-Forwarded-Proto": "gopher",
        "X-Forwarded-Host": "evil.example",
        "Forwarded": "proto=gopher;host=evil.example",
    }
    offer = (await proxied.http.get(proxied.pay_url, headers=hostile)).json()
    assert offer["callback"].startswith(proxied.base + "/")
    answer = (
        await proxied.http.get(offer["callback"], params={"amount": "1000000"}, headers=hostile)
    ).json()
    assert answer["successAction"]["url"].startswith(proxied.base + "/s/")
    session_json = answer["successAction"]["url"].replace("?", ".json?", 1)
    view = (await proxied.http.get(session_json, headers=hostile)).json()
    assert urlsplit(view["withdraw_url"]).netloc == urlsplit(proxied.base).netloc


async def test_a_refused_api_call_is_logged_with_the_client_behind_the_proxy(
    proxied: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    through_proxy = httpx.AsyncHTTPTransport(local_address=PROXY)
    async with httpx.AsyncClient(transport=through_proxy, timeout=30) as proxy:
        with caplog.at_level(logging.WARNING, logger="cockpit"):
            refused = await proxy.get(
                f"{proxied.base}/api/v1/chargers",
                headers={"X-Forwarded-For": "198.51.100.9", "Authorization": "Bearer wrong"},
            )
    assert refused.status_code == 401
    assert any("from 198.51.100.9 refused" in r.getMessage() for r in caplog.records)
