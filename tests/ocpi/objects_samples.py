"""Profiles and sessions for the OCPI object tests: built through Strom's own config and core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ocpi_server.objects import Party
from strom_core.config import ProfileConfig
from strom_core.fiat import FiatBilling, FiatRate
from strom_core.prices import PriceInterval, PriceSchedule
from strom_core.session import Session, apply, new_session
from strom_core.session_events import (
    MeterReading,
    PaymentSettled,
    RemoteStartAccepted,
    TransactionStarted,
    TransactionStopped,
    VehicleIdle,
)

PARTY = Party("DE", "STR")
NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
START = datetime(2025, 3, 14, 9, 40, tzinfo=UTC)
RATE = Decimal("90000")  # EUR per BTC

_AC: dict[str, Any] = {"id": 1, "type": "Type2", "max_power_kw": "22"}


def profile(
    tariff: dict[str, Any], connectors: list[dict[str, Any]] | None = None
) -> ProfileConfig:
    return ProfileConfig.model_validate(
        {
            "id": "cp-1",
            "name": "Hofladen Müller",
            "location": {"lat": 52.52, "lon": 13.405, "address": "Hauptstraße 1, 10115 Berlin"},
            "connectors": connectors or [_AC],
            "tariff": tariff,
        }
    )


PROFILES: dict[str, ProfileConfig] = {
    "ac": profile({"per_kwh_sat": "250", "per_minute_sat": "1", "session_fee_sat": "100"}),
    "dc2": profile(
        {"per_kwh_sat": "400"},
        [
            {"id": 1, "type": "CCS2", "max_power_kw": "150"},
            {"id": 2, "type": "CHAdeMO", "max_power_kw": "50"},
        ],
    ),
    "tou": profile(
        {
            "per_kwh_sat": "300",
            "time_zone": "Europe/Berlin",
            "time_of_use": {"07:00-22:00": "450", "22:00-07:00": "250"},
        }
    ),
    "dynamic": profile(
        {"per_minute_sat": "0.5", "dynamic": {"provider": "awattar", "area": "DE-LU"}}
    ),
    "fiat": profile({"currency": "EUR", "per_kwh": "0.39", "per_minute": "0.01"}),
    "idle": profile({"per_kwh_sat": "250", "idle_per_minute_sat": "10", "idle_grace_minutes": 15}),
}


def schedule(hours: int = 6) -> PriceSchedule:
    """Hourly prices from START's hour, one of them negative (spot markets)."""
    start = START.replace(minute=0)
    prices = [200_000, 310_500, -20_000, 180_000, 275_250, 260_000]
    return PriceSchedule(
        tuple(
            PriceInterval(
                start + timedelta(hours=i), start + timedelta(hours=i + 1), prices[i % len(prices)]
            )
            for i in range(hours)
        ),
        source="awattar:DE-LU",
        fetched_at=start,
    )


def charged(
    name: str,
    *,
    paid_msat: int = 50_000_000,
    readings: list[tuple[int, int]] = ((1800, 4_000), (3600, 9_000)),  # type: ignore[assignment]
    idle_after_s: int | None = None,
    stop_s: int = 4_000,
    stop_wh: int | None = None,
    postpaid: bool = False,
) -> Session:
    """A session on profile ``name``: paid, started at START, metered, stopped."""
    prof = PROFILES[name]
    tariff = prof.tariff.to_tariff()
    fiat = None
    terms = prof.tariff.to_fiat()
    if terms is not None:
        rate = FiatRate("EUR", RATE, "fixed", START)
        tariff = terms.apply(tariff, rate)
        fiat = FiatBilling(terms, rate)
    sched = schedule() if name == "dynamic" else None
    session = new_session(
        session_id="0123456789abcdef",
        charger_id=prof.id,
        connector_id=1,
        id_tag="S0123456789ABCDE",
        tariff=tariff,
        power_w=22_000,
        meter_interval_s=60,
        start_timeout_s=180,
        payer="free" if postpaid else "",
        schedule=sched,
        fiat=fiat,
    )
    events: list[Any] = []
    if not postpaid:
        events += [PaymentSettled("ab" * 32, paid_msat, START), RemoteStartAccepted()]
    events.append(TransactionStarted(7, 1_000, START))
    for seconds, wh in readings:
        if idle_after_s is not None and seconds > idle_after_s:
            break
        events.append(MeterReading(1_000 + wh, START + timedelta(seconds=seconds)))
    if idle_after_s is not None:
        events.append(VehicleIdle(START + timedelta(seconds=idle_after_s)))
    last = readings[-1][1] if stop_wh is None else stop_wh
    events.append(TransactionStopped(1_000 + last, START + timedelta(seconds=stop_s)))
    for event in events:
        session = apply(session, event).session
    return session
