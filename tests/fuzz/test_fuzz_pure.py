"""Hostile input to the pure parsers: OCPP frames, nostr events, zap requests, config files.

Each target feeds generated and mutated input and accepts exactly two outcomes: a valid result,
or the component's own clear error. Anything else (another exception, a crash) fails.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_server.ocppj import Call, parse_frame
from ocpp_server.v16.schemas import validate_call
from strom.config import load_config
from strom.scaffold import write_scaffold
from strom_core.errors import ConfigError, RemoteProtocolError
from strom_nostr.commands import parse_command
from strom_nostr.dm import nip04_message, open_dm, wrap_message
from strom_nostr.errors import CommandError, DmError, InvalidEvent
from strom_nostr.event import parse_event, sign_event
from strom_nostr.keys import generate_secret_key, public_key_hex
from strom_nostr.zap_request import ZapRequestError, validate_zap_request
from tests.fuzz.conftest import CASES, examples

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
ACTIONS = [
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "MeterValues",
    "StartTransaction",
    "StopTransaction",
    "Authorize",
    "DataTransfer",
    "Nonsense",
]


def mutate(text: str, data: st.DataObject) -> str:
    """Flip, drop or insert a few characters."""
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 4))):
        if not chars:
            break
        at = data.draw(st.integers(0, len(chars) - 1))
        how = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        if how == "drop":
            del chars[at]
        elif how == "insert":
            chars.insert(at, data.draw(st.characters()))
        else:
            chars[at] = data.draw(st.sampled_from('0123456789abcdef"[]{},:\\ '))
    return "".join(chars)


@settings(max_examples=examples(1500), deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200),
        json_values.map(json.dumps),
        st.tuples(
            st.sampled_from([2, 3, 4, 5, "2"]),
            st.text(max_size=40),
            st.sampled_from(ACTIONS),
            json_values,
        ).map(lambda t: json.dumps(list(t))),
    )
)
def test_ocpp_frames_parse_or_are_refused_with_a_protocol_error(frame: str | bytes) -> None:
    CASES["ocpp frame parser"] += 1
    try:
        parsed = parse_frame(frame)
    except RemoteProtocolError:
        return
    if isinstance(parsed, Call):
        try:
            validate_call(parsed)
        except RemoteProtocolError:
            return


@settings(max_examples=examples(600), deadline=None)
@given(st.sampled_from(ACTIONS), st.dictionaries(st.text(max_size=25), json_values, max_size=6))
def test_ocpp_payloads_validate_or_are_refused_with_an_ocpp_error_code(
    action: str, payload: dict[str, object]
) -> None:
    CASES["ocpp payload validation"] += 1
    frame = json.dumps([2, "id-1", action, payload])
    try:
        validate_call(parse_frame(frame))  # type: ignore[arg-type]
    except RemoteProtocolError:
        return  # refused with an OCPP error code (the CALLERROR the server sends)


KEY = generate_secret_key()
CHARGER_KEY = generate_secret_key()
CHARGER_PK = public_key_hex(CHARGER_KEY)
COORDINATE = f"30522:{CHARGER_PK}:cp-1"
VALID_ZAP = sign_event(
    KEY,
    9734,
    [
        ["p", CHARGER_PK],
        ["amount", "21000"],
        ["relays", "wss://relay.example.org"],
        ["a", COORDINATE],
    ],
    "zap",
    int(time.time()),
).to_json()


@settings(max_examples=examples(800), deadline=None)
@given(st.data())
def test_a_mutated_event_is_refused_never_accepted_with_a_broken_signature(
    data: st.DataObject,
) -> None:
    CASES["nostr events (mutated)"] += 1
    text = mutate(VALID_ZAP, data)
    try:
        event = parse_event(text)
    except InvalidEvent:
        return
    # Accepted: then it is the same signed content (a mutation in ignored whitespace).
    assert event.to_json() == VALID_ZAP


@settings(max_examples=examples(800), deadline=None)
@given(st.data(), st.integers(min_value=-5, max_value=10**12))
def test_a_mutated_zap_request_is_refused_with_a_zap_error(
    data: st.DataObject, amount: int
) -> None:
    CASES["zap requests (mutated)"] += 1
    text = mutate(VALID_ZAP, data) if data.draw(st.booleans()) else VALID_ZAP
    try:
        valid = validate_zap_request(
            text,
            amount_msat_query=amount,
            charger_pubkey=CHARGER_PK,
            charger_status_coordinate=COORDINATE,
            now=int(time.time()),
            max_age_s=600,
        )
    except ZapRequestError:
        return
    assert valid.amount_msat == amount == 21000  # only the untouched request, right amount


CONFIG_KEYS = [
    "port",
    "host",
    "public_url",
    "url",
    "meter_interval_s",
    "per_kwh_sat",
    "lat",
    "id",
    "max_power_kw",
    "backend",
    "admin_npubs",
    "network",
]


@settings(max_examples=examples(300), deadline=None)
@given(st.data())
def test_a_mangled_config_loads_or_fails_with_one_clear_config_error(data: st.DataObject) -> None:
    CASES["config files (mutated)"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        _load_mangled(Path(tmp), data)


def _load_mangled(folder: Path, data: st.DataObject) -> None:
    write_scaffold(folder, charger_id="cp-1")
    target = data.draw(st.sampled_from([folder / "strom.toml", folder / "profiles" / "cp-1.toml"]))
    text = target.read_text()
    if data.draw(st.booleans()):
        text = mutate(text, data)
    else:  # a value replaced by something of another type
        key = data.draw(st.sampled_from(CONFIG_KEYS))
        value = data.draw(
            st.sampled_from(
                [
                    '"x"',
                    "-1",
                    "1e400",
                    "[]",
                    "{}",
                    "true",
                    '""',
                    "99999999999999999999",
                    '"\\u0000"',
                ]
            )
        )
        text = "\n".join(
            f"{line.split('=')[0]}= {value}" if line.strip().startswith(f"{key} ") else line
            for line in text.splitlines()
        )
    # A lone surrogate becomes bytes that are not UTF-8: a file an editor could have mangled.
    target.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        load_config(folder / "strom.toml", environ={})
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message.strip(), message  # one line
        assert "Traceback" not in message, message
        assert "pydantic" not in message.lower(), message


AGENT_KEY = generate_secret_key()
AGENT_PK = public_key_hex(AGENT_KEY)
DRIVER_KEY = generate_secret_key()
DMS = {
    "nip04": nip04_message(DRIVER_KEY, AGENT_PK, "stop", created_at=int(time.time())).to_json(),
    "nip17": wrap_message(DRIVER_KEY, AGENT_PK, "stop", now=int(time.time())).to_json(),
}


@settings(max_examples=examples(500), deadline=None)
@given(st.sampled_from(sorted(DMS)), st.data())
def test_a_mutated_dm_is_refused_with_a_dm_error_or_read_unchanged(
    scheme: str, data: st.DataObject
) -> None:
    CASES["DMs (mutated NIP-04 / NIP-17)"] += 1
    text = mutate(DMS[scheme], data)
    try:
        event = parse_event(text)
    except InvalidEvent:
        return  # a relay's event that does not even verify never reaches the agent
    try:
        dm = open_dm(AGENT_KEY, event)
    except DmError:
        return
    assert dm.text == "stop"  # only an untouched message opens, with its text
    assert dm.sender == public_key_hex(DRIVER_KEY)


@settings(max_examples=examples(800), deadline=None)
@given(st.text(max_size=80), st.booleans())
def test_any_dm_text_is_a_command_or_a_command_error(text: str, operator: bool) -> None:
    CASES["DM command texts"] += 1
    try:
        parse_command(text, operator=operator)
    except CommandError:
        return
