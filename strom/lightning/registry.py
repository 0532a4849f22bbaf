"""The explicit registry of lightning backends and the factory the composition root calls."""

from __future__ import annotations

from pathlib import Path

from strom.errors import ConfigError
from strom.lightning.base import LightningBackend
from strom.lightning.config import BackendConfig
from strom.lightning.fake import FakeBackend
from strom.lightning.lnbits import LNbitsBackend
from strom.lightning.lnd import LndRestBackend

__all__ = ["BACKENDS", "create_backend"]

BACKENDS: dict[str, type[LightningBackend]] = {
    "fake": FakeBackend,
    "lnd": LndRestBackend,
    "lnbits": LNbitsBackend,
}


def create_backend(config: BackendConfig, *, data_dir: Path) -> LightningBackend:
    """Build the backend a ``[lightning]`` section asks for.

    Args:
        config: the parsed section (see :func:`strom.lightning.config.parse_lightning_config`).
        data_dir: Strom's data folder; the fake keeps its database there and relative secret
            paths are resolved against it.

    Returns:
        The backend, not yet connected (connections open on first use).

    Raises:
        ConfigError: unknown backend, or a secret file that cannot be read.
    """
    backend = BACKENDS.get(config.backend)
    if backend is None:
        raise ConfigError(f"lightning.backend: unknown backend {config.backend!r}")
    return backend.from_config(config, data_dir=data_dir)
