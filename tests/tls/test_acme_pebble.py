"""Managed TLS against a real ACME CA: Debian's pebble, validating HTTP-01 at Strom itself.

A whole Strom is configured with ``[tls] acme_domain`` and pebble's directory; pebble resolves
the domain to 127.0.0.1 and fetches each challenge from Strom's plain-HTTP listener. Clients
connect to 127.0.0.1 and verify the certificate for the domain against pebble's root.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from strom.app import Strom
from strom.config import load_config
from strom.scaffold import write_scaffold
from strom.tls import CertificateState
from tests.conftest import peer_missing
from tests.ocpp.drivers import PythonDriver
from tests.peers.pebble import PebblePeer, PebbleUnavailable
from tests.ports import unused_port
from tests.waits import until

pytestmark = [pytest.mark.peer, pytest.mark.slow]

DOMAIN = "charge.strom.test"
CHARGER = "cp-tls"


@dataclass
class Site:
    strom: Strom
    pebble: PebblePeer
    data_dir: Path
    roots: str = ""

    def trust_the_ca(self) -> None:
        """Take pebble's root of this run (it makes a new one at every start)."""
        self.roots = self.pebble.roots()
        (self.pebble.workdir / "roots.pem").write_text(self.roots)

    @property
    def certificate(self) -> CertificateState:
        assert self.strom.certificate is not None
        return self.strom.certificate.state()

    def client_context(self) -> ssl.SSLContext:
        """A client that trusts only pebble's root of this run (as browsers trust Let's Encrypt)."""
        assert self.roots, "trust_the_ca() first"
        return ssl.create_default_context(cadata=self.roots)

    async def https_certificate(self) -> x509.Certificate:
        """A new HTTPS handshake: the certificate it presents (verified for the domain)."""
        reader, writer = await asyncio.open_connection(
            "127.0.0.1",
            self.strom.http_port,
            ssl=self.client_context(),
            server_hostname=DOMAIN,
        )
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            writer.write(
                f"GET /healthz HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n".encode()
            )
            answer = await reader.read()
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        finally:
            writer.close()
            await writer.wait_closed()
        return x509.load_der_x509_certificate(der)

    async def ocpp_charger(self) -> PythonDriver:
        driver = PythonDriver()
        await driver.connect(
            f"wss://127.0.0.1:{self.strom.ocpp_port}/ocpp",
            CHARGER,
            ca=self.pebble.workdir / "roots.pem",
            server_hostname=DOMAIN,
        )
        return driver

    async def wait_for(self, what: str, done: Callable[[], bool], within_s: float = 30) -> None:
        try:
            await until(done, what, within_s=within_s)
        except AssertionError as exc:
            pytest.fail(f"{exc}; certificate state {self.certificate}")


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    challenge_port = unused_port()
    try:
        pebble = PebblePeer.start(tmp_path / "pebble", http_port=challenge_port)
    except PebbleUnavailable as exc:
        peer_missing(f"pebble (Debian) is not available: {exc}")
        raise
    try:
        folder = tmp_path / "strom"
        write_scaffold(folder, charger_id=CHARGER)
        config = load_config(
            folder / "strom.toml",
            environ={
                "STROM_SERVER__PORT": "0",
                # Port 0 in the public URL becomes the bound HTTPS port.
                "STROM_SERVER__PUBLIC_URL": f"https://{DOMAIN}:0",
                "STROM_OCPP__HOST": '"127.0.0.1"',
                "STROM_OCPP__PORT": "0",
                "STROM_TLS__ACME_DOMAIN": DOMAIN,
                "STROM_TLS__ACME_EMAIL": "ops@strom.test",
                "STROM_TLS__ACME_DIRECTORY": pebble.directory,
                "STROM_TLS__ACME_CA_BUNDLE": f'"{pebble.ca_bundle}"',
                "STROM_TLS__HTTP_PORT": str(challenge_port),
                "STROM_TLS__ACME_RETRY_S": "0.3",
                "STROM_TLS__ACME_RETRY_MAX_S": "1.2",
            },
        )
        strom = await Strom.open(config)
        stop = asyncio.Event()
        server = asyncio.create_task(strom.serve(stop))
        try:
            await asyncio.wait_for(strom.ready.wait(), 20)
            yield Site(strom=strom, pebble=pebble, data_dir=config.storage.data_dir)
        finally:
            stop.set()
            await server
    finally:
        pebble.stop_all()


async def test_strom_serves_https_and_wss_with_the_certificate_the_ca_issued_over_http01(
    site: Site,
) -> None:
    # Strom starts at once on a self-signed placeholder and orders the real one meanwhile.
    await site.wait_for("the CA issued a certificate", lambda: site.certificate.issued)
    state = site.certificate
    assert state.last_error is None
    assert state.problem(dt.datetime.now(dt.UTC)) is None
    assert "Attempting to validate w/ HTTP" in site.pebble.log("pebble")  # a real HTTP-01

    site.trust_the_ca()
    served = await site.https_certificate()  # verified against pebble's root, for the domain
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.DNSName) == [DOMAIN]
    assert served.not_valid_after_utc == state.not_after
    lifetime = state.not_after - state.not_before
    assert state.renew_from == state.not_before + lifetime * 2 / 3

    charger = await site.ocpp_charger()
    try:
        boot = await charger.call(
            "BootNotification", {"chargePointVendor": "Test", "chargePointModel": "TLS"}
        )
        assert boot["status"] == "Accepted"
        assert charger.peer_certificate() == served.public_bytes(Encoding.DER)
    finally:
        await charger.close()

    # Key and certificate live in the data folder, private like the nostr keys.
    folder = site.data_dir / "acme"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("account.key", f"{DOMAIN}.pem"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    # The challenge port answers nothing else: it sends browsers to HTTPS.
    assert site.strom.challenge_port == site.pebble.http_port
    async with httpx.AsyncClient() as http:
        moved = await http.get(f"http://127.0.0.1:{site.strom.challenge_port}/c/{CHARGER}?x=1")
    assert moved.status_code == 301
    assert moved.headers["Location"] == f"{site.strom.config.server.public_url}/c/{CHARGER}?x=1"


async def test_a_renewal_swaps_the_certificate_while_a_charger_stays_connected_over_wss(
    site: Site,
) -> None:
    await site.wait_for("the CA issued a certificate", lambda: site.certificate.issued)
    site.trust_the_ca()
    first = await site.https_certificate()
    charger = await site.ocpp_charger()
    try:
        await charger.call("BootNotification", {"chargePointVendor": "T", "chargePointModel": "M"})
        assert charger.peer_certificate() == first.public_bytes(Encoding.DER)

        assert site.strom.certificate is not None
        renewed = await site.strom.certificate.renew()

        assert renewed.last_renewal is not None
        assert renewed.not_after >= site.certificate.not_before
        # The same connection goes on: no reconnect, it still holds the certificate it got.
        assert (await charger.call("Heartbeat", {}))["currentTime"]
        assert charger.peer_certificate() == first.public_bytes(Encoding.DER)
        # New handshakes, HTTPS and OCPP alike, see the new certificate.
        second = await site.https_certificate()
        assert second.serial_number != first.serial_number
        assert second.not_valid_after_utc == renewed.not_after
    finally:
        await charger.close()
    # (A charger without a password is replaced only once its live connection is gone.)
    await until(lambda: not site.strom.ocpp.online_chargers(), "the charger went")
    newcomer = await site.ocpp_charger()
    try:
        assert newcomer.peer_certificate() == second.public_bytes(Encoding.DER)
    finally:
        await newcomer.close()
    stored = (site.data_dir / "acme" / f"{DOMAIN}.pem").read_bytes()
    assert x509.load_pem_x509_certificate(stored).serial_number == second.serial_number


async def test_a_failed_renewal_keeps_the_certificate_and_retries_with_back_off(
    site: Site,
) -> None:
    await site.wait_for("the CA issued a certificate", lambda: site.certificate.issued)
    site.trust_the_ca()
    before = await site.https_certificate()
    assert site.strom.certificate is not None

    site.pebble.stop()  # the CA is away
    site.strom.certificate.renew_soon()
    await site.wait_for("three failed attempts", lambda: site.certificate.failures >= 3)
    state = site.certificate
    assert state.last_error is not None
    assert "unreachable" in state.last_error
    assert state.issued
    assert state.problem(dt.datetime.now(dt.UTC)) is None
    # The old certificate is still served, and still on file.
    assert (await site.https_certificate()).serial_number == before.serial_number
    stored = (site.data_dir / "acme" / f"{DOMAIN}.pem").read_bytes()
    assert x509.load_pem_x509_certificate(stored).serial_number == before.serial_number
    # Back-off: 0.3 s, 0.6 s, then 1.2 s (the cap) after each failure.
    delays = await _next_delays(site, 2)
    assert delays[0] == pytest.approx(1.2, abs=0.15)
    assert delays[1] == pytest.approx(1.2, abs=0.15)

    site.pebble.start_again()  # the CA is back (with new roots): the next retry succeeds
    await site.wait_for("a retry succeeded", lambda: site.certificate.failures == 0)
    assert site.certificate.last_error is None
    assert site.certificate.last_renewal is not None
    site.trust_the_ca()
    assert (await site.https_certificate()).serial_number != before.serial_number


async def _next_delays(site: Site, count: int) -> list[float]:
    """The delay scheduled after each of the next ``count`` failures."""
    delays = []
    for _ in range(count):
        seen = site.certificate.failures
        await site.wait_for("another attempt", lambda: site.certificate.failures > seen)  # noqa: B023
        state = site.certificate
        assert state.next_attempt is not None
        delays.append((state.next_attempt - dt.datetime.now(dt.UTC)).total_seconds())
    return delays
