"""``[retention]`` in strom.toml: the scaffold shows the defaults; mistakes are named clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from strom.config import load_config
from strom.scaffold import write_scaffold
from strom_core.config import RetentionConfig
from strom_core.errors import ConfigError


def test_the_scaffold_shows_the_retention_defaults(tmp_path: Path) -> None:
    config = load_config(write_scaffold(tmp_path), environ={})
    assert config.retention == RetentionConfig()
    assert "[retention]" in (tmp_path / "strom.toml").read_text()


def test_retention_is_set_in_the_file_or_the_environment(tmp_path: Path) -> None:
    path = write_scaffold(tmp_path)
    path.write_text(path.read_text().replace("outbox_days = 30", "outbox_days = 7"))
    config = load_config(path, environ={"STROM_RETENTION__METER_READINGS_DAYS": "0"})
    assert config.retention.outbox_days == 7
    assert config.retention.meter_readings_days == 0  # kept forever


def test_a_negative_retention_is_refused_with_the_key_named(tmp_path: Path) -> None:
    path = write_scaffold(tmp_path)
    with pytest.raises(ConfigError, match=r"key 'retention.unknown_stops_days'.*found -1"):
        load_config(path, environ={"STROM_RETENTION__UNKNOWN_STOPS_DAYS": "-1"})
