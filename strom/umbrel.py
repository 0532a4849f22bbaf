"""Strom as an Umbrel app: its LND found from the environment Umbrel gives every app.

Umbrel starts an app that depends on ``lightning`` with ``APP_LIGHTNING_NODE_IP`` and
``APP_LIGHTNING_NODE_REST_PORT`` (where LND's REST interface answers) and
``APP_BITCOIN_NETWORK`` (``mainnet``, ``testnet``, ``signet`` or ``regtest``); the app's
compose file mounts LND's data folder (``APP_LIGHTNING_NODE_DATA_DIR``) read-only into the
container, at ``/lnd`` unless ``STROM_LND_DIR`` names another place. From these Strom builds its
``[lightning]`` section itself: ``rest_host``, LND's ``tls.cert`` (pinned) and the admin
macaroon (refunds pay invoices), or the invoice macaroon when only that one is there.

An operator's own ``lnd`` or ``lnbits`` section always wins; only the default fake backend is
replaced, so an Umbrel never sells charging against play money by mistake.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from strom_core.errors import ConfigError
from strom_core.lightning import Network
from strom_core.lightning_config import LndConfig

__all__ = ["DEFAULT_LND_DIR", "umbrel_lightning", "umbrel_lightning_section"]

DEFAULT_LND_DIR = Path("/lnd")
"""Where the Umbrel app's compose file mounts LND's data folder (read-only)."""

_NETWORKS: dict[str, Network] = {
    "mainnet": "bc",
    "testnet": "tb",
    "testnet3": "tb",
    "testnet4": "tb",
    "signet": "tbs",
    "regtest": "bcrt",
}
_MACAROONS = ("admin.macaroon", "invoice.macaroon")


def umbrel_lightning_section(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The ``[lightning]`` section (as TOML would give it) for Umbrel's LND, or None off Umbrel.

    Raises:
        ConfigError: Umbrel's variables are there but the network is unknown or LND's folder
            holds no macaroon (the message says where it looked).
    """
    ip = environ.get("APP_LIGHTNING_NODE_IP", "").strip()
    port = environ.get("APP_LIGHTNING_NODE_REST_PORT", "").strip()
    if not ip or not port:
        return None
    name = environ.get("APP_BITCOIN_NETWORK", "mainnet").strip() or "mainnet"
    network = _NETWORKS.get(name)
    if network is None:
        raise ConfigError(
            f"APP_BITCOIN_NETWORK: expected one of {', '.join(sorted(_NETWORKS))}; found {name!r}"
        )
    lnd = Path(environ.get("STROM_LND_DIR", "") or DEFAULT_LND_DIR)
    folder = lnd / "data" / "chain" / "bitcoin" / name
    macaroon = next((folder / m for m in _MACAROONS if (folder / m).is_file()), None)
    if macaroon is None:
        raise ConfigError(
            f"Umbrel's LND at {ip}:{port}: no {' or '.join(_MACAROONS)} in {folder} (is LND's "
            "data folder mounted there read-only? STROM_LND_DIR names another place)"
        )
    cert = lnd / "tls.cert"
    section: dict[str, Any] = {
        "backend": "lnd",
        "network": network,
        "rest_host": f"{ip}:{port}",
        "macaroon_path": str(macaroon),
    }
    if cert.is_file():
        section["tls_cert_path"] = str(cert)
    return section


def umbrel_lightning(environ: Mapping[str, str]) -> LndConfig | None:
    """Umbrel's LND as Strom's LND configuration, or None when not on Umbrel.

    Raises:
        ConfigError: as :func:`umbrel_lightning_section`.
    """
    section = umbrel_lightning_section(environ)
    return None if section is None else LndConfig.model_validate(section)
