"""The fake backend: persistence, payment from another process, scripting, labelling."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from strom_core.clock import ManualClock
from strom_lightning import (
    NO_REAL_MONEY,
    Failed,
    FakeBackend,
    FakeDriverWallet,
    FakePayStatus,
    InvoiceState,
    Succeeded,
    Unknown,
    decode_invoice,
    fake_pay,
)
from tests.contract.harness import foreign_invoice
from tests.waits import until

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "fake-lightning.sqlite3"


async def run_python(code: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        *args,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_state_survives_a_reopen_of_the_database(db_path: Path) -> None:
    backend = FakeBackend(db_path)
    driver = FakeDriverWallet(backend)
    invoice = await backend.create_invoice(5_000, expiry_s=600)
    await driver.pay(invoice.bolt11)
    refund = await driver.create_invoice(2_000)
    paid = await backend.pay_invoice(refund.bolt11, max_fee_msat=0, timeout_s=5)
    pubkey = (await backend.node_info()).pubkey
    await backend.aclose()

    reopened = FakeBackend(db_path)
    try:
        status = await reopened.lookup_invoice(invoice.payment_hash)
        again = await reopened.lookup_payment(refund.payment_hash)
        info = await reopened.node_info()
        fresh = await reopened.create_invoice(1_000, expiry_s=60)
    finally:
        await reopened.aclose()

    assert status.state is InvoiceState.SETTLED
    assert status.received_msat == 5_000
    assert again == paid
    assert info.pubkey == pubkey
    assert decode_invoice(fresh.bolt11).payee == pubkey


async def test_state_survives_sigkill(db_path: Path) -> None:
    code = (
        "import asyncio, sys, pathlib\n"
        "from strom_lightning import FakeBackend\n"
        "async def main():\n"
        "    backend = FakeBackend(pathlib.Path(sys.argv[1]))\n"
        "    invoice = await backend.create_invoice(7_000, expiry_s=600)\n"
        "    print(invoice.bolt11, flush=True)\n"
        "    await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, str(db_path), cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    async with asyncio.timeout(30):
        bolt11 = (await process.stdout.readline()).decode().strip()
    process.send_signal(signal.SIGKILL)
    await process.wait()

    receipt = await fake_pay(db_path, bolt11)
    backend = FakeBackend(db_path)
    try:
        status = await backend.lookup_invoice(decode_invoice(bolt11).payment_hash)
    finally:
        await backend.aclose()

    assert receipt.ok, str(receipt)
    assert status.state is InvoiceState.SETTLED


async def test_another_process_can_pay_and_the_running_backend_notices(db_path: Path) -> None:
    backend = FakeBackend(db_path, poll_interval_s=0.05)
    invoice = await backend.create_invoice(21_000, expiry_s=600)

    async def nothing_pending() -> set[str]:
        return set()  # only the file poll can deliver it

    try:
        async with (
            backend.settled_invoices(nothing_pending, reconcile_every_s=60) as stream,
            asyncio.TaskGroup() as group,
        ):
            settled = group.create_task(anext(stream))
            code, output = await run_python(
                "import asyncio, sys\n"
                "from strom_lightning import fake_pay\n"
                "receipt = asyncio.run(fake_pay(sys.argv[1], sys.argv[2]))\n"
                "print(receipt)\n"
                "sys.exit(0 if receipt.ok else 1)\n",
                str(db_path),
                invoice.bolt11,
            )
    finally:
        await backend.aclose()

    assert code == 0, output
    assert "paid 21 sat" in output
    assert NO_REAL_MONEY in output
    assert settled.result().payment_hash == invoice.payment_hash


async def test_fake_pay_explains_every_outcome(db_path: Path, tmp_path: Path) -> None:
    clock_now = datetime.now(UTC)
    backend = FakeBackend(db_path, clock=ManualClock(clock_now))
    short = await backend.create_invoice(1_000, expiry_s=60)
    await backend.aclose()

    paid = await fake_pay(db_path, short.bolt11)
    twice = await fake_pay(db_path, short.bolt11)
    other = await fake_pay(db_path, foreign_invoice("bcrt", 1_000))
    garbage = await fake_pay(db_path, "lnbcrt1garbage")
    missing = await fake_pay(tmp_path / "nowhere.sqlite3", short.bolt11)

    backend = FakeBackend(db_path, clock=ManualClock(clock_now))
    late = await backend.create_invoice(1_000, expiry_s=60)
    await backend.aclose()
    expired = await fake_pay(db_path, late.bolt11, now=clock_now + timedelta(seconds=61))

    assert (paid.status, paid.ok, paid.amount_msat) == (FakePayStatus.PAID, True, 1_000)
    assert twice.status is FakePayStatus.ALREADY_PAID
    assert twice.ok
    assert other.status is FakePayStatus.UNKNOWN_INVOICE
    assert garbage.status is FakePayStatus.INVALID_INVOICE
    assert missing.status is FakePayStatus.UNKNOWN_INVOICE
    assert "no fake lightning database" in str(missing)
    assert expired.status is FakePayStatus.EXPIRED
    assert not expired.ok
    for receipt in (paid, twice, other, garbage, missing, expired):
        assert NO_REAL_MONEY in str(receipt)


@pytest.fixture
async def fake(db_path: Path) -> FakeBackend:
    return FakeBackend(db_path, poll_interval_s=0.05)


async def test_the_driver_can_fail_the_next_payment(fake: FakeBackend) -> None:
    driver = FakeDriverWallet(fake)
    refund = await driver.create_invoice(2_000)
    await driver.fail_next(reason="wallet offline")

    failed = await fake.pay_invoice(refund.bolt11, max_fee_msat=0, timeout_s=5)
    retried = await fake.pay_invoice(refund.bolt11, max_fee_msat=0, timeout_s=5)
    await fake.aclose()

    assert failed == Failed(reason="wallet offline", pre_dispatch=False)
    assert isinstance(retried, Succeeded)  # a definite failure may be retried


async def test_the_driver_can_hang_a_payment_and_resolve_it_later(fake: FakeBackend) -> None:
    driver = FakeDriverWallet(fake)
    refund = await driver.create_invoice(2_000)
    await driver.hang_next(payment_hash=refund.payment_hash)

    held = await fake.pay_invoice(refund.bolt11, max_fee_msat=0, timeout_s=0.2)
    still = await fake.pay_invoice(refund.bolt11, max_fee_msat=0, timeout_s=0.1)
    resolved = await driver.resolve(refund.payment_hash, succeed=False, reason="gave up")
    received = await driver.received()
    await fake.aclose()

    assert received == []

    assert isinstance(held, Unknown)
    assert isinstance(still, Unknown)  # in flight: never sent twice
    assert resolved == Failed(reason="gave up", pre_dispatch=False)


async def test_a_hung_payment_completes_when_resolved_while_waiting(fake: FakeBackend) -> None:
    driver = FakeDriverWallet(fake)
    refund = await driver.create_invoice(2_000)
    await driver.hang_next()

    async with asyncio.TaskGroup() as group:
        paying = group.create_task(fake.pay_invoice(refund.bolt11, max_fee_msat=0, timeout_s=10))

        async def in_flight() -> bool:
            return isinstance(await fake.lookup_payment(refund.payment_hash), Unknown)

        await until(in_flight, "the payment is in flight")
        await driver.resolve(refund.payment_hash, succeed=True)
    received = await driver.received_msat()
    await fake.aclose()

    assert isinstance(paying.result(), Succeeded)
    assert received == 2_000


async def test_payments_the_fake_cannot_make_fail_before_dispatch(fake: FakeBackend) -> None:
    driver = FakeDriverWallet(fake)
    own = await fake.create_invoice(1_000, expiry_s=60)
    elsewhere = await fake.pay_invoice(foreign_invoice("bcrt", 1_000), max_fee_msat=0, timeout_s=1)
    self_payment = await fake.pay_invoice(own.bolt11, max_fee_msat=0, timeout_s=1)
    expensive = FakeBackend(fake.db_path, fee_msat=50)
    too_dear = await expensive.pay_invoice(
        (await driver.create_invoice(1_000)).bolt11, max_fee_msat=10, timeout_s=1
    )
    await expensive.aclose()
    await fake.aclose()

    for result in (elsewhere, self_payment, too_dear):
        assert isinstance(result, Failed)
        assert result.pre_dispatch
    assert isinstance(elsewhere, Failed)
    assert "no route" in elsewhere.reason


async def test_every_log_line_says_no_real_money(
    fake: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="strom_lightning")
    driver = FakeDriverWallet(fake)
    invoice = await fake.create_invoice(1_000, expiry_s=60)
    await driver.pay(invoice.bolt11)
    await driver.unknown_next()
    await fake.pay_invoice((await driver.create_invoice(1_000)).bolt11, max_fee_msat=0, timeout_s=1)
    info = await fake.node_info()
    await fake.aclose()

    records = [r for r in caplog.records if r.name.startswith("strom_lightning")]
    assert records
    for record in records:
        assert NO_REAL_MONEY in record.getMessage(), record.getMessage()
    assert NO_REAL_MONEY in info.alias
    assert not info.real_money
    assert NO_REAL_MONEY in repr(fake)
    assert NO_REAL_MONEY in repr(driver)


async def test_an_outage_is_unavailable_and_payments_are_unknown(fake: FakeBackend) -> None:
    driver = FakeDriverWallet(fake)
    refund = await driver.create_invoice(1_000)

    async with fake.outage():
        health = await fake.health()
        result = await fake.pay_invoice(refund.bolt11, max_fee_msat=0, timeout_s=1)
    after = await fake.lookup_payment(refund.payment_hash)
    await fake.aclose()

    assert not health.ok
    assert isinstance(result, Unknown)
    assert isinstance(after, Failed)  # nothing was sent: safe to offer the money again
    assert after.pre_dispatch
