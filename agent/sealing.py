"""Encryption at rest for the agents' secrets: :mod:`strom_storage.sealing`, under its old name.

The sealing code moved to storage so that the other front doors (the OCPI server) seal their
secrets the same way; the agents' modules and older imports keep using this name.
"""

from __future__ import annotations

from strom_storage.sealing import (
    MASTER_KEY_ENV,
    SEALED_PREFIX,
    Sealer,
    SealError,
    sealer_from_environ,
)

__all__ = ["MASTER_KEY_ENV", "SEALED_PREFIX", "SealError", "Sealer", "sealer_from_environ"]
