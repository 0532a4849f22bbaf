"""Every ``toml`` block of README.md and docs/*.md is a configuration Strom accepts: a part of
``strom.toml`` (the LND, LNbits and proxy settings), or else a part of a charger's profile
(its ``[ocpp]`` password and quirks). They cannot connect to a real node here, but a key the
loader does not know, or a value it refuses, fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomlkit

from strom.config import load_config
from strom.scaffold import write_scaffold
from strom_core.errors import ConfigError
from tests.docs.examples import all_docs

TOML = [block for doc in all_docs() for block in doc.blocks if block.lang == "toml"]


def _merged(text: str, fragment: str) -> str:
    document: Any = tomlkit.parse(text)
    for key, value in tomlkit.parse(fragment).items():
        if isinstance(value, dict) and key in document:
            document[key].update(value)
        else:
            document[key] = value
    return tomlkit.dumps(document)


@pytest.mark.parametrize("block", TOML, ids=[block.id for block in TOML])
def test_the_configuration_example_is_accepted(block: Any, tmp_path: Path) -> None:
    as_strom_toml, as_profile = tmp_path / "strom", tmp_path / "profile"
    config = write_scaffold(as_strom_toml)
    config.write_text(_merged(config.read_text(), block.text))
    try:
        load_config(config, environ={})
        return
    except ConfigError as exc:
        refused = exc.message
    config = write_scaffold(as_profile)
    profile = as_profile / "profiles" / "example-1.toml"
    profile.write_text(_merged(profile.read_text(), block.text))
    try:
        load_config(config, environ={})
    except ConfigError as exc:
        pytest.fail(f"{block.id}: neither strom.toml ({refused}) nor a profile ({exc.message})")
