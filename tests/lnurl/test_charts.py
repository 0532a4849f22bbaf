"""The SVG charts (strom_web.charts): well-formed, accessible, exact values, escaped, empty data."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from strom_core.prices import PriceInterval, PriceSchedule
from strom_web.charts import Bar, Span, bar_chart, format_price, price_chart, timeline

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)


def parse(markup: str) -> ET.Element:
    root = ET.fromstring(markup)
    assert root.tag == f"{SVG}svg"
    return root


def hourly(prices: list[int], start: datetime = T0) -> PriceSchedule:
    return PriceSchedule(
        intervals=tuple(
            PriceInterval(start + timedelta(hours=i), start + timedelta(hours=i + 1), price)
            for i, price in enumerate(prices)
        ),
        source="tou:profile",
        fetched_at=start,
    )


def bars_of(root: ET.Element) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}rect") if "bar" in e.get("class", "").split()]


def test_price_chart_has_one_bar_per_interval_with_its_exact_price_and_marks_now() -> None:
    prices = [10_000 + 1_500 * i for i in range(24)]
    now = T0 + timedelta(hours=5, minutes=30)
    root = parse(price_chart(hourly([*prices, 1, 2, 3]), now))
    bars = bars_of(root)
    # 24 hours from the interval in force (05:00) on: 05:00..04:00 of the schedule's remainder
    shown = [int(b.get("data-msat-per-kwh", "")) for b in bars]
    assert shown == ([*prices, 1, 2, 3])[5 : 5 + 24]
    now_bars = [b for b in bars if "now" in b.get("class", "").split()]
    assert len(now_bars) == 1
    assert now_bars[0].get("data-start") == (T0 + timedelta(hours=5)).isoformat()
    assert root.find(f".//{SVG}g[@class='now-marker']") is not None
    # a bar's height follows its price: the higher price is the taller bar
    heights = {int(b.get("data-msat-per-kwh", "")): float(b.get("height", "")) for b in bars}
    assert heights[max(shown)] > heights[min(shown)]


def test_price_chart_is_accessible_and_labelled_in_words_and_units() -> None:
    now = T0 + timedelta(minutes=10)
    markup = price_chart(PriceSchedule.flat(250_500, T0, 24), now)
    root = parse(markup)
    assert root.get("role") == "img"
    title = root.find(f"{SVG}title")
    desc = root.find(f"{SVG}desc")
    assert title is not None
    assert title.text == "Energy price, next 24 hours"
    assert desc is not None
    assert "Now: 250.5 sat/kWh" in (desc.text or "")
    assert root.get("aria-labelledby") == "price-title price-desc"
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "sat/kWh" in texts
    assert "00:00" in texts
    assert "hour (UTC)" in texts
    assert any(t.startswith("now") for t in texts)
    assert root.get("width") == "100%"
    assert root.get("viewBox") == "0 0 360 200"
    # every bar has a tooltip in words
    for bar in bars_of(root):
        tip = bar.find(f"{SVG}title")
        assert tip is not None
        assert "sat/kWh" in (tip.text or "")
    assert "style=" not in markup  # the pages' CSP allows no inline style attributes


def test_a_flat_static_price_is_a_flat_line_of_equal_bars() -> None:
    now = T0 + timedelta(hours=2)
    root = parse(price_chart(PriceSchedule.flat(300_000, T0, 26), now))
    bars = bars_of(root)
    assert len(bars) == 24
    assert {b.get("height") for b in bars} == {bars[0].get("height")}
    assert {b.get("data-msat-per-kwh") for b in bars} == {"300000"}


def test_negative_prices_are_drawn_below_the_zero_line() -> None:
    root = parse(price_chart(hourly([-5_000, 20_000]), T0))
    negative, positive = bars_of(root)
    assert (
        float(negative.get("y", ""))
        >= float(positive.get("y", "")) + float(positive.get("height", "")) - 0.01
    )
    assert negative.get("fill") != positive.get("fill")


def test_price_chart_without_prices_says_no_data() -> None:
    for schedule in (None, hourly([1_000], start=T0 - timedelta(days=2))):
        root = parse(price_chart(schedule, T0))
        assert bars_of(root) == []
        assert "No data" in [t.text for t in root.iter(f"{SVG}text")]
        desc = root.find(f"{SVG}desc")
        assert desc is not None
        assert desc.text == "No prices are known for this time."


def test_every_string_from_outside_is_escaped() -> None:
    evil = '<script>alert("x")</script>&'
    schedule = PriceSchedule(intervals=hourly([1_000]).intervals, source=evil, fetched_at=T0)
    for markup in (
        price_chart(schedule, T0, title=evil, chart_id='a"b'),
        bar_chart([Bar(evil, 5)], title=evil, unit=evil, chart_id='a"b'),
        timeline(
            [(evil, [Span(T0, T0 + timedelta(hours=1), evil)])],
            T0,
            T0 + timedelta(hours=2),
            title=evil,
            chart_id='a"b',
        ),
    ):
        assert "<script" not in markup
        root = parse(markup)  # still well-formed XML
        title = root.find(f"{SVG}title")
        assert title is not None
        assert title.text == evil


def test_bar_chart_keeps_exact_values_and_formats_them_in_the_unit() -> None:
    bars = [Bar("2026-12-01", 12_345), Bar("2026-12-02", 0), Bar("2026-12-03", 7_000)]
    root = parse(bar_chart(bars, title="Energy per day", unit="kWh", divisor=1000, decimals=3))
    rects = bars_of(root)
    assert [(r.get("data-label"), int(r.get("data-value", ""))) for r in rects] == [
        ("2026-12-01", 12_345),
        ("2026-12-02", 0),
        ("2026-12-03", 7_000),
    ]
    tips = [r.find(f"{SVG}title") for r in rects]
    assert [t.text for t in tips if t is not None] == [
        "2026-12-01: 12.345 kWh",
        "2026-12-02: 0 kWh",
        "2026-12-03: 7 kWh",
    ]
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    assert "Total 19.345 kWh" in (desc.text or "")
    assert "highest 12.345 kWh on 2026-12-01" in (desc.text or "")
    heights = [float(r.get("height", "")) for r in rects]
    assert heights[0] > heights[2] > heights[1] == 0


def test_bar_chart_of_nothing_says_no_data() -> None:
    root = parse(bar_chart([], title="Revenue per month", unit="sat"))
    assert bars_of(root) == []
    assert "No data" in [t.text for t in root.iter(f"{SVG}text")]


def test_timeline_clips_spans_to_the_window_and_names_each_state() -> None:
    end = T0 + timedelta(days=1)
    rows = [
        (
            "cp-1",
            [
                Span(T0 - timedelta(hours=3), T0 + timedelta(hours=6), "online"),
                Span(T0 + timedelta(hours=6), T0 + timedelta(hours=8), "charging"),
                Span(T0 + timedelta(hours=8), end + timedelta(hours=1), "faulted"),
            ],
        ),
        ("cp-2", []),
    ]
    root = parse(timeline(rows, T0, end, title="Availability"))
    spans = [e for e in root.iter(f"{SVG}rect") if e.get("class") == "span"]
    assert [s.get("data-state") for s in spans] == ["online", "charging", "faulted"]
    assert spans[0].get("data-start") == T0.isoformat()
    assert spans[-1].get("data-end") == end.isoformat()
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    # 24 h of two rows: online 6 h, charging 2 h, faulted 16 h out of 48 row-hours
    assert "charging: 4 % of the time." in (desc.text or "")
    assert "faulted: 33 % of the time." in (desc.text or "")
    legend = [
        t.text
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "legend"
        for t in g.iter(f"{SVG}text")
    ]
    assert legend == ["charging", "faulted", "online"]


def test_timeline_refuses_an_empty_window_and_draws_no_rows_as_no_data() -> None:
    with pytest.raises(ValueError, match="after its start"):
        timeline([], T0, T0, title="x")
    root = parse(timeline([], T0, T0 + timedelta(hours=1), title="x"))
    assert "No data" in [t.text for t in root.iter(f"{SVG}text")]


@pytest.mark.parametrize(
    ("msat", "shown"),
    [(0, "0"), (250_000, "250"), (250_500, "250.5"), (1_234_567, "1,234.567"), (-5_000, "-5")],
)
def test_prices_show_in_sat_per_kwh_exactly(msat: int, shown: str) -> None:
    assert format_price(msat) == shown


def test_sold_chart_draws_each_intervals_energy_and_the_schedules_price_escaped() -> None:
    from strom_web.charts import SoldBar, sold_chart

    bars = [
        SoldBar(T0, T0 + timedelta(hours=1), 250_000, 0, 0),
        SoldBar(T0 + timedelta(hours=1), T0 + timedelta(hours=2), 450_000, 3_500, 1_525_000),
        SoldBar(T0 + timedelta(hours=2), T0 + timedelta(hours=3), None, 1_000, 400_000),
    ]
    root = parse(sold_chart(bars, title="Sold <cp & 1>"))
    assert root.find(f"{SVG}title").text == "Sold <cp & 1>"  # type: ignore[union-attr]
    energy = [e for e in root.iter(f"{SVG}rect") if e.get("data-energy-wh") is not None]
    assert [
        (int(e.get("data-energy-wh", "")), int(e.get("data-revenue-msat", ""))) for e in energy
    ] == [
        (0, 0),
        (3_500, 1_525_000),
        (1_000, 400_000),
    ]
    # An interval the schedule does not cover has no price line.
    lines = [e for e in root.iter(f"{SVG}line") if e.get("data-msat-per-kwh") is not None]
    assert [int(e.get("data-msat-per-kwh", "")) for e in lines] == [250_000, 450_000]
    desc = root.find(f"{SVG}desc").text or ""  # type: ignore[union-attr]
    assert "Sold 4.500 kWh for 1,925 sat." in desc
    empty = parse(sold_chart([], title="Nothing"))
    assert any(e.text == "No data" for e in empty.iter(f"{SVG}text"))
