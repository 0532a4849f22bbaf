"""The tariff API beyond the prices: the idle fee, and what the profile file holds besides."""

from __future__ import annotations

from decimal import Decimal

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


async def test_a_charger_is_switched_between_static_time_of_use_and_dynamic_prices(
    cockpit: Cockpit,
) -> None:
    path = f"/chargers/{CHARGER}/tariff"
    strom = cockpit.stack.strom
    file = strom.config.paths.profiles / f"{CHARGER}.toml"
    assert (await cockpit.call("GET", path)).json()["mode"] == "static"

    windows = {"time_zone": "Europe/Berlin", "time_of_use": {"07:00-22:00": 450}}
    saved = await cockpit.call("PUT", path, json=windows)
    assert saved.status_code == 200, saved.text
    assert (saved.json()["mode"], saved.json()["time_of_use"]) == (
        "time_of_use",
        {"07:00-22:00": "450"},
    )
    # A price change keeps the windows (per_kwh_sat is the price outside them).
    kept = await cockpit.call("PUT", path, json={"per_kwh_sat": 200})
    assert kept.json()["time_of_use"] == {"07:00-22:00": "450"}
    assert strom.config.profile(CHARGER).tariff.time_zone == "Europe/Berlin"
    prices = (await cockpit.call("GET", f"/chargers/{CHARGER}/prices?hours=24")).json()
    assert (prices["dynamic"], prices["source"]) == (True, "tou:profile")

    formula = {"provider": "awattar", "area": "DE-LU", "grid_fees": "0.09", "margin": 0.15}
    dynamic = await cockpit.call("PUT", path, json={"mode": "dynamic", "dynamic": formula})
    assert dynamic.status_code == 200, dynamic.text
    body = dynamic.json()
    assert (body["mode"], body["time_of_use"]) == ("dynamic", {})
    assert body["dynamic"]["grid_fees"] == "0.09"
    assert body["dynamic"]["margin"] == "0.15"
    assert body["dynamic"]["max"] is None
    assert strom.prices is not None
    assert strom.prices.pricing.chargers() == (CHARGER,)  # the provider prices it at once
    text = file.read_text()
    assert "[tariff.dynamic]" in text
    assert "time_of_use" not in text

    # A partial formula changes only the fields it names; null removes a bound.
    bounded = await cockpit.call("PUT", path, json={"dynamic": {"min": "0.1", "max": "0.8"}})
    assert bounded.json()["dynamic"]["provider"] == "awattar"
    assert (bounded.json()["dynamic"]["min"], bounded.json()["dynamic"]["max"]) == ("0.1", "0.8")
    unbounded = await cockpit.call("PUT", path, json={"dynamic": {"max": None}})
    assert unbounded.json()["dynamic"]["max"] is None
    assert unbounded.json()["dynamic"]["min"] == "0.1"

    text = file.read_text()
    for bad, reason in (
        ({"dynamic": {"min": 1, "max": "0.5"}}, "min is above max"),
        ({"dynamic": {"provider": "entsoe"}}, "token"),
        ({"dynamic": {"provider": "octopus", "currency": "GBP"}}, "octopus"),
        ({"dynamic": {"currency": "USD"}}, "awattar gives prices in EUR"),
        ({"dynamic": {"margin": 101}}, "margin"),
        ({"dynamic": {"refresh_at": ["25:00"]}}, "HH:MM"),
        ({"mode": "time_of_use"}, "at least one window"),
        ({"time_of_use": {"07:00-22:00": 1, "21:00-23:00": 2}}, "overlap"),
        ({"time_zone": "Mars/Olympus"}, "time zone"),
    ):
        refused = await cockpit.call("PUT", path, json=bad)
        assert refused.status_code == 400, (bad, refused.text)
        assert reason in refused.json()["message"], (bad, refused.text)
    assert file.read_text() == text
    assert strom.config.profile(CHARGER).tariff.dynamic_price is not None

    static = await cockpit.call("PUT", path, json={"mode": "static", "per_kwh_sat": 280})
    assert static.status_code == 200, static.text
    assert (static.json()["mode"], static.json()["dynamic"]) == ("static", None)
    assert strom.prices.pricing.chargers() == ()
    assert "[tariff.dynamic]" not in file.read_text()
    offer = await cockpit.stack.get(cockpit.stack.pay_url)
    assert "280 sat/kWh" in offer["metadata"]

    # Back to dynamic: the formula is gone with the static switch, so it must be named again.
    refused = await cockpit.call("PUT", path, json={"mode": "dynamic", "dynamic": {"margin": 0}})
    assert refused.status_code == 400
    assert "needs a provider and an area" in refused.json()["message"]


async def test_fiat_components_survive_a_price_change_and_are_edited_through_the_api(
    cockpit: Cockpit,
) -> None:
    path = f"/chargers/{CHARGER}/tariff"
    strom = cockpit.stack.strom
    profile = strom.config.profile(CHARGER)
    fiat = profile.tariff.model_copy(
        update={"per_kwh_sat": Decimal(0), "currency": "EUR", "per_kwh": Decimal("0.39")}
    )
    await strom.apply_profile(profile.model_copy(update={"tariff": fiat}))
    shown = (await cockpit.call("GET", path)).json()
    assert shown["fiat"] == {
        "currency": "EUR",
        "per_kwh": "0.39",
        "per_minute": None,
        "session_fee": None,
        "idle_per_minute": None,
        "convert": "at_payment",
        "rate_headroom_percent": None,
    }
    # Another price changed: the fiat energy price stays (without it energy would be free).
    saved = await cockpit.call("PUT", path, json={"min_prepay_sat": 2_000})
    assert saved.status_code == 200, saved.text
    assert saved.json()["fiat"]["per_kwh"] == "0.39"
    reloaded = load_config(strom.config.config_path)  # type: ignore[arg-type]
    on_file = reloaded.profile(CHARGER).tariff
    assert (on_file.currency, on_file.per_kwh) == ("EUR", Decimal("0.39"))

    # The fiat terms are edited: a field replaces the one on file, the rest stay.
    edited = await cockpit.call(
        "PUT", path, json={"fiat": {"per_minute": "0.02", "convert": "at_billing"}}
    )
    assert edited.status_code == 200, edited.text
    assert {k: edited.json()["fiat"][k] for k in ("per_kwh", "per_minute", "convert")} == {
        "per_kwh": "0.39",
        "per_minute": "0.02",
        "convert": "at_billing",
    }
    text = (strom.config.paths.profiles / f"{CHARGER}.toml").read_text()
    # A component in sats and in fiat at once is refused, and so is dropping a fiat price
    # without saying what it costs in sats; neither touches the file.
    for bad in (
        {"per_kwh_sat": 300},
        {"fiat": {"per_kwh": None}},
        {"fiat": {"currency": "euro"}},
        {"fiat": {"per_kwh": -1}},
    ):
        refused = await cockpit.call("PUT", path, json=bad)
        assert refused.status_code == 400, (bad, refused.text)
    assert (strom.config.paths.profiles / f"{CHARGER}.toml").read_text() == text

    # Back to sats: the fiat prices go, the sat prices given take their place.
    back = await cockpit.call(
        "PUT", path, json={"fiat": {"currency": None}, "per_kwh_sat": 320, "per_minute_sat": 1}
    )
    assert back.status_code == 200, back.text
    assert back.json()["fiat"] is None
    assert back.json()["energy_msat_per_kwh"] == 320_000
    reloaded = load_config(strom.config.config_path)  # type: ignore[arg-type]
    assert reloaded.profile(CHARGER).tariff.currency is None
