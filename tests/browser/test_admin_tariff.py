"""The charger page's tariff editor, in Chromium: the idle fee, and switching a charger between
a static price, time-of-use windows and a provider's formula through the tariff API.

What the form saves is what the API then answers; a formula the API refuses shows its reason
and changes nothing. The screenshot lands in
``test-artifacts/screenshots/admin-tariff-dynamic.png``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_admin_charger_sections import open_charger_page
from tests.browser.test_admin_ui import cockpit, desk
from tests.cockpit.conftest import CHARGER, Cockpit

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = [pytest.mark.peer, pytest.mark.slow]

__all__ = ["cockpit", "desk"]


async def test_an_operator_switches_a_charger_to_a_dynamic_formula_and_back(
    cockpit: Cockpit, desk: tuple[Page, list[str]]
) -> None:
    from playwright.async_api import expect

    page, trouble = desk
    await open_charger_page(cockpit, page, cockpit.admin_token)
    form = page.locator("#tariff")
    path = f"/chargers/{CHARGER}/tariff"
    await expect(form.locator("#tariff-dynamic")).to_be_hidden()

    # The idle fee, with the static price.
    await form.locator('input[name="idle_per_minute_sat"]').fill("3")
    await form.locator('input[name="idle_grace_minutes"]').fill("10")
    await form.locator("text=Save tariff").click()
    await expect(page.locator("#toast")).to_have_text("Tariff saved")
    saved = (await cockpit.call("GET", path)).json()
    assert (saved["idle_msat_per_minute"], saved["idle_grace_minutes"]) == (3_000, 10)

    # Time of use: windows one per line.
    await form.locator("#tariff-mode").select_option("time_of_use")
    await expect(form.locator("#tariff-tou")).to_be_visible()
    await form.locator('input[name="time_zone"]').fill("Europe/Berlin")
    await form.locator('textarea[name="time_of_use"]').fill("07:00-22:00 = 450\n22:00-07:00 = 250")
    await form.locator("text=Save tariff").click()
    await expect(page.locator("#prices-source")).to_contain_text("source tou:profile")
    saved = (await cockpit.call("GET", path)).json()
    assert saved["time_of_use"] == {"07:00-22:00": "450", "22:00-07:00": "250"}

    # Dynamic: a formula the API refuses shows why, and nothing changes.
    await form.locator("#tariff-mode").select_option("dynamic")
    dynamic = form.locator("#tariff-dynamic")
    await expect(dynamic).to_be_visible()
    await expect(form.locator("#tariff-tou")).to_be_hidden()
    await dynamic.locator('select[name="provider"]').select_option("awattar")
    await dynamic.locator('input[name="area"]').fill("DE-LU")
    for name, value in (("grid_fees", "0.09"), ("taxes", "0.0205"), ("margin", "0.15")):
        await dynamic.locator(f'input[name="{name}"]').fill(value)
    await dynamic.locator('input[name="min"]').fill("0.9")
    await dynamic.locator('input[name="max"]').fill("0.8")
    await form.locator("text=Save tariff").click()
    await expect(form.locator("#tariff-error")).to_contain_text("min is above max")
    assert (await cockpit.call("GET", path)).json()["mode"] == "time_of_use"

    await dynamic.locator('input[name="min"]').fill("0.12")
    await form.locator("text=Save tariff").click()
    await expect(page.locator("#toast")).to_have_text("Tariff saved")
    await expect(form.locator("#tariff-error")).to_have_text("")
    saved = (await cockpit.call("GET", path)).json()
    assert saved["mode"] == "dynamic"
    assert saved["time_of_use"] == {}
    assert saved["dynamic"] == {
        "provider": "awattar",
        "area": "DE-LU",
        "currency": "EUR",
        "grid_fees": "0.09",
        "taxes": "0.0205",
        "margin": "0.15",
        "min": "0.12",
        "max": "0.8",
        "token": "",
        "refresh_at": ["12:15", "17:00"],
    }
    assert saved["idle_grace_minutes"] == 10  # the other terms stay
    strom = cockpit.stack.strom
    assert strom.prices is not None
    assert strom.prices.pricing.chargers() == (CHARGER,)
    await screenshot(page, "admin-tariff-dynamic")

    # Back to static.
    await form.locator("#tariff-mode").select_option("static")
    await form.locator('input[name="per_kwh_sat"]').fill("275")
    await form.locator("text=Save tariff").click()
    await expect(page.locator("#prices-source")).to_contain_text("Static · source static")
    saved = (await cockpit.call("GET", path)).json()
    assert (saved["mode"], saved["dynamic"], saved["per_kwh_sat"]) == ("static", None, "275")
    assert strom.prices.pricing.chargers() == ()
    # The refused previews and save answered 400 (the browser logs each); nothing else failed.
    assert [t for t in trouble if "status of 400" not in t] == [], trouble


async def test_an_operator_prices_energy_in_euro_and_goes_back_to_sats(
    cockpit: Cockpit, desk: tuple[Page, list[str]]
) -> None:
    from playwright.async_api import expect

    page, trouble = desk
    await open_charger_page(cockpit, page, cockpit.admin_token)
    form = page.locator("#tariff")
    path = f"/chargers/{CHARGER}/tariff"
    fiat = form.locator("#tariff-fiat")

    # Energy in EUR: its sat price is 0 beside it (a component is priced one way only).
    await form.locator('input[name="per_kwh_sat"]').fill("0")
    await fiat.locator('input[name="fiat_currency"]').fill("eur")
    await fiat.locator('input[name="fiat_per_kwh"]').fill("0.39")
    await fiat.locator('select[name="convert"]').select_option("at_billing")
    await form.locator("text=Save tariff").click()
    await expect(page.locator("#toast")).to_have_text("Tariff saved")
    saved = (await cockpit.call("GET", path)).json()
    assert saved["fiat"] is not None
    assert (saved["fiat"]["currency"], saved["fiat"]["per_kwh"], saved["fiat"]["convert"]) == (
        "EUR",
        "0.39",
        "at_billing",
    )
    assert saved["energy_msat_per_kwh"] == 0
    await screenshot(page, "admin-tariff-fiat")

    # Both ways at once is refused with the reason, and nothing changes.
    await form.locator('input[name="per_kwh_sat"]').fill("300")
    await form.locator("text=Save tariff").click()
    await expect(form.locator("#tariff-error")).to_contain_text("per_kwh")
    assert (await cockpit.call("GET", path)).json()["fiat"]["per_kwh"] == "0.39"

    # No currency: the fiat prices go and the sat price applies again.
    await fiat.locator('input[name="fiat_currency"]').fill("")
    await form.locator("text=Save tariff").click()
    await expect(page.locator("#toast")).to_have_text("Tariff saved")
    saved = (await cockpit.call("GET", path)).json()
    assert (saved["fiat"], saved["energy_msat_per_kwh"]) == (None, 300_000)
    assert [t for t in trouble if "status of 400" not in t] == [], trouble
