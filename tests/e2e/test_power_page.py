"""The driver's "charge slower" on the session page, over real HTTP and a simulated charger.

The form posts the session's secret and a power; the page comes back (303) and says what became
of it. Only a limit the charger accepted changes the session (its power, which the budget stop
plans with); the simulated charger then draws less, so the energy per second drops.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.conftest import Stack


async def _energy_rate(stack: Stack, status_url: str, window_s: float = 2.0) -> float:
    """Wh per second of wall time over ``window_s``."""
    before = (await stack.get(status_url))["energy_wh"]
    await asyncio.sleep(window_s)
    after = (await stack.get(status_url))["energy_wh"]
    return float(after - before) / window_s


async def _post_power(stack: Stack, page_url: str, kw: str, secret: str | None = None):
    parts = urlsplit(page_url)
    if secret is None:
        secret = parse_qs(parts.query)["secret"][0]
    return await stack.http.post(
        f"{stack.base}{parts.path}/power", data={"secret": secret, "kw": kw}
    )


@pytest.mark.parametrize("ocpp_version", ["1.6"])
async def test_a_session_lowered_from_its_page_charges_slower_and_stops_within_budget(
    stack: Stack,
) -> None:
    status_url, page_url = await stack.pay(1_000_000)  # 4 kWh at 250 sat/kWh
    await stack.wait_state(status_url, "charging")
    page = await stack.http.get(page_url)
    assert 'data-testid="power-form"' in page.text
    assert "up to <strong>11 kW</strong>" in page.text
    assert re.search(r'<option value="3.7">3.7 kW</option>', page.text)
    fast = await _energy_rate(stack, status_url)

    answer = await _post_power(stack, page_url, "3.7")
    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert location.endswith("&power=limited")
    shown = await stack.http.get(f"{stack.base}{location}")
    assert "up to <strong>3.7 kW</strong>" in shown.text
    assert "The charger took your lower power" in shown.text
    assert stack.charger.power_w(1) == 3_700
    status = await stack.get(status_url)
    assert status["power_w"] == 3_700
    session = await stack.strom.sessions.get(status["id"])
    assert session.power_w == 3_700  # what the budget stop plans with
    slow = await _energy_rate(stack, status_url)
    assert 0 < slow < fast * 0.6, (fast, slow)

    stopped = await stack.wait_state(status_url, "stopped", "closed", within_s=60)
    assert stopped["stop_reason"] == "budget"
    assert stopped["consumed_msat"] <= stopped["paid_msat"]
    await stack.ledgers_balance()


@pytest.mark.parametrize("ocpp_version", ["1.6"])
async def test_a_bad_power_or_secret_changes_nothing(stack: Stack) -> None:
    status_url, page_url = await stack.pay(2_000_000)
    await stack.wait_state(status_url, "charging")
    for kw in ("abc", "50", "0.5", "3.70001", ""):
        answer = await _post_power(stack, page_url, kw)
        assert answer.status_code == 303
        assert answer.headers["Location"].endswith("&power=invalid"), kw
    shown = await stack.http.get(f"{stack.base}{answer.headers['Location']}")
    assert "That power is not one this session can take" in shown.text
    assert "abc" not in shown.text
    wrong = await _post_power(stack, page_url, "3.7", secret="not-the-secret")
    assert wrong.status_code == 404
    assert (await stack.get(status_url))["power_w"] == 11_000
    assert stack.charger.power_w(1) == 11_000


@pytest.mark.parametrize("ocpp_version", ["2.0.1"])
async def test_a_charger_that_cannot_take_a_limit_is_refused_and_nothing_changes(
    stack: Stack,
) -> None:
    status_url, page_url = await stack.pay(2_000_000)
    await stack.wait_state(status_url, "charging")
    answer = await _post_power(stack, page_url, "3.7")
    assert answer.headers["Location"].endswith("&power=refused")
    shown = await stack.http.get(f"{stack.base}{answer.headers['Location']}")
    assert "The charger refused a lower power; nothing changed." in shown.text
    assert "up to <strong>11 kW</strong>" in shown.text
    assert (await stack.get(status_url))["power_w"] == 11_000
