"""One charger-id rule (strom_core.ids), and every entry point that takes an id follows it.

Each entry point is asked about the same ids: ones the old, looser patterns let through (a
trailing newline, a leading dot, ``..``, ``_pool``, ``-x``) and ones that must stay valid. A
module with a pattern of its own disagrees on at least one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from agent.identity import POOL_KEY_NAME, KeyStore
from cockpit.models import ChargerId, SessionQuery
from cockpit.profiles import ProfileFiles
from ocpp_server import ChargerAuth
from strom.config import load_config
from strom.scaffold import write_scaffold
from strom_core.config import ProfileConfig
from strom_core.errors import ConfigError
from strom_core.ids import CHARGER_ID_PATTERN, check_charger_id, is_charger_id

VALID = ["a", "7", "cp-1", "example-1", "DE.MUC_001", "a..b", "cp.", "x" * 48, "A-" + "9" * 46]
INVALID = [
    "",
    "cp-1\n",  # re.match with $ let this one through
    "cp-1\r\n",
    "\ncp-1",
    ".",
    "..",
    ".hidden",
    "-rf",
    "_pool",
    "cp 1",
    "cp/1",
    "cp%0A",
    "cp:1",
    "x" * 49,
    "ümlaut",
    "cp-1\x00",
]


def test_the_rule() -> None:
    assert all(is_charger_id(v) for v in VALID)
    assert not any(is_charger_id(v) for v in INVALID)
    assert not is_charger_id(None)
    assert not is_charger_id(b"cp-1")
    assert check_charger_id("cp-1") == "cp-1"
    with pytest.raises(ValueError, match=r"'cp-1\\n': expected 1-48 letters"):
        check_charger_id("cp-1\n")
    assert POOL_KEY_NAME == "_pool"  # no charger can take the relay pool's key name


def _profile(charger_id: str) -> None:
    ProfileConfig.model_validate(
        {
            "id": charger_id,
            "name": "n",
            "location": {"lat": 0, "lon": 0},
            "connectors": [{"id": 1, "max_power_kw": 11}],
            "tariff": {},
        }
    )


def _ocpp(charger_id: str) -> None:
    ChargerAuth(charger_id)


def _api(charger_id: str) -> None:
    TypeAdapter(ChargerId).validate_python(charger_id)
    SessionQuery.model_validate({"charger": charger_id})


ENTRY_POINTS: dict[str, tuple[Callable[[str], Any], type[Exception]]] = {
    "profile config": (_profile, ValidationError),
    "OCPP admission settings": (_ocpp, ValueError),
    "API models": (_api, ValidationError),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("charger_id", VALID + INVALID)
def test_every_entry_point_follows_the_one_rule(entry: str, charger_id: str) -> None:
    accept, refusal = ENTRY_POINTS[entry]
    if is_charger_id(charger_id):
        accept(charger_id)
    else:
        with pytest.raises(refusal):
            accept(charger_id)


@pytest.mark.parametrize("charger_id", VALID + INVALID)
def test_file_names_follow_the_one_rule(tmp_path: Path, charger_id: str) -> None:
    keys, profiles = KeyStore(tmp_path), ProfileFiles(tmp_path / "profiles")
    if is_charger_id(charger_id):
        assert keys.path(charger_id).name == f"{charger_id}.key"
        assert profiles.path(charger_id).name == f"{charger_id}.toml"
        return
    if charger_id != POOL_KEY_NAME:  # the one key file that is no charger's
        with pytest.raises(ConfigError, match="not a charger id"):
            keys.path(charger_id)
    with pytest.raises(ValueError, match="expected 1-48"):
        profiles.path(charger_id)
    with pytest.raises(ValueError, match="expected 1-48"):
        write_scaffold(tmp_path / "new", charger_id=charger_id)
    assert not (tmp_path / "new").exists()


def test_the_key_store_still_has_the_pool_key(tmp_path: Path) -> None:
    assert KeyStore(tmp_path).path(POOL_KEY_NAME).name == "_pool.key"


def test_the_api_documents_the_rule_as_a_full_match() -> None:
    schema = TypeAdapter(ChargerId).json_schema()
    assert schema == {"type": "string", "pattern": f"^{CHARGER_ID_PATTERN}$"}


def test_names_in_addresses_find_their_charger_whatever_the_case(tmp_path: Path) -> None:
    # Charge-box ids are often upper-case serials; wallets lowercase lightning addresses.
    write_scaffold(tmp_path, charger_id="CP-Up")
    config = load_config(tmp_path / "strom.toml", environ={})
    assert config.profile_by_name("cp-up").id == "CP-Up"
    assert config.profile_by_name("CP-UP").id == "CP-Up"
    with pytest.raises(KeyError):
        config.profile("cp-up")  # OCPP and the API keep the exact id
    with pytest.raises(KeyError):
        config.profile_by_name("cp-up2")


def test_ids_that_differ_only_in_case_are_refused(tmp_path: Path) -> None:
    write_scaffold(tmp_path, charger_id="CP-Up")
    profiles = tmp_path / "profiles"
    text = (profiles / "CP-Up.toml").read_text().replace('id = "CP-Up"', 'id = "cp-up"')
    (profiles / "cp-up.toml").write_text(text)
    with pytest.raises(ConfigError, match="'CP-Up' and 'cp-up' differ only in case"):
        load_config(tmp_path / "strom.toml", environ={})
