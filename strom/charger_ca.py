"""The charger CA's files: the operator's own, or one Strom makes on first use.

With ``[ocpp] charger_ca_cert`` and ``charger_ca_key`` set, those files are the CA. Otherwise
``<data_dir>/charger-ca/`` (mode 0700) holds ``ca.pem`` and ``ca.key`` (mode 0600), made the first
time Strom starts; a key readable by others is refused. The CA signs chargers' CSRs
(SignCertificate) and admits chargers of security profile 3 (:mod:`ocpp_server.certificates`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from ocpp_server.certificates import ChargerCa, new_ca
from strom.private_files import make_private_folder, read_private, write_private
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import StromConfig
from strom_core.errors import ConfigError

__all__ = ["CA_DIR", "charger_ca"]

CA_DIR: Final = "charger-ca"


def charger_ca(config: StromConfig, *, clock: Clock = SYSTEM_CLOCK) -> ChargerCa:
    """The charger CA of this Strom (the operator's files, or Strom's own, made if missing).

    Raises:
        ConfigError: a file is unreadable, readable by others, or not a CA with its key.
    """
    ocpp = config.ocpp
    if ocpp.charger_ca_cert is not None and ocpp.charger_ca_key is not None:
        cert_path, key_path = ocpp.charger_ca_cert, ocpp.charger_ca_key
        certificate = _read(cert_path)
        key = read_private(key_path)
        if key is None:
            raise ConfigError(f"{key_path}: the charger CA key does not exist")
    else:
        folder = config.storage.data_dir / CA_DIR
        make_private_folder(folder, "the charger CA folder")
        cert_path, key_path = folder / "ca.pem", folder / "ca.key"
        key = read_private(key_path)
        if key is None:
            certificate, key = new_ca("Strom charger CA", now=clock.now())
            write_private(key_path, key)
            write_private(cert_path, certificate)
        else:
            certificate = _read(cert_path)
    try:
        return ChargerCa.from_pem(certificate, key)
    except ValueError as exc:
        raise ConfigError(f"{cert_path} / {key_path}: not a charger CA: {exc}") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
