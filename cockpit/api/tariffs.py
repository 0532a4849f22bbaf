"""``/chargers/{charger_id}/tariff``: the tariff new sessions get, changed and previewed.

A change is saved to the profile file and becomes the tariff in force at once (the operator's
newest decision, :class:`strom_services.tariffs.TariffBook`); the status event shows it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from cockpit import models as m
from cockpit.api.answers import sat
from cockpit.api.context import ApiContext
from cockpit.endpoint import ApiError, Call, Endpoint, validation_text
from strom_core.config import ProfileConfig, TariffConfig
from strom_core.errors import ConfigError
from strom_core.tariff import Tariff
from strom_core.units import WH_PER_KWH

__all__ = ["TariffsResource", "quotes"]

_QUOTE_KWH = (10, 30)


def quotes(tariff: Tariff, power_w: int) -> list[m.Quote]:
    """What a driver pays for 10 and 30 kWh at ``power_w`` (time price and fee included)."""
    answer = []
    for kwh in _QUOTE_KWH:
        energy_wh = kwh * WH_PER_KWH
        seconds = -(-energy_wh * 3600 // max(power_w, 1))
        total = tariff.quote(energy_wh, seconds)
        answer.append(
            m.Quote(
                energy_wh=energy_wh,
                minutes=-(-seconds // 60),
                total_msat=total,
                total_sat=sat(total),
            )
        )
    return answer


def _tariff_out(charger_id: str, tariff: Tariff, power_w: int, saved: bool) -> m.TariffOut:
    return m.TariffOut(
        charger_id=charger_id,
        per_kwh_sat=sat(tariff.energy_msat_per_kwh),
        per_minute_sat=sat(tariff.time_msat_per_minute),
        session_fee_sat=sat(tariff.session_fee_msat),
        min_prepay_sat=sat(tariff.min_prepay_msat),
        max_prepay_sat=sat(tariff.max_prepay_msat),
        energy_msat_per_kwh=tariff.energy_msat_per_kwh,
        time_msat_per_minute=tariff.time_msat_per_minute,
        session_fee_msat=tariff.session_fee_msat,
        min_prepay_msat=tariff.min_prepay_msat,
        max_prepay_msat=tariff.max_prepay_msat,
        reservation_fee_sat=sat(tariff.reservation_fee_msat),
        reservation_fee_per_minute_sat=sat(tariff.reservation_fee_msat_per_minute),
        reservation_max_minutes=tariff.reservation_max_minutes,
        reservation_kept_percent=tariff.reservation_kept_percent,
        idle_per_minute_sat=sat(tariff.idle_msat_per_minute),
        idle_msat_per_minute=tariff.idle_msat_per_minute,
        idle_grace_minutes=tariff.idle_grace_minutes,
        quotes=quotes(tariff, power_w),
        saved=saved,
    )


def _power_w(profile: ProfileConfig) -> int:
    return max(c.max_power_w for c in profile.connectors)


class TariffsResource:
    """Each charger's tariff in force."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def get_tariff(self, call: Call) -> m.TariffOut:
        """``GET /chargers/{charger_id}/tariff``."""
        profile = self.ctx.profile(call)
        tariff = self.ctx.payments.tariff_for(profile)
        return _tariff_out(profile.id, tariff, _power_w(profile), saved=True)

    def _patched_tariff(self, profile: ProfileConfig, patch: m.TariffPatch) -> TariffConfig:
        """The tariff in force with the fields ``patch`` names replaced (the rest unchanged)."""
        current = self.ctx.payments.tariff_for(profile)
        fields = {
            "per_kwh_sat": current.energy_msat_per_kwh,
            "per_minute_sat": current.time_msat_per_minute,
            "session_fee_sat": current.session_fee_msat,
            "min_prepay_sat": current.min_prepay_msat,
            "max_prepay_sat": current.max_prepay_msat,
        }
        merged: dict[str, Any] = {name: Decimal(msat) / 1000 for name, msat in fields.items()}
        # Reservation terms the patch does not name stay as they are, like the prices.
        merged["reservation_fee_sat"] = Decimal(current.reservation_fee_msat) / 1000
        merged["reservation_fee_per_minute_sat"] = (
            Decimal(current.reservation_fee_msat_per_minute) / 1000
        )
        merged["reservation_max_minutes"] = current.reservation_max_minutes
        merged["reservation_kept_percent"] = current.reservation_kept_percent
        merged["idle_per_minute_sat"] = Decimal(current.idle_msat_per_minute) / 1000
        merged["idle_grace_minutes"] = current.idle_grace_minutes
        # What the profile file holds beside the prices (time-of-use windows, [tariff.dynamic])
        # stays too: a price change must not turn a dynamic tariff static.
        merged["time_zone"] = profile.tariff.time_zone
        merged["time_of_use"] = dict(profile.tariff.time_of_use)
        merged["dynamic_price"] = profile.tariff.dynamic_price
        merged.update(patch.model_dump(exclude_none=True))
        try:
            return TariffConfig(**merged)
        except ValidationError as exc:
            raise ApiError(400, "bad_request", f"tariff: {validation_text(exc)}") from None

    async def preview_tariff(self, call: Call) -> m.TariffOut:
        """``POST /chargers/{charger_id}/tariff/preview``."""
        profile = self.ctx.profile(call)
        tariff = self._patched_tariff(profile, call.body).to_tariff()
        return _tariff_out(profile.id, tariff, _power_w(profile), saved=False)

    async def put_tariff(self, call: Call) -> m.TariffOut:
        """``PUT /chargers/{charger_id}/tariff``."""
        ctx = self.ctx
        profile = ctx.profile(call)
        config = self._patched_tariff(profile, call.body)
        try:
            written = ctx.files.write_tariff(profile.id, config)
        except ConfigError as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        if ctx.apply_profile is not None:
            await ctx.apply_profile(written)
        tariff = config.to_tariff()
        await ctx.payments.tariffs.set(
            ctx.config.profile(profile.id), tariff, source=f"api:{call.principal.actor}"
        )
        ctx.payments.forget_view()
        ctx.agent(profile.id).mark_dirty()  # the status event shows the new price
        call.audit_detail.update(
            energy_msat_per_kwh=tariff.energy_msat_per_kwh,
            time_msat_per_minute=tariff.time_msat_per_minute,
            session_fee_msat=tariff.session_fee_msat,
        )
        return _tariff_out(profile.id, tariff, _power_w(profile), saved=True)

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        e = Endpoint
        return [
            e(
                "GET",
                "/chargers/{charger_id}/tariff",
                self.get_tariff,
                "The tariff new sessions get, with what 10 and 30 kWh cost",
                "tariffs",
                m.TariffOut,
            ),
            e(
                "PUT",
                "/chargers/{charger_id}/tariff",
                self.put_tariff,
                "Change the tariff: the prices given replace those in force, the rest stay "
                "(saved to the profile file; new sessions get it at once)",
                "tariffs",
                m.TariffOut,
                body=m.TariffPatch,
                action="tariff.set",
                target="charger_id",
            ),
            e(
                "POST",
                "/chargers/{charger_id}/tariff/preview",
                self.preview_tariff,
                "What a driver would pay for 10 and 30 kWh under the tariff in force with the "
                "prices given replaced (changes nothing)",
                "tariffs",
                m.TariffOut,
                body=m.TariffPatch,
            ),
        ]
