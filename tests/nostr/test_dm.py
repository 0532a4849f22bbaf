"""NIP-17 gift-wrapped DMs and NIP-04 DMs: official examples, round trips, forgeries."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from strom_nostr import nip44
from strom_nostr.dm import (
    DmScheme,
    chat_rumor,
    gift_wrap,
    nip04_message,
    open_dm,
    seal,
    unwrap,
    wrap_message,
)
from strom_nostr.errors import BuildError, DmError
from strom_nostr.event import Event, make_unsigned, parse_event, sign_event
from strom_nostr.keys import decode_nsec, public_key_hex

CHARGER_SECRET = hashlib.sha256(b"dm charger").digest()
CHARGER = public_key_hex(CHARGER_SECRET)
DRIVER_SECRET = hashlib.sha256(b"dm driver").digest()
DRIVER = public_key_hex(DRIVER_SECRET)
MALLORY_SECRET = hashlib.sha256(b"mallory").digest()
MALLORY = public_key_hex(MALLORY_SECRET)
NOW = 1_760_000_000


def counter_bytes() -> Callable[[int], bytes]:
    """Deterministic 'randomness' for byte-exact tests."""
    counter = itertools.count(1)
    return lambda n: hashlib.sha256(next(counter).to_bytes(8, "big")).digest()[:n]


def test_the_nip59_example_unwraps(nip_examples: dict[str, Any]) -> None:
    example = nip_examples["nip59_giftwrap"]
    opened = unwrap(bytes.fromhex(example["recipient_priv"]), parse_event(example["wrap"]))
    assert opened.seal.id == example["seal"]["id"]
    assert opened.rumor.id == example["rumor"]["id"]
    assert opened.rumor.content == "Are you going to the party tonight?"
    assert opened.sender == example["rumor"]["pubkey"]


def test_the_nip17_example_opens_for_both_receiver_and_sender(nip_examples: dict[str, Any]) -> None:
    example = nip_examples["nip17_dm"]
    receiver_secret = decode_nsec(example["receiver_nsec"])
    sender_secret = decode_nsec(example["sender_nsec"])
    to_receiver, to_sender = (parse_event(w) for w in example["giftwraps"])
    message = open_dm(receiver_secret, to_receiver)
    assert message.text == "Hola, que tal?"
    assert message.sender == example["sender_pubkey"]
    assert message.scheme is DmScheme.NIP17
    assert message.event_id == to_receiver.id
    # the sender's own copy is addressed to the receiver in its rumor: it opens as a rumor
    copy = unwrap(sender_secret, to_sender)
    assert copy.rumor.content == "Hola, que tal?"
    assert copy.rumor.tag_values("p") == [example["receiver_pubkey"]]


def test_the_seal_example_reencrypts_byte_for_byte(nip_examples: dict[str, Any]) -> None:
    """Our seal layer reproduces the NIP-59 seal content given its nonce."""
    example = nip_examples["nip59_giftwrap"]
    author = bytes.fromhex(example["author_priv"])
    recipient = public_key_hex(bytes.fromhex(example["recipient_priv"]))
    key = nip44.conversation_key(author, recipient)
    import base64

    nonce = base64.b64decode(example["seal"]["content"])[1:33]
    rumor = example["rumor"]
    text = nip44.decrypt(example["seal"]["content"], key)
    assert nip44.encrypt(text, key, nonce) == example["seal"]["content"]
    assert (
        make_unsigned(rumor["pubkey"], 1, [], rumor["content"], rumor["created_at"]).id
        == rumor["id"]
    )


def test_a_wrapped_message_round_trips_and_hides_the_time() -> None:
    wrap = wrap_message(
        CHARGER_SECRET, DRIVER, "Charging started ⚡", now=NOW, random_bytes=counter_bytes()
    )
    assert wrap.kind == 1059
    assert wrap.tag_values("p") == [DRIVER]
    assert wrap.pubkey not in (CHARGER, DRIVER)
    assert NOW - 2 * 86400 < wrap.created_at <= NOW
    message = open_dm(DRIVER_SECRET, wrap)
    assert (message.sender, message.text, message.created_at) == (
        CHARGER,
        "Charging started ⚡",
        NOW,
    )
    assert message.scheme is DmScheme.NIP17
    opened = unwrap(DRIVER_SECRET, wrap)
    assert opened.seal.pubkey == CHARGER
    assert opened.seal.tags == ()
    assert NOW - 2 * 86400 < opened.seal.created_at <= NOW


def test_wrapping_is_deterministic_with_injected_randomness() -> None:
    first = wrap_message(CHARGER_SECRET, DRIVER, "hi", now=NOW, random_bytes=counter_bytes())
    second = wrap_message(CHARGER_SECRET, DRIVER, "hi", now=NOW, random_bytes=counter_bytes())
    assert first == second
    assert wrap_message(CHARGER_SECRET, DRIVER, "hi", now=NOW) != first


def test_replies_carry_the_e_tag() -> None:
    wrap = wrap_message(CHARGER_SECRET, DRIVER, "ok", now=NOW, reply_to="ab" * 32)
    assert unwrap(DRIVER_SECRET, wrap).rumor.tag_values("e") == ["ab" * 32]


def test_only_the_recipient_can_open_it() -> None:
    wrap = wrap_message(CHARGER_SECRET, DRIVER, "secret", now=NOW)
    with pytest.raises(DmError):
        open_dm(MALLORY_SECRET, wrap)


def test_a_rumor_in_someone_elses_name_is_refused() -> None:
    """Mallory seals a rumor claiming to be the driver: the seal signer gives her away."""
    rumor = chat_rumor(DRIVER, CHARGER, "stop", created_at=NOW)
    key = nip44.conversation_key(MALLORY_SECRET, CHARGER)
    forged_seal = sign_event(MALLORY_SECRET, 13, (), nip44.encrypt(rumor.to_json(), key), NOW)
    wrap = gift_wrap(forged_seal, CHARGER, created_at=NOW)
    with pytest.raises(DmError, match="impersonation"):
        open_dm(CHARGER_SECRET, wrap)


def test_sealing_with_another_key_than_the_rumor_authors_is_a_local_error() -> None:
    rumor = chat_rumor(DRIVER, CHARGER, "stop", created_at=NOW)
    with pytest.raises(BuildError):
        seal(MALLORY_SECRET, rumor, CHARGER, created_at=NOW)


def test_a_tampered_wrap_is_refused_before_decrypting() -> None:
    wrap = wrap_message(CHARGER_SECRET, DRIVER, "hi", now=NOW)
    tampered = Event(
        wrap.id,
        wrap.pubkey,
        wrap.created_at,
        wrap.kind,
        wrap.tags,
        wrap.content[:-4] + "AAA=",
        wrap.sig,
    )
    with pytest.raises(DmError, match="invalid gift wrap"):
        unwrap(DRIVER_SECRET, tampered)


def test_layers_of_the_wrong_kind_are_refused() -> None:
    rumor = chat_rumor(CHARGER, DRIVER, "hi", created_at=NOW)
    not_a_seal = sign_event(
        CHARGER_SECRET,
        1,
        (),
        nip44.encrypt(rumor.to_json(), nip44.conversation_key(CHARGER_SECRET, DRIVER)),
        NOW,
    )
    with pytest.raises(DmError, match="seal"):
        unwrap(DRIVER_SECRET, gift_wrap(not_a_seal, DRIVER, created_at=NOW))
    with pytest.raises(DmError, match="gift wrap"):
        unwrap(DRIVER_SECRET, not_a_seal)
    reaction = make_unsigned(CHARGER, 7, [["p", DRIVER]], "+", NOW)
    wrap = gift_wrap(seal(CHARGER_SECRET, reaction, DRIVER, created_at=NOW), DRIVER, created_at=NOW)
    assert unwrap(DRIVER_SECRET, wrap).rumor.kind == 7
    with pytest.raises(DmError, match="kind-14"):
        open_dm(DRIVER_SECRET, wrap)


def test_ephemeral_wraps_and_extra_tags() -> None:
    rumor = chat_rumor(CHARGER, DRIVER, "hi", created_at=NOW)
    wrap = gift_wrap(
        seal(CHARGER_SECRET, rumor, DRIVER, created_at=NOW),
        DRIVER,
        created_at=NOW,
        kind=21059,
        extra_tags=[["expiration", str(NOW + 60)]],
    )
    assert wrap.tags == (("p", DRIVER), ("expiration", str(NOW + 60)))
    assert open_dm(DRIVER_SECRET, wrap).text == "hi"


# --- NIP-04 ----------------------------------------------------------------------------------


def test_nip04_dm_round_trip() -> None:
    event = nip04_message(DRIVER_SECRET, CHARGER, "status", created_at=NOW, reply_to="cd" * 32)
    assert event.kind == 4
    assert event.tags == (("p", CHARGER), ("e", "cd" * 32))
    message = open_dm(CHARGER_SECRET, event)
    assert (message.sender, message.text, message.scheme) == (DRIVER, "status", DmScheme.NIP04)
    assert message.event_id == message.message_id == event.id


def test_nip04_dm_to_someone_else_is_refused() -> None:
    event = nip04_message(DRIVER_SECRET, MALLORY, "hi", created_at=NOW)
    with pytest.raises(DmError, match="not addressed"):
        open_dm(CHARGER_SECRET, event)


def test_nip04_dm_with_a_bad_signature_or_payload_is_refused() -> None:
    event = nip04_message(DRIVER_SECRET, CHARGER, "hi", created_at=NOW)
    forged = Event(
        event.id, event.pubkey, event.created_at, 4, event.tags, event.content, "00" * 64
    )
    with pytest.raises(DmError, match="invalid DM"):
        open_dm(CHARGER_SECRET, forged)
    garbage = sign_event(DRIVER_SECRET, 4, [["p", CHARGER]], "not a payload", NOW)
    with pytest.raises(DmError, match="decrypt"):
        open_dm(CHARGER_SECRET, garbage)
