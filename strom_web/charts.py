"""Server-rendered SVG charts: a price schedule, totals per period, a timeline of states.

Theory of operation
-------------------
Every picture Strom shows — the driver's 24-hour price chart on the charger page and the
operator's energy, revenue, refunds and availability charts in the admin UI — is drawn here,
as one self-contained ``<svg>`` string, so both audiences see the same drawing code and no page
needs JavaScript, a build step or a CDN to show a chart.

The functions are pure: data in, markup out; no clock (the caller passes "now"), no I/O. The
markup is made to be read by people and by machines alike:

* it opens with ``<title>`` and ``<desc>`` (``role="img"``, ``aria-labelledby``), and the
  ``desc`` says in words what the chart shows (lowest, highest, now, totals), so a screen reader
  or a text browser gets the content without the picture;
* axis labels and units are text (hours, ``sat/kWh``, ``kWh``, ``sat``);
* every bar or span is an element with its own ``<title>`` (its value in words, shown as a
  tooltip) and ``data-*`` attributes holding the exact integer behind it (``data-msat-per-kwh``,
  ``data-value``, ``data-state``), which the browser tests compare with the API's numbers;
* every string from outside (titles, labels, charger names) is XML-escaped, attributes
  included, so the result can be inlined into an HTML page as it is;
* the drawing scales to its container (``viewBox`` + ``width="100%"``), so it fits a phone;
* colours are presentation attributes, not ``style=""``: the pages' Content-Security-Policy
  allows inline styles by hash only, and attributes are not styles.

Empty data gives a chart with its title, its axes and a "No data" label, never an error.
Amounts stay integers until they are formatted for display.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_FLOOR, Decimal
from html import escape

from strom_core.prices import PriceSchedule

__all__ = [
    "STATE_COLOURS",
    "Bar",
    "SoldBar",
    "Span",
    "bar_chart",
    "format_price",
    "price_chart",
    "sold_chart",
    "timeline",
]

WIDTH = 360
HEIGHT = 200
LEFT = 52  # room for the y-axis labels
RIGHT = 8
TOP = 22
BOTTOM = 34  # room for the x-axis labels
INK = "#222"
MUTED = "#777"
GRID = "#ddd"
BAR = "#2f7d4f"
NEGATIVE = "#b35c00"
NOW = "#c0392b"
ROW = 22  # the height of one row of a timeline

STATE_COLOURS = {
    "online": "#7fb8e0",
    "available": "#7fb8e0",
    "charging": "#2f7d4f",
    "faulted": "#c0392b",
    "offline": "#bbbbbb",
    "unknown": "#e5e5e5",
}
"""The colour of each state on an availability timeline (other states: ``unknown``'s)."""


def _x(text: object) -> str:
    """``text`` escaped for XML text and attribute values alike."""
    return escape(str(text), quote=True)


def _hour_labels(
    starts: list[datetime], x_of: Callable[[datetime], float], tz: tzinfo
) -> list[str]:
    """The x axis's labels: about four times of day (every interval of a short chart)."""
    step = max(1, len(starts) // 4)
    return [
        f'<text class="x-label" x="{_n(x_of(start))}" y="{HEIGHT - BOTTOM + 12}" '
        f'text-anchor="middle" fill="{INK}">{start.astimezone(tz):%H:%M}</text>'
        for start in starts[::step]
    ]


def _n(value: float) -> str:
    """A coordinate, short: two decimals at most, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def format_price(msat_per_kwh: int) -> str:
    """A price in sat/kWh for display: whole sats, or up to three decimals (floored)."""
    if msat_per_kwh % 1000 == 0:
        return f"{msat_per_kwh // 1000:,}"
    sats = (Decimal(msat_per_kwh) / 1000).quantize(Decimal("0.001"), rounding=ROUND_FLOOR)
    return f"{sats:,}".rstrip("0").rstrip(".")


def _open(title: str, desc: str, chart_id: str, kind: str, height: float = HEIGHT) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {_n(height)}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" role="img" '
        f'class="chart chart-{_x(kind)}" data-chart="{_x(kind)}" '
        f'aria-labelledby="{_x(chart_id)}-title {_x(chart_id)}-desc" '
        f'font-family="system-ui, sans-serif" font-size="10">',
        f'<title id="{_x(chart_id)}-title">{_x(title)}</title>',
        f'<desc id="{_x(chart_id)}-desc">{_x(desc)}</desc>',
    ]


def _axes(lines: list[str], unit: str) -> None:
    bottom = HEIGHT - BOTTOM
    lines.append(
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="{INK}" stroke-width="1"/>'
    )
    lines.append(
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="{INK}" '
        f'stroke-width="1"/>'
    )
    lines.append(f'<text class="unit" x="4" y="{TOP - 11}" fill="{MUTED}">{_x(unit)}</text>')


def _no_data(lines: list[str]) -> None:
    lines.append(
        f'<text class="no-data" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT / 2}" '
        f'text-anchor="middle" fill="{MUTED}">No data</text>'
    )


def _scale(low: int, high: int) -> tuple[int, int]:
    """The value range of the y-axis: always includes 0, never empty."""
    low, high = min(low, 0), max(high, 0)
    if low == high:
        high = low + 1
    return low, high


def _y(value: int, low: int, high: int) -> float:
    bottom = HEIGHT - BOTTOM
    return bottom - (value - low) / (high - low) * (bottom - TOP)


def _y_labels(lines: list[str], low: int, high: int, fmt: _Formatter) -> None:
    values = sorted({low, 0, high})
    for value in values:
        y = _y(value, low, high)
        lines.append(
            f'<line x1="{LEFT}" y1="{_n(y)}" x2="{WIDTH - RIGHT}" y2="{_n(y)}" '
            f'stroke="{GRID}" stroke-width="0.5"/>'
        )
        lines.append(
            f'<text class="y-label" x="{LEFT - 4}" y="{_n(y + 3)}" text-anchor="end" '
            f'fill="{INK}">{_x(fmt(value))}</text>'
        )


class _Formatter:
    """A value formatter: a callable from the integer behind a bar to its display text."""

    def __init__(self, divisor: int, decimals: int) -> None:
        self.divisor = divisor
        self.decimals = decimals

    def __call__(self, value: int) -> str:
        if self.divisor == 1:
            return f"{value:,}"
        if value % self.divisor == 0:
            return f"{value // self.divisor:,}"
        quantum = Decimal(1).scaleb(-self.decimals)
        shown = (Decimal(value) / self.divisor).quantize(quantum, rounding=ROUND_FLOOR)
        return f"{shown:,}"


_PRICE = _Formatter(1000, 3)


def price_chart(
    schedule: PriceSchedule | None,
    now: datetime,
    *,
    title: str = "Energy price, next 24 hours",
    chart_id: str = "price",
    hours: int = 24,
    tz: tzinfo = UTC,
    tz_name: str = "UTC",
) -> str:
    """A step chart of the energy price from the interval in force at ``now`` on.

    Each interval is one bar (``data-msat-per-kwh``, ``data-start``, ``data-end``), the interval
    in force at ``now`` is marked (``class="bar now"``) and a vertical "now" line is drawn
    at ``now``. The x-axis is labelled in hours of ``tz``, the y-axis in sat/kWh.

    Args:
        schedule: the prices; ``None`` or no interval in the window draws "No data".
        now: the moment to mark (timezone-aware).
        title: the chart's title (escaped).
        chart_id: prefix of the ids of ``<title>``/``<desc>`` (unique within a page).
        hours: how many hours from the start of the current interval are shown.
        tz: the time zone of the hour labels.
        tz_name: its name, written under the axis.

    Returns:
        The ``<svg>`` markup.
    """
    shown = []
    if schedule is not None:
        current = schedule.price_at(now)
        begin = current.start if current is not None else now
        until = begin + timedelta(hours=hours)
        shown = [i for i in schedule.intervals if i.end > begin and i.start < until]
    if not shown:
        lines = _open(title, "No prices are known for this time.", chart_id, "price")
        _axes(lines, "sat/kWh")
        _no_data(lines)
        lines.append("</svg>")
        return "\n".join(lines)
    prices = [i.energy_msat_per_kwh for i in shown]
    current_price = next((i.energy_msat_per_kwh for i in shown if i.start <= now < i.end), None)
    summary = [
        f"Energy price per kWh from {shown[0].start.astimezone(tz):%H:%M} {tz_name} "
        f"for {len(shown)} intervals.",
    ]
    if current_price is not None:
        summary.append(f"Now: {format_price(current_price)} sat/kWh.")
    summary.append(
        f"Lowest {format_price(min(prices))} sat/kWh, highest {format_price(max(prices))} sat/kWh."
    )
    if schedule is not None:
        summary.append(f"Source: {schedule.source}.")
    lines = _open(title, " ".join(summary), chart_id, "price")
    low, high = _scale(min(prices), max(prices))
    _y_labels(lines, low, high, _PRICE)
    _axes(lines, "sat/kWh")
    first, last = shown[0].start, shown[-1].end
    span = (last - first).total_seconds()
    plot = WIDTH - RIGHT - LEFT

    def x_of(moment: datetime) -> float:
        return LEFT + (moment - first).total_seconds() / span * plot

    zero = _y(0, low, high)
    lines.append('<g class="bars">')
    for interval in shown:
        x0, x1 = x_of(interval.start), x_of(interval.end)
        price = interval.energy_msat_per_kwh
        y = _y(price, low, high)
        top, height = min(y, zero), abs(zero - y)
        is_now = interval.start <= now < interval.end
        local = interval.start.astimezone(tz)
        label = (
            f"{local:%H:%M} to {interval.end.astimezone(tz):%H:%M} {tz_name}: "
            f"{format_price(price)} sat/kWh" + (" (now)" if is_now else "")
        )
        lines.append(
            f'<rect class="bar{" now" if is_now else ""}" x="{_n(x0)}" y="{_n(top)}" '
            f'width="{_n(max(x1 - x0 - 0.5, 0.5))}" height="{_n(max(height, 0.5))}" '
            f'fill="{NEGATIVE if price < 0 else BAR}" '
            f'fill-opacity="{"1" if is_now else "0.7"}" '
            f'data-msat-per-kwh="{price}" data-start="{_x(interval.start.isoformat())}" '
            f'data-end="{_x(interval.end.isoformat())}"><title>{_x(label)}</title></rect>'
        )
    lines.append("</g>")
    # Hour labels: every 6 hours of a day-long chart, every interval of a short one.
    lines.extend(_hour_labels([interval.start for interval in shown], x_of, tz))
    lines.append(
        f'<text class="x-unit" x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end" '
        f'fill="{MUTED}">hour ({_x(tz_name)})</text>'
    )
    if first <= now < last:
        x = x_of(now)
        lines.append(
            f'<g class="now-marker"><line x1="{_n(x)}" y1="{TOP}" x2="{_n(x)}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="{NOW}" stroke-width="1.5" '
            f'stroke-dasharray="3 2"/><text x="{_n(x + 3)}" y="{TOP + 8}" fill="{NOW}">now'
            + (f" {_x(format_price(current_price))}" if current_price is not None else "")
            + "</text></g>"
        )
    lines.append("</svg>")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of :func:`bar_chart`.

    Attributes:
        label: its name on the x-axis (a day ``2026-12-07`` or a month ``2026-12``).
        value: the exact integer it stands for (Wh, msat, a count).
    """

    label: str
    value: int


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    unit: str,
    divisor: int = 1,
    decimals: int = 0,
    chart_id: str = "bars",
) -> str:
    """A bar chart of totals per period (energy per day, revenue per month, ...).

    Each bar carries ``data-label`` and ``data-value`` (the exact integer); the value shown is
    ``value / divisor`` with ``decimals`` (Wh → kWh: ``divisor=1000, decimals=3``; msat → sat:
    ``divisor=1000, decimals=0``, floored).

    Args:
        bars: the periods in order (oldest first).
        title: the chart's title (escaped).
        unit: the unit of the shown values (``kWh``, ``sat``, ``sessions``).
        divisor: what the integers are divided by for display.
        decimals: decimals shown.
        chart_id: prefix of the ids of ``<title>``/``<desc>`` (unique within a page).

    Returns:
        The ``<svg>`` markup.
    """
    fmt = _Formatter(divisor, decimals)
    kind = "bars"
    if not bars:
        lines = _open(title, "No data for this period.", chart_id, kind)
        _axes(lines, unit)
        _no_data(lines)
        lines.append("</svg>")
        return "\n".join(lines)
    values = [bar.value for bar in bars]
    total = sum(values)
    biggest = max(bars, key=lambda bar: bar.value)
    desc = (
        f"{len(bars)} periods from {bars[0].label} to {bars[-1].label}. "
        f"Total {fmt(total)} {unit}; highest {fmt(biggest.value)} {unit} on {biggest.label}."
    )
    lines = _open(title, desc, chart_id, kind)
    low, high = _scale(min(values), max(values))
    _y_labels(lines, low, high, fmt)
    _axes(lines, unit)
    plot = WIDTH - RIGHT - LEFT
    slot = plot / len(bars)
    zero = _y(0, low, high)
    lines.append('<g class="bars">')
    for index, bar in enumerate(bars):
        y = _y(bar.value, low, high)
        top, height = min(y, zero), abs(zero - y)
        x = LEFT + index * slot + slot * 0.15
        lines.append(
            f'<rect class="bar" x="{_n(x)}" y="{_n(top)}" width="{_n(slot * 0.7)}" '
            f'height="{_n(height)}" fill="{NEGATIVE if bar.value < 0 else BAR}" '
            f'data-label="{_x(bar.label)}" data-value="{bar.value}">'
            f"<title>{_x(bar.label)}: {_x(fmt(bar.value))} {_x(unit)}</title></rect>"
        )
        if len(bars) <= 12:
            lines.append(
                f'<text class="value" x="{_n(x + slot * 0.35)}" y="{_n(top - 2)}" '
                f'text-anchor="middle" fill="{INK}" font-size="8">{_x(fmt(bar.value))}</text>'
            )
    lines.append("</g>")
    step = max(1, (len(bars) + 5) // 6)
    for index in range(0, len(bars), step):
        x = LEFT + index * slot + slot / 2
        lines.append(
            f'<text class="x-label" x="{_n(x)}" y="{HEIGHT - BOTTOM + 12}" '
            f'text-anchor="middle" fill="{INK}" font-size="8">{_x(_short(bars[index].label))}'
            "</text>"
        )
    lines.append("</svg>")
    return "\n".join(lines)


def _short(label: str) -> str:
    """An x-axis label that fits: ``2026-12-07`` → ``12-07``; a month stays ``2026-12``."""
    parts = label.split("-")
    if len(parts) == 3 and all(part.isdigit() for part in parts):
        return f"{parts[1]}-{parts[2]}"
    return label


@dataclass(frozen=True, slots=True)
class Span:
    """One stretch of a timeline: ``state`` from ``start`` (inclusive) to ``end`` (exclusive)."""

    start: datetime
    end: datetime
    state: str


def _time_in_states(
    rows: Sequence[tuple[str, Sequence[Span]]], start: datetime, end: datetime
) -> dict[str, float]:
    """Seconds in each state within ``[start, end)``, over all rows."""
    states: dict[str, float] = {}
    for _label, spans in rows:
        for span in spans:
            lo, hi = max(span.start, start), min(span.end, end)
            if hi > lo:
                states[span.state] = states.get(span.state, 0) + (hi - lo).total_seconds()
    return states


def timeline(
    rows: Sequence[tuple[str, Sequence[Span]]],
    start: datetime,
    end: datetime,
    *,
    title: str,
    chart_id: str = "timeline",
    tz: tzinfo = UTC,
    tz_name: str = "UTC",
) -> str:
    """A timeline of states, one row per thing (a charger or a connector), from start to end.

    Each span is a ``<rect>`` with ``data-state``, ``data-start``, ``data-end`` and a ``<title>``
    in words; spans are clipped to the window. The legend names the states shown.

    Args:
        rows: (row label, its spans) per row, in display order.
        start: the window's start (timezone-aware).
        end: the window's end, after ``start``.
        title: the chart's title (escaped).
        chart_id: prefix of the ids of ``<title>``/``<desc>`` (unique within a page).
        tz: the time zone of the date labels.
        tz_name: its name, written under the axis.

    Returns:
        The ``<svg>`` markup.

    Raises:
        ValueError: ``end`` is not after ``start``.
    """
    if end <= start:
        raise ValueError("a timeline's end must be after its start")
    window = (end - start).total_seconds()
    states = _time_in_states(rows, start, end)
    desc_parts = [f"{len(rows)} rows from {start.astimezone(tz):%Y-%m-%d %H:%M} {tz_name}"]
    desc_parts.append(f"to {end.astimezone(tz):%Y-%m-%d %H:%M} {tz_name}.")
    whole = window * max(len(rows), 1)
    for state, seconds in sorted(states.items()):
        desc_parts.append(f"{state}: {seconds / whole * 100:.0f} % of the time.")
    if not rows:
        lines = _open(title, " ".join(desc_parts), chart_id, "timeline")
        _no_data(lines)
        lines.append("</svg>")
        return "\n".join(lines)
    # One band per row (the drawing grows with the rows); the labels get the room they need.
    height = ROW
    bottom = TOP + height * len(rows)
    left = min(max(LEFT, 8 + 6 * max(len(label) for label, _ in rows)), WIDTH // 3)
    lines = _open(title, " ".join(desc_parts), chart_id, "timeline", bottom + 40)
    plot = WIDTH - RIGHT - left
    for index, (label, spans) in enumerate(rows):
        y = TOP + index * height
        lines.append(
            f'<g class="row" data-label="{_x(label)}"><text class="y-label" x="{left - 4}" '
            f'y="{_n(y + height / 2 + 3)}" text-anchor="end" fill="{INK}">{_x(label)}</text>'
        )
        for span in spans:
            lo, hi = max(span.start, start), min(span.end, end)
            if hi <= lo:
                continue
            x0 = left + (lo - start).total_seconds() / window * plot
            x1 = left + (hi - start).total_seconds() / window * plot
            colour = STATE_COLOURS.get(span.state.lower(), STATE_COLOURS["unknown"])
            words = (
                f"{label}: {span.state} from {lo.astimezone(tz):%Y-%m-%d %H:%M} "
                f"to {hi.astimezone(tz):%Y-%m-%d %H:%M} {tz_name}"
            )
            lines.append(
                f'<rect class="span" x="{_n(x0)}" y="{_n(y + height * 0.15)}" '
                f'width="{_n(max(x1 - x0, 0.5))}" height="{_n(height * 0.7)}" fill="{colour}" '
                f'data-state="{_x(span.state)}" data-start="{_x(lo.isoformat())}" '
                f'data-end="{_x(hi.isoformat())}"><title>{_x(words)}</title></rect>'
            )
        lines.append("</g>")
    lines.append(
        f'<text class="x-label" x="{left}" y="{bottom + 12}" fill="{INK}">'
        f"{start.astimezone(tz):%m-%d %H:%M}</text>"
    )
    lines.append(
        f'<text class="x-label" x="{WIDTH - RIGHT}" y="{bottom + 12}" '
        f'text-anchor="end" fill="{INK}">{end.astimezone(tz):%m-%d %H:%M} {_x(tz_name)}</text>'
    )
    x = left
    for state in sorted(states):
        colour = STATE_COLOURS.get(state.lower(), STATE_COLOURS["unknown"])
        lines.append(
            f'<g class="legend"><rect x="{x}" y="{bottom + 22}" width="8" height="8" '
            f'fill="{colour}"/><text x="{x + 11}" y="{bottom + 29}" fill="{INK}">'
            f"{_x(state)}</text></g>"
        )
        x += 14 + 6 * len(state)
    lines.append("</svg>")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class SoldBar:
    """One interval of :func:`sold_chart`: the schedule's price and what was sold in it.

    Attributes:
        start: the interval's start (timezone-aware).
        end: its end.
        msat_per_kwh: the schedule's energy price; None when the schedule does not cover it.
        energy_wh: the energy sold in it (Wh).
        revenue_msat: what that energy was billed (msat).
    """

    start: datetime
    end: datetime
    msat_per_kwh: int | None
    energy_wh: int
    revenue_msat: int


_KWH = _Formatter(1000, 3)
_SAT = _Formatter(1000, 0)


def sold_chart(
    bars: Sequence[SoldBar],
    *,
    title: str,
    chart_id: str = "sold",
    tz: tzinfo = UTC,
    tz_name: str = "UTC",
) -> str:
    """The price schedule beside what was sold at each price: one interval per bar.

    Each interval's energy sold is a bar on the left axis (kWh; ``class="bar energy"``,
    ``data-energy-wh``, ``data-revenue-msat``, ``data-start``); the schedule's price is a
    step (``class="price"``, ``data-msat-per-kwh``, ``data-start``) on its own scale, labelled
    in sat/kWh at the right edge.

    Args:
        bars: the intervals, in time order.
        title: the chart's title (escaped).
        chart_id: prefix of the ids of ``<title>``/``<desc>`` (unique within a page).
        tz: the time zone of the hour labels.
        tz_name: its name, written under the axis.

    Returns:
        The ``<svg>`` markup.
    """
    kind = "sold"
    if not bars:
        lines = _open(title, "No prices and no energy sold in this period.", chart_id, kind)
        _axes(lines, "kWh")
        _no_data(lines)
        lines.append("</svg>")
        return "\n".join(lines)
    energy = sum(bar.energy_wh for bar in bars)
    revenue = sum(bar.revenue_msat for bar in bars)
    prices = [bar.msat_per_kwh for bar in bars if bar.msat_per_kwh is not None]
    desc = [
        f"{len(bars)} intervals from {bars[0].start.astimezone(tz):%Y-%m-%d %H:%M} {tz_name}.",
        f"Sold {_KWH(energy)} kWh for {_SAT(revenue)} sat.",
    ]
    if prices:
        desc.append(
            f"Price from {format_price(min(prices))} to {format_price(max(prices))} sat/kWh."
        )
    lines = _open(title, " ".join(desc), chart_id, kind)
    low, high = _scale(0, max(bar.energy_wh for bar in bars))
    _y_labels(lines, low, high, _KWH)
    _axes(lines, "kWh")
    first, last = bars[0].start, bars[-1].end
    span = max((last - first).total_seconds(), 1)
    plot = WIDTH - RIGHT - LEFT

    def x_of(moment: datetime) -> float:
        return LEFT + (moment - first).total_seconds() / span * plot

    zero = _y(0, low, high)
    lines.append('<g class="bars">')
    for bar in bars:
        x0, x1 = x_of(bar.start), x_of(bar.end)
        y = _y(bar.energy_wh, low, high)
        price = "no price" if bar.msat_per_kwh is None else f"{format_price(bar.msat_per_kwh)}"
        words = (
            f"{bar.start.astimezone(tz):%H:%M} to {bar.end.astimezone(tz):%H:%M} {tz_name}: "
            f"{_KWH(bar.energy_wh)} kWh sold for {_SAT(bar.revenue_msat)} sat "
            f"(schedule: {price}{'' if bar.msat_per_kwh is None else ' sat/kWh'})"
        )
        lines.append(
            f'<rect class="bar energy" x="{_n(x0)}" y="{_n(min(y, zero))}" '
            f'width="{_n(max(x1 - x0 - 0.5, 0.5))}" height="{_n(abs(zero - y))}" fill="{BAR}" '
            f'fill-opacity="0.7" data-energy-wh="{bar.energy_wh}" '
            f'data-revenue-msat="{bar.revenue_msat}" data-start="{_x(bar.start.isoformat())}">'
            f"<title>{_x(words)}</title></rect>"
        )
    lines.append("</g>")
    if prices:
        p_low, p_high = _scale(min(prices), max(prices))
        lines.append('<g class="prices">')
        for bar in bars:
            if bar.msat_per_kwh is None:
                continue
            y = _y(bar.msat_per_kwh, p_low, p_high)
            lines.append(
                f'<line class="price" x1="{_n(x_of(bar.start))}" y1="{_n(y)}" '
                f'x2="{_n(x_of(bar.end))}" y2="{_n(y)}" stroke="{NEGATIVE}" stroke-width="2" '
                f'data-msat-per-kwh="{bar.msat_per_kwh}" '
                f'data-start="{_x(bar.start.isoformat())}"><title>'
                f"{_x(f'{bar.start.astimezone(tz):%H:%M} {tz_name}: ')}"
                f"{_x(format_price(bar.msat_per_kwh))} sat/kWh</title></line>"
            )
        for value in sorted({p_low, p_high}):
            lines.append(
                f'<text class="price-label" x="{WIDTH - RIGHT - 2}" '
                f'y="{_n(_y(value, p_low, p_high) - 2)}" text-anchor="end" '
                f'fill="{NEGATIVE}">{_x(format_price(value))} sat/kWh</text>'
            )
        lines.append("</g>")
    lines.extend(_hour_labels([bar.start for bar in bars], x_of, tz))
    lines.append(
        f'<text class="x-unit" x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end" '
        f'fill="{MUTED}">hour ({_x(tz_name)}) · bars: kWh sold · line: price</text>'
    )
    lines.append("</svg>")
    return "\n".join(lines)
