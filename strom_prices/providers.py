"""The day-ahead spot markets and energy contracts Strom reads prices from.

Each provider is a pure pair: :meth:`Provider.request` says what to ask (URL, query, headers)
and :meth:`Provider.parse` reads the answer's bytes into :class:`~strom_prices.spot.SpotPrice`
rows. No I/O here; :mod:`strom_prices.dynamic` does the fetching. Every provider's prices are
per kWh in its own currency; the conversions from the wire units are exact (Decimal):

========================  ==================================  ==========  ==================
provider                  area                                 currency    wire unit
========================  ==================================  ==========  ==================
``awattar``               ``DE-LU`` or ``AT``                  EUR         EUR/MWh
``energidataservice``     ``DK1``, ``DK2`` (also SE3, NO2 ...) EUR or DKK  EUR (DKK)/MWh
``entsoe``                an EIC bidding zone code             EUR         EUR/MWh
``octopus``               ``<product>/<tariff code>``          GBP         p/kWh incl. VAT
========================  ==================================  ==========  ==================
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol

from strom_prices.errors import ProviderError
from strom_prices.spot import SpotPrice, clean, decimal_of, json_of, utc_of

__all__ = [
    "PROVIDERS",
    "Awattar",
    "EnergiDataService",
    "Entsoe",
    "Octopus",
    "Provider",
    "Request",
    "make_provider",
]

_MWH: Final = Decimal(1000)


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP GET: the URL, its query and its headers."""

    url: str
    params: Mapping[str, str]
    headers: Mapping[str, str]


class Provider(Protocol):
    """A source of spot or contract prices."""

    name: str

    def currency(self, area: str) -> str:
        """The currency of this area's prices."""
        ...

    def request(self, area: str, start: datetime, end: datetime, token: str) -> Request:
        """What to ask for the prices from start to end (UTC)."""
        ...

    def parse(self, body: bytes, area: str) -> tuple[SpotPrice, ...]:
        """The answer's prices, cleaned (see :func:`strom_prices.spot.clean`)."""
        ...


def _utc_ms(source: str, value: object, what: str) -> datetime:
    millis = decimal_of(source, value, what)
    try:
        return datetime.fromtimestamp(0, tz=UTC) + timedelta(milliseconds=int(millis))
    except (OverflowError, ValueError):
        raise ProviderError(f"{source}: {what} is not a time: {value!r}") from None


class Awattar:
    """aWATTar's public market data (EPEX day-ahead), ``/v1/marketdata``, no token.

    Answer: ``{"object": "list", "data": [{"start_timestamp": ms, "end_timestamp": ms,
    "marketprice": 42.1, "unit": "Eur/MWh"}, ...]}``.
    """

    name = "awattar"
    BASES: Final = {"DE-LU": "https://api.awattar.de", "AT": "https://api.awattar.at"}

    def __init__(self, base_url: str = "") -> None:
        self.base_url = base_url

    def currency(self, area: str) -> str:
        self._base(area)
        return "EUR"

    def _base(self, area: str) -> str:
        if area not in self.BASES:
            raise ProviderError(f"awattar: unknown area {area!r}; expected DE-LU or AT")
        return self.base_url or self.BASES[area]

    def request(self, area: str, start: datetime, end: datetime, token: str) -> Request:
        params = {
            "start": str(int(start.timestamp() * 1000)),
            "end": str(int(end.timestamp() * 1000)),
        }
        return Request(self._base(area) + "/v1/marketdata", params, {})

    def parse(self, body: bytes, area: str) -> tuple[SpotPrice, ...]:
        answer = json_of("awattar", body)
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise ProviderError("awattar: the answer has no data list")
        rows = []
        for item in data:
            if not isinstance(item, dict):
                raise ProviderError(f"awattar: a row is not an object: {item!r}")
            unit = str(item.get("unit", "")).lower()
            if unit not in {"eur/mwh", "eur/mwh/mwh"}:
                raise ProviderError(f"awattar: unexpected unit {item.get('unit')!r}")
            rows.append(
                SpotPrice(
                    _utc_ms("awattar", item.get("start_timestamp"), "start_timestamp"),
                    _utc_ms("awattar", item.get("end_timestamp"), "end_timestamp"),
                    decimal_of("awattar", item.get("marketprice"), "marketprice") / _MWH,
                    "EUR",
                )
            )
        return clean("awattar", rows)


class EnergiDataService:
    """Energinet's Energi Data Service, dataset ``DayAheadPrices`` (15-minute, since Oct 2025).

    Answer: ``{"total": n, "dataset": "DayAheadPrices", "records": [{"TimeUTC":
    "2025-10-26T00:00:00", "TimeDK": ..., "PriceArea": "DK1", "DayAheadPriceDKK": 512.3,
    "DayAheadPriceEUR": 68.6}, ...]}``. Only the start is given: each row ends where the next
    one starts, the last one after the series' own step. The retired ``Elspotprices`` dataset
    (``HourUTC``, ``SpotPriceEUR``, hourly) is read too, for older recordings. A row whose price
    is ``null`` is a gap.
    """

    name = "energidataservice"
    BASE: Final = "https://api.energidataservice.dk"

    def __init__(self, base_url: str = "", currency: str = "EUR") -> None:
        if currency not in {"EUR", "DKK"}:
            raise ProviderError("energidataservice: currency must be EUR or DKK")
        self.base_url = base_url or self.BASE
        self._currency = currency

    def currency(self, area: str) -> str:
        return self._currency

    def request(self, area: str, start: datetime, end: datetime, token: str) -> Request:
        params = {
            "start": start.strftime("%Y-%m-%dT%H:%M"),
            "end": end.strftime("%Y-%m-%dT%H:%M"),
            "timezone": "UTC",
            "filter": f'{{"PriceArea":["{area}"]}}',
            "sort": "TimeUTC asc",
            "limit": "0",
        }
        return Request(self.base_url + "/dataset/DayAheadPrices", params, {})

    def parse(self, body: bytes, area: str) -> tuple[SpotPrice, ...]:
        answer = json_of("energidataservice", body)
        records = answer.get("records") if isinstance(answer, dict) else None
        if not isinstance(records, list):
            raise ProviderError("energidataservice: the answer has no records list")
        starts: list[tuple[datetime, Decimal | None]] = []
        for record in records:
            if not isinstance(record, dict):
                raise ProviderError(f"energidataservice: a record is not an object: {record!r}")
            if record.get("PriceArea") != area:
                continue
            starts.append(self._row(record))
        return clean(
            "energidataservice", _ending_at_next(starts, "energidataservice", self._currency)
        )

    def _row(self, record: Mapping[str, Any]) -> tuple[datetime, Decimal | None]:
        if "TimeUTC" in record:
            time_key, price_key = "TimeUTC", f"DayAheadPrice{self._currency}"
        elif "HourUTC" in record:
            time_key, price_key = "HourUTC", f"SpotPrice{self._currency}"
        else:
            raise ProviderError("energidataservice: a record has neither TimeUTC nor HourUTC")
        start = utc_of("energidataservice", record[time_key], time_key)
        if price_key not in record:
            raise ProviderError(f"energidataservice: a record has no {price_key}")
        value = record[price_key]
        if value is None:
            return start, None
        return start, decimal_of("energidataservice", value, price_key) / _MWH


def _ending_at_next(
    starts: list[tuple[datetime, Decimal | None]], source: str, currency: str
) -> list[SpotPrice]:
    """Rows given by start only: each ends at the next start; null prices are left out (gaps)."""
    ordered = sorted({start: price for start, price in reversed(starts)}.items())
    steps = [b[0] - a[0] for a, b in itertools.pairwise(ordered)]
    # The series' own step is its most common one: a missing row (a gap) does not stretch
    # the row before it; clean() fills the gap with the higher neighbour instead.
    step = Counter(steps).most_common(1)[0][0] if steps else timedelta(hours=1)
    rows = [
        SpotPrice(start, start + step, price, currency)
        for start, price in ordered
        if price is not None
    ]
    if not rows:
        raise ProviderError(f"{source}: the answer holds no prices")
    return rows


_ENTSOE_AREAS: Final = {
    "DE-LU": "10Y1001A1001A82H",
    "AT": "10YAT-APG------L",
    "NL": "10YNL----------L",
    "BE": "10YBE----------2",
    "FR": "10YFR-RTE------C",
    "DK1": "10YDK-1--------W",
    "DK2": "10YDK-2--------M",
}


class Entsoe:
    r"""The ENTSO-E Transparency Platform, document A44 (day-ahead prices), security token.

    The answer is a ``Publication_MarketDocument`` (XML): ``TimeSeries`` with
    ``currency_Unit.name`` and ``price_Measure_Unit.name`` (MWH), each with ``Period``\\ s of a
    ``timeInterval`` (UTC) and a ``resolution`` (``PT15M``, ``PT30M``, ``PT60M``) holding
    ``Point``\\ s (``position`` from 1, ``price.amount``). With curve type A03 a position left
    out repeats the price before it (the document's own rule, not a guess). When a zone is
    published at several resolutions the finest wins. No data comes as an
    ``Acknowledgement_MarketDocument`` whose reason text is reported.
    """

    name = "entsoe"
    BASE: Final = "https://web-api.tp.entsoe.eu/api"

    def __init__(self, base_url: str = "") -> None:
        self.base_url = base_url or self.BASE

    def currency(self, area: str) -> str:
        return "EUR"

    def request(self, area: str, start: datetime, end: datetime, token: str) -> Request:
        if not token:
            raise ProviderError("entsoe: no security token configured")
        zone = _ENTSOE_AREAS.get(area, area)
        params = {
            "securityToken": token,
            "documentType": "A44",
            "in_Domain": zone,
            "out_Domain": zone,
            "periodStart": start.strftime("%Y%m%d%H%M"),
            "periodEnd": end.strftime("%Y%m%d%H%M"),
        }
        return Request(self.base_url, params, {})

    def parse(self, body: bytes, area: str) -> tuple[SpotPrice, ...]:
        root = _xml(body)
        kind = _local(root.tag)
        if kind == "Acknowledgement_MarketDocument":
            texts = [e.text or "" for e in root.iter() if _local(e.tag) == "text"]
            raise ProviderError(f"entsoe: no data: {' '.join(texts).strip() or 'no reason given'}")
        if kind != "Publication_MarketDocument":
            raise ProviderError(f"entsoe: unexpected document {kind}")
        by_step: dict[timedelta, list[SpotPrice]] = {}
        for series in _children(root, "TimeSeries"):
            currency = _text(series, "currency_Unit.name")
            unit = _text(series, "price_Measure_Unit.name")
            if unit != "MWH":
                raise ProviderError(f"entsoe: unexpected unit {unit!r}")
            curve = _optional_text(series, "curveType") or "A01"
            for period in _children(series, "Period"):
                step, rows = _period(period, currency, curve)
                by_step.setdefault(step, []).extend(rows)
        if not by_step:
            raise ProviderError("entsoe: no TimeSeries in the answer")
        return clean("entsoe", by_step[min(by_step)])


def _xml(body: bytes) -> ET.Element:
    # The answer comes from the configured ENTSO-E endpoint over HTTPS; Python's expat (2.4.1+)
    # refuses entity-expansion bombs, and no external entities are resolved by ElementTree.
    try:
        return ET.fromstring(body)  # noqa: S314
    except ET.ParseError as exc:
        raise ProviderError(f"entsoe: the answer is not XML ({exc})") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _optional_text(element: ET.Element, name: str) -> str | None:
    found = _children(element, name)
    return (found[0].text or "").strip() if found else None


def _text(element: ET.Element, name: str) -> str:
    value = _optional_text(element, name)
    if not value:
        raise ProviderError(f"entsoe: {name} missing")
    return value


_RESOLUTIONS: Final = {
    "PT15M": timedelta(minutes=15),
    "PT30M": timedelta(minutes=30),
    "PT60M": timedelta(hours=1),
    "PT1H": timedelta(hours=1),
}


def _period(period: ET.Element, currency: str, curve: str) -> tuple[timedelta, list[SpotPrice]]:
    intervals = _children(period, "timeInterval")
    if not intervals:
        raise ProviderError("entsoe: a Period has no timeInterval")
    start = utc_of("entsoe", _text(intervals[0], "start"), "timeInterval start")
    end = utc_of("entsoe", _text(intervals[0], "end"), "timeInterval end")
    resolution = _text(period, "resolution")
    if resolution not in _RESOLUTIONS:
        raise ProviderError(f"entsoe: unknown resolution {resolution!r}")
    step = _RESOLUTIONS[resolution]
    prices: dict[int, Decimal] = {}
    for point in _children(period, "Point"):
        position = int(decimal_of("entsoe", _text(point, "position"), "position"))
        prices[position] = decimal_of("entsoe", _text(point, "price.amount"), "price.amount")
    count = int((end - start) / step)
    if not prices or min(prices) < 1 or max(prices) > count:
        raise ProviderError(f"entsoe: Point positions outside the Period from {start.isoformat()}")
    rows = []
    last: Decimal | None = None
    for position in range(1, count + 1):
        price = prices.get(position)
        if price is None and curve == "A03":
            price = last  # A03: a left-out position keeps the price before it
        if price is not None:
            at = start + step * (position - 1)
            rows.append(SpotPrice(at, at + step, price / _MWH, currency))
            last = price
    return step, rows


class Octopus:
    """Octopus Energy (UK) Agile: public REST, half-hourly unit rates in p/kWh including VAT.

    The area is ``<product code>/<tariff code>``, e.g. ``AGILE-24-10-01/E-1R-AGILE-24-10-01-C``
    (the last letter is the region). Answer: ``{"count": n, "next": null, "results":
    [{"value_exc_vat": 20.1, "value_inc_vat": 21.105, "valid_from": "...Z", "valid_to":
    "...Z", "payment_method": null}, ...]}``, newest first.
    """

    name = "octopus"
    BASE: Final = "https://api.octopus.energy"

    def __init__(self, base_url: str = "") -> None:
        self.base_url = base_url or self.BASE

    def currency(self, area: str) -> str:
        return "GBP"

    def request(self, area: str, start: datetime, end: datetime, token: str) -> Request:
        product, _, tariff = area.partition("/")
        if not product or not tariff or "/" in tariff:
            raise ProviderError("octopus: area must be <product code>/<tariff code>")
        url = (
            f"{self.base_url}/v1/products/{product}/electricity-tariffs/{tariff}"
            "/standard-unit-rates/"
        )
        params = {
            "period_from": start.strftime("%Y-%m-%dT%H:%MZ"),
            "period_to": end.strftime("%Y-%m-%dT%H:%MZ"),
            "page_size": "1500",
        }
        return Request(url, params, {})

    def parse(self, body: bytes, area: str) -> tuple[SpotPrice, ...]:
        answer = json_of("octopus", body)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise ProviderError("octopus: the answer has no results list")
        rows = []
        for item in results:
            if not isinstance(item, dict):
                raise ProviderError(f"octopus: a result is not an object: {item!r}")
            if item.get("payment_method") not in {None, "DIRECT_DEBIT"}:
                continue
            if item.get("valid_to") is None:
                raise ProviderError("octopus: an open-ended rate; not an Agile tariff?")
            rows.append(
                SpotPrice(
                    utc_of("octopus", item.get("valid_from"), "valid_from"),
                    utc_of("octopus", item.get("valid_to"), "valid_to"),
                    decimal_of("octopus", item.get("value_inc_vat"), "value_inc_vat") / 100,
                    "GBP",
                )
            )
        return clean("octopus", rows)


PROVIDERS: Final = ("awattar", "energidataservice", "entsoe", "octopus")
"""The provider names a profile's ``[tariff.dynamic] provider`` may give."""


def make_provider(name: str, currency: str, base_url: str = "") -> Provider:
    """The provider called ``name``; base_url replaces its public address (tests).

    Raises:
        ProviderError: unknown name.
    """
    if name == "awattar":
        return Awattar(base_url)
    if name == "energidataservice":
        return EnergiDataService(base_url, currency)
    if name == "entsoe":
        return Entsoe(base_url)
    if name == "octopus":
        return Octopus(base_url)
    raise ProviderError(f"unknown price provider {name!r}; expected one of {', '.join(PROVIDERS)}")
