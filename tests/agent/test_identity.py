"""Each charger's key: created once, private on disk, optionally sealed with a master key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.identity import AgentKey, KeyStore, ensure_key, export_nsec, npub_of
from agent.sealing import SEALED_PREFIX, SealError
from strom_core.errors import ConfigError
from strom_nostr.event import verify_event
from strom_nostr.keys import decode_npub, decode_nsec, public_key_hex

MASTER = {"STROM_MASTER_KEY": "00" * 31 + "ab"}


def test_a_key_is_created_once_with_private_permissions(tmp_path: Path) -> None:
    secret = ensure_key(tmp_path, "cp-1", environ={})
    assert ensure_key(tmp_path, "cp-1", environ={}) == secret
    path = tmp_path / "keys" / "cp-1.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text().strip() == secret.hex()
    assert ensure_key(tmp_path, "cp-2", environ={}) != secret
    assert [p.name for p in sorted(path.parent.iterdir())] == ["cp-1.key", "cp-2.key"]


def test_npub_and_nsec_belong_to_the_stored_key(tmp_path: Path) -> None:
    secret = ensure_key(tmp_path, "cp-1", environ={})
    assert decode_npub(npub_of(tmp_path, "cp-1", environ={})) == public_key_hex(secret)
    assert decode_nsec(export_nsec(tmp_path, "cp-1", environ={})) == secret


def test_a_master_key_seals_the_file(tmp_path: Path) -> None:
    secret = ensure_key(tmp_path, "cp-1", environ=MASTER)
    stored = (tmp_path / "keys" / "cp-1.key").read_text()
    assert stored.startswith(SEALED_PREFIX)
    assert secret.hex() not in stored
    assert ensure_key(tmp_path, "cp-1", environ=MASTER) == secret
    with pytest.raises(SealError, match="set STROM_MASTER_KEY"):
        ensure_key(tmp_path, "cp-1", environ={})
    with pytest.raises(SealError, match="does not open"):
        ensure_key(tmp_path, "cp-1", environ={"STROM_MASTER_KEY": "11" * 32})


def test_a_sealed_key_does_not_open_under_another_charger_id(tmp_path: Path) -> None:
    ensure_key(tmp_path, "cp-1", environ=MASTER)
    keys = tmp_path / "keys"
    os.link(keys / "cp-1.key", keys / "cp-2.key")
    with pytest.raises(SealError):
        ensure_key(tmp_path, "cp-2", environ=MASTER)


def test_a_short_master_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="too short"):
        ensure_key(tmp_path, "cp-1", environ={"STROM_MASTER_KEY": "secret"})


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    ensure_key(tmp_path, "cp-1", environ={})
    path = tmp_path / "keys" / "cp-1.key"
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        ensure_key(tmp_path, "cp-1", environ={})


@pytest.mark.parametrize("name", ["../escape", "", "a/b", ".hidden"])
def test_charger_ids_cannot_leave_the_key_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError):
        ensure_key(tmp_path, name, environ={})


def test_the_pool_key_has_a_name_no_charger_can_have(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    assert store.path("_pool").name == "_pool.key"
    assert len(store.ensure("_pool")) == 32


def test_agent_keys_sign_events_that_verify() -> None:
    key = AgentKey(bytes(31) + b"\x07")
    event = key.sign(30522, [["d", "cp-1"]], "", 1_760_000_000)
    verify_event(event)
    assert event.pubkey == key.pubkey
    assert key.npub.startswith("npub1")
