"""The pages' templates without a browser: every session state renders, everything from
outside is escaped, and each state shows what the driver needs (and nothing they must not use).

These need no peer; the browser tests show the same pages on a phone.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from jinja2 import StrictUndefined

from lnurl_server.pages import STATE_TEXT, Pages, connector_status, format_duration
from strom_core.config import ConnectorConfig, LocationConfig, ProfileConfig, TariffConfig
from strom_core.prices import PriceInterval, PriceSchedule
from strom_core.session import Session, State, new_session
from strom_web.lnurl import bech32_lnurl, connector_fallback_url

BASE = "http://127.0.0.1:8080"
HOSTILE = '<script>alert("x")</script> & "quotes"'


def profile(name: str = "Example charger", address: str = "Alexanderplatz 1") -> ProfileConfig:
    return ProfileConfig(
        id="cp-1",
        name=name,
        description="11 kW AC",
        location=LocationConfig(lat=52.5, lon=13.4, address=address),
        connectors=(ConnectorConfig(id=1, max_power_kw=Decimal(11)),),
        tariff=TariffConfig(per_kwh_sat=Decimal(250)),
    )


def pages(*, fake_backend: bool = False) -> Pages:
    rendered = Pages(fake_backend=fake_backend)
    rendered.env.undefined = StrictUndefined  # a template using a missing name fails here
    return rendered


def session(state: State) -> Session:
    fresh = new_session(
        session_id="s1",
        charger_id="cp-1",
        connector_id=1,
        id_tag="TAG1",
        tariff=profile().tariff.to_tariff(),
        power_w=11_000,
        meter_interval_s=60,
        start_timeout_s=180,
    )
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    return replace(
        fresh,
        state=state,
        paid_msat=2_000_000,
        consumed_msat=203_500,
        refundable_msat=1_796_500 if state is not State.REFUNDED else 0,
        refunded_msat=1_796_500 if state is State.REFUNDED else 0,
        energy_wh=814,
        started_at=at,
        last_reading_at=at.replace(minute=7),
        stopped_at=at.replace(minute=8) if state is State.REFUNDED else None,
        stop_reason="initiator" if state is State.REFUNDED else "",
    )


def view(item: Session) -> dict[str, object]:
    return {
        "withdraw_lnurl": bech32_lnurl(f"{BASE}/lnurlw/{item.id}?secret=abc"),
        "topup_lnurl": bech32_lnurl(f"{BASE}/s/{item.id}/topup?secret=abc"),
        "fiat": None,  # a tariff in sats (FrontDoor.session_view always says)
    }


def connector_item(status: str = "Available", busy: str = "") -> dict[str, object]:
    return {
        "connector": profile().connectors[0],
        "lnurl": bech32_lnurl(f"{BASE}/lnurlp/cp-1/1"),
        "fallback_url": connector_fallback_url(BASE, "cp-1", 1),
        "status": status,
        "busy": busy,
    }


@pytest.mark.parametrize("state", list(State))
def test_every_session_state_renders_with_its_text_and_the_right_actions(state: State) -> None:
    item = session(state)
    html = pages().session(profile(), item, view(item))
    assert STATE_TEXT[state] in html
    withdraw = f'href="lightning:{view(item)["withdraw_lnurl"]}"'
    can_withdraw = state in (
        State.PAID,
        State.STARTING,
        State.CHARGING,
        State.STOPPED,
        State.START_FAILED,
    )
    assert (withdraw in html) == can_withdraw
    assert ('data-testid="receipt"' in html) == (
        state in (State.REFUND_PENDING, State.REFUNDED, State.CLOSED)
    )
    assert ("<script>" in html) == (state not in (State.EXPIRED, State.REFUNDED, State.CLOSED))


def test_the_receipt_shows_paid_cost_energy_and_refunded() -> None:
    item = session(State.REFUNDED)
    html = pages().session(profile(), item, view(item))
    for text in (
        "Done — refund paid",
        "2,000 sat",
        "203.500 sat",
        "0.814 kWh",
        "1,796.500 sat",
        "refunded to your wallet",
        "stopped by you",
        "2026-05-01 12:00 UTC",
        "8 min",
    ):
        assert text in html, text


def test_everything_from_outside_is_escaped() -> None:
    hostile = profile(name=HOSTILE, address=HOSTILE)
    item = session(State.CHARGING)
    for html in (
        pages().session(hostile, item, view(item)),
        pages().charger(hostile, [connector_item(busy=HOSTILE)]),
    ):
        assert HOSTILE not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;quotes&#34;" in html


def test_the_no_real_money_banner_shows_only_for_a_fake_backend() -> None:
    items = [connector_item()]
    assert "NO REAL MONEY" in pages(fake_backend=True).charger(profile(), items)
    assert "NO REAL MONEY" not in pages().charger(profile(), items)
    item = session(State.CHARGING)
    assert "NO REAL MONEY" in pages(fake_backend=True).session(profile(), item, view(item))


def test_a_busy_connector_offers_nothing_to_pay() -> None:
    html = pages().charger(profile(), [connector_item("Charging", "this charger is in use")])
    assert "lightning:" not in html
    assert "<svg" not in html.split('data-testid="connector-1"', 1)[1]
    assert "This charger is in use" in html


@pytest.mark.parametrize(
    ("status", "busy", "label"),
    [
        ("Available", "", "Free"),
        ("Preparing", "", "Free"),
        ("Charging", "this charger is in use by someone else right now", "In use"),
        ("Faulted", "this connector is faulted right now", "Out of service"),
        ("Available", "this connector is out of service; nothing was charged", "Out of service"),
        ("Unknown", "connector 1 is not known", "Offline"),
    ],
)
def test_connector_status_reads_for_a_driver(status: str, busy: str, label: str) -> None:
    assert connector_status(status, busy).label == label


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "under 1 min"),
        (59, "under 1 min"),
        (60, "1 min"),
        (3_599, "59 min"),
        (3_600, "1 h 00 min"),
        (3_660, "1 h 01 min"),
    ],
)
def test_durations(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_a_dynamic_tariffs_receipt_lists_each_interval_and_the_idle_fee() -> None:
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    schedule = PriceSchedule(
        (
            PriceInterval(at, at.replace(hour=13), 200_000),
            PriceInterval(at.replace(hour=13), at.replace(hour=14), 350_500),
        ),
        source="tou:profile",
        fetched_at=at,
    )
    tariff = replace(profile().tariff.to_tariff(), idle_msat_per_minute=2_000)
    item = replace(
        session(State.REFUNDED),
        tariff=tariff,
        schedule=schedule,
        interval_wh=(600, 214),
        idle_s=300,
    )
    html = pages().session(profile(), item, view(item))
    assert html.count('data-testid="interval"') == 2
    assert "0.600 kWh" in html
    assert "200 sat/kWh" in html
    assert "350.500 sat/kWh" in html
    assert "75.007 sat" in html  # 214 Wh x 350.5 sat/kWh, floored to the msat
    assert "tou:profile" in html
    assert "by the hour, as below" in html
    assert 'data-testid="idle-fee"' in html
    assert "10 sat" in html  # 5 idle minutes x 2 sat


def test_a_static_tariffs_receipt_has_no_interval_table() -> None:
    item = session(State.REFUNDED)
    html = pages().session(profile(), item, view(item))
    assert 'data-testid="intervals"' not in html
    assert "250 sat/kWh" in html


def test_a_running_session_says_the_idle_fee_runs_once_the_car_finished() -> None:
    tariff = replace(profile().tariff.to_tariff(), idle_msat_per_minute=2_000, idle_grace_minutes=5)
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    item = replace(session(State.CHARGING), tariff=tariff, idle_since=at.replace(minute=1))
    html = pages().session(profile(), item, view(item))
    assert 'data-testid="idling"' in html
    assert "after 5 free minutes, idling costs 2 sat per minute (so far 2 sat)" in html
    plain = replace(item, idle_since=None)
    assert 'data-testid="idling"' not in pages().session(profile(), plain, view(plain))
