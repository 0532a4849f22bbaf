"""The currency Strom publishes its OCPI prices and costs in, and the msat conversion to it.

Theory of operation
-------------------
Strom bills in integer msat. An OCPI price or cost is a ``number`` in one currency (a Tariff's,
a Session's or a CDR's ``currency``). :class:`Pricing` says which, and converts exactly:

* **Fiat** (``Pricing.fiat("EUR", rate)``, an ISO 4217 code and the rate in fiat per BTC the
  caller chose: the session's own billed rate for a session or CDR, the current rate for a
  published tariff): ``amount = msat x rate / 10^11`` computed on Decimal without loss, then
  **rounded down** to 4 decimals (the OCPI default for numbers). Down, as everywhere in Strom:
  a converted price or cost is never above the exact one.
* **Bitcoin** (``Pricing.bitcoin()``): the code ``"BTC"`` with **11 decimals**, so every msat
  is carried exactly (1 msat = 0.00000000001 BTC). This is Strom's bitcoin settlement
  extension and a deliberate deviation: ISO 4217 has no code for bitcoin (``XBT`` is an
  unofficial one that exchanges rarely use; ``BTC`` is what wallets and exchanges show) and
  OCPI numbers default to 4 decimals, which cannot carry 5 sat/kWh (0.00000005 BTC). A partner
  that settles in bitcoin agrees to both bilaterally; one that does not gets fiat.

Totals and their parts: the parts of a cost (fixed, energy, time, parking) are converted with
:func:`~ocpi_server.objects._common.split_exact`, so they add up to the converted total exactly.

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Final

from ocpi_server.objects._common import ObjectError
from strom_core.fiat import MSAT_PER_BTC

__all__ = ["BITCOIN", "BTC_DECIMALS", "FIAT_DECIMALS", "Pricing"]

BITCOIN: Final = "BTC"
BTC_DECIMALS: Final = 11  # 1 msat
FIAT_DECIMALS: Final = 4  # types.asciidoc: numbers use 4 decimals
_ISO_4217: Final = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class Pricing:
    """One currency for OCPI amounts and how msat become it.

    Attributes:
        currency: ISO 4217 code, or ``"BTC"``.
        rate: fiat per BTC (None for bitcoin).
    """

    currency: str
    rate: Decimal | None = None

    def __post_init__(self) -> None:
        if self.currency == BITCOIN:
            if self.rate is not None:
                raise ObjectError("bitcoin amounts need no exchange rate")
            return
        if not _ISO_4217.fullmatch(self.currency):
            raise ObjectError(f"currency {self.currency!r}: expected an ISO 4217 code or BTC")
        if self.rate is None or not self.rate.is_finite() or self.rate <= 0:
            raise ObjectError(
                f"prices in {self.currency} need a positive exchange rate ({self.currency} per "
                f"BTC), got {self.rate}"
            )

    @classmethod
    def fiat(cls, currency: str, rate: Decimal) -> Pricing:
        """Amounts in ``currency`` at ``rate`` (``currency`` per BTC)."""
        return cls(currency, rate)

    @classmethod
    def bitcoin(cls) -> Pricing:
        """Amounts in BTC, msat-exact (11 decimals)."""
        return cls(BITCOIN)

    @property
    def is_bitcoin(self) -> bool:
        """Whether amounts are in BTC."""
        return self.currency == BITCOIN

    @property
    def decimals(self) -> int:
        """How many decimals an amount carries."""
        return BTC_DECIMALS if self.is_bitcoin else FIAT_DECIMALS

    def amount(self, msat: int | Decimal) -> Decimal:
        """``msat`` (an integer, or a Decimal for a price per unit) in the currency, floored.

        Bitcoin is exact for whole msat; fiat is rounded down to 4 decimals.
        """
        btc = Decimal(msat) / MSAT_PER_BTC
        exact = btc if self.rate is None else btc * self.rate
        return exact.quantize(Decimal(1).scaleb(-self.decimals), rounding=ROUND_FLOOR)

    def written(self, amount: Decimal) -> Decimal:
        """An amount already in this currency (a fiat price as the operator wrote it), floored."""
        return amount.quantize(Decimal(1).scaleb(-self.decimals), rounding=ROUND_FLOOR)
