"""nostr-sdk (pinned) against the pure core: events, NIP-04, NIP-44 and NIP-17 both ways."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from agent import nostr_sdk_adapter as sdk
from strom_nostr import nip04, nip44
from strom_nostr.discovery import status_template
from strom_nostr.dm import chat_rumor, open_dm, unwrap, wrap_message
from strom_nostr.errors import BuildError, DecryptionError, DmError
from strom_nostr.event import parse_event, sign_event, sign_template, verify_event
from strom_nostr.keys import public_key_hex
from tests.nostr.samples import STATUS

ALICE = hashlib.sha256(b"sdk alice").digest()
BOB = hashlib.sha256(b"sdk bob").digest()
ALICE_PK = public_key_hex(ALICE)
BOB_PK = public_key_hex(BOB)
NOW = 1_760_000_000
TEXTS = ["stop", "Grüße ⚡ 🚗", "x" * 3000, 'quotes " and \\ backslashes\n']


def test_the_pinned_version_is_installed() -> None:
    sdk.check_version()


@pytest.mark.parametrize("content", TEXTS)
def test_our_events_verify_in_nostr_sdk(content: str) -> None:
    event = sign_event(ALICE, 1, [["t", "ev"], ["p", BOB_PK, ""]], content, NOW)
    assert sdk.sdk_verify(event)
    assert sdk.from_sdk_event(sdk.to_sdk_event(event)) == event


def test_our_status_event_verifies_in_nostr_sdk() -> None:
    event = sign_template(ALICE, status_template(STATUS, created_at=NOW))
    assert sdk.sdk_verify(event)


@pytest.mark.parametrize("content", TEXTS)
def test_nostr_sdk_events_verify_in_ours(content: str) -> None:
    event = sdk.sdk_sign(ALICE, 30522, [["d", "cp-1"], ["g", "u33"]], content, NOW)
    verify_event(event)
    assert (event.pubkey, event.kind, event.created_at) == (ALICE_PK, 30522, NOW)


def test_nostr_sdk_refuses_a_forged_event() -> None:
    event = sign_event(ALICE, 1, (), "a", NOW)
    forged = parse_event(
        event.to_dict() | {"sig": sign_event(ALICE, 1, (), "b", NOW).sig}, verify=False
    )
    assert not sdk.sdk_verify(forged)


@pytest.mark.parametrize("text", TEXTS)
def test_nip04_both_ways(text: str) -> None:
    assert sdk.sdk_nip04_decrypt(BOB, ALICE_PK, nip04.encrypt(ALICE, BOB_PK, text)) == text
    assert nip04.decrypt(BOB, ALICE_PK, sdk.sdk_nip04_encrypt(ALICE, BOB_PK, text)) == text


@pytest.mark.parametrize("text", TEXTS)
def test_nip44_both_ways(text: str) -> None:
    ours = nip44.encrypt(text, nip44.conversation_key(ALICE, BOB_PK))
    assert sdk.sdk_nip44_decrypt(BOB, ALICE_PK, ours) == text
    theirs = sdk.sdk_nip44_encrypt(ALICE, BOB_PK, text)
    assert nip44.decrypt(theirs, nip44.conversation_key(BOB, ALICE_PK)) == text


def test_nostr_sdk_decrypts_the_official_vectors(nip44_vectors: dict[str, Any]) -> None:
    for case in nip44_vectors["valid"]["encrypt_decrypt"]:
        sec1, sec2 = bytes.fromhex(case["sec1"]), bytes.fromhex(case["sec2"])
        assert (
            sdk.sdk_nip44_decrypt(sec2, public_key_hex(sec1), case["payload"]) == case["plaintext"]
        )


def test_nostr_sdk_errors_are_translated() -> None:
    with pytest.raises(DecryptionError):
        sdk.sdk_nip44_decrypt(BOB, ALICE_PK, "A" * 200)
    with pytest.raises(DecryptionError):
        sdk.sdk_nip04_decrypt(BOB, ALICE_PK, "garbage")
    with pytest.raises(BuildError):
        sdk.sdk_nip44_encrypt(ALICE, BOB_PK, "a" * 70_000)  # nostr-sdk keeps the 65535 limit


def test_our_gift_wrap_opens_in_nostr_sdk() -> None:
    wrap = wrap_message(ALICE, BOB_PK, "Charging started", now=NOW)
    sender, rumor = sdk.sdk_unwrap(BOB, wrap)
    assert sender == ALICE_PK
    assert (rumor.kind, rumor.content, rumor.created_at) == (14, "Charging started", NOW)


def test_nostr_sdk_private_messages_open_in_ours() -> None:
    wrap = sdk.sdk_private_message(BOB, ALICE_PK, "stop")
    message = open_dm(ALICE, wrap)
    assert (message.sender, message.text) == (BOB_PK, "stop")


def test_nostr_sdk_gift_wraps_of_our_rumor_open_in_ours() -> None:
    rumor = chat_rumor(BOB_PK, ALICE_PK, "status", created_at=NOW)
    opened = unwrap(ALICE, sdk.sdk_gift_wrap(BOB, ALICE_PK, rumor))
    assert opened.rumor == rumor


def test_nostr_sdk_opens_the_nip59_example(nip_examples: dict[str, Any]) -> None:
    example = nip_examples["nip59_giftwrap"]
    sender, rumor = sdk.sdk_unwrap(
        bytes.fromhex(example["recipient_priv"]), parse_event(example["wrap"])
    )
    assert sender == example["rumor"]["pubkey"]
    assert rumor.id == example["rumor"]["id"]


def test_nostr_sdk_refuses_a_wrap_for_someone_else() -> None:
    wrap = wrap_message(ALICE, BOB_PK, "hi", now=NOW)
    with pytest.raises(DmError):
        sdk.sdk_unwrap(ALICE, wrap)
