"""Ports for servers that must be told theirs before they start (child processes)."""

from __future__ import annotations

import socket

import pytest

from tests.peers import lnbits
from tests.peers.lnbits import LNbitsPeer, PeerUnavailable
from tests.ports import ephemeral_range, unused_port


def test_an_unused_port_is_free_and_outside_the_range_the_kernel_hands_out() -> None:
    low, high = ephemeral_range()
    for _ in range(50):
        port = unused_port()

        assert not low <= port <= high  # no outgoing connection or port-0 bind can take it
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # and nothing holds it now


@pytest.mark.peer
@pytest.mark.slow
def test_lnbits_starts_on_another_port_when_its_port_was_taken_meanwhile(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import peer_missing

    try:
        lnbits.install()
    except PeerUnavailable as exc:
        peer_missing(f"LNbits is not available: {exc}")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = int(squatter.getsockname()[1])
        offered = iter([taken])
        monkeypatch.setattr(lnbits, "unused_port", lambda: next(offered, None) or unused_port())
        peer = LNbitsPeer.start(tmp_path_factory.mktemp("lnbits"))
        try:
            assert not peer.url.endswith(f":{taken}")
            assert peer.strom is not None  # it answered and was set up on its new port
        finally:
            peer.stop()
