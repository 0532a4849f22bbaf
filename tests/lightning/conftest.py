"""Fixtures of the lightning unit tests: TLS material and the LND stub."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from strom_lightning import LndRestBackend
from tests.lightning.lnd_stub import LndStub
from tests.lightning.tls import TlsPair, make_self_signed


@pytest.fixture(scope="session")
def lnd_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsPair:
    return make_self_signed(tmp_path_factory.mktemp("lnd-tls"), "lnd")


@pytest.fixture(scope="session")
def impostor_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsPair:
    """Another self-signed certificate for the same address: a man in the middle."""
    return make_self_signed(tmp_path_factory.mktemp("impostor-tls"), "lnd")


@pytest.fixture
def macaroon() -> bytes:
    return secrets.token_bytes(72)


@pytest.fixture
async def lnd_stub(lnd_tls: TlsPair, macaroon: bytes) -> AsyncIterator[LndStub]:
    stub = LndStub(macaroon=macaroon, cert=lnd_tls.cert, key=lnd_tls.key, network="bcrt")
    await stub.start()
    try:
        yield stub
    finally:
        await stub.stop()


@pytest.fixture
async def lnd(
    lnd_stub: LndStub, lnd_tls: TlsPair, macaroon: bytes
) -> AsyncIterator[LndRestBackend]:
    backend = LndRestBackend(
        lnd_stub.url,
        macaroon=macaroon,
        cert_pem=lnd_tls.pem,
        network="bcrt",
        timeout_s=5.0,
        reconcile_every_s=30.0,
        fallback_poll_s=0.2,
    )
    try:
        yield backend
    finally:
        await backend.aclose()
