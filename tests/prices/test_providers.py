"""Each provider's answers, read from recorded files: shapes, resolutions, gaps, DST, errors."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from strom_prices import ProviderError, SpotPrice, clean
from strom_prices.providers import Awattar, EnergiDataService, Entsoe, Octopus, make_provider
from tests.prices.fixtures import fixture


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _contiguous(rows: tuple[SpotPrice, ...]) -> bool:
    return all(a.end == b.start for a, b in itertools.pairwise(rows))


def test_awattar_dst_spring_day_has_23_hours_and_keeps_negative_prices() -> None:
    rows = Awattar().parse(fixture("awattar_de_2025-03-30_23h.json"), "DE-LU")
    assert len(rows) == 23
    assert rows[0].start == _utc(2025, 3, 29, 23)
    assert rows[-1].end == _utc(2025, 3, 30, 22)
    assert _contiguous(rows)
    assert all(row.currency == "EUR" for row in rows)
    assert rows[0].per_kwh == Decimal("0.08")  # 80.0 EUR/MWh, exactly
    assert min(row.per_kwh for row in rows) < 0


def test_awattar_dst_autumn_day_has_25_hours() -> None:
    rows = Awattar().parse(fixture("awattar_at_2025-10-26_25h.json"), "AT")
    assert len(rows) == 25
    assert rows[-1].end - rows[0].start == timedelta(hours=25)
    assert _contiguous(rows)


def test_awattar_quarter_hours_are_kept_as_quarter_hours() -> None:
    rows = Awattar().parse(fixture("awattar_de_2025-11-05_15min.json"), "DE-LU")
    assert len(rows) == 96
    assert {row.end - row.start for row in rows} == {timedelta(minutes=15)}


def test_a_gap_is_filled_with_the_higher_neighbour_never_lower() -> None:
    rows = Awattar().parse(fixture("awattar_de_2025-06-15_gap.json"), "DE-LU")
    assert _contiguous(rows)
    assert rows[-1].end - rows[0].start == timedelta(hours=24)
    gap = [row for row in rows if row.end - row.start == timedelta(hours=2)]
    assert len(gap) == 1
    filled = gap[0]
    before = next(row for row in rows if row.end == filled.start)
    after = next(row for row in rows if row.start == filled.end)
    assert filled.start == _utc(2025, 6, 15, 13)
    assert filled.per_kwh == max(before.per_kwh, after.per_kwh)


def test_a_changed_shape_is_a_clear_provider_error() -> None:
    with pytest.raises(ProviderError, match="awattar: start_timestamp is not a number: None"):
        Awattar().parse(fixture("awattar_shape_changed.json"), "DE-LU")
    with pytest.raises(ProviderError, match="awattar: the answer is not JSON"):
        Awattar().parse(b"<html>maintenance</html>", "DE-LU")
    with pytest.raises(ProviderError, match="awattar: the answer has no data list"):
        Awattar().parse(b'{"object": "error"}', "DE-LU")


def test_energidataservice_dayahead_quarter_hours_of_a_25_hour_day_with_a_null_gap() -> None:
    rows = EnergiDataService(currency="EUR").parse(
        fixture("energidataservice_dayahead_dk1_2025-10-26.json"), "DK1"
    )
    assert rows[0].start == _utc(2025, 10, 25, 22)
    assert rows[-1].end == _utc(2025, 10, 26, 23)
    assert _contiguous(rows)
    # row 40 had a null price: its quarter hour takes the higher neighbour
    missing = _utc(2025, 10, 25, 22) + timedelta(minutes=15 * 40)
    filled = next(row for row in rows if row.start == missing)
    before = next(row for row in rows if row.end == missing)
    after = next(row for row in rows if row.start == filled.end)
    assert filled.per_kwh == max(before.per_kwh, after.per_kwh)


def test_energidataservice_in_dkk() -> None:
    eur = EnergiDataService(currency="EUR").parse(
        fixture("energidataservice_dayahead_dk1_2025-10-26.json"), "DK1"
    )
    dkk = EnergiDataService(currency="DKK").parse(
        fixture("energidataservice_dayahead_dk1_2025-10-26.json"), "DK1"
    )
    assert dkk[0].currency == "DKK"
    assert dkk[0].per_kwh > eur[0].per_kwh * 7


def test_energidataservice_retired_elspotprices_hourly_dst_day_newest_first() -> None:
    rows = EnergiDataService().parse(fixture("energidataservice_elspot_dk2_2025-03-30.json"), "DK2")
    assert len(rows) == 23
    assert rows[0].start == _utc(2025, 3, 29, 23)
    assert _contiguous(rows)


def test_energidataservice_other_areas_in_the_answer_are_ignored() -> None:
    with pytest.raises(ProviderError, match="no prices"):
        EnergiDataService().parse(fixture("energidataservice_dayahead_dk1_2025-10-26.json"), "DK2")


def test_entsoe_finest_resolution_wins_and_a03_left_out_positions_repeat() -> None:
    rows = Entsoe().parse(fixture("entsoe_a44_de-lu_2025-10-26_25h.xml"), "DE-LU")
    assert len(rows) == 100
    assert {row.end - row.start for row in rows} == {timedelta(minutes=15)}
    assert rows[-1].end - rows[0].start == timedelta(hours=25)
    # positions 6 and 7 were left out: curve type A03 repeats position 5
    assert rows[5].per_kwh == rows[6].per_kwh == rows[4].per_kwh
    assert min(row.per_kwh for row in rows) < 0


def test_entsoe_dst_spring_day() -> None:
    rows = Entsoe().parse(fixture("entsoe_a44_de-lu_2025-03-30_23h.xml"), "DE-LU")
    assert len(rows) == 23
    assert rows[0].start == _utc(2025, 3, 29, 23)


def test_entsoe_no_data_acknowledgement_reports_its_reason() -> None:
    with pytest.raises(ProviderError, match="entsoe: no data: No matching data found"):
        Entsoe().parse(fixture("entsoe_a44_no_data.xml"), "DE-LU")


def test_entsoe_broken_xml_and_wrong_units_are_provider_errors() -> None:
    with pytest.raises(ProviderError, match="not XML"):
        Entsoe().parse(b"<Publication_MarketDocument>", "DE-LU")
    text = fixture("entsoe_a44_de-lu_2025-03-30_23h.xml").replace(b">MWH<", b">KWH<")
    with pytest.raises(ProviderError, match="unexpected unit"):
        Entsoe().parse(text, "DE-LU")


def test_entsoe_needs_a_token() -> None:
    with pytest.raises(ProviderError, match="no security token"):
        Entsoe().request("DE-LU", _utc(2025, 1, 1), _utc(2025, 1, 2), "")
    request = Entsoe().request("DE-LU", _utc(2025, 1, 1), _utc(2025, 1, 2), "secret")
    assert request.params["in_Domain"] == "10Y1001A1001A82H"
    assert request.params["periodStart"] == "202501010000"


def test_octopus_agile_half_hours_including_vat_in_pounds() -> None:
    rows = Octopus().parse(fixture("octopus_agile_c_2025-10-26.json"), "AGILE-24-10-01/E-1R-X-C")
    assert len(rows) == 50
    assert rows[0].start == _utc(2025, 10, 25, 23)
    assert rows[-1].end - rows[0].start == timedelta(hours=25)
    assert rows[0].currency == "GBP"
    assert min(row.per_kwh for row in rows) == Decimal("-0.011025")  # -1.05 p x 1.05 VAT


def test_overlapping_rows_are_refused() -> None:
    a = SpotPrice(_utc(2025, 1, 1, 0), _utc(2025, 1, 1, 2), Decimal(1), "EUR")
    b = SpotPrice(_utc(2025, 1, 1, 1), _utc(2025, 1, 1, 3), Decimal(1), "EUR")
    with pytest.raises(ProviderError, match="overlapping"):
        clean("x", [a, b])


def test_unknown_provider_and_area_are_refused() -> None:
    with pytest.raises(ProviderError, match="unknown price provider"):
        make_provider("nordpool", "EUR")
    with pytest.raises(ProviderError, match="unknown area"):
        Awattar().request("FR", _utc(2025, 1, 1), _utc(2025, 1, 2), "")
