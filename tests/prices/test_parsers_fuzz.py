"""Whatever a source answers, its parser raises ProviderError or gives clean rows: never a crash."""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from strom_prices import ProviderError, parse_rate
from strom_prices.providers import Awattar, EnergiDataService, Entsoe, Octopus
from tests.prices.fixtures import fixture

PARSERS = [
    (Awattar(), "DE-LU"),
    (EnergiDataService(), "DK1"),
    (Entsoe(), "DE-LU"),
    (Octopus(), "AGILE-24-10-01/E-1R-X-C"),
]

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=5)
    ),
    max_leaves=20,
)


def _parse_all(body: bytes) -> None:
    for provider, area in PARSERS:
        try:
            rows = provider.parse(body, area)
        except ProviderError:
            continue
        assert all(a.end == b.start for a, b in itertools.pairwise(rows))
    for source in ("kraken", "coinbase", "bitstamp", "coingecko", "bitfinex"):
        with contextlib.suppress(ProviderError):
            assert parse_rate(source, "EUR", body) > 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_provider_errors(body: bytes) -> None:
    _parse_all(body)


@settings(max_examples=200, deadline=None)
@given(values)
def test_arbitrary_json_raises_only_provider_errors(value: Any) -> None:
    _parse_all(json.dumps(value).encode())


@settings(max_examples=100, deadline=None)
@given(
    field=st.sampled_from(["start_timestamp", "end_timestamp", "marketprice", "unit"]),
    value=values,
)
def test_a_mangled_awattar_row_raises_only_provider_errors(field: str, value: Any) -> None:
    answer = json.loads(fixture("awattar_de_2025-06-15_gap.json"))
    answer["data"][3][field] = value
    _parse_all(json.dumps(answer).encode())


@settings(max_examples=100, deadline=None)
@given(
    old=st.sampled_from([b"<position>3<", b">PT15M<", b"<price.amount>", b"2025-10-25T22:00Z"]),
    new=st.sampled_from([b"<position>999<", b">P1D<", b"<price.amount>x", b"yesterday", b""]),
)
def test_a_mangled_entsoe_document_raises_only_provider_errors(old: bytes, new: bytes) -> None:
    _parse_all(fixture("entsoe_a44_de-lu_2025-10-26_25h.xml").replace(old, new, 1))
