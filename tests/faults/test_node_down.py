"""A whole Strom on LND (the stub, over TLS) whose node is away, restarts, or renews its
certificate: Strom keeps serving, refuses money in words, reports it, and recovers by itself.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cockpit.tokens import Scope
from lnurl_server.routes import NODE_DOWN
from strom.cli import main
from strom_lightning import Invoice, decode_invoice
from strom_storage.schema import ledger_entries, payments, sessions
from tests.contract.proxy import ChaosProxy
from tests.e2e.conftest import CHARGER, Stack, running_stack
from tests.e2e.test_lnbits_backend import LNbitsDriver
from tests.faults.conftest import fast_node_watch, node_is
from tests.lightning.lnd_stub import LndStub
from tests.lightning.tls import TlsPair, make_self_signed
from tests.peers.lnbits import LNbitsPeer


class StubWallet:
    """The driver's wallet, somewhere on the network of the LND stub."""

    def __init__(self, stub: LndStub) -> None:
        self.stub = stub

    async def pay(self, bolt11: str) -> object:
        assert self.stub.settle(bolt11)
        return True

    async def create_invoice(self, amount_msat: int, *, memo: str = "refund") -> Invoice:
        bolt11 = self.stub.remote_invoice(amount_msat)
        decoded = decode_invoice(bolt11)
        assert decoded.amount_msat is not None
        return Invoice(bolt11, decoded.payment_hash, decoded.amount_msat, decoded.expires_at)

    async def received_msat(self) -> int:
        return sum(r.amount_msat for r in self.stub._remote.values() if r.paid)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[TlsPair, TlsPair]:
    """LND's certificate, and the one it presents after renewing it."""
    folder = tmp_path_factory.mktemp("lnd-tls")
    return make_self_signed(folder, "lnd"), make_self_signed(folder, "lnd-renewed")


@pytest.fixture
async def stub(tls: tuple[TlsPair, TlsPair]) -> AsyncIterator[LndStub]:
    lnd = LndStub(macaroon=secrets.token_bytes(72), cert=tls[0].cert, key=tls[0].key)
    await lnd.start()
    try:
        yield lnd
    finally:
        await lnd.stop()


def lnd_section(stub: LndStub, folder: Path) -> dict[str, str]:
    """Strom's ``[lightning]`` for the stub: the files, as on Umbrel (the keys, unquoted)."""
    (folder / "admin.macaroon").write_bytes(bytes.fromhex(stub.macaroon_hex))
    shutil.copy(stub._cert, folder / "tls.cert")
    return {
        "backend": "lnd",
        "network": "bcrt",
        "rest_host": stub.url,
        "macaroon_path": str(folder / "admin.macaroon"),
        "tls_cert_path": str(folder / "tls.cert"),
    }


@asynccontextmanager
async def strom_on(stub: LndStub, folder: Path) -> AsyncIterator[Stack]:
    lnd = folder / "lnd"
    lnd.mkdir(parents=True)
    env = {f"STROM_LIGHTNING__{k.upper()}": f'"{v}"' for k, v in lnd_section(stub, lnd).items()}
    async with running_stack(folder / "strom", env, wallet=StubWallet(stub)) as stack:
        fast_node_watch(stack.strom.node)
        stack.strom.node.check_soon()  # start the fast retries now
        yield stack


async def bearer(stack: Stack) -> dict[str, str]:
    token = await stack.strom.cockpit.tokens.create("ops", Scope.ADMIN)
    return {"Authorization": f"Bearer {token}"}


async def backend_up_metric(stack: Stack, auth: dict[str, str]) -> str:
    response = await stack.http.get(f"{stack.base}/metrics", headers=auth)
    assert response.status_code == 200
    line = next(x for x in response.text.splitlines() if x.startswith("strom_lightning_backend_up"))
    return line.split()[-1]


async def count(stack: Stack, table: object) -> int:
    async with stack.strom.db.reader() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


async def test_strom_starts_with_its_node_down_serves_says_why_and_takes_payments_once_it_answers(
    tmp_path: Path, stub: LndStub, caplog: pytest.LogCaptureFixture
) -> None:
    await stub.stop()  # the node is away when Strom starts (Umbrel boots them together)
    async with strom_on(stub, tmp_path) as stack:
        auth = await bearer(stack)
        page = await stack.http.get(f"{stack.base}/c/{CHARGER}")
        assert page.status_code == 200  # the pages are served
        health = await stack.http.get(f"{stack.base}/healthz")
        assert (health.status_code, health.json()["lightning"]) == (200, "down")
        offer = (await stack.http.get(stack.pay_url)).json()
        assert offer == {"status": "ERROR", "reason": NODE_DOWN}  # the payRequest refuses
        callback = await stack.http.get(f"{stack.pay_url}/callback", params={"amount": "1500000"})
        assert callback.json() == {"status": "ERROR", "reason": NODE_DOWN}  # and the callback
        assert (await count(stack, sessions), await count(stack, payments)) == (0, 0)
        assert await backend_up_metric(stack, auth) == "0.0"
        node = (await stack.http.get(f"{stack.base}/api/v1/lightning", headers=auth)).json()
        assert node["state"] == "down"
        assert node["reason"]  # in words, e.g. "lnd: getinfo failed: All connection attempts…"
        assert stack.strom.refunds.network is None  # refunds wait for the node's network

        await stub.start(stub.port)  # the node comes up; nobody restarts Strom
        await node_is(stack.strom.node, up=True)
        assert await backend_up_metric(stack, auth) == "1.0"
        assert stack.strom.refunds.network == "bcrt"
        status_url, _ = await stack.pay(1_500_000)
        await stack.wait_state(status_url, "charging")
        await stack.ledgers_balance()
    down = [r for r in caplog.records if "lightning node unreachable" in r.getMessage()]
    assert [r.levelno for r in down] == [logging.WARNING]  # once, however many retries


async def test_a_payment_settled_while_the_node_was_out_of_reach_is_credited_once(
    tmp_path: Path, stub: LndStub
) -> None:
    async with strom_on(stub, tmp_path) as stack:
        offer = await stack.get(stack.pay_url)
        answer = await stack.get(offer["callback"], amount="1500000")
        status_url = answer["successAction"]["url"].replace("?", ".json?", 1)
        stream = stack.strom._settlements
        assert stream is not None
        # As after a long outage: the stream's own retries and polls are a minute apart, so
        # only the watch's "it is back" can credit the payment within seconds.
        stream._retry_s = stream._retry_max_s = stream._fallback_poll_s = 60.0
        await stub.stop()
        await node_is(stack.strom.node, up=False)
        assert stub.settle(answer["pr"])  # the driver pays; Strom cannot see the node
        assert (await stack.get(status_url))["state"] == "awaiting_payment"

        await stub.start(stub.port)
        await node_is(stack.strom.node, up=True)
        status = await stack.wait_state(status_url, "paid", "starting", "charging", within_s=2.5)
        assert status["paid_msat"] == 1_500_000
        await stack.wait_state(status_url, "charging")
        stack.strom.node.check_soon()  # another look at the node, another reconcile: no change
        await stub.drop_subscribers()  # and a reconnect that replays from settle_index
        await asyncio.sleep(0.5)
        entries = ledger_entries.c
        async with stack.strom.db.reader() as conn:
            credits = await conn.scalar(
                select(func.count())
                .select_from(ledger_entries)
                .where(entries.session_id == status["id"], entries.kind == "payment")
            )
        assert credits == 1
        assert (await stack.get(status_url))["paid_msat"] == 1_500_000
        await stack.ledgers_balance()


async def test_a_renewed_certificate_stops_payments_until_pinned_by_one_command_without_a_restart(
    tmp_path: Path,
    stub: LndStub,
    tls: tuple[TlsPair, TlsPair],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with strom_on(stub, tmp_path) as stack:
        toml = tmp_path / "strom" / "strom.toml"
        await stub.restart(cert=tls[1].cert, key=tls[1].key)  # LND restarted with a new cert
        # While LND restarts it refuses connections; then it presents the new certificate.
        state = await node_is(stack.strom.node, up=False, saying="TLS certificate changed")
        reason = state.reason
        assert f"strom lightning pin-cert -c {toml}" in reason  # what to do, with its path
        refused = (await stack.http.get(stack.pay_url)).json()
        assert refused == {"status": "ERROR", "reason": NODE_DOWN}

        # The operator runs the command named in the log against the same strom.toml.
        section = lnd_section(stub, tmp_path / "lnd")
        shutil.copy(tls[0].cert, tmp_path / "lnd" / "tls.cert")  # still the old pin
        lines = "\n".join(f'{k} = "{v}"' for k, v in section.items())
        toml.write_text(toml.read_text().replace('backend = "fake"', lines))
        code = await asyncio.to_thread(main, ["lightning", "pin-cert", "-c", str(toml), "--yes"])
        assert code == 0
        assert (tmp_path / "lnd" / "tls.cert").read_text() == tls[1].pem
        assert (tmp_path / "lnd" / "tls.cert.bak").read_text() == tls[0].pem

        await node_is(stack.strom.node, up=True)  # taken up at the next retry
        status_url, _ = await stack.pay(1_500_000)
        await stack.wait_state(status_url, "charging")
    warned = [r for r in caplog.records if "TLS certificate changed" in r.getMessage()]
    assert [r.levelno for r in warned if r.levelno >= logging.WARNING] == [logging.WARNING]
    assert any("reachable again" in r.getMessage() for r in caplog.records)


async def test_a_withdraw_while_the_node_is_down_debits_nothing(
    tmp_path: Path, stub: LndStub
) -> None:
    async with strom_on(stub, tmp_path) as stack:
        status_url, _ = await stack.pay(1_500_000)
        status = await stack.wait_state(status_url, "charging")
        withdraw = await stack.get(status["withdraw_url"].replace("lnurlw://", "http://", 1))
        await stub.stop()
        await node_is(stack.strom.node, up=False)
        invoice = await StubWallet(stub).create_invoice(withdraw["maxWithdrawable"])
        answer = await stack.http.get(
            withdraw["callback"], params={"k1": withdraw["k1"], "pr": invoice.bolt11}
        )
        assert answer.json()["status"] == "ERROR"
        assert "unreachable" in answer.json()["reason"]
        assert "nothing was debited" in answer.json()["reason"]
        after = await stack.get(status_url)
        assert after["refund_in_flight_msat"] == 0
        assert after["refundable_msat"] == withdraw["maxWithdrawable"]
        await stub.start(stub.port)
        await node_is(stack.strom.node, up=True)
        claimed = await stack.http.get(
            withdraw["callback"], params={"k1": withdraw["k1"], "pr": invoice.bolt11}
        )
        assert claimed.json() == {"status": "OK"}  # the same offer works once it is back
        await stack.wait_state(status_url, "refunded", within_s=20)
        assert stub.remote_paid(invoice.payment_hash)
        await stack.ledgers_balance()


def test_pin_cert_is_for_lnd_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["lightning", "pin-cert", "-c", str(tmp_path / "strom.toml")]) == 2
    assert "is for LND" in capsys.readouterr().err


@pytest.mark.peer
async def test_strom_starts_with_its_lnbits_away_and_takes_payments_once_it_answers(
    tmp_path: Path, lnbits_peer: LNbitsPeer
) -> None:
    assert lnbits_peer.strom is not None
    assert lnbits_peer.driver is not None
    proxy = ChaosProxy("127.0.0.1", int(lnbits_peer.url.rsplit(":", 1)[1]))
    await proxy.start()
    env = {
        "STROM_LIGHTNING__BACKEND": '"lnbits"',
        "STROM_LIGHTNING__NETWORK": '"bc"',  # LNbits's FakeWallet makes mainnet invoices
        "STROM_LIGHTNING__URL": f'"{proxy.url}"',
        "STROM_LIGHTNING__INVOICE_KEY": f'"{lnbits_peer.strom.inkey}"',
        "STROM_LIGHTNING__ADMIN_KEY": f'"{lnbits_peer.strom.adminkey}"',
    }
    driver = LNbitsDriver(lnbits_peer, lnbits_peer.driver)
    async with AsyncExitStack() as exits:
        exits.push_async_callback(proxy.stop)
        async with proxy.outage():  # LNbits is away when Strom starts
            stack = await exits.enter_async_context(running_stack(tmp_path, env, driver))
            fast_node_watch(stack.strom.node)
            stack.strom.node.check_soon()
            assert stack.strom.node.state.up is False
            offer = (await stack.http.get(stack.pay_url)).json()
            assert offer == {"status": "ERROR", "reason": NODE_DOWN}
        await node_is(stack.strom.node, up=True)  # it answers again; nobody restarts Strom
        status_url, _ = await stack.pay(2_000_000)
        await stack.wait_state(status_url, "charging")
        await stack.ledgers_balance()
