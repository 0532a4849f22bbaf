"""The charger CA's files: made once in the data folder with a private key, then kept."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from strom.charger_ca import CA_DIR, charger_ca
from strom.config import load_config
from strom.scaffold import write_scaffold
from strom_core.errors import ConfigError


def test_the_charger_ca_is_made_once_with_a_private_key(tmp_path: Path) -> None:
    write_scaffold(tmp_path, charger_id="cp-1")
    config = load_config(tmp_path / "strom.toml", environ={})
    first = charger_ca(config)
    key = config.storage.data_dir / CA_DIR / "ca.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert charger_ca(config).certificate == first.certificate
    key.chmod(0o644)
    with pytest.raises(ConfigError, match="accessible by other users"):
        charger_ca(config)
