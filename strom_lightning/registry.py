"""The explicit registry of lightning backends and the factory the composition root calls."""

from __future__ import annotations

from pathlib import Path

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import ConfigError
from strom_core.lightning_config import BackendConfig
from strom_lightning.base import LightningBackend
from strom_lightning.fake import FakeBackend
from strom_lightning.lnbits import LNbitsBackend
from strom_lightning.lnd import LndRestBackend

__all__ = ["BACKENDS", "create_backend"]

BACKENDS: dict[str, type[LightningBackend]] = {
    "fake": FakeBackend,
    "lnd": LndRestBackend,
    "lnbits": LNbitsBackend,
}


def create_backend(
    config: BackendConfig,
    *,
    data_dir: Path,
    clock: Clock = SYSTEM_CLOCK,
    config_file: Path | None = None,
) -> LightningBackend:
    """Build the backend a ``[lightning]`` section asks for.

    Args:
        config: the parsed section (see :func:`strom_core.lightning_config.parse_lightning_config`).
        data_dir: Strom's data folder; the fake keeps its database there and relative secret
            paths are resolved against it.
        clock: the clock the backend reads.
        config_file: Strom's configuration file, when there is one (named in advice to the
            operator, such as the command that pins a renewed LND certificate).

    Returns:
        The backend, not yet connected (connections open on first use).

    Raises:
        ConfigError: unknown backend, or a secret file that cannot be read.
    """
    backend = BACKENDS.get(config.backend)
    if backend is None:
        raise ConfigError(f"lightning.backend: unknown backend {config.backend!r}")
    return backend.from_config(config, data_dir=data_dir, clock=clock, config_file=config_file)
