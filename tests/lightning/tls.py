"""Throwaway self-signed TLS certificates for the tests (made with the openssl command)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class TlsPair:
    cert: Path
    key: Path

    @property
    def pem(self) -> str:
        return self.cert.read_text()


def make_self_signed(directory: Path, name: str) -> TlsPair:
    """An EC key and a self-signed certificate for 127.0.0.1, valid for a day."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a throwaway certificate")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.cert", directory / f"{name}.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            f"/O=lnd/CN={name}",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return TlsPair(cert, key)
