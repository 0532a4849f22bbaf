"""A real browser (Debian's Chromium driven by Playwright) in front of the e2e stack.

* ``stack``: the whole Strom of ``tests/e2e/conftest.py`` (real HTTP, simulated charger over
  OCPP, fake lightning backend, driver wallet), with the pages' "no real money" banner on.
* ``browser``: headless Chromium, installed by ``tests/peers/chromium.sh`` when missing; the
  test calls ``peer_missing`` when neither it nor Playwright can be had.
* ``phone(js=True)``: a fresh phone-sized context (390x844) that refuses every request leaving
  127.0.0.1 and records console errors, page errors, failed requests and Content-Security-Policy
  violations (``watch_csp``); the test fails on any.
* ``screenshot(page, name)``: a full-page PNG under ``test-artifacts/screenshots/``.

Playwright never downloads a browser here: it starts the system Chromium by path.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from lnurl_server.pages import Pages
from tests.conftest import peer_missing
from tests.e2e.conftest import Stack, stack

if TYPE_CHECKING:
    from playwright.async_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Page,
        Route,
        ViewportSize,
    )

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "tests" / "peers" / "chromium.sh"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
PHONE: ViewportSize = {"width": 390, "height": 844}

# Headless, as root, and never reaching past loopback: no sandbox (root), no GPU, no QUIC, no
# first-run, sync, component or background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        peer_missing("playwright (PyPI) is not installed")
    try:
        done = subprocess.run(  # our own script, fixed arguments
            ["bash", str(INSTALL_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        stderr = getattr(exc, "stderr", "") or ""
        peer_missing(f"Chromium could not be installed: {exc} {stderr.strip()}")
        raise  # peer_missing skips or fails; never reached
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(autouse=True)
def _no_real_money_banner(request: pytest.FixtureRequest) -> None:
    # The stack always runs the fake backend; should the app not tell its pages so, tell them
    # here, so that the banner is what the screenshots show.
    if "stack" in request.fixturenames:
        live: Stack = request.getfixturevalue("stack")
        if not live.strom.front.pages.fake_backend:
            live.strom.front.pages = Pages(fake_backend=True)


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    from playwright.async_api import Error, async_playwright

    async with async_playwright() as playwright:
        try:
            # launch() gives Chromium a fresh, temporary user-data dir of its own.
            browser = await playwright.chromium.launch(
                executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
            )
        except Error as exc:
            peer_missing(f"Chromium at {chromium_path} does not start: {exc}")
            raise  # never reached
        try:
            yield browser
        finally:
            await browser.close()


# Every CSP violation (a blocked script, style, image or connection) reported in the console
# with a marker, as well as Chromium's own "Refused to …" message. Init scripts run before the
# page's own and are not subject to its policy.
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", function (e) {
  var blocked = e.blockedURI || "inline";
  console.error("CSP violation: " + e.effectiveDirective + " blocked " + blocked);
});
"""


async def watch_csp(context: BrowserContext) -> None:
    """Report every CSP violation in ``context``'s pages as a console error."""
    await context.add_init_script(CSP_WATCH)


@dataclass
class Trouble:
    """What went wrong inside the browser: the test fails unless this stays empty."""

    console_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (
            self.console_errors
            or self.csp_violations
            or self.page_errors
            or self.outside_requests
            or self.failed_requests
        )


Phone = Callable[..., Awaitable["Page"]]


@pytest.fixture
async def phone(browser: Browser) -> AsyncIterator[Phone]:
    contexts: list[BrowserContext] = []
    trouble = Trouble()

    async def keep_local(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host in {"127.0.0.1", "localhost"} or route.request.url.startswith("data:"):
            await route.continue_()
        else:
            trouble.outside_requests.append(route.request.url)
            await route.abort()

    async def open_phone(
        *, js: bool = True, expect_not_found: bool = False, unreachable: str = ""
    ) -> Page:
        """A new phone-sized page; ``expect_not_found`` allows 404 answers, ``unreachable``
        refused connections to URLs that start with it (a server the test keeps away)."""

        def on_console(message: ConsoleMessage) -> None:
            if message.type != "error":
                return
            if "CSP violation" in message.text or "Content Security Policy" in message.text:
                trouble.csp_violations.append(message.text)
                return
            if expect_not_found and "404 (Not Found)" in message.text:
                return
            if unreachable and "ERR_CONNECTION_REFUSED" in message.text:
                return
            trouble.console_errors.append(message.text)

        context = await browser.new_context(
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            java_script_enabled=js,
            locale="en-GB",
        )
        contexts.append(context)
        await watch_csp(context)
        await context.route("**/*", keep_local)
        page = await context.new_page()
        page.set_default_timeout(10_000)
        page.on("console", on_console)
        page.on("pageerror", lambda exc: trouble.page_errors.append(str(exc)))
        page.on(
            "requestfailed",
            lambda request: (
                trouble.failed_requests.append(f"{request.url}: {request.failure}")
                if request.url.startswith("http://127.0.0.1")
                and "net::ERR_ABORTED" not in (request.failure or "")
                and not (unreachable and request.url.startswith(unreachable))
                else None
            ),
        )
        return page

    yield open_phone
    for context in contexts:
        await context.close()
    assert trouble.empty(), trouble


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of the page (whole, or the first screen only) as a test artifact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if not full_page:
        await page.evaluate("window.scrollTo(0, 0)")  # what a driver sees on arrival
    await page.screenshot(path=str(path), full_page=full_page)
    return path


__all__ = ["Phone", "Stack", "screenshot", "stack", "watch_csp"]
