"""The public pages under their Content-Security-Policy in Chromium.

* The session page's live figures (its one inline script, allowed by hash) still arrive over
  the session's websocket, and Chromium reports no violation.
* Chromium lets ``connect-src 'self'`` alone cover the page's own ``ws:`` origin (CSP Level 3),
  checked by serving the page with the explicit websocket origin taken out of its policy (the
  explicit origin is for older browsers).
* The violation watcher works: a page whose policy forbids its websocket is caught, so "no
  violation" in the other tests means something.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from lnurl_server.pages import Pages
from strom_web.csp import websocket_origin
from tests.browser.conftest import CSP_WATCH, Phone
from tests.browser.test_pages import KWH, expect
from tests.e2e.conftest import Stack

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Page

pytestmark = pytest.mark.peer


async def _charging_session(stack: Stack) -> str:
    status_url, session_url = await stack.pay(2_000_000)
    await stack.wait_state(status_url, "charging")
    return session_url


async def _follows_live(
    page: Page, session_url: str, sockets: list[str], *, policy: str = "script-src 'sha256-"
) -> None:
    polled: list[str] = []
    page.on("request", lambda r: polled.append(r.url) if ".json" in r.url else None)
    page.on("websocket", lambda ws: sockets.append(ws.url))
    response = await page.goto(session_url)
    assert response is not None
    assert policy in response.headers["content-security-policy"]
    await expect(page.get_by_test_id("liveness")).to_have_text("Updates live.")
    energy = page.get_by_test_id("energy")
    first = await energy.inner_text()
    await expect(energy).not_to_have_text(first, timeout=6_000)
    await expect(energy).to_have_text(KWH)
    # The bar follows too (a <progress>: no inline style attribute to allow).
    shown = await page.evaluate(
        "[document.getElementById('used').textContent, document.getElementById('bar').value]"
    )
    assert int(shown[0]) == shown[1]
    assert polled == []


async def test_the_session_page_follows_the_charge_live_under_its_policy_without_violations(
    stack: Stack, phone: Phone
) -> None:
    session_url = await _charging_session(stack)
    page = await phone()  # fails the test on any CSP violation or console error
    sockets: list[str] = []
    await _follows_live(page, session_url, sockets)
    assert sockets == [stack.base.replace("http://", "ws://") + "/api/v1/ws"]


class _Policy(Pages):
    """The pages with their policy rewritten by ``change`` (the server sends it so)."""

    def __init__(self, change: Callable[[str], str]) -> None:
        super().__init__(fake_backend=True)
        self.change = change

    def content_security_policy(self, public_url: str) -> str:
        return self.change(super().content_security_policy(public_url))


async def test_chromium_lets_self_alone_cover_the_pages_own_websocket(
    stack: Stack, phone: Phone
) -> None:
    session_url = await _charging_session(stack)
    explicit = " " + websocket_origin(stack.base)

    def self_only(policy: str) -> str:
        assert f"connect-src 'self'{explicit};" in policy
        return policy.replace(explicit, "")

    stack.strom.front.pages = _Policy(self_only)
    page = await phone()
    sockets: list[str] = []
    await _follows_live(page, session_url, sockets, policy="connect-src 'self';")
    assert len(sockets) == 1


async def test_a_violation_is_caught_by_the_watcher(stack: Stack, browser: Browser) -> None:
    session_url = await _charging_session(stack)
    stack.strom.front.pages = _Policy(
        lambda policy: re.sub(r"connect-src [^;]*", "connect-src 'none'", policy)
    )
    context = await browser.new_context()
    await context.add_init_script(CSP_WATCH)
    page = await context.new_page()

    def violation(message: ConsoleMessage) -> bool:
        return message.type == "error" and message.text.startswith("CSP violation: connect-src")

    async with page.expect_console_message(violation, timeout=10_000) as caught:
        await page.goto(session_url)
    assert "ws://127.0.0.1" in (await caught.value).text
    await context.close()
