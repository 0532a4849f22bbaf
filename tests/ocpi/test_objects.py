"""Strom's chargers, tariffs, sessions and bills as OCPI 2.2.1 objects (pure mapping)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpi_server.objects import (
    ObjectError,
    Party,
    Pricing,
    bill,
    cdr,
    dumps,
    evse_id,
    evse_patch,
    evse_status,
    location,
    session,
    session_status,
    tariff,
    terms_from_config,
)
from strom_core.prices import PriceInterval, PriceSchedule
from strom_core.session import State
from tests.ocpi.objects_samples import NOW, PARTY, PROFILES, RATE, charged, profile

BTC = Pricing.bitcoin()
EUR = Pricing.fiat("EUR", RATE)
_LAT = re.compile(r"-?[0-9]{1,2}\.[0-9]{5,7}")
_LON = re.compile(r"-?[0-9]{1,3}\.[0-9]{5,7}")
_EMI3 = re.compile(r"[A-Z]{2}\*[A-Z0-9]{3}\*E[A-Z0-9*]{1,31}")


def _components(obj: dict, element: int = -1) -> dict[str, Decimal]:
    return {c["type"]: c["price"] for c in obj["elements"][element]["price_components"]}


@pytest.mark.parametrize(
    ("ocpp", "ocpi"),
    [
        ("Available", "AVAILABLE"),
        ("Preparing", "CHARGING"),
        ("Charging", "CHARGING"),
        ("SuspendedEV", "CHARGING"),
        ("SuspendedEVSE", "CHARGING"),
        ("Finishing", "BLOCKED"),
        ("Occupied", "CHARGING"),
        ("Reserved", "RESERVED"),
        ("Unavailable", "INOPERATIVE"),
        ("Faulted", "OUTOFORDER"),
        ("Exploded", "UNKNOWN"),
        (None, "UNKNOWN"),
    ],
)
def test_ocpp_connector_statuses_map_to_ocpi_evse_statuses(ocpp: str | None, ocpi: str) -> None:
    assert evse_status(ocpp) == ocpi


def test_a_status_change_is_a_patch_of_status_and_last_updated() -> None:
    assert evse_patch("Faulted", NOW) == {
        "status": "OUTOFORDER",
        "last_updated": "2025-03-14T12:00:00Z",
    }


def test_an_ac_charger_is_one_location_with_one_evse_per_connector() -> None:
    obj = location(PROFILES["ac"], {1: "Available"}, PARTY, NOW, tariff_ids=["cp-1"])
    assert (obj["id"], obj["country_code"], obj["party_id"]) == ("cp-1", "DE", "STR")
    assert (obj["address"], obj["postal_code"], obj["city"], obj["country"]) == (
        "Hauptstraße 1",
        "10115",
        "Berlin",
        "DEU",
    )
    assert _LAT.fullmatch(obj["coordinates"]["latitude"])
    assert _LON.fullmatch(obj["coordinates"]["longitude"])
    assert obj["time_zone"] == "UTC"
    (evse,) = obj["evses"]
    assert evse["status"] == "AVAILABLE"
    assert evse["evse_id"] == "DE*STR*ECP*1*1"
    (connector,) = evse["connectors"]
    assert connector["standard"] == "IEC_62196_T2"
    assert connector["power_type"] == "AC_3_PHASE"
    # 22 kW on three phases of 230 V: 32 A per phase
    assert (connector["max_voltage"], connector["max_amperage"]) == (230, 32)
    assert connector["max_electric_power"] == 22_000
    assert connector["tariff_ids"] == ["cp-1"]


def test_a_dc_charger_with_two_connectors_has_two_evses_each_with_its_status() -> None:
    obj = location(PROFILES["dc2"], {1: "Charging"}, PARTY, NOW, tariff_ids=["cp-1"])
    ccs, chademo = obj["evses"]
    assert (ccs["status"], chademo["status"]) == ("CHARGING", "UNKNOWN")
    assert ccs["connectors"][0]["standard"] == "IEC_62196_T2_COMBO"
    assert chademo["connectors"][0]["standard"] == "CHADEMO"
    assert {e["connectors"][0]["power_type"] for e in obj["evses"]} == {"DC"}
    assert ccs["uid"] != chademo["uid"]


@pytest.mark.parametrize(
    ("strom_type", "standard"),
    [
        ("Type2", "IEC_62196_T2"),
        ("type 2", "IEC_62196_T2"),
        ("Type1", "IEC_62196_T1"),
        ("CCS", "IEC_62196_T2_COMBO"),
        ("CCS2", "IEC_62196_T2_COMBO"),
        ("CCS1", "IEC_62196_T1_COMBO"),
        ("CHAdeMO", "CHADEMO"),
        ("Schuko", "DOMESTIC_F"),
        ("Tesla", "TESLA_S"),
        ("IEC_62196_T2", "IEC_62196_T2"),
    ],
)
def test_strom_connector_types_map_to_ocpi_standards(strom_type: str, standard: str) -> None:
    prof = profile({"per_kwh_sat": "1"}, [{"id": 1, "type": strom_type, "max_power_kw": "11"}])
    obj = location(prof, {}, PARTY, NOW, tariff_ids=[])
    assert obj["evses"][0]["connectors"][0]["standard"] == standard


def test_an_unknown_connector_type_is_a_clear_error() -> None:
    prof = profile(
        {"per_kwh_sat": "1"}, [{"id": 1, "type": "Lightning bolt", "max_power_kw": "11"}]
    )
    with pytest.raises(ObjectError, match="'Lightning bolt' has no OCPI standard"):
        location(prof, {}, PARTY, NOW, tariff_ids=[])


def test_evse_ids_are_emi3_whatever_the_charger_id() -> None:
    assert evse_id(PARTY, "hof_laden.2", 3) == "DE*STR*EHOF*LADEN*2*3"
    assert _EMI3.fullmatch(evse_id(PARTY, "a" * 29, 9))
    with pytest.raises(ObjectError, match="too long for an eMI3"):
        evse_id(PARTY, "a" * 30, 10)


def test_a_charger_id_longer_than_ocpi_allows_is_refused() -> None:
    prof = PROFILES["ac"].model_copy(update={"id": "c" * 37})
    with pytest.raises(ObjectError, match="location id"):
        location(prof, {}, PARTY, NOW, tariff_ids=[])


def test_party_codes_are_checked() -> None:
    with pytest.raises(ObjectError, match="alpha-2"):
        Party("DEU", "STR")
    with pytest.raises(ObjectError, match="party_id"):
        Party("DE", "ST")


def test_a_static_tariff_in_euro_converts_each_component_at_the_rate() -> None:
    terms = terms_from_config(PROFILES["ac"].tariff)
    obj = tariff("cp-1", terms, PARTY, EUR, NOW)
    # 250 sat/kWh at 90,000 EUR/BTC = 0.225 EUR; 1 sat/min = 0.054 EUR/h; 100 sat = 0.09 EUR
    assert _components(obj) == {
        "ENERGY": Decimal("0.2250"),
        "TIME": Decimal("0.0540"),
        "PARKING_TIME": Decimal("0.0540"),
        "FLAT": Decimal("0.0900"),
    }
    assert obj["currency"] == "EUR"
    assert "250 sat/kWh" in obj["tariff_alt_text"][0]["text"]


def test_bitcoin_prices_carry_every_msat() -> None:
    terms = terms_from_config(profile({"per_kwh_sat": "5"}).tariff)
    obj = tariff("cp-1", terms, PARTY, BTC, NOW)
    assert obj["currency"] == "BTC"
    assert b'"price":0.00000005,' in dumps(obj)
    tiny = terms_from_config(profile({"per_kwh_sat": "0.001"}).tariff)
    assert _components(tariff("cp-1", tiny, PARTY, BTC, NOW))["ENERGY"] == Decimal("1E-11")


def test_fiat_rounding_is_down_to_four_decimals() -> None:
    assert EUR.amount(1_111) == Decimal("0.0009")  # 0.00099990 EUR exactly
    assert EUR.amount(1) == Decimal("0.0000")


def test_time_of_use_windows_become_daily_restrictions_before_the_fallback() -> None:
    terms = terms_from_config(PROFILES["tou"].tariff)
    obj = tariff("cp-1", terms, PARTY, BTC, NOW)
    day, night, fallback = obj["elements"]
    assert day["restrictions"] == {"start_time": "07:00", "end_time": "22:00"}
    assert night["restrictions"] == {"start_time": "22:00", "end_time": "07:00"}  # wraps
    assert _components(obj, 0) == {"ENERGY": Decimal("0.0000045")}
    assert "restrictions" not in fallback
    assert _components(obj)["ENERGY"] == Decimal("0.000003")
    loc = location(PROFILES["tou"], {}, PARTY, NOW, tariff_ids=["cp-1"])
    assert loc["time_zone"] == "Europe/Berlin"  # the windows' clock


def test_a_dynamic_schedule_is_one_dated_element_per_interval_split_at_local_midnight() -> None:
    prof = profile(
        {"time_zone": "Europe/Berlin", "dynamic": {"provider": "awattar", "area": "DE-LU"}}
    )
    start = datetime(2025, 1, 10, 22, 30, tzinfo=UTC)  # 23:30 in Berlin (CET)
    sched = PriceSchedule(
        (
            PriceInterval(start, start + timedelta(hours=1), 100_000),
            PriceInterval(start + timedelta(hours=1), start + timedelta(hours=2), 120_000),
        ),
        source="awattar:DE-LU",
        fetched_at=start,
    )
    terms = terms_from_config(prof.tariff, schedule=sched)
    obj = tariff("cp-1", terms, PARTY, BTC, start)
    restrictions = [e.get("restrictions") for e in obj["elements"]]
    assert restrictions == [
        {
            "start_time": "23:30",
            "end_time": "00:00",
            "start_date": "2025-01-10",
            "end_date": "2025-01-11",
        },
        {
            "start_time": "00:00",
            "end_time": "00:30",
            "start_date": "2025-01-11",
            "end_date": "2025-01-12",
        },
        {
            "start_time": "00:30",
            "end_time": "01:30",
            "start_date": "2025-01-11",
            "end_date": "2025-01-12",
        },
        None,
    ]
    # after the known prices the last one holds, as Strom bills
    assert _components(obj)["ENERGY"] == Decimal("0.0000012")
    later = tariff("cp-1", terms, PARTY, BTC, start + timedelta(hours=1))
    assert len(later["elements"]) == 2  # past intervals are not published again


def test_a_dynamic_tariff_needs_its_schedule() -> None:
    with pytest.raises(ObjectError, match="schedule"):
        terms_from_config(PROFILES["dynamic"].tariff)


def test_fiat_components_are_published_as_written_in_their_currency() -> None:
    terms = terms_from_config(PROFILES["fiat"].tariff)
    obj = tariff("cp-1", terms, PARTY, EUR, NOW)
    assert _components(obj)["ENERGY"] == Decimal("0.39")
    assert _components(obj)["TIME"] == Decimal("0.60")
    with pytest.raises(ObjectError, match="priced in EUR"):
        tariff("cp-1", terms, PARTY, BTC, NOW)
    converted = terms_from_config(PROFILES["fiat"].tariff, fiat_rate=RATE)
    btc = tariff("cp-1", converted, PARTY, BTC, NOW)
    assert _components(btc)["ENERGY"] == Decimal("0.00000433333")  # 0.39 / 90,000, floored


def test_the_idle_fee_adds_to_parking_time_and_its_grace_is_stated() -> None:
    obj = tariff("cp-1", terms_from_config(PROFILES["idle"].tariff), PARTY, BTC, NOW)
    assert _components(obj)["PARKING_TIME"] == Decimal("0.000006")  # 10 sat/min = 600 sat/h
    assert "TIME" not in _components(obj)
    assert "first 15 min free" in obj["tariff_alt_text"][0]["text"]


@pytest.mark.parametrize(
    ("state", "transaction", "status"),
    [
        (State.AWAITING_PAYMENT, None, "PENDING"),
        (State.PAID, None, "PENDING"),
        (State.RESERVED, None, "RESERVATION"),
        (State.CHARGING, 7, "ACTIVE"),
        (State.STOPPING, 7, "ACTIVE"),
        (State.STOPPED, 7, "COMPLETED"),
        (State.CLOSED, 7, "COMPLETED"),
        (State.EXPIRED, None, "INVALID"),
        (State.START_FAILED, None, "INVALID"),
        (State.REFUNDED, None, "INVALID"),
    ],
)
def test_strom_states_map_to_ocpi_session_statuses(
    state: State, transaction: int | None, status: str
) -> None:
    s = replace(charged("ac"), state=state, transaction_id=transaction, consumed_msat=0)
    assert session_status(s) == status


def test_a_running_session_is_active_with_its_energy_and_cost_so_far() -> None:
    s = charged("ac")
    running = replace(s, state=State.CHARGING, stopped_at=None)
    obj = session(running, PROFILES["ac"], PARTY, BTC, NOW, tariff_id="cp-1")
    assert obj["status"] == "ACTIVE"
    assert "end_date_time" not in obj
    assert obj["kwh"] == Decimal("9")
    assert obj["auth_method"] == "COMMAND"
    assert obj["cdr_token"]["type"] == "AD_HOC_USER"
    assert (obj["location_id"], obj["evse_uid"], obj["connector_id"]) == ("cp-1", "cp-1-1", "1")
    assert obj["total_cost"] == {"excl_vat": BTC.amount(s.consumed_msat)} | {
        "incl_vat": BTC.amount(s.consumed_msat)
    }


def test_a_card_session_is_whitelisted_rfid() -> None:
    s = charged("ac", postpaid=True)
    obj = session(s, PROFILES["ac"], PARTY, BTC, NOW, tariff_id="cp-1")
    assert (obj["auth_method"], obj["cdr_token"]["type"]) == ("WHITELIST", "RFID")
    assert obj["total_cost"]["excl_vat"] == BTC.amount(s.postpaid_msat)


def test_the_cdr_total_is_strom_bill_and_its_parts_add_up_to_it() -> None:
    s = charged("idle", idle_after_s=2_000)
    obj = cdr(s, PROFILES["idle"], PARTY, EUR, NOW, tariff_id="cp-1")
    assert obj["total_cost"]["excl_vat"] == EUR.amount(s.consumed_msat)
    parts = ("total_fixed_cost", "total_energy_cost", "total_time_cost", "total_parking_cost")
    assert sum(obj[p]["excl_vat"] for p in parts) == obj["total_cost"]["excl_vat"]
    # 2,000 s idle, 15 min grace: 18 whole minutes at 10 sat
    assert bill(s).parking == 180_000
    _charging, parking = obj["charging_periods"]
    # 2,000 s each way; rounded on running totals: 0.5556 charging, 1.1111 in all
    assert parking["dimensions"] == [{"type": "PARKING_TIME", "volume": Decimal("0.5555")}]
    assert parking["start_date_time"] == "2025-03-14T10:13:20Z"
    assert obj["total_parking_time"] == Decimal("0.5555")
    assert obj["total_time"] == Decimal("1.1111")
    assert obj["cdr_location"]["evse_id"] == "DE*STR*ECP*1*1"


def test_the_cap_at_the_prepayment_is_taken_off_and_stated() -> None:
    s = charged("ac", paid_msat=2_000_000)
    parts = bill(s)
    assert parts.total == s.consumed_msat == 2_000_000
    assert sum(parts.parts) == parts.total
    assert parts.unbilled > 0
    obj = cdr(s, PROFILES["ac"], PARTY, BTC, NOW, tariff_id="cp-1")
    assert "capped at the prepayment" in obj["remark"]


def test_a_dynamic_session_has_one_period_per_interval_it_charged_in() -> None:
    s = charged("dynamic")
    obj = cdr(s, PROFILES["dynamic"], PARTY, BTC, NOW, tariff_id="cp-1")
    starts = [p["start_date_time"] for p in obj["charging_periods"]]
    assert starts == ["2025-03-14T09:40:00Z", "2025-03-14T10:00:00Z"]
    energies = [p["dimensions"][0]["volume"] for p in obj["charging_periods"]]
    assert sum(energies) == obj["total_energy"] == Decimal(s.energy_wh) / 1000
    # the CDR's tariff still has the intervals the session used
    assert len(obj["tariffs"][0]["elements"]) > 2


def test_a_session_without_a_final_bill_has_no_cdr() -> None:
    running = replace(charged("ac"), state=State.CHARGING, stopped_at=None)
    with pytest.raises(ObjectError, match="no final bill"):
        cdr(running, PROFILES["ac"], PARTY, BTC, NOW, tariff_id="cp-1")


def test_dumps_writes_decimals_exactly_and_valid_json() -> None:
    text = dumps({"a": Decimal("0.00000005"), "b": [Decimal("2.5000"), Decimal(0)], "c": "ü"})
    assert text == '{"a":0.00000005,"b":[2.5,0],"c":"ü"}'.encode()
    assert json.loads(text)["a"] == 5e-08


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(["ac", "dynamic", "fiat", "idle", "tou"]),
    paid_sat=st.integers(1_000, 60_000),
    steps=st.lists(st.tuples(st.integers(1, 900), st.integers(0, 3_000)), min_size=1, max_size=8),
    idle_tail=st.integers(0, 3_000),
    eur=st.booleans(),
)
def test_property_cdr_parts_and_periods_add_up_to_the_bill(
    name: str, paid_sat: int, steps: list[tuple[int, int]], idle_tail: int, eur: bool
) -> None:
    readings, at, wh = [], 0, 0
    for seconds, energy in steps:
        at, wh = at + seconds, wh + energy
        readings.append((at, wh))
    s = charged(
        name,
        paid_msat=paid_sat * 1000,
        readings=readings,
        idle_after_s=at if idle_tail else None,
        stop_s=at + idle_tail,
    )
    pricing = EUR if eur else BTC
    obj = cdr(s, PROFILES[name], PARTY, pricing, NOW, tariff_id="cp-1")
    parts = bill(s)
    assert sum(parts.parts) == parts.total == s.consumed_msat
    assert obj["total_cost"]["excl_vat"] == pricing.amount(s.consumed_msat)
    money = ("total_fixed_cost", "total_energy_cost", "total_time_cost", "total_parking_cost")
    assert sum(obj[m]["excl_vat"] for m in money) == obj["total_cost"]["excl_vat"]
    volumes: dict[str, Decimal] = {
        "ENERGY": Decimal(0),
        "TIME": Decimal(0),
        "PARKING_TIME": Decimal(0),
    }
    for period in obj["charging_periods"]:
        for dimension in period["dimensions"]:
            volumes[dimension["type"]] += dimension["volume"]
    assert volumes["ENERGY"] == obj["total_energy"] == Decimal(s.energy_wh) / 1000
    assert volumes["TIME"] + volumes["PARKING_TIME"] == obj["total_time"]
    assert volumes["PARKING_TIME"] == obj["total_parking_time"]
    starts = [p["start_date_time"] for p in obj["charging_periods"]]
    assert starts == sorted(starts)
