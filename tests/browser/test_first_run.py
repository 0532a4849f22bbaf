"""The admin UI's first run in Chromium: the owner signs in with the setup password (on Umbrel
the app's password) and adds a charger; the OCPP URL and password to enter are shown once, and
the charger connects with them. The screenshot is saved in the test's tmp folder (and under
``test-artifacts/screenshots/``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_admin_ui import desk
from tests.e2e.conftest import Stack, running_stack
from tests.ocpp.drivers import handshake_status

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = [pytest.mark.peer, pytest.mark.slow]

SETUP_PASSWORD = "umbrel-app-password-7f3a9c"
OCPP_URL = "ws://umbrel.local:9000/ocpp/"
__all__ = ["desk"]  # the desktop page fixture, shared with the admin UI's tests


@pytest.fixture
async def umbrel_like(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    """A Strom nobody has signed in to, with Umbrel's app password as its setup password."""
    monkeypatch.setenv("STROM_SETUP_PASSWORD", SETUP_PASSWORD)
    async with running_stack(tmp_path / "strom", {"STROM_OCPP__PUBLIC_URL": OCPP_URL}) as stack:
        yield stack


async def test_the_owner_signs_in_on_the_first_run_page_and_adds_a_charger(
    umbrel_like: Stack, desk: tuple[Page, list[str]], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    stack = umbrel_like
    page, trouble = desk
    await page.goto(stack.base + "/admin/")
    await expect(page.locator("#first-run")).to_be_visible()
    await expect(page.locator("#first-run-text")).to_contain_text("Nobody has signed in yet")
    await expect(page.locator("#first-run-text")).to_contain_text("Umbrel")

    await page.fill("#setup-password", "not-the-password")
    await page.click("#setup-form button")
    await expect(page.locator("#signin-error")).to_contain_text("wrong setup password")
    trouble.clear()  # the refused attempt logs its 403 to the console, as it should

    await page.fill("#setup-password", SETUP_PASSWORD)
    await page.click("#setup-form button")
    await expect(page.locator("#welcome")).to_be_visible()
    token = (await page.locator("#owner-token").text_content() or "").strip()
    assert token.startswith("strom_")
    me = await stack.http.get(
        f"{stack.base}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert me.json()["actor"] == "token:owner"

    form = page.locator("#add-charger")
    if await form.get_attribute("open") is None:
        await page.click("#add-charger summary")
    await form.locator('input[name="charger_id"]').fill("garage-1")
    await form.locator('input[name="name"]').fill("Garage")
    await form.locator('input[name="address"]').fill("Hauptstraße 1, Berlin")
    await form.locator('input[name="lat"]').fill("52.5")
    await form.locator('input[name="lon"]').fill("13.4")
    await form.locator('input[name="per_kwh_sat"]').fill("300")
    await form.locator("button[type=submit]").click()
    dialog = page.locator("#ocpp-password")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#ocpp-url")).to_have_text(OCPP_URL + "garage-1")
    password = (await page.locator("#ocpp-password-key").text_content() or "").strip()
    assert len(password) >= 16
    shot = tmp_path / "first-run.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    await screenshot(page, "admin-first-run")

    # The charger connects with what the page showed (the URL's path and its password).
    ocpp = f"ws://127.0.0.1:{stack.strom.ocpp_port}/ocpp"
    assert await handshake_status(ocpp, "garage-1", password) == 101
    assert await handshake_status(ocpp, "garage-1", "wrong-password-0123456") == 401

    # The setup password stays the owner's (it comes from the environment), the page says so.
    state = (await stack.http.get(f"{stack.base}/admin/setup")).json()
    assert state == {"accepting": True, "first": False, "password_from": "environment"}
    assert trouble == []
