"""Fixtures of the OCPI tests.

``ocpi_emsp``: the test eMSP (py_ocpi in its own venv and process, see
``tests/peers/ocpi_emsp.py``), one per test module: it starts in about a second, and a module's
tests can share it (each registers afresh, or offers a new token A).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import peer_missing
from tests.peers.ocpi import PeerUnavailable
from tests.peers.ocpi_emsp import OcpiEmspPeer


@pytest.fixture(scope="module")
def ocpi_emsp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OcpiEmspPeer]:
    """A running py_ocpi eMSP on 127.0.0.1, driven through its control API."""
    try:
        peer = OcpiEmspPeer.start(tmp_path_factory.mktemp("ocpi-emsp"))
    except PeerUnavailable as exc:
        peer_missing(f"the OCPI peer (extrawest-ocpi) is not available: {exc}")
        raise  # peer_missing skips or fails; never reached
    try:
        yield peer
    finally:
        peer.stop()
