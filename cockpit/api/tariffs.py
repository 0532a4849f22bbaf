"""``/chargers/{charger_id}/tariff``: the tariff new sessions get, changed and previewed.

A change is saved to the profile file and becomes the tariff in force at once (the operator's
newest decision, :class:`strom_services.tariffs.TariffBook`); the status event shows it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from pydantic import ValidationError

from cockpit import models as m
from cockpit.api.answers import sat
from cockpit.api.context import ApiContext
from cockpit.endpoint import ApiError, Call, Endpoint, validation_text
from strom_core.config import DynamicTariffConfig, ProfileConfig, TariffConfig
from strom_core.errors import ConfigError
from strom_core.tariff import Tariff
from strom_core.units import WH_PER_KWH, sat_decimal_to_msat

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


def _mode(config: TariffConfig) -> m.TariffMode:
    if config.dynamic_price is not None:
        return "dynamic"
    return "time_of_use" if config.time_of_use else "static"


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _dynamic_out(config: DynamicTariffConfig | None) -> m.DynamicOut | None:
    if config is None:
        return None
    return m.DynamicOut(
        provider=config.provider,
        area=config.area,
        currency=config.currency,
        grid_fees=_plain(config.grid_fees),
        taxes=_plain(config.taxes),
        margin=_plain(config.margin),
        min=None if config.min is None else _plain(config.min),
        max=None if config.max is None else _plain(config.max),
        token=config.token,
        refresh_at=list(config.refresh_at),
    )


_FIAT_KEYS: Final = (
    "currency",
    "per_kwh",
    "per_minute",
    "session_fee",
    "idle_per_minute",
    "convert",
    "rate_headroom_percent",
)
_FIAT_PRICES: Final = ("per_kwh", "per_minute", "session_fee", "idle_per_minute")


def _fiat_out(config: TariffConfig) -> m.FiatOut | None:
    if config.currency is None:
        return None
    prices = {
        key: None if (value := getattr(config, key)) is None else _plain(value)
        for key in _FIAT_PRICES
    }
    return m.FiatOut(
        currency=config.currency,
        convert=config.convert or "at_payment",
        rate_headroom_percent=config.rate_headroom_percent,
        **prices,
    )


def _fiat_terms(on_file: TariffConfig, patch: m.TariffPatch) -> dict[str, Any]:
    """The fiat components after ``patch``: those on file, with the patch's fields replaced."""
    terms: dict[str, Any] = {key: getattr(on_file, key) for key in _FIAT_KEYS}
    if patch.fiat is not None:
        changes = patch.fiat.model_dump(exclude_unset=True)
        if "currency" in changes and changes["currency"] is None:
            return {}  # no currency: no fiat component at all
        terms.update(changes)
    return {key: value for key, value in terms.items() if value is not None}


def _tariff_out(
    charger_id: str, tariff: Tariff, config: TariffConfig, power_w: int, saved: bool
) -> m.TariffOut:
    """The answer: ``tariff`` (the prices in force) and ``config``'s energy price source."""
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
        mode=_mode(config),
        time_zone=config.time_zone,
        time_of_use={
            window: sat(sat_decimal_to_msat(price))
            for window, price in sorted(config.time_of_use.items())
        },
        dynamic=_dynamic_out(config.dynamic_price),
        fiat=_fiat_out(config),
        quotes=quotes(tariff, power_w),
        saved=saved,
    )


def _power_w(profile: ProfileConfig) -> int:
    return max(c.max_power_w for c in profile.connectors)


def _energy_source(on_file: TariffConfig, patch: m.TariffPatch) -> dict[str, Any]:
    """The energy price's source after ``patch``: time-of-use windows, a formula, or neither.

    Raises:
        ApiError: the mode chosen lacks what it needs (no window, no provider and area).
    """
    mode = patch.mode
    if mode is None:
        if patch.dynamic is not None:
            mode = "dynamic"
        elif patch.time_of_use is not None:
            mode = "time_of_use"
        else:
            mode = _mode(on_file)
    time_zone = patch.time_zone if patch.time_zone is not None else on_file.time_zone
    source: dict[str, Any] = {"time_zone": time_zone, "time_of_use": {}, "dynamic_price": None}
    if mode == "time_of_use":
        windows = patch.time_of_use if patch.time_of_use is not None else on_file.time_of_use
        if not windows:
            raise ApiError(400, "bad_request", "tariff: time of use needs at least one window")
        source["time_of_use"] = dict(windows)
    elif mode == "dynamic":
        formula: dict[str, Any] = (
            {} if on_file.dynamic_price is None else on_file.dynamic_price.model_dump()
        )
        if patch.dynamic is not None:
            formula.update(patch.dynamic.model_dump(exclude_unset=True))
        if not formula.get("provider") or not formula.get("area"):
            raise ApiError(
                400, "bad_request", "tariff: a dynamic tariff needs a provider and an area"
            )
        source["dynamic_price"] = {k: v for k, v in formula.items() if v is not None}
    return source


class TariffsResource:
    """Each charger's tariff in force."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def get_tariff(self, call: Call) -> m.TariffOut:
        """``GET /chargers/{charger_id}/tariff``."""
        profile = self.ctx.profile(call)
        tariff = self.ctx.payments.tariff_for(profile)
        return _tariff_out(profile.id, tariff, profile.tariff, _power_w(profile), saved=True)

    def _patched_tariff(self, profile: ProfileConfig, patch: m.TariffPatch) -> TariffConfig:
        """The tariff in force with the fields ``patch`` names replaced (the rest unchanged).

        The prices come from the tariff in force (a price set by DM included); the energy
        price's source (time-of-use windows, the dynamic formula) from the profile file.
        """
        current = self.ctx.payments.tariff_for(profile)
        fields = {
            "per_kwh_sat": current.energy_msat_per_kwh,
            "per_minute_sat": current.time_msat_per_minute,
            "session_fee_sat": current.session_fee_msat,
            "min_prepay_sat": current.min_prepay_msat,
            "max_prepay_sat": current.max_prepay_msat,
            # Reservation terms and the idle fee the patch does not name stay, like the prices.
            "reservation_fee_sat": current.reservation_fee_msat,
            "reservation_fee_per_minute_sat": current.reservation_fee_msat_per_minute,
            "idle_per_minute_sat": current.idle_msat_per_minute,
        }
        merged: dict[str, Any] = {name: Decimal(msat) / 1000 for name, msat in fields.items()}
        merged["reservation_max_minutes"] = current.reservation_max_minutes
        merged["reservation_kept_percent"] = current.reservation_kept_percent
        merged["idle_grace_minutes"] = current.idle_grace_minutes
        merged.update(
            patch.model_dump(exclude_none=True, exclude={"mode", "time_of_use", "dynamic", "fiat"})
        )
        merged.update(_energy_source(profile.tariff, patch))
        # Fiat components on file stay unless the patch changes them: dropping one would make
        # that component free (its sat price is 0 beside it).
        fiat = _fiat_terms(profile.tariff, patch)
        for key in _FIAT_PRICES:
            dropped = getattr(profile.tariff, key) is not None and key not in fiat
            if dropped and getattr(patch, f"{key}_sat") is None:
                raise ApiError(
                    400,
                    "bad_request",
                    f"tariff: the fiat {key} is removed; give {key}_sat, its price in sats",
                )
        merged.update(fiat)
        try:
            return TariffConfig(**merged)
        except ValidationError as exc:
            raise ApiError(400, "bad_request", f"tariff: {validation_text(exc)}") from None

    async def preview_tariff(self, call: Call) -> m.TariffOut:
        """``POST /chargers/{charger_id}/tariff/preview``."""
        profile = self.ctx.profile(call)
        config = self._patched_tariff(profile, call.body)
        return _tariff_out(profile.id, config.to_tariff(), config, _power_w(profile), saved=False)

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
        await ctx.show_in_status(profile.id)  # the status event shows the new price
        call.audit_detail.update(
            mode=_mode(config),
            energy_msat_per_kwh=tariff.energy_msat_per_kwh,
            time_msat_per_minute=tariff.time_msat_per_minute,
            session_fee_msat=tariff.session_fee_msat,
        )
        return _tariff_out(profile.id, tariff, config, _power_w(profile), saved=True)

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
