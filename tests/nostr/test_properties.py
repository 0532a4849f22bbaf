"""Properties over arbitrary input: parsers raise only their own error types."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strom_nostr import nip44
from strom_nostr.commands import parse_command
from strom_nostr.errors import (
    Bech32Error,
    BuildError,
    CommandError,
    DecryptionError,
    InvalidEvent,
)
from strom_nostr.event import parse_event, parse_unsigned_event, sign_event
from strom_nostr.keys import decode_naddr, decode_nprofile, decode_npub
from strom_nostr.zap_request import ZapRequestError, validate_zap_request
from tests.nostr.samples import AMOUNT, CHARGER, COORDINATE, DRIVER_SECRET, NOW

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["id", "pubkey", "created_at", "kind", "tags", "content", "sig"]
hex64 = st.text(alphabet="0123456789abcdefABCDEF", min_size=63, max_size=65)
field_values = {
    "id": hex64 | json_values,
    "pubkey": hex64 | json_values,
    "sig": st.text(alphabet="0123456789abcdef", min_size=127, max_size=129) | json_values,
    "created_at": st.integers(-10, 2**64) | json_values,
    "kind": st.integers(-10, 70000) | json_values,
    "tags": st.lists(st.lists(st.text(max_size=5), max_size=3), max_size=3) | json_values,
    "content": st.text() | json_values,
}
event_like = st.fixed_dictionaries(
    {}, optional={name: strategy for name, strategy in field_values.items()}
)


@given(st.binary(max_size=400))
def test_parse_event_of_arbitrary_bytes_raises_only_invalid_event(data: bytes) -> None:
    with contextlib.suppress(InvalidEvent):
        parse_event(data)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(event_like)
def test_parse_event_of_arbitrary_objects_raises_only_invalid_event(obj: dict[str, Any]) -> None:
    for candidate in (obj, _json_or_none(obj)):
        if candidate is None:
            continue
        for parse in (parse_event, parse_unsigned_event):
            with contextlib.suppress(InvalidEvent):
                parse(candidate)


def _json_or_none(obj: Any) -> bytes | None:
    try:
        return orjson.dumps(obj)
    except TypeError:  # surrogates or integers beyond 64 bits
        return None


@given(json_values)
def test_parse_event_of_any_json_value_raises_only_invalid_event(value: Any) -> None:
    encoded = _json_or_none(value)
    if encoded is not None:
        with contextlib.suppress(InvalidEvent):
            parse_event(encoded)


@given(
    st.text(max_size=300),
    st.lists(st.lists(st.text(max_size=70), min_size=1, max_size=4), max_size=6),
)
def test_validate_zap_request_raises_only_zap_request_errors(
    content: str, tags: list[list[str]]
) -> None:
    try:
        text = sign_event(DRIVER_SECRET, 9734, tags, content, NOW).to_json()
    except BuildError:  # inputs that cannot even be signed are not the point
        return
    with contextlib.suppress(ZapRequestError):
        validate_zap_request(
            text,
            amount_msat_query=AMOUNT,
            charger_pubkey=CHARGER,
            charger_status_coordinate=COORDINATE,
            now=NOW,
            max_age_s=600,
        )


@given(st.text(max_size=300))
def test_text_parsers_raise_only_their_errors(text: str) -> None:
    for decode in (decode_npub, decode_nprofile, decode_naddr):
        with contextlib.suppress(Bech32Error):
            decode(text)
    with contextlib.suppress(DecryptionError):
        nip44.decrypt(text, bytes(32))
    for operator in (False, True):
        with contextlib.suppress(CommandError):
            parse_command(text, operator=operator)
