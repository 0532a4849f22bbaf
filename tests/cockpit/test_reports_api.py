"""``/reports``: totals per day and month, availability, their SVG charts; scopes and bad input."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from tests.cockpit.conftest import CHARGER, Cockpit
from tests.cockpit.synthetic_week import midnight, write_week

SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday, well before the stack's own events


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def window(since: datetime, until: datetime, **more: str) -> dict[str, str]:
    return {"since": iso(since), "until": iso(until), **more}


async def test_daily_report_has_every_day_with_the_ledgers_totals_and_revenue(
    cockpit: Cockpit,
) -> None:
    week = await write_week(cockpit.stack.strom.db, CHARGER, START)
    # one day before and after the week: present, with zeros
    answer = await cockpit.call(
        "GET",
        "/reports/daily",
        token=cockpit.read_token,  # a read-only token may read reports
        params=window(START - timedelta(days=1), week.end + timedelta(days=1)),
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["period"] == "day"
    labels = [row["period"] for row in report["rows"]]
    assert labels[0] == "2026-11-01"
    assert labels[-1] == "2026-11-09"
    assert len(labels) == 9
    rows = {row["period"]: row for row in report["rows"]}
    assert rows["2026-11-01"]["sessions"] == 0
    assert rows["2026-11-01"]["revenue_msat"] == 0
    for day, expected in week.days.items():
        row = rows[day]
        assert {key: row[key] for key in expected} == expected, day
        assert row["revenue_msat"] == (
            expected["received_msat"] - expected["refunded_msat"] - expected["refund_fees_msat"]
        )
    total = report["total"]
    assert total["period"] == "total"
    assert total["energy_wh"] == sum(d["energy_wh"] for d in week.days.values())
    assert total["received_msat"] == sum(d["received_msat"] for d in week.days.values())
    # the same numbers as the ledger's own totals
    ledger = await cockpit.call(
        "GET", "/ledger/totals", params={"since": iso(START), "until": iso(week.end)}
    )
    for entry in ledger.json()["totals"]:
        row = rows[entry["period"]]
        assert (row["received_msat"], row["refunded_msat"], row["energy_wh"]) == (
            entry["paid_msat"],
            entry["refunded_msat"],
            entry["energy_wh"],
        )
        assert row["energy_kwh"] == entry["energy_kwh"]


async def test_monthly_report_sums_the_days(cockpit: Cockpit) -> None:
    week = await write_week(cockpit.stack.strom.db, CHARGER, START)
    answer = await cockpit.call(
        "GET",
        "/reports/monthly",
        params=window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
    )
    assert answer.status_code == 200, answer.text
    rows = answer.json()["rows"]
    assert [row["period"] for row in rows] == ["2026-10", "2026-11"]
    assert rows[0]["sessions"] == 0
    assert rows[1]["sessions"] == sum(d["sessions"] for d in week.days.values())
    assert rows[1]["refund_fees_msat"] == sum(d["refund_fees_msat"] for d in week.days.values())


async def test_the_svg_charts_draw_the_reports_numbers(cockpit: Cockpit) -> None:
    week = await write_week(cockpit.stack.strom.db, CHARGER, START)
    daily = (await cockpit.call("GET", "/reports/daily", params=window(START, week.end))).json()
    for measure, key in (("energy", "energy_wh"), ("revenue", "revenue_msat")):
        answer = await cockpit.call(
            "GET", "/reports/daily.svg", params=window(START, week.end, measure=measure)
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("image/svg+xml")
        root = ET.fromstring(answer.text)
        bars = [e for e in root.iter(f"{SVG}rect") if e.get("class") == "bar"]
        assert [(b.get("data-label"), int(b.get("data-value", ""))) for b in bars] == [
            (row["period"], row[key]) for row in daily["rows"]
        ]
        assert root.find(f"{SVG}title") is not None
    monthly = await cockpit.call(
        "GET", "/reports/monthly.svg", params=window(START, week.end, measure="sessions")
    )
    assert monthly.status_code == 200
    assert 'data-value="13"' in monthly.text  # 1+2+3+1+2+3+1 sessions in November


async def test_availability_shows_charging_faulted_and_offline_over_the_week(
    cockpit: Cockpit,
) -> None:
    week = await write_week(cockpit.stack.strom.db, CHARGER, START)
    answer = await cockpit.call(
        "GET", "/reports/availability", params=window(START, week.end, charger_id=CHARGER)
    )
    assert answer.status_code == 200, answer.text
    (connector,) = answer.json()["connectors"]
    assert (connector["charger_id"], connector["connector_id"]) == (CHARGER, 1)
    spans = connector["spans"]
    assert spans[0]["start"].startswith("2026-11-02T00:00:00")
    assert spans[-1]["end"].startswith("2026-11-09T00:00:00")
    states = [span["state"] for span in spans]
    assert {"charging", "faulted", "offline", "online"} <= set(states)
    assert connector["seconds"]["faulted"] == 3 * 3600
    assert connector["seconds"]["offline"] == 2 * 3600
    assert connector["seconds"]["charging"] == 13 * 3600
    assert sum(connector["seconds"].values()) == 7 * 24 * 3600
    chart = await cockpit.call("GET", "/reports/availability.svg", params=window(START, week.end))
    assert chart.status_code == 200
    root = ET.fromstring(chart.text)
    drawn = [e.get("data-state") for e in root.iter(f"{SVG}rect") if e.get("class") == "span"]
    assert drawn == states


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/reports/daily", {"since": "2026-11-02T00:00:00Z"}, "until"),
        ("/reports/daily", window(START, START), "until must be after since"),
        ("/reports/daily", window(START, START - timedelta(days=1)), "until must be after since"),
        ("/reports/daily", window(START, START + timedelta(days=400)), "at most 366 days"),
        ("/reports/daily.svg", window(START, START + timedelta(days=400)), "at most 366 days"),
        ("/reports/monthly", window(START, START + timedelta(days=4000)), "at most 3660 days"),
        ("/reports/availability", window(START, START + timedelta(days=93)), "at most 92 days"),
        ("/reports/daily", {"since": "2026-11-02T00:00:00", "until": "2026-11-03T00:00:00"}, ""),
        ("/reports/daily", {**window(START, START + timedelta(days=1)), "from": "x"}, ""),
        ("/reports/daily.svg", window(START, START + timedelta(days=1), measure="kWh"), ""),
        ("/reports/availability", window(START, START + timedelta(days=1), charger_id="a b"), ""),
    ],
)
async def test_bad_windows_and_parameters_get_a_400_that_says_why(
    cockpit: Cockpit, path: str, params: dict[str, str], message: str
) -> None:
    answer = await cockpit.call("GET", path, params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "bad_request"
    assert message in answer.json()["message"]


async def test_reports_need_a_sign_in(cockpit: Cockpit) -> None:
    today = midnight(datetime.now(UTC))
    for path in ("/reports/daily", "/reports/daily.svg", "/reports/availability"):
        answer = await cockpit.call(
            "GET", path, params=window(today, today + timedelta(days=1)), headers={}
        )
        assert answer.status_code == 401, path
