"""Fixtures of the lightning contract suite: one ``harness`` per backend.

The real LNbits is started once per session (install on first use: 50 to 75 s and 275 MB in
``.peers/lnbits``; later sessions start it in about 8 s). When it cannot be installed or started,
its tests skip - or fail under ``STROM_REQUIRE_PEERS=1``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.harness import FakeHarness, Harness, LNbitsHarness, LndHarness
from tests.contract.proxy import ChaosProxy
from tests.lightning.lnd_stub import LndStub
from tests.lightning.tls import TlsPair, make_self_signed
from tests.peers.lnbits import LNbitsPeer


@pytest.fixture(scope="session")
def lnd_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsPair:
    return make_self_signed(tmp_path_factory.mktemp("lnd-tls"), "lnd")


@pytest.fixture(params=["fake", "lnd", "lnbits"])
async def harness(
    request: pytest.FixtureRequest, tmp_path: Path, lnd_tls: TlsPair
) -> AsyncIterator[Harness]:
    built: Harness
    if request.param == "fake":
        built = FakeHarness(tmp_path)
    elif request.param == "lnd":
        macaroon = secrets.token_bytes(64)
        stub = LndStub(macaroon=macaroon, cert=lnd_tls.cert, key=lnd_tls.key, network="bcrt")
        await stub.start()
        built = LndHarness(stub, macaroon, lnd_tls.pem)
    else:
        peer: LNbitsPeer = request.getfixturevalue("lnbits_peer")
        port = int(peer.url.rsplit(":", 1)[1])
        proxy = ChaosProxy("127.0.0.1", port)
        await proxy.start()
        built = LNbitsHarness(peer, proxy)
    try:
        yield built
    finally:
        await built.aclose()
