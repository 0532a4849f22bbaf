"""``/readyz``: named checks, 200 when all pass, 503 naming the failing ones."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from strom.readiness import (
    NotReady,
    Readiness,
    certificate_check,
    managed_certificate_check,
    standard_checks,
)
from strom_lightning import FakeBackend
from tests.e2e.conftest import running_stack
from tests.faults.conftest import fast_node_watch, node_is


def write_cert(path: Path, *, valid_from: datetime, valid_until: datetime) -> Path:
    """A self-signed certificate valid between the two times."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "charge.example.org")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_until)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


async def answer(readiness: Readiness) -> tuple[int, dict[str, object]]:
    app = web.Application()
    app.router.add_get("/readyz", readiness.handle)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/readyz")
        return response.status, await response.json()


async def passes() -> str:
    return "fine"


async def fails() -> str:
    raise NotReady("the thing is down")


async def hangs() -> str:
    await asyncio.sleep(60)
    return "never"


async def test_every_check_passing_is_200_with_each_check_named() -> None:
    readiness = Readiness()
    readiness.add("one", passes)
    readiness.add("two", passes)
    status, body = await answer(readiness)
    assert status == 200
    assert body == {
        "status": "ready",
        "failing": [],
        "checks": {"one": {"ok": True, "detail": "fine"}, "two": {"ok": True, "detail": "fine"}},
    }


async def test_a_failing_or_slow_check_is_503_naming_it_and_why() -> None:
    readiness = Readiness(timeout_s=0.2)
    readiness.add("ok", passes)
    readiness.add("down", fails)
    readiness.add("slow", hangs)
    status, body = await answer(readiness)
    assert status == 503
    assert body["status"] == "not ready"
    assert body["failing"] == ["down", "slow"]
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["down"] == {"ok": False, "detail": "the thing is down"}
    assert checks["slow"] == {"ok": False, "detail": "no answer within 0.2 s"}
    assert checks["ok"]["ok"] is True


def test_a_check_name_is_used_once() -> None:
    readiness = Readiness()
    readiness.add("database", passes)
    with pytest.raises(ValueError, match="database"):
        readiness.add("database", passes)


async def test_a_certificate_is_ready_with_time_left_and_not_when_expiring_or_expired(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    good = write_cert(
        tmp_path / "good.pem",
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=60),
    )
    soon = write_cert(
        tmp_path / "soon.pem",
        valid_from=now - timedelta(days=80),
        valid_until=now + timedelta(days=2),
    )
    gone = write_cert(
        tmp_path / "gone.pem",
        valid_from=now - timedelta(days=90),
        valid_until=now - timedelta(hours=1),
    )
    assert "days left" in await certificate_check(good)()
    with pytest.raises(NotReady, match="in less than 7 days"):
        await certificate_check(soon)()
    with pytest.raises(NotReady, match="expired on"):
        await certificate_check(gone)()
    with pytest.raises(NotReady, match="cannot read"):
        await certificate_check(tmp_path / "missing.pem")()
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(NotReady, match="not a PEM certificate"):
        await certificate_check(tmp_path / "junk.pem")()


async def test_the_standard_checks_name_relays_only_when_configured_and_each_certificate(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    cert = write_cert(
        tmp_path / "c.pem", valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=3)
    )

    async def reachable() -> None:
        return None

    async def states() -> dict[str, str]:
        return {"wss://relay.example.org": "Disconnected"}

    checks = standard_checks(
        started=lambda: True,
        database=reachable,
        lightning_up=lambda: False,
        relays=["wss://relay.example.org"],
        relay_states=states,
        certificates={"server": cert},
    )
    status, body = await answer(Readiness(checks))
    assert status == 503
    assert body["failing"] == ["lightning", "relays", "tls_server"]
    none = standard_checks(
        started=lambda: True,
        database=reachable,
        lightning_up=lambda: True,
        relays=[],
        relay_states=states,
        certificates={},
    )
    assert [check.name for check in none] == ["started", "database", "lightning"]


async def test_a_running_strom_is_ready_and_not_while_its_lightning_node_is_away(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path) as stack:
        ready = await stack.http.get(f"{stack.base}/readyz")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert list(body["checks"]) == ["started", "database", "lightning", "relays"]
        assert body["checks"]["relays"]["detail"] == "1 of 1 relay(s) connected"
        alive = await stack.http.get(f"{stack.base}/healthz")
        assert alive.status_code == 200  # alive and ready are two questions

        backend = stack.strom.backend
        assert isinstance(backend, FakeBackend)
        fast_node_watch(stack.strom.node)
        async with backend.outage():
            stack.strom.node.check_soon()
            await node_is(stack.strom.node, up=False)
            down = await stack.http.get(f"{stack.base}/readyz")
            assert down.status_code == 503
            assert down.json()["failing"] == ["lightning"]
            assert (await stack.http.get(f"{stack.base}/healthz")).status_code == 200
        await node_is(stack.strom.node, up=True)
        assert (await stack.http.get(f"{stack.base}/readyz")).status_code == 200


async def test_a_managed_certificate_is_ready_only_when_issued_and_not_about_to_expire() -> None:
    """The certificate Strom obtains itself: the placeholder served before the CA answered is
    not ready, nor is one whose renewals have failed until fewer than 7 days are left."""
    now = datetime.now(UTC)
    verdict: list[str | None] = ["no certificate for cp.example from the CA yet"]
    ends = [now + timedelta(days=60)]
    check = managed_certificate_check("cp.example", lambda: verdict[0], lambda: ends[0])
    with pytest.raises(NotReady, match="from the CA yet"):
        await check()
    verdict[0] = None
    assert "60 days left" in await check() or "59 days left" in await check()
    ends[0] = now + timedelta(days=3)
    with pytest.raises(NotReady, match="has not been renewed"):
        await check()
