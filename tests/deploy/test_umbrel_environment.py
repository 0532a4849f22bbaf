"""On Umbrel, Strom finds its LND from the environment Umbrel gives the app."""

from __future__ import annotations

from pathlib import Path

import pytest

from strom.config import load_config
from strom.scaffold import write_scaffold
from strom.umbrel import umbrel_lightning
from strom_core.errors import ConfigError
from strom_core.lightning_config import FakeConfig, LNbitsConfig, LndConfig


def fake_lnd_folder(root: Path, network: str = "mainnet", *, admin: bool = True) -> Path:
    """LND's data folder as Umbrel mounts it: tls.cert and the macaroons of one chain."""
    chain = root / "data" / "chain" / "bitcoin" / network
    chain.mkdir(parents=True)
    (root / "tls.cert").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (chain / "invoice.macaroon").write_bytes(b"\x02\x01invoice")
    if admin:
        (chain / "admin.macaroon").write_bytes(b"\x02\x01admin")
    return root


def umbrel_env(lnd: Path, network: str = "mainnet") -> dict[str, str]:
    return {
        "APP_LIGHTNING_NODE_IP": "10.21.21.9",
        "APP_LIGHTNING_NODE_REST_PORT": "8080",
        "APP_LIGHTNING_NODE_GRPC_PORT": "10009",
        "APP_BITCOIN_NETWORK": network,
        "STROM_LND_DIR": str(lnd),
    }


def test_umbrels_variables_and_lnd_folder_resolve_to_the_lnd_configuration(
    tmp_path: Path,
) -> None:
    lnd = fake_lnd_folder(tmp_path / "lnd")
    config = umbrel_lightning(umbrel_env(lnd))
    assert config == LndConfig(
        backend="lnd",
        network="bc",
        rest_host="10.21.21.9:8080",
        macaroon_path=lnd / "data/chain/bitcoin/mainnet/admin.macaroon",
        tls_cert_path=lnd / "tls.cert",
    )


def test_the_network_picks_the_chain_folder_and_the_invoice_macaroon_serves_without_admin(
    tmp_path: Path,
) -> None:
    lnd = fake_lnd_folder(tmp_path / "lnd", "testnet", admin=False)
    config = umbrel_lightning(umbrel_env(lnd, "testnet"))
    assert config is not None
    assert config.network == "tb"
    assert config.macaroon_path == lnd / "data/chain/bitcoin/testnet/invoice.macaroon"


def test_off_umbrel_nothing_is_resolved_and_a_missing_macaroon_says_where_it_looked(
    tmp_path: Path,
) -> None:
    assert umbrel_lightning({}) is None
    assert umbrel_lightning({"APP_LIGHTNING_NODE_IP": "10.21.21.9"}) is None  # no port
    with pytest.raises(ConfigError, match=r"no admin.macaroon or invoice.macaroon in .*mainnet"):
        umbrel_lightning(umbrel_env(tmp_path / "empty"))
    lnd = fake_lnd_folder(tmp_path / "lnd")
    with pytest.raises(ConfigError, match="APP_BITCOIN_NETWORK"):
        umbrel_lightning(umbrel_env(lnd, "mainnet-ish"))


def test_loading_the_configuration_on_umbrel_replaces_only_the_default_fake_backend(
    tmp_path: Path,
) -> None:
    lnd = fake_lnd_folder(tmp_path / "lnd")
    config_file = write_scaffold(tmp_path / "strom")  # lightning.backend = "fake"
    env = umbrel_env(lnd)
    on_umbrel = load_config(config_file, environ=env)
    assert isinstance(on_umbrel.lightning, LndConfig)
    assert on_umbrel.lightning.rest_host == "10.21.21.9:8080"
    assert isinstance(load_config(config_file, environ={}).lightning, FakeConfig)
    chosen = load_config(config_file, environ={**env, "STROM_LIGHTNING__BACKEND": "fake"})
    assert isinstance(chosen.lightning, FakeConfig)  # the operator's explicit choice
    lnbits = {
        **env,
        "STROM_LIGHTNING__BACKEND": "lnbits",
        "STROM_LIGHTNING__URL": "https://lnbits.example.org",
        "STROM_LIGHTNING__INVOICE_KEY": "0123456789abcdef",
    }
    assert isinstance(load_config(config_file, environ=lnbits).lightning, LNbitsConfig)
