"""LNURL encoding and request parsing, checked against the LUD texts' own examples."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strom_web.lnurl import (
    LnurlError,
    PayMetadata,
    bech32_lnurl,
    fallback_url,
    lud17_url,
    parse_amount_msat,
    parse_comment,
    success_action,
)
from tests.vectors import load_json

VECTORS = load_json("lud-examples.json")


def test_lud01_bech32_matches_the_spec_example() -> None:
    example = VECTORS["lud01_bech32"]
    assert bech32_lnurl(example["url"]) == example["lnurl"]


def test_clearnet_http_is_refused_but_local_and_onion_are_allowed() -> None:
    with pytest.raises(LnurlError):
        bech32_lnurl("http://strom.example.org/lnurlp/cp1/1")
    assert bech32_lnurl("http://127.0.0.1:8080/lnurlp/cp1/1").startswith("LNURL1")
    assert bech32_lnurl("http://abcdefgh.onion/lnurlp/cp1/1").startswith("LNURL1")


def test_fallback_url_carries_the_lnurl_in_the_lightning_parameter() -> None:
    url = fallback_url("https://strom.example.org/c/cp1", "https://strom.example.org/lnurlp/cp1/1")
    assert url.startswith("https://strom.example.org/c/cp1?lightning=LNURL1")


def test_lud17_schemes() -> None:
    assert lud17_url("https://h.example/lnurlp/cp1/1", "p") == "lnurlp://h.example/lnurlp/cp1/1"
    assert lud17_url("https://h.example/lnurlw?k1=ab", "w") == "lnurlw://h.example/lnurlw?k1=ab"


def test_metadata_serialises_like_the_spec_and_hashes_those_bytes() -> None:
    parsed = json.loads(VECTORS["lud06_metadata_string_example"])
    metadata = PayMetadata(text=parsed[0][1])
    assert json.loads(metadata.serialise()) == parsed
    assert metadata.description_hash() == hashlib.sha256(metadata.serialise().encode()).digest()
    with_id = json.loads(PayMetadata(text="x", identifier="cp1@h.example").serialise())
    assert with_id == [["text/plain", "x"], ["text/identifier", "cp1@h.example"]]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("12.5", "whole number"),
        ("-1000", "whole number"),
        ("1e6", "whole number"),
        ("0", "whole number"),
        ("999", "between"),
        ("100000001", "between"),
        ("99999999999999999999", "whole number"),
    ],
)
def test_bad_amounts_are_refused_with_a_reason(raw: str | None, reason: str) -> None:
    with pytest.raises(LnurlError, match=reason):
        parse_amount_msat(raw, min_msat=1_000, max_msat=100_000_000)


@given(st.text(max_size=30))
def test_amount_parsing_never_crashes(raw: str) -> None:
    try:
        amount = parse_amount_msat(raw, min_msat=1_000, max_msat=100_000_000)
    except LnurlError:
        return
    assert 1_000 <= amount <= 100_000_000
    assert str(amount) == raw


def test_comment_length_is_limited() -> None:
    assert parse_comment("hi") == "hi"
    with pytest.raises(LnurlError):
        parse_comment("x" * 141)


def test_success_action_must_be_on_the_same_domain_and_short() -> None:
    example = VECTORS["lud09_success_actions"][1]
    action = success_action(
        "https://www.ln-service.com/order/1",
        example["description"],
        callback_url="https://www.ln-service.com/cb",
    )
    assert set(action) == set(example)
    with pytest.raises(ValueError, match="domain"):
        success_action("https://evil.example/s/1", "x", callback_url="https://h.example/cb")
    with pytest.raises(ValueError, match="144"):
        success_action("https://h.example/s/1", "x" * 145, callback_url="https://h.example/cb")
