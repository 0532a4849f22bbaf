"""LND specifics: the recorded shapes, TLS pinning, the macaroon, streams that break."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from datetime import UTC, datetime

import pytest

from strom_core.errors import BackendRejected, BackendUnavailable
from strom_core.units import Msat
from strom_lightning import (
    Failed,
    InvoiceState,
    LndRestBackend,
    Succeeded,
    Unknown,
    decode_invoice,
)
from strom_lightning.lnd import invoice_status_from_lnd, node_info_from_lnd, payment_from_lnd
from tests.contract.harness import foreign_invoice
from tests.lightning.lnd_stub import LndStub, fixture
from tests.lightning.tls import TlsPair

FIXTURE_HASH = "92c109a7e408e13d52a32ad734368186571767509a3f9829caba7ad60c5bd3fa"


# --- the recorded shapes ---------------------------------------------------------------------


def test_the_recorded_fixtures_are_consistent() -> None:
    preimage = fixture("router_send_succeeded")["response"]["chunks"][0]["result"][
        "payment_preimage"
    ]
    r_hash = fixture("invoice_settled")["response"]["body"]["r_hash"]

    assert hashlib.sha256(bytes.fromhex(preimage)).hexdigest() == FIXTURE_HASH
    assert base64.b64decode(r_hash).hex() == FIXTURE_HASH


def test_an_open_invoice_is_pending_until_it_expires() -> None:
    body = fixture("invoice_open")["response"]["body"]

    before = invoice_status_from_lnd(body, now=datetime.fromtimestamp(1731000100, UTC))
    after = invoice_status_from_lnd(body, now=datetime.fromtimestamp(1731000600, UTC))

    assert before.state is InvoiceState.PENDING
    assert before.payment_hash == FIXTURE_HASH
    assert before.amount_msat == 21_000
    assert before.expires_at == datetime.fromtimestamp(1731000600, UTC)
    assert after.state is InvoiceState.EXPIRED


def test_a_settled_invoice_reports_what_was_received_and_when() -> None:
    body = fixture("invoice_settled")["response"]["body"]

    status = invoice_status_from_lnd(body, now=datetime.fromtimestamp(1731009999, UTC))

    assert status.state is InvoiceState.SETTLED
    assert status.received_msat == 21_000
    assert status.settled_at == datetime.fromtimestamp(1731000042, UTC)


def test_payment_updates_map_to_three_states() -> None:
    def first(name: str) -> dict[str, object]:
        result: dict[str, object] = fixture(name)["response"]["chunks"][0]["result"]
        return result

    succeeded = payment_from_lnd(first("router_send_succeeded"), FIXTURE_HASH)
    rejected = payment_from_lnd(first("router_send_failed"), FIXTURE_HASH)
    no_route = payment_from_lnd(first("router_send_no_route"), FIXTURE_HASH)
    in_flight = payment_from_lnd(first("router_track_in_flight"), FIXTURE_HASH)

    assert succeeded == Succeeded(
        preimage="7792e7da72368ccbba78d8752a11fc3811f5902df2610c52c76794adfdb19776",
        fee_msat=Msat(12),
    )
    assert isinstance(rejected, Failed)
    assert not rejected.pre_dispatch
    assert "incorrect payment details" in rejected.reason
    assert isinstance(no_route, Failed)
    assert no_route.pre_dispatch
    assert in_flight is None


def test_a_success_with_a_wrong_preimage_is_not_believed() -> None:
    update = dict(fixture("router_send_succeeded")["response"]["chunks"][0]["result"])
    update["payment_preimage"] = "11" * 32

    assert isinstance(payment_from_lnd(update, FIXTURE_HASH), Unknown)


def test_getinfo_gives_network_and_identity() -> None:
    info = node_info_from_lnd(fixture("getinfo")["response"]["body"], configured="bcrt")

    assert info.network == "bc"
    assert info.real_money
    assert info.alias == "umbrel"
    assert info.synced
    assert info.block_height == 870123


# --- TLS pinning and the macaroon ------------------------------------------------------------


async def test_the_pinned_certificate_is_accepted(lnd: LndRestBackend) -> None:
    info = await lnd.node_info()

    assert info.alias == "lnd-stub"
    assert info.network == "bcrt"


async def test_a_different_certificate_is_refused(
    lnd_stub: LndStub, impostor_tls: TlsPair, macaroon: bytes
) -> None:
    pinned_elsewhere = LndRestBackend(
        lnd_stub.url, macaroon=macaroon, cert_pem=impostor_tls.pem, network="bcrt", timeout_s=5
    )
    try:
        with pytest.raises(BackendUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
            await pinned_elsewhere.node_info()
        health = await pinned_elsewhere.health()
    finally:
        await pinned_elsewhere.aclose()

    assert not health.ok
    assert not any(method == "GET" for method, _, _ in lnd_stub.requests), "no request got through"


async def test_the_macaroon_goes_hex_in_the_grpc_metadata_header(
    lnd: LndRestBackend, lnd_stub: LndStub, macaroon: bytes
) -> None:
    await lnd.node_info()

    _, _, headers = lnd_stub.requests[-1]
    assert headers["Grpc-Metadata-macaroon"] == macaroon.hex()


async def test_a_wrong_macaroon_is_a_clear_rejection(lnd_stub: LndStub, lnd_tls: TlsPair) -> None:
    backend = LndRestBackend(
        lnd_stub.url, macaroon=secrets.token_bytes(72), cert_pem=lnd_tls.pem, network="bcrt"
    )
    try:
        with pytest.raises(BackendRejected, match="refused the macaroon"):
            await backend.node_info()
        with pytest.raises(BackendRejected):
            await backend.create_invoice(1_000, expiry_s=60)
    finally:
        await backend.aclose()


async def test_an_invoice_request_uses_lnds_field_encodings(
    lnd: LndRestBackend, lnd_stub: LndStub
) -> None:
    description_hash = hashlib.sha256(b"metadata").digest()

    invoice = await lnd.create_invoice(
        1_500, memo="note", description_hash=description_hash, expiry_s=900
    )

    stored = await lnd.lookup_invoice(invoice.payment_hash)
    assert stored.amount_msat == 1_500
    assert invoice.bolt11.startswith("lnbcrt15n1")
    assert decode_invoice(invoice.bolt11).description_hash == description_hash.hex()


# --- streams that break ----------------------------------------------------------------------


async def test_a_dropped_subscription_resumes_from_the_last_settle_index(
    lnd: LndRestBackend, lnd_stub: LndStub
) -> None:
    first = await lnd.create_invoice(1_000, expiry_s=600)
    second = await lnd.create_invoice(2_000, expiry_s=600)

    async def nothing_pending() -> set[str]:
        return set()  # no lookups: only the subscription can deliver

    async with lnd.settled_invoices(nothing_pending, reconcile_every_s=60) as stream:
        async with asyncio.TaskGroup() as group:
            received = group.create_task(anext(stream))
            await lnd_stub.wait_subscribed()
            lnd_stub.settle(first.bolt11)
        assert received.result().payment_hash == first.payment_hash
        lnd_stub.refuse_subscriptions = True
        await lnd_stub.drop_subscribers()
        lnd_stub.settle(second.bolt11)  # while nobody is subscribed
        await asyncio.sleep(0.3)
        lnd_stub.refuse_subscriptions = False
        async with asyncio.timeout(10):
            replayed = await anext(stream)

    assert replayed.payment_hash == second.payment_hash
    subscriptions = [path for method, path, _ in lnd_stub.requests if "subscribe" in path]
    assert subscriptions[0] == "/v1/invoices/subscribe"
    assert subscriptions[-1] == "/v1/invoices/subscribe?settle_index=1"


async def test_a_dropped_payment_stream_is_unknown_then_tracked(
    lnd: LndRestBackend, lnd_stub: LndStub
) -> None:
    refund = lnd_stub.remote_invoice(3_000)
    lnd_stub.script("drop")

    result = await lnd.pay_invoice(refund, max_fee_msat=100, timeout_s=5)

    assert isinstance(result, Unknown)
    payment_hash = decode_invoice(refund).payment_hash
    assert isinstance(await lnd.lookup_payment(payment_hash), Unknown)  # in flight
    lnd_stub.resolve(payment_hash, succeed=False)
    failed = await lnd.lookup_payment(payment_hash)
    assert isinstance(failed, Failed)
    assert not failed.pre_dispatch


async def test_paying_again_after_success_answers_from_the_node_not_twice(
    lnd: LndRestBackend, lnd_stub: LndStub
) -> None:
    refund = lnd_stub.remote_invoice(3_000)
    first = await lnd.pay_invoice(refund, max_fee_msat=100, timeout_s=5)

    again = await lnd.pay_invoice(refund, max_fee_msat=100, timeout_s=5)

    assert isinstance(first, Succeeded)
    assert again == first
    sends = [path for method, path, _ in lnd_stub.requests if path == "/v2/router/send"]
    assert len(sends) == 2  # the second was refused by LND with 409, then tracked


async def test_a_server_error_on_send_is_unknown_never_failed(
    lnd: LndRestBackend, lnd_stub: LndStub
) -> None:
    lnd_stub.script("error500")

    result = await lnd.pay_invoice(lnd_stub.remote_invoice(3_000), max_fee_msat=100, timeout_s=5)

    assert isinstance(result, Unknown)
    assert "500" in result.reason


async def test_a_held_payment_times_out_as_unknown(
    lnd_stub: LndStub, lnd_tls: TlsPair, macaroon: bytes
) -> None:
    lnd_stub.script("hang")
    refund = lnd_stub.remote_invoice(3_000)
    backend = LndRestBackend(
        lnd_stub.url, macaroon=macaroon, cert_pem=lnd_tls.pem, network="bcrt", pay_grace_s=0.3
    )
    try:
        async with asyncio.timeout(10):
            result = await backend.pay_invoice(refund, max_fee_msat=100, timeout_s=0.2)
        lnd_stub.resolve(decode_invoice(refund).payment_hash, succeed=True)
        later = await backend.lookup_payment(decode_invoice(refund).payment_hash)
    finally:
        await backend.aclose()

    assert isinstance(result, Unknown)
    assert "may still complete" in result.reason
    assert isinstance(later, Succeeded)


async def test_a_fee_limit_below_the_route_fee_fails_before_dispatch(
    lnd: LndRestBackend, lnd_stub: LndStub
) -> None:
    result = await lnd.pay_invoice(lnd_stub.remote_invoice(3_000), max_fee_msat=1, timeout_s=5)

    assert isinstance(result, Failed)
    assert result.pre_dispatch


async def test_an_unreachable_node_is_unavailable(lnd_tls: TlsPair, macaroon: bytes) -> None:
    backend = LndRestBackend(
        "https://127.0.0.1:9", macaroon=macaroon, cert_pem=lnd_tls.pem, network="bcrt"
    )
    try:
        with pytest.raises(BackendUnavailable):
            await backend.lookup_invoice("00" * 32)
        result = await backend.pay_invoice(
            foreign_invoice("bcrt", 1_000), max_fee_msat=10, timeout_s=2
        )
    finally:
        await backend.aclose()

    assert isinstance(result, Unknown)
