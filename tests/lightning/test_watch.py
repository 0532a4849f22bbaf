"""The node watch: down is said once with why, retried with a backoff, and found again by itself."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from strom_lightning import FakeBackend, LndConfig, LndRestBackend, NodeInfo, NodeState, NodeWatch
from tests.lightning.lnd_stub import LndStub
from tests.lightning.tls import TlsPair


class CountingFake(FakeBackend):
    """The fake, counting the probes so a test waits on them instead of on the clock."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.probes = 0
        self.probed = asyncio.Event()

    async def node_info(self) -> NodeInfo:
        self.probes += 1
        self.probed.set()
        return await super().node_info()

    async def probes_reach(self, count: int) -> None:
        async with asyncio.timeout(10):
            while self.probes < count:
                self.probed.clear()
                await self.probed.wait()


async def state_is(watch: NodeWatch, *, up: bool) -> NodeState:
    changed = asyncio.Event()

    async def listener(_state: NodeState) -> None:
        changed.set()

    watch.on_change(listener)
    try:
        async with asyncio.timeout(10):
            while watch.state.up is not up:
                changed.clear()
                await changed.wait()
    finally:
        watch.remove_listener(listener)
    return watch.state


def lines(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and text in r.getMessage()]


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[CountingFake]:
    backend = CountingFake(tmp_path / "fake.sqlite3")
    try:
        yield backend
    finally:
        await backend.aclose()


async def test_a_node_down_at_start_is_said_once_retried_with_a_backoff_and_found_again(
    fake: CountingFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    watch = NodeWatch(fake, retry_initial_s=0.01, retry_max_s=0.04, check_every_s=60)
    async with fake.outage():
        state = await watch.probe()
        assert state.up is False
        assert "unreachable" in state.reason
        assert watch.network is None  # refunds wait: the node never said which network
        async with asyncio.TaskGroup() as group:
            runner = group.create_task(watch.run())
            steps = []
            for count in range(2, 7):
                await fake.probes_reach(count)
                steps.append(watch.next_retry_s)
            assert steps[-1] == 0.04  # 0.01 doubling, capped
            assert steps == sorted(steps)
            runner.cancel()
    assert len(lines(caplog, logging.WARNING, "lightning node unreachable")) == 1
    assert lines(caplog, logging.WARNING, "still unreachable") == []  # same reason: no line

    async with asyncio.TaskGroup() as group:
        runner = group.create_task(watch.run())
        state = await state_is(watch, up=True)
        runner.cancel()
    assert state.reason == ""
    assert watch.network == "bcrt"
    back = lines(caplog, logging.INFO, "reachable again")
    assert len(back) == 1
    assert "simulated outage" in back[0]  # says what it was

    # The next outage starts its own backoff, from the beginning.
    async with fake.outage():
        await watch.probe()
    assert watch.next_retry_s == 0.01


async def test_a_call_that_failed_elsewhere_has_the_watch_look_at_once(
    fake: CountingFake,
) -> None:
    watch = NodeWatch(fake, check_every_s=3600)
    assert (await watch.probe()).up
    async with asyncio.TaskGroup() as group:
        runner = group.create_task(watch.run())
        async with fake.outage():
            watch.check_soon()  # e.g. an invoice could not be made
            state = await state_is(watch, up=False)
        runner.cancel()
    assert "simulated outage" in state.reason


async def test_a_renewed_lnd_certificate_is_named_and_trusted_once_the_pinned_file_holds_it(
    tmp_path: Path,
    lnd_stub: LndStub,
    lnd_tls: TlsPair,
    impostor_tls: TlsPair,
    macaroon: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    # Umbrel: Strom's tls_cert_path is LND's own tls.cert, which LND rewrites at renewal.
    cert_file = tmp_path / "tls.cert"
    shutil.copy(lnd_tls.cert, cert_file)
    (tmp_path / "admin.macaroon").write_bytes(macaroon)
    config = LndConfig(
        network="bcrt",
        rest_host=lnd_stub.url,
        macaroon_path=Path("admin.macaroon"),
        tls_cert_path=cert_file,
    )
    backend = LndRestBackend.from_config(
        config, data_dir=tmp_path, config_file=Path("/srv/strom/strom.toml")
    )
    watch = NodeWatch(backend)
    try:
        assert (await watch.probe()).up

        await lnd_stub.restart(cert=impostor_tls.cert, key=impostor_tls.key)  # LND renewed it
        state = await watch.probe()
        assert state.up is False
        assert "TLS certificate changed" in state.reason
        assert "strom lightning pin-cert -c /srv/strom/strom.toml" in state.reason
        assert (await watch.probe()).up is False  # still refused: nothing is trusted blindly

        shutil.copy(impostor_tls.cert, cert_file)  # LND wrote its new tls.cert
        state = await watch.probe()
        assert state.up, state.reason
        invoice = await backend.create_invoice(21_000, expiry_s=600)  # and it works
        assert lnd_stub.settle(invoice.bolt11)
    finally:
        await backend.aclose()
    warned = lines(caplog, logging.WARNING, "TLS certificate changed")
    assert len(warned) == 1  # once, not once per probe
    assert lines(caplog, logging.INFO, "TLS certificate changed; using it from now on")
