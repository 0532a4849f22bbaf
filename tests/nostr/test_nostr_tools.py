"""Strom's nostr core against nostr-tools (npm, pinned), the implementation most clients use.

Each test sends a batch of operations as JSON to a small Node script in ``tests/peers`` and
reads the answers back: what nostr-tools makes, Strom accepts; what Strom makes, nostr-tools
accepts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from strom_nostr import nip04, nip44
from strom_nostr.discovery import (
    Profile,
    RelayEntry,
    profile_template,
    relay_list_template,
    status_template,
)
from strom_nostr.dm import DmScheme, open_dm, unwrap, wrap_message
from strom_nostr.event import Event, compute_id, make_tags, parse_event, sign_event, sign_template
from strom_nostr.http_auth import HttpAuthError, check_http_auth, http_auth_tags
from strom_nostr.keys import (
    decode_naddr,
    decode_nprofile,
    encode_naddr,
    encode_nprofile,
    encode_npub,
    public_key_hex,
)
from strom_nostr.maps import (
    Handler,
    Listing,
    handler_info_template,
    handler_recommendation_template,
    listing_template,
)
from strom_nostr.zap_receipt import verify_zap_receipt, zap_receipt
from strom_nostr.zap_request import validate_zap_request
from tests.conftest import peer_missing
from tests.nostr.samples import (
    CHARGER,
    CHARGER_ID,
    CHARGER_SECRET,
    COORDINATE,
    DRIVER,
    DRIVER_SECRET,
    PREIMAGE,
    STATUS,
    invoice,
)

pytestmark = pytest.mark.peer

PEERS = Path(__file__).resolve().parents[1] / "peers"
Runner = Callable[[str, list[dict[str, Any]]], list[Any]]
TRICKY = [
    "",
    "plain",
    'quote " backslash \\ slash /',
    "\n\r\t\b\f",
    "\x00\x01\x1f\x7f",
    "\u2028\u2029",
    "é ü ß 中文 ⚡ 🚗 \U0001f600",
    "<script>&amp;</script>",
]


@pytest.fixture(scope="module")
def nostr_tools() -> Runner:
    """Install nostr-tools (once) and return a runner for the tests/peers scripts."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        peer_missing("node and npm are needed for the nostr-tools peer")
    try:
        done = subprocess.run(
            ["bash", str(PEERS / "node.sh")],
            capture_output=True,
            text=True,
            timeout=100,  # below the per-test timeout; a fresh install takes seconds
            check=True,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        peer_missing(f"nostr-tools could not be installed: {exc}")
    env = {**os.environ, "NOSTR_TOOLS_DIR": done.stdout.strip().splitlines()[-1]}

    def run(script: str, ops: list[dict[str, Any]]) -> list[Any]:
        completed = subprocess.run(
            ["node", str(PEERS / f"nostr_tools_{script}.mjs")],
            input=json.dumps(ops),
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        answers = json.loads(completed.stdout)
        failed = [answer["error"] for answer in answers if not answer["ok"]]
        assert not failed, failed
        return [answer["result"] for answer in answers]

    return run


# --- events -----------------------------------------------------------------------------------


def test_ids_match_nostr_tools_for_tricky_strings(nostr_tools: Runner) -> None:
    """orjson and JSON.stringify agree byte for byte, so ids agree."""
    events: list[dict[str, Any]] = [
        {
            "pubkey": CHARGER,
            "created_at": 1_700_000_000 + i,
            "kind": 1,
            "tags": [["t", text], ["x", text, text]],
            "content": text,
        }
        for i, text in enumerate(TRICKY)
    ]
    theirs = nostr_tools("events", [{"op": "hash", "event": event} for event in events])
    ours = [
        compute_id(e["pubkey"], e["created_at"], e["kind"], make_tags(e["tags"]), e["content"])
        for e in events
    ]
    assert ours == theirs


def test_events_signed_by_nostr_tools_verify_in_ours(nostr_tools: Runner) -> None:
    ops = [
        {
            "op": "sign",
            "secret": DRIVER_SECRET.hex(),
            "kind": 1,
            "tags": [["t", text]],
            "content": text,
            "created_at": 1_700_000_000,
        }
        for text in TRICKY
    ]
    for signed in nostr_tools("events", ops):
        event = parse_event(signed)
        assert event.pubkey == DRIVER


def test_our_events_verify_in_nostr_tools(nostr_tools: Runner) -> None:
    now = 1_760_000_000
    ours = [sign_event(CHARGER_SECRET, 1, [["t", text]], text, now) for text in TRICKY]
    ours.append(sign_template(CHARGER_SECRET, status_template(STATUS, created_at=now)))
    profile = Profile(name="cp-1", about="Ladesäule ⚡", lud16="cp-1@charge.example")
    ours.append(sign_template(CHARGER_SECRET, profile_template(profile, created_at=now)))
    relays = [RelayEntry("wss://relay.example"), RelayEntry("wss://read.example", write=False)]
    ours.append(sign_template(CHARGER_SECRET, relay_list_template(relays, created_at=now)))
    results = nostr_tools("events", [{"op": "verify", "event": e.to_dict()} for e in ours])
    assert results == [True] * len(ours)


def test_nip19_strings_agree(nostr_tools: Runner) -> None:
    relays = ["wss://relay.example"]
    naddr = encode_naddr(30522, CHARGER, CHARGER_ID, relays)
    decoded, theirs_naddr, theirs_nprofile, theirs_npub = nostr_tools(
        "events",
        [
            {"op": "decode", "text": naddr},
            {
                "op": "encode_naddr",
                "identifier": CHARGER_ID,
                "pubkey": CHARGER,
                "kind": 30522,
                "relays": relays,
            },
            {"op": "encode_nprofile", "pubkey": CHARGER, "relays": relays},
            {"op": "encode_npub", "pubkey": CHARGER},
        ],
    )
    assert decoded == {
        "type": "naddr",
        "data": {"identifier": CHARGER_ID, "pubkey": CHARGER, "kind": 30522, "relays": relays},
    }
    # TLV order is free in NIP-19 (nostr-tools writes the kind first): compare decoded
    assert decode_naddr(theirs_naddr) == decode_naddr(naddr)
    assert decode_nprofile(theirs_nprofile) == decode_nprofile(encode_nprofile(CHARGER, relays))
    assert theirs_npub == encode_npub(CHARGER)


# --- zaps -------------------------------------------------------------------------------------


def _status_event() -> Event:
    return sign_template(CHARGER_SECRET, status_template(STATUS, created_at=int(time.time())))


def test_a_zap_request_made_by_nostr_tools_is_accepted(nostr_tools: Runner) -> None:
    status = _status_event()
    now = int(time.time())
    to_status, to_profile = nostr_tools(
        "zap",
        [
            {
                "op": "zap_request",
                "secret": DRIVER_SECRET.hex(),
                "event": status.to_dict(),
                "amount": 50_000_000,
                "relays": ["wss://relay.one.example", "wss://relay.two.example"],
                "comment": "Laden bitte ⚡",
                "extra_tags": [["connector", "2"]],
            },
            {
                "op": "zap_request",
                "secret": DRIVER_SECRET.hex(),
                "pubkey": CHARGER,
                "amount": 21_000,
                "relays": ["wss://relay.one.example"],
                "comment": "",
            },
        ],
    )
    common = {
        "charger_pubkey": CHARGER,
        "charger_status_coordinate": COORDINATE,
        "now": now,
        "max_age_s": 300,
        "connector_ids": {1, 2},
    }
    valid = validate_zap_request(to_status, amount_msat_query=50_000_000, **common)  # type: ignore[arg-type]
    assert valid.sender == DRIVER
    assert valid.coordinate == COORDINATE
    assert valid.zapped_event == status.id
    assert valid.connector == 2
    assert valid.comment == "Laden bitte ⚡"
    assert valid.description == to_status
    plain = validate_zap_request(to_profile, amount_msat_query=21_000, **common)  # type: ignore[arg-type]
    assert (plain.coordinate, plain.connector) == (None, None)


def test_our_receipt_verifies_in_nostr_tools_and_in_ours(nostr_tools: Runner) -> None:
    [description] = nostr_tools(
        "zap",
        [
            {
                "op": "zap_request",
                "secret": DRIVER_SECRET.hex(),
                "event": _status_event().to_dict(),
                "amount": 21_000_000,
                "relays": ["wss://relay.one.example"],
                "comment": "hi",
            }
        ],
    )
    bolt11 = invoice(description)
    receipt = zap_receipt(
        CHARGER_SECRET,
        description,
        bolt11_invoice=bolt11,
        paid_at=int(time.time()),
        preimage=PREIMAGE,
    )
    problem, sats = nostr_tools(
        "zap",
        [
            {"op": "validate_zap_request", "description": receipt.tag_values("description")[0]},
            {"op": "receipt_amount_sat", "bolt11": receipt.tag_values("bolt11")[0]},
        ],
    )
    assert problem is None  # nostr-tools' validateZapRequest returns null for a valid request
    assert sats == 21_000
    assert nostr_tools("events", [{"op": "verify", "event": receipt.to_dict()}]) == [True]
    ours = verify_zap_receipt(receipt, own_pubkey=CHARGER, status_coordinate=COORDINATE)
    assert ours.request.sender == DRIVER


# --- encryption and DMs -----------------------------------------------------------------------


def test_nip04_both_ways(nostr_tools: Runner) -> None:
    texts = [t for t in TRICKY if t] + ["x" * 3000]
    ours = [nip04.encrypt(CHARGER_SECRET, DRIVER, text) for text in texts]
    ops = [
        {"op": "nip04_decrypt", "secret": DRIVER_SECRET.hex(), "pubkey": CHARGER, "payload": p}
        for p in ours
    ] + [
        {"op": "nip04_encrypt", "secret": DRIVER_SECRET.hex(), "pubkey": CHARGER, "text": t}
        for t in texts
    ]
    results = nostr_tools("dm", ops)
    assert results[: len(texts)] == texts
    assert [nip04.decrypt(CHARGER_SECRET, DRIVER, p) for p in results[len(texts) :]] == texts


def test_nip44_both_ways_and_byte_exact_with_the_same_nonce(nostr_tools: Runner) -> None:
    texts = [t for t in TRICKY if t] + ["y" * 65535]
    key = nip44.conversation_key(CHARGER_SECRET, DRIVER)
    nonces = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    ours = [nip44.encrypt(t, key, bytes.fromhex(n)) for t, n in zip(texts, nonces, strict=True)]
    me = {"secret": DRIVER_SECRET.hex(), "pubkey": CHARGER}
    ops: list[dict[str, Any]] = [{"op": "nip44_conversation_key", **me}]
    ops += [{"op": "nip44_decrypt", **me, "payload": p} for p in ours]
    ops += [
        {"op": "nip44_encrypt", **me, "text": t, "nonce": n}
        for t, n in zip(texts, nonces, strict=True)
    ]
    ops += [{"op": "nip44_encrypt", **me, "text": t} for t in texts]
    results = nostr_tools("dm", ops)
    count = len(texts)
    assert results[0] == key.hex()
    assert results[1 : 1 + count] == texts
    assert results[1 + count : 1 + 2 * count] == ours
    assert [nip44.decrypt(p, key) for p in results[1 + 2 * count :]] == texts


def test_our_gift_wrapped_dm_unwraps_in_nostr_tools(nostr_tools: Runner) -> None:
    now = int(time.time())
    wrap = wrap_message(CHARGER_SECRET, DRIVER, "Charging started: 0.0 kWh ⚡", now=now)
    [rumor] = nostr_tools(
        "dm", [{"op": "nip59_unwrap", "secret": DRIVER_SECRET.hex(), "wrap": wrap.to_dict()}]
    )
    assert rumor["kind"] == 14
    assert rumor["pubkey"] == CHARGER
    assert rumor["content"] == "Charging started: 0.0 kWh ⚡"
    assert rumor["created_at"] == now
    assert ["p", DRIVER] in rumor["tags"]


def test_a_nostr_tools_nip17_dm_opens_in_ours(nostr_tools: Runner) -> None:
    [wrap] = nostr_tools(
        "dm",
        [{"op": "nip17_wrap", "secret": DRIVER_SECRET.hex(), "recipient": CHARGER, "text": "stop"}],
    )
    event = parse_event(wrap)
    message = open_dm(CHARGER_SECRET, event)
    assert (message.sender, message.text, message.scheme) == (DRIVER, "stop", DmScheme.NIP17)
    assert unwrap(CHARGER_SECRET, event).seal.pubkey == DRIVER


def test_public_keys_agree(nostr_tools: Runner) -> None:
    assert nostr_tools("events", [{"op": "public_key", "secret": DRIVER_SECRET.hex()}]) == [
        public_key_hex(DRIVER_SECRET)
    ]


# --- NIP-98 HTTP Auth --------------------------------------------------------------------------

NIP98_URL = "https://charge.example.org/api/v1/chargers/cp-1/tariff"


def test_nip98_headers_made_by_nostr_tools_authorise_at_strom(nostr_tools: Runner) -> None:
    payload = {"per_kwh_sat": 300, "note": "é ⚡"}
    get_header, put_header = nostr_tools(
        "nip98",
        [
            {"op": "header", "secret": DRIVER_SECRET.hex(), "url": NIP98_URL, "method": "GET"},
            {
                "op": "header",
                "secret": DRIVER_SECRET.hex(),
                "url": NIP98_URL,
                "method": "PUT",
                "payload": payload,
            },
        ],
    )
    now = int(time.time())
    event = check_http_auth(get_header, url=NIP98_URL, method="GET", body=None, now=now)
    assert event.pubkey == DRIVER
    # The body a browser sends is JSON.stringify(payload): orjson writes the same bytes.
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    event = check_http_auth(put_header, url=NIP98_URL, method="PUT", body=body, now=now)
    assert event.pubkey == DRIVER
    with pytest.raises(HttpAuthError):
        check_http_auth(put_header, url=NIP98_URL, method="PUT", body=body + b" ", now=now)
    with pytest.raises(HttpAuthError):
        check_http_auth(get_header, url=NIP98_URL + "?x=1", method="GET", body=None, now=now)


def test_nip98_events_made_by_strom_validate_in_nostr_tools(nostr_tools: Runner) -> None:
    payload = {"per_kwh_sat": 300}
    body = json.dumps(payload, separators=(",", ":")).encode()
    event = sign_event(
        DRIVER_SECRET, 27235, http_auth_tags(NIP98_URL, "PUT", body), "", int(time.time())
    )
    header = "Nostr " + base64.b64encode(event.to_json().encode()).decode()
    (valid,) = nostr_tools(
        "nip98",
        [
            {
                "op": "validate",
                "header": header,
                "url": NIP98_URL,
                "method": "PUT",
                "payload": payload,
            }
        ],
    )
    assert valid is True


# --- what map and marketplace clients see --------------------------------------------------


def test_map_clients_on_nostr_tools_select_and_open_the_listing(nostr_tools: Runner) -> None:
    """nostr-tools agrees on kinds, and its filters find the listing as map clients query it."""
    now = int(time.time())
    listing = sign_template(
        CHARGER_SECRET, listing_template(Listing(STATUS, published_at=now), created_at=now)
    )
    handler = sign_template(
        CHARGER_SECRET,
        handler_info_template(
            Handler("Strom", "", "https://charge.example/c/<bech32>"), created_at=now
        ),
    )
    recommendation = sign_template(
        CHARGER_SECRET, handler_recommendation_template(CHARGER, created_at=now)
    )
    status = sign_template(CHARGER_SECRET, status_template(STATUS, created_at=now))
    events = [listing, handler, recommendation]
    cell = listing.tag_values("g")[0]
    filters = [
        {"kinds": [30402], "#g": [cell[:4], "u000"]},  # the cells of a map view, zoomed out
        {"kinds": [30402], "#g": [cell[:7]]},  # zoomed in
        {"kinds": [30402], "#t": ["ev-charging"]},
        {"kinds": [31990], "#k": ["30522"], "authors": [CHARGER]},
        {"kinds": [31989], "#d": ["30522"]},
        {"kinds": [30402], "#g": ["u000"]},  # elsewhere: not found
    ]
    targets = [listing, listing, listing, handler, recommendation, listing]
    ops: list[dict[str, Any]] = [{"op": "verify", "event": e.to_dict()} for e in events]
    ops += [{"op": "classify", "kind": e.kind} for e in events]
    ops.append({"op": "kinds"})
    ops += [
        {"op": "matches", "filter": f, "event": e.to_dict()}
        for f, e in zip(filters, targets, strict=True)
    ]
    ops.append({"op": "handler_url", "handler": handler.to_dict(), "event": status.to_dict()})
    answers = nostr_tools("maps", ops)
    assert answers[:3] == [True, True, True]
    assert answers[3:6] == ["parameterized", "parameterized", "parameterized"]
    assert answers[6] == {
        "listing": 30402,
        "handler_information": 31990,
        "handler_recommendation": 31989,
    }
    assert answers[7:13] == [True, True, True, True, True, False]
    url = answers[13]
    prefix = "https://charge.example/c/"
    assert url.startswith(prefix + "naddr1")
    assert decode_naddr(url.removeprefix(prefix)).identifier == CHARGER_ID
