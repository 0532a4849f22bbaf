"""``/chargers/{id}/reports/sold``: a day's price schedule beside the energy sold at each price."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from tests.cockpit.conftest import CHARGER, Cockpit
from tests.cockpit.synthetic_week import SOLD, write_sold_day

pytestmark = pytest.mark.slow

SVG = "{http://www.w3.org/2000/svg}"
DAY = datetime(2026, 11, 3, tzinfo=UTC)
WINDOWS = {"per_kwh_sat": 250, "time_of_use": {"07:00-22:00": 450}}  # UTC


async def test_each_interval_has_the_schedules_price_and_what_was_sold_and_billed_in_it(
    cockpit: Cockpit,
) -> None:
    saved = await cockpit.call("PUT", f"/chargers/{CHARGER}/tariff", json=WINDOWS)
    assert saved.status_code == 200, saved.text
    await write_sold_day(cockpit.stack.strom.db, CHARGER, DAY)
    path = f"/chargers/{CHARGER}/reports/sold"
    answer = await cockpit.call("GET", path, params={"day": "2026-11-03"}, token=cockpit.read_token)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["source"], report["schedule_error"]) == ("tou:profile", "")
    intervals = report["intervals"]
    assert len(intervals) == 24
    by_hour = {int(i["start"][11:13]): i for i in intervals}
    for hour, interval in by_hour.items():
        assert interval["schedule_msat_per_kwh"] == (450_000 if 7 <= hour < 22 else 250_000)
        entries = [e for e in SOLD if e[1] == hour]
        assert interval["energy_wh"] == sum(e[2] for e in entries), hour
        assert interval["revenue_msat"] == sum(e[2] * e[3] // 1000 for e in entries), hour
        assert interval["billed_msat_per_kwh"] == sorted({e[3] for e in entries})
        assert interval["sessions"] == len({e[0] for e in entries})
    assert by_hour[9]["billed_msat_per_kwh"] == [400_000, 450_000]  # an older price, visible
    assert by_hour[9]["energy_kwh"] == "3.500"
    assert report["energy_wh"] == sum(e[2] for e in SOLD)
    assert report["revenue_msat"] == sum(e[2] * e[3] // 1000 for e in SOLD)
    assert report["sessions"] == 3

    # The day before has the same schedule and nothing sold.
    before = (await cockpit.call("GET", path, params={"day": "2026-11-02"})).json()
    assert before["energy_wh"] == 0
    assert len(before["intervals"]) == 24

    # The chart draws the same numbers, bar for bar.
    svg = await cockpit.call("GET", path + ".svg", params={"day": "2026-11-03"})
    assert svg.status_code == 200, svg.text
    assert svg.headers["Content-Type"].startswith("image/svg+xml")
    root = ET.fromstring(svg.text)
    bars = root.findall(f".//{SVG}rect[@data-energy-wh]")
    assert [
        (b.get("data-start"), int(b.get("data-energy-wh", "")), int(b.get("data-revenue-msat", "")))
        for b in bars
    ] == [
        (datetime.fromisoformat(i["start"]).isoformat(), i["energy_wh"], i["revenue_msat"])
        for i in intervals
    ]
    prices = root.findall(f".//{SVG}line[@data-msat-per-kwh]")
    assert [int(p.get("data-msat-per-kwh", "")) for p in prices] == [
        i["schedule_msat_per_kwh"] for i in intervals
    ]


async def test_a_static_charger_shows_its_price_all_day_and_bad_days_are_refused(
    cockpit: Cockpit,
) -> None:
    path = f"/chargers/{CHARGER}/reports/sold"
    static = (await cockpit.call("GET", path, params={"day": "2026-11-03"})).json()
    assert static["source"] == "static"
    assert {i["schedule_msat_per_kwh"] for i in static["intervals"]} == {250_000}
    assert static["energy_wh"] == 0  # a static tariff's sessions journal no intervals
    for bad in ("2026-02-30", "yesterday", "2026-1-3", ""):
        refused = await cockpit.call("GET", path, params={"day": bad})
        assert refused.status_code == 400, (bad, refused.text)
    missing = await cockpit.call("GET", "/chargers/nope/reports/sold", params={"day": "2026-11-03"})
    assert missing.status_code == 404
    nothing = await cockpit.call("GET", path)
    assert nothing.status_code == 400
