"""Sample keys, a sample charger status, zap requests and real BOLT11 invoices for the tests."""

from __future__ import annotations

import hashlib
from typing import Any

import bolt11
import orjson
from bolt11 import Bolt11, MilliSatoshi, Tag, TagChar, Tags

from strom_nostr.discovery import (
    ChargerStatus,
    ConnectorInfo,
    ConnectorStatus,
    Location,
    Prices,
    status_coordinate,
)
from strom_nostr.event import Event, sign_event
from strom_nostr.keys import public_key_hex
from strom_nostr.zap_request import description_hash

CHARGER_SECRET = hashlib.sha256(b"charger cp-1").digest()
CHARGER = public_key_hex(CHARGER_SECRET)
CHARGER_ID = "cp-1"
COORDINATE = status_coordinate(CHARGER, CHARGER_ID)
DRIVER_SECRET = hashlib.sha256(b"driver").digest()
DRIVER = public_key_hex(DRIVER_SECRET)
STRANGER_SECRET = hashlib.sha256(b"stranger").digest()
STRANGER = public_key_hex(STRANGER_SECRET)
NOW = 1_760_000_000
AMOUNT = 21_000_000
RELAYS = ("wss://relay.one.example", "wss://relay.two.example")
STATUS_EVENT_ID = "9ae37aa68f48645127299e9453eb5d908a0cbb6058ff340d528ed4d37c8994fb"
PREIMAGE = "5d006d2cf1e73c7148e7519a4c68adc81642ce0e25a432b2434c99f97344c15f"
PAYMENT_HASH = hashlib.sha256(bytes.fromhex(PREIMAGE)).hexdigest()
NODE_KEY = "e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734"  # BOLT 11 examples


def default_tags() -> list[list[str]]:
    return [
        ["p", CHARGER],
        ["amount", str(AMOUNT)],
        ["relays", *RELAYS],
        ["e", STATUS_EVENT_ID],
        ["a", COORDINATE],
        ["k", "30522"],
        ["connector", "2"],
    ]


def zap_request(
    tags: list[list[str]] | None = None,
    *,
    kind: int = 9734,
    created_at: int = NOW - 5,
    content: str = "charge my car",
    secret: bytes = DRIVER_SECRET,
) -> Event:
    return sign_event(
        secret,
        kind,
        default_tags() if tags is None else tags,
        content,
        created_at,
        aux_rand=bytes(32),
    )


def request_json(**kwargs: Any) -> str:
    return zap_request(**kwargs).to_json()


def invoice(
    description: str | bytes,
    *,
    amount_msat: int | None = AMOUNT,
    payment_hash: str = PAYMENT_HASH,
) -> str:
    tags = Tags(
        [
            Tag(TagChar.payment_hash, payment_hash),
            Tag(TagChar.payment_secret, "11" * 32),
            Tag(TagChar.description_hash, description_hash(description).hex()),
        ]
    )
    amount = MilliSatoshi(amount_msat) if amount_msat is not None else None
    encoded: str = bolt11.encode(
        Bolt11(currency="bc", date=NOW, tags=tags, amount_msat=amount), NODE_KEY
    )
    return encoded


def pretty(event: Event) -> str:
    """The same event JSON with different formatting (as some wallets send it)."""
    return orjson.dumps(event.to_dict(), option=orjson.OPT_INDENT_2).decode()


STATUS = ChargerStatus(
    charger_id="cp-1",
    name="Hofladen Müller",
    location=Location(52.520008, 13.404954, "Hauptstraße 1, 10115 Berlin"),
    connectors=(
        ConnectorInfo(2, "CCS2", 50_000, ConnectorStatus.CHARGING),
        ConnectorInfo(1, "Type2", 22_000, ConnectorStatus.AVAILABLE),
    ),
    prices=Prices(energy_msat_per_kwh=250_000, time_msat_per_minute=1_000, session_fee_msat=0),
    lud16="cp-1@charge.example",
    summary="Two plugs behind the farm shop",
    website="https://charge.example/c/cp-1",
)
