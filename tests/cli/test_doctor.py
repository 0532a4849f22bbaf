"""``strom doctor`` on a healthy installation (exit 0) and on broken ones: each problem is
named in plain words with its severity. Remotes are local fakes: a stand-in for LND's REST
interface over TLS on 127.0.0.1 (getinfo and macaroon permissions), and dead ports.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from strom.config import load_config
from strom.doctor import OK, SERIOUS, WARNING, Finding, certificate_expiry, examine, render
from strom.scaffold import write_scaffold
from strom_core.config import OcppConfig, RelayConfig, ServerConfig, StromConfig
from strom_lightning import LndConfig
from tests.e2e.conftest import CHARGER, running_stack
from tests.lightning.lnd_stub import fixture
from tests.lightning.tls import TlsPair, make_self_signed
from tests.ports import unused_port

STROM = Path(sys.executable).with_name("strom")
MACAROON = bytes.fromhex("0201036c6e6402f801030a10") + b"doctor-test-macaroon"


def _problems(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return [(f.severity, f.area, f.message) for f in findings if f.severity != OK]


def _one(findings: list[Finding], area: str) -> Finding:
    found = [f for f in findings if f.area == area and f.severity != OK]
    assert len(found) == 1, render(findings)
    return found[0]


async def test_a_healthy_installation_has_no_problem_and_the_command_exits_0(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path) as stack:
        findings = await examine(stack.strom.config, timeout_s=5)
        assert _problems(findings) == []
        assert render(findings)[-1] == "no problems found"
        assert any(f.area == f"charger {CHARGER}" and "last seen" in f.message for f in findings)
        env = {
            **os.environ,
            "STROM_SERVER__PUBLIC_URL": f'"{stack.base}"',
            "STROM_OCPP__HOST": '"127.0.0.1"',
        }
        proc = await asyncio.create_subprocess_exec(
            str(STROM),
            "doctor",
            "-c",
            str(tmp_path / "strom.toml"),
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
        assert "no problems found" in out.decode()


def _site(tmp_path: Path, **environ: str) -> StromConfig:
    write_scaffold(tmp_path, force=True)
    return load_config(tmp_path / "strom.toml", environ=environ)


async def test_a_broken_installation_names_each_problem_and_the_command_exits_1(
    tmp_path: Path,
) -> None:
    dead = unused_port()
    config = _site(tmp_path)
    config = config.model_copy(
        update={
            "server": ServerConfig(public_url=f"http://127.0.0.1:{dead}"),
            "ocpp": OcppConfig(host="0.0.0.0"),
            "relays": (RelayConfig(url=f"ws://127.0.0.1:{dead}"),),
        }
    )
    findings = await examine(config, timeout_s=2)
    url = _one(findings, "public URL")
    assert url.severity == SERIOUS
    assert "unreachable" in url.message
    relay = _one(findings, "relay")
    assert relay.severity == SERIOUS
    assert "down" in relay.message
    database = _one(findings, "database")  # Strom never ran here
    assert database.severity == SERIOUS
    assert "no database" in database.message
    charger = _one(findings, "charger example-1")
    assert charger.severity == SERIOUS
    assert "no OCPP password" in charger.message
    assert "strom charger password example-1" in charger.message
    assert render(findings)[-1].startswith("4 serious problem(s)")

    proc = await asyncio.create_subprocess_exec(
        str(STROM),
        "doctor",
        "-c",
        str(tmp_path / "strom.toml"),
        "--timeout",
        "2",
        env={**os.environ, "STROM_SERVER__PUBLIC_URL": f'"http://127.0.0.1:{dead}"'},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 1
    assert "SERIOUS  public URL" in out.decode()


async def test_plain_http_on_a_public_host_is_serious(tmp_path: Path) -> None:
    config = _site(tmp_path).model_copy(
        update={"server": ServerConfig(public_url="http://charge.example.org")}
    )
    findings = await examine(config, timeout_s=1)
    messages = [f.message for f in findings if f.area == "public URL" and f.severity == SERIOUS]
    assert any("plain http on a public host" in m for m in messages)


async def test_chargers_never_seen_or_without_password_on_loopback_are_warnings(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path) as stack:
        (tmp_path / "profiles" / "cp-new.toml").write_text(
            (tmp_path / "profiles" / f"{CHARGER}.toml")
            .read_text()
            .replace(f'id = "{CHARGER}"', 'id = "cp-new"')
        )
        config = load_config(tmp_path / "strom.toml", environ={"STROM_OCPP__HOST": '"127.0.0.1"'})
        config = config.model_copy(update={"server": stack.strom.config.server})
        findings = await examine(config, timeout_s=5)
    never = [f for f in findings if f.area == "charger cp-new" and "never seen" in f.message]
    assert [f.severity for f in never] == [WARNING]
    no_password = [f for f in findings if f.area == "charger cp-new" and "password" in f.message]
    assert [f.severity for f in no_password] == [WARNING]  # OCPP on loopback only


async def test_tls_certificates_expiring_and_expired(tmp_path: Path) -> None:
    pair = make_self_signed(tmp_path / "tls", "strom")  # valid for a day
    expires = certificate_expiry(pair.pem)
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(days=1)
    config = _site(tmp_path).model_copy(
        update={"server": ServerConfig(public_url="https://127.0.0.1:1", tls_cert=pair.cert)}
    )
    area = "TLS certificate (server.tls_cert)"
    soon = _one(await examine(config, timeout_s=1), area)
    assert soon.severity == SERIOUS
    assert "expires in 0 day(s)" in soon.message
    later = await examine(config, timeout_s=1, now=expires + timedelta(hours=1))
    assert _one(later, area).severity == SERIOUS
    assert "expired" in _one(later, area).message
    early = await examine(config, timeout_s=1, now=expires - timedelta(days=10))
    assert _one(early, area).severity == WARNING
    fine = await examine(config, timeout_s=1, now=expires - timedelta(days=60))
    assert [f.severity for f in fine if f.area == area] == [OK]


class FakeLnd:
    """LND's REST answers for getinfo and CheckMacaroonPermissions, over TLS."""

    def __init__(self, granted: set[str], *, may_check: bool = True) -> None:
        self.granted = granted
        self.may_check = may_check

    async def getinfo(self, request: web.Request) -> web.Response:
        if request.headers.get("Grpc-Metadata-macaroon") != MACAROON.hex():
            return web.json_response(fixture("macaroon_refused")["response"]["body"], status=500)
        return web.json_response(fixture("getinfo")["response"]["body"])

    async def check(self, request: web.Request) -> web.Response:
        if not self.may_check:  # the macaroon lacks macaroon:read: LND refuses the call
            body = {"code": 2, "message": "permission denied", "details": []}
            return web.json_response(body, status=500)
        asked = await request.json()
        wanted = {f"{p['entity']}:{p['action']}" for p in asked["permissions"]}
        if wanted <= self.granted:
            return web.json_response({"valid": True})
        message = f"permission denied: {asked['fullMethod']}"
        return web.json_response({"code": 3, "message": message, "details": []}, status=400)


@pytest.fixture
def lnd_tls(tmp_path: Path) -> TlsPair:
    return make_self_signed(tmp_path / "lnd-tls", "lnd")


@asynccontextmanager
async def _serve(fake: FakeLnd, tls: TlsPair) -> AsyncIterator[int]:
    import ssl

    app = web.Application()
    app.router.add_get("/v1/getinfo", fake.getinfo)
    app.router.add_post("/v1/macaroon/checkpermissions", fake.check)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert, tls.key)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = unused_port()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=context)
    await site.start()
    try:
        yield port
    finally:
        await runner.cleanup()


def _lnd_site(tmp_path: Path, tls: TlsPair, port: int) -> StromConfig:
    config = _site(tmp_path / "site")
    (tmp_path / "strom.macaroon").write_bytes(MACAROON)
    lnd = LndConfig(
        rest_host=f"127.0.0.1:{port}",
        macaroon_path=tmp_path / "strom.macaroon",
        tls_cert_path=tls.cert,
    )
    return config.model_copy(update={"lightning": lnd})


ALL = {"info:read", "invoices:read", "invoices:write", "offchain:read", "offchain:write"}


async def test_lnd_with_every_permission_is_fine(tmp_path: Path, lnd_tls: TlsPair) -> None:
    async with _serve(FakeLnd(ALL), lnd_tls) as port:
        findings = await examine(_lnd_site(tmp_path, lnd_tls, port), timeout_s=5)
        lightning = [f for f in findings if f.area.startswith("lightning")]
        assert [f.severity for f in lightning] == [OK, OK], render(findings)
        assert "umbrel" in lightning[0].message


async def test_an_invoice_macaroon_cannot_pay_refunds(tmp_path: Path, lnd_tls: TlsPair) -> None:
    granted = {"info:read", "invoices:read", "invoices:write"}
    async with _serve(FakeLnd(granted), lnd_tls) as port:
        findings = await examine(_lnd_site(tmp_path, lnd_tls, port), timeout_s=5)
    lacking = [f for f in findings if f.area == "lightning macaroon"]
    assert [(f.severity, f.message) for f in lacking] == [
        (SERIOUS, "the macaroon lacks offchain:write, needed for paying refunds"),
        (SERIOUS, "the macaroon lacks offchain:read, needed for following refunds"),
    ]


async def test_permissions_that_cannot_be_checked_are_a_warning(
    tmp_path: Path, lnd_tls: TlsPair
) -> None:
    async with _serve(FakeLnd(ALL, may_check=False), lnd_tls) as port:
        findings = await examine(_lnd_site(tmp_path, lnd_tls, port), timeout_s=5)
    unchecked = _one(findings, "lightning macaroon")
    assert unchecked.severity == WARNING
    assert "could not be checked" in unchecked.message


async def test_lnd_unreachable_or_refusing_the_macaroon_is_serious(
    tmp_path: Path, lnd_tls: TlsPair
) -> None:
    findings = await examine(_lnd_site(tmp_path, lnd_tls, unused_port()), timeout_s=2)
    down = _one(findings, "lightning")
    assert down.severity == SERIOUS
    assert "does not answer getinfo" in down.message
    async with _serve(FakeLnd(ALL), lnd_tls) as port:
        config = _lnd_site(tmp_path, lnd_tls, port)
        (tmp_path / "strom.macaroon").write_bytes(b"another macaroon")
        refused = _one(await examine(config, timeout_s=5), "lightning")
    assert refused.severity == SERIOUS
    assert "macaroon" in refused.message
