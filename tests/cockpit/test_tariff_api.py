"""The tariff API beyond the prices: the idle fee, and what the profile file holds besides."""

from __future__ import annotations

import pytest

from strom.config import load_config
from tests.cockpit.conftest import CHARGER, Cockpit

pytestmark = pytest.mark.slow


async def test_the_idle_fee_is_read_written_and_previewed_like_the_other_prices(
    cockpit: Cockpit,
) -> None:
    path = f"/chargers/{CHARGER}/tariff"
    before = (await cockpit.call("GET", path)).json()
    assert (before["idle_per_minute_sat"], before["idle_grace_minutes"]) == ("0", 0)

    terms = {"idle_per_minute_sat": "2.5", "idle_grace_minutes": 15}
    preview = await cockpit.call("POST", f"{path}/preview", json=terms)
    assert preview.status_code == 200, preview.text
    assert preview.json()["idle_msat_per_minute"] == 2_500
    assert (await cockpit.call("GET", path)).json()["idle_grace_minutes"] == 0  # nothing saved

    saved = await cockpit.call("PUT", path, json=terms)
    assert saved.status_code == 200, saved.text
    assert {k: saved.json()[k] for k in terms} == {
        "idle_per_minute_sat": "2.500",
        "idle_grace_minutes": 15,
    }
    # A price change keeps the idle terms, in force, in the file and after a restart.
    again = await cockpit.call("PUT", path, json={"per_kwh_sat": 300})
    assert again.json()["idle_msat_per_minute"] == 2_500
    strom = cockpit.stack.strom
    profile = strom.config.profile(CHARGER)
    in_force = strom.payments.tariff_for(profile)  # what the next session is frozen with
    assert (in_force.idle_msat_per_minute, in_force.idle_grace_minutes) == (2_500, 15)
    text = (strom.config.paths.profiles / f"{CHARGER}.toml").read_text()
    assert "idle_grace_minutes = 15" in text
    reloaded = load_config(strom.config.config_path)  # type: ignore[arg-type]
    assert reloaded.profile(CHARGER).tariff.to_tariff().idle_msat_per_minute == 2_500

    for bad in (
        {"idle_grace_minutes": 1441},
        {"idle_grace_minutes": "5"},
        {"idle_grace_minutes": -1},
        {"idle_per_minute_sat": "0.0001"},  # below 1 msat
        {"idle_per_minute_sat": -1},
    ):
        refused = await cockpit.call("PUT", path, json=bad)
        assert refused.status_code == 400, (bad, refused.text)
    assert (strom.config.paths.profiles / f"{CHARGER}.toml").read_text() == text
