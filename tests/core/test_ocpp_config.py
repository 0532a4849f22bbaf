"""The OCPP server's tunables that docs/ocpp.md names are settings of ``[ocpp]`` in strom.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from strom.app import Strom
from strom.config import load_config
from strom.scaffold import write_scaffold
from strom_core.errors import ConfigError

SETTINGS = {
    "pending_retry_interval_s": 30,
    "max_pending_chargers": 5,
    "boot_backstop_delay_s": 12.5,
    "message_log_size": 50,
}


async def test_the_documented_ocpp_settings_reach_the_ocpp_server(tmp_path: Path) -> None:
    path = write_scaffold(tmp_path)
    text = path.read_text().replace(
        "[ocpp]\n", "[ocpp]\n" + "".join(f"{k} = {v}\n" for k, v in SETTINGS.items()), 1
    )
    path.write_text(text)
    config = load_config(path, environ={"STROM_OCPP__HOST": '"127.0.0.1"'})
    strom = await Strom.open(config)
    try:
        settings = strom.ocpp.settings
        assert {name: getattr(settings, name) for name in SETTINGS} == SETTINGS
    finally:
        await strom.db.close()
        await strom.backend.aclose()


def test_an_out_of_range_ocpp_setting_is_refused_with_the_key_named(tmp_path: Path) -> None:
    path = write_scaffold(tmp_path)
    with pytest.raises(ConfigError, match=r"key 'ocpp.message_log_size'.*found -1"):
        load_config(path, environ={"STROM_OCPP__MESSAGE_LOG_SIZE": "-1"})


def test_a_charger_ca_of_the_operator_needs_both_its_files(tmp_path: Path) -> None:
    path = write_scaffold(tmp_path)
    with pytest.raises(ConfigError, match="charger_ca_cert and charger_ca_key go together"):
        load_config(path, environ={"STROM_OCPP__CHARGER_CA_CERT": '"ca.pem"'})
