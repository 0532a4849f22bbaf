"""``[cluster]``: off by default, turned on by configuration or ``strom run --cluster``,
refused on SQLite with a clear error, and a process id that a restart never reuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from strom.cli import main
from strom.cluster import process_id
from strom.config import load_config
from strom.scaffold import write_scaffold
from strom_core.config import ClusterConfig, StorageConfig, StromConfig, check_cluster
from strom_core.errors import ConfigError
from strom_core.ports.cluster import check_name

PG = "postgresql+asyncpg://strom@db/strom"


def test_one_process_is_the_default() -> None:
    cluster = StromConfig().cluster
    assert cluster == ClusterConfig()
    assert cluster.enabled is False
    assert cluster.bus == "postgresql"
    assert cluster.process_id == ""
    assert cluster.lease_ttl_s == 10.0


def test_the_section_loads_from_the_file_and_the_environment(tmp_path: Path) -> None:
    config_file = write_scaffold(tmp_path)
    with config_file.open("a") as handle:
        handle.write('\n[cluster]\nbus = "nats"\nnats_url = "nats://nats:4222"\nlease_ttl_s = 6\n')
    config = load_config(
        config_file,
        environ={"STROM_CLUSTER__ENABLED": "true", "STROM_CLUSTER__PROCESS_ID": "web-1"},
    )
    assert config.cluster == ClusterConfig(
        enabled=True, bus="nats", nats_url="nats://nats:4222", lease_ttl_s=6, process_id="web-1"
    )


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("process_id", '"web.1"', "process_id"),
        ("process_id", '"' + "x" * 49 + '"', "process_id"),
        ("bus", '"redis"', "bus"),
        ("nats_url", '"http://nats:4222"', "nats://host:port"),
        ("lease_ttl_s", "0.5", "lease_ttl_s"),
    ],
)
def test_a_bad_setting_is_named(tmp_path: Path, key: str, value: str, says: str) -> None:
    config_file = write_scaffold(tmp_path)
    with config_file.open("a") as handle:
        handle.write(f"\n[cluster]\n{key} = {value}\n")
    with pytest.raises(ConfigError, match=says):
        load_config(config_file, environ={})


def test_a_cluster_on_sqlite_is_refused_and_one_on_postgresql_is_not() -> None:
    on = ClusterConfig(enabled=True)
    with pytest.raises(ConfigError, match=r"a cluster needs PostgreSQL: storage\.database_url is"):
        check_cluster(StromConfig(cluster=on))
    check_cluster(StromConfig(cluster=on, storage=StorageConfig(database_url=PG)))
    check_cluster(StromConfig())  # one process on SQLite, as always


def test_strom_run_cluster_on_sqlite_says_why_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = write_scaffold(tmp_path)
    assert main(["run", "--cluster", "-c", str(config_file)]) == 2
    err = capsys.readouterr().err
    assert "a cluster needs PostgreSQL: storage.database_url is SQLite" in err
    assert "Traceback" not in err


def test_each_start_gets_a_new_process_id_that_is_a_bus_name() -> None:
    first, second = process_id("", "node.example.org"), process_id("", "node.example.org")
    assert first != second  # a restart never renews its predecessor's leases
    assert first.startswith("node-")
    assert check_name("process id", first) == first
    long_host = process_id("", "h" * 80 + "_weird!")
    assert check_name("process id", long_host) == long_host
    assert process_id("web-1", "anything") == "web-1"  # the operator's fixed id
