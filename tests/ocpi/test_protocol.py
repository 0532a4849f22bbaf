"""The pure OCPI transport rules (ocpi_server.protocol): no sockets, no event loop."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from ocpi_server.protocol import (
    Credentials,
    OcpiError,
    PageRequest,
    Routing,
    StatusCode,
    authorization_header,
    envelope,
    format_datetime,
    page,
    parse_datetime,
    parse_model,
    response_ids,
    token_candidates,
)

T = datetime(2027, 1, 10, 9, 30, 5, tzinfo=UTC)


def test_the_envelope_carries_data_status_and_a_utc_z_timestamp() -> None:
    assert envelope([1], T) == {
        "data": [1],
        "status_code": 1000,
        "timestamp": "2027-01-10T09:30:05Z",
    }
    error = envelope(None, T, StatusCode.UNKNOWN_TOKEN, "who?")
    assert error == {
        "status_code": 2004,
        "status_message": "who?",
        "timestamp": "2027-01-10T09:30:05Z",
    }
    # Another zone is converted to UTC; fractions are kept to the millisecond.
    cet = T.astimezone(timezone(timedelta(hours=1))).replace(microsecond=123_456)
    assert format_datetime(cet) == "2027-01-10T09:30:05.123Z"
    with pytest.raises(ValueError, match="aware"):
        format_datetime(datetime(2027, 1, 1))


def test_status_codes_are_the_specs() -> None:
    assert [int(c) for c in StatusCode][:10] == [
        1000,
        2000,
        2001,
        2002,
        2003,
        2004,
        3000,
        3001,
        3002,
        3003,
    ]
    assert StatusCode.SUCCESS.success
    assert not StatusCode.CLIENT_ERROR.success


@pytest.mark.parametrize(
    "text",
    [
        "2015-06-29T20:39:09Z",
        "2015-06-29T20:39:09",
        "2016-12-29T17:45:09.2Z",
        "2018-01-01T01:08:01.123",
    ],
)
def test_the_specs_datetime_forms_read_as_utc(text: str) -> None:
    assert parse_datetime(text).tzinfo is UTC


@pytest.mark.parametrize("text", ["2015-06-29T20:39:09+00:00", "2015-06-29", "yesterday", ""])
def test_other_datetime_forms_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="OCPI DateTime"):
        parse_datetime(text)


def test_the_token_header_is_base64_and_a_raw_token_is_the_second_reading() -> None:
    header = authorization_header("example-token")
    assert header == "Token " + base64.b64encode(b"example-token").decode()
    assert token_candidates(header) == (
        "example-token",
        base64.b64encode(b"example-token").decode(),
    )
    # A raw token of 43 URL-safe characters (what Strom issues) is not base64: one reading.
    raw = "x" * 42 + "-"
    assert token_candidates(f"Token {raw}") == (raw,)
    for bad in (None, "", "Bearer abc", "Token ", "Token a b", "Basic " + "x" * 10):
        assert token_candidates(bad) == ()


def test_request_ids_are_echoed_and_missing_or_odd_ones_replaced() -> None:
    made = iter(["new-1", "new-2"])
    ids = response_ids({"X-Request-ID": "abc", "X-Correlation-ID": "x y"}, lambda: next(made))
    assert ids == {"X-Request-ID": "abc", "X-Correlation-ID": "new-1"}


def test_routing_headers_are_read_checked_and_written() -> None:
    routing = Routing.parse({"OCPI-from-country-code": "nl", "OCPI-from-party-id": "ems"})
    assert (routing.from_country_code, routing.from_party_id) == ("NL", "EMS")
    assert routing.headers() == {"OCPI-from-country-code": "NL", "OCPI-from-party-id": "EMS"}
    with pytest.raises(OcpiError) as refused:
        Routing.parse({"OCPI-to-party-id": "TOOLONG"})
    assert refused.value.status_code is StatusCode.INVALID_PARAMETERS


def test_credentials_are_checked_against_the_field_limits() -> None:
    good = {
        "token": "ebf3b399-779f-4497-9b9d-ac6ad3cc44d2",
        "url": "https://example.com/ocpi/versions",
        "roles": [
            {
                "role": "EMSP",
                "party_id": "exa",
                "country_code": "nl",
                "business_details": {"name": "E"},
            }
        ],
    }
    creds = parse_model(Credentials, good, "credentials")
    assert (creds.roles[0].party_id, creds.roles[0].country_code) == ("EXA", "NL")
    for field, value in (
        ("token", "x" * 65),
        ("token", "with space"),
        ("url", "ftp://x"),
        ("roles", []),
    ):
        with pytest.raises(OcpiError) as refused:
            parse_model(Credentials, {**good, field: value}, "credentials")
        assert refused.value.status_code is StatusCode.INVALID_PARAMETERS
        assert field in refused.value.message


def test_a_page_has_total_limit_and_a_next_link_keeping_the_filters() -> None:
    items = list(range(7))
    request = PageRequest.parse({"limit": "3", "date_from": "2027-01-01T00:00:00Z"}, max_limit=5)
    first = page(items, request, "https://s/ocpi/2.2.1/locations", max_limit=5)
    assert first.data == [0, 1, 2]
    assert first.headers["X-Total-Count"] == "7"
    assert first.headers["X-Limit"] == "5"
    link = first.headers["Link"]
    assert link.endswith('>; rel="next"')
    query = parse_qs(urlsplit(link[1 : link.index(">")]).query)
    assert query == {"date_from": ["2027-01-01T00:00:00Z"], "offset": ["3"], "limit": ["3"]}
    last = page(items, PageRequest.parse({"offset": "6", "limit": "3"}, 5), "https://s/x", 5)
    assert last.data == [6]
    assert "Link" not in last.headers
    assert PageRequest.parse({"limit": "5000"}, max_limit=50).limit == 50  # capped


@pytest.mark.parametrize("query", [{"offset": "-1"}, {"limit": "ten"}, {"date_to": "2027-01-01"}])
def test_bad_paging_parameters_are_2001(query: dict[str, str]) -> None:
    with pytest.raises(OcpiError) as refused:
        PageRequest.parse(query, 50)
    assert refused.value.status_code is StatusCode.INVALID_PARAMETERS


def test_the_date_window_is_inclusive_from_and_exclusive_to() -> None:
    request = PageRequest(0, 10, T, T + timedelta(hours=1))
    assert request.admits(T)
    assert not request.admits(T + timedelta(hours=1))
    assert not request.admits(T - timedelta(seconds=1))
