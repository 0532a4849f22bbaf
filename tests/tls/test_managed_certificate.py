"""The managed certificate without a CA on the wire: files, placeholder, back-off, config.

The CA is played by an in-process orderer that signs the key it is given with a local test CA
(or fails as told); the ACME exchange itself is tested against pebble (test_acme_pebble.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import stat
import threading
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from strom.acme import AcmeAccount, AcmeError, ChallengeBoard, new_private_key, order_certificate
from strom.config import StromConfig, load_config
from strom.scaffold import write_scaffold
from strom.tls import ManagedCertificate
from strom_core.config import LETS_ENCRYPT_STAGING, TlsConfig, check_managed_tls
from strom_core.errors import ConfigError
from tests.waits import until

DOMAIN = "charge.example.org"
TLS = TlsConfig(
    acme_domain=DOMAIN, acme_email="ops@example.org", acme_retry_s=0.05, acme_retry_max_s=0.2
)


class FakeCa:
    """Signs whatever key it is handed for the domain, for ``lifetime``; or fails as told."""

    def __init__(self, lifetime: dt.timedelta = dt.timedelta(days=90)) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake CA")])
        self.lifetime = lifetime
        self.failing: str | None = None
        self.orders = 0

    def order(
        self, account: AcmeAccount, domain: str, key_pem: bytes, board: ChallengeBoard, _: object
    ) -> str:
        self.orders += 1
        if self.failing is not None:
            raise AcmeError(self.failing)
        key = serialization.load_pem_private_key(key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + self.lifetime)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return leaf.public_bytes(serialization.Encoding.PEM).decode()


def served_serial(certificate: ManagedCertificate) -> int:
    stored = certificate.path.read_bytes()
    return x509.load_pem_x509_certificate(stored).serial_number


async def test_without_a_certificate_strom_serves_a_placeholder_and_says_it_is_not_ready(
    tmp_path: Path,
) -> None:
    certificate = ManagedCertificate(TLS, tmp_path, order=FakeCa().order)
    state = certificate.load()
    certificate.server_context()  # loads into a context: key and chain match
    assert not state.issued
    assert not state.valid(dt.datetime.now(dt.UTC))
    problem = certificate.problem()
    assert problem is not None
    assert "no certificate for charge.example.org from the CA yet" in problem
    assert not certificate.path.exists()  # nothing stored until the CA issues one
    assert certificate.due() <= dt.datetime.now(dt.UTC)  # ordered at once


async def test_an_issued_certificate_is_stored_privately_and_loaded_at_the_next_start(
    tmp_path: Path,
) -> None:
    ca = FakeCa(lifetime=dt.timedelta(days=90))
    certificate = ManagedCertificate(TLS, tmp_path, order=ca.order)
    certificate.load()
    certificate.server_context()
    certificate.ocpp_context()
    state = await certificate.renew()
    assert state.issued
    assert certificate.problem() is None
    assert state.renew_from - state.not_before == dt.timedelta(days=60)
    assert stat.S_IMODE(certificate.folder.stat().st_mode) == 0o700
    for path in (certificate.path, certificate.folder / "account.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in certificate.folder.iterdir() if p.name.startswith(".")]

    again = ManagedCertificate(TLS, tmp_path, order=ca.order)
    loaded = again.load()
    assert loaded.issued
    assert loaded.not_after == state.not_after
    assert again.due() == state.renew_from
    assert ca.orders == 1


async def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    certificate = ManagedCertificate(TLS, tmp_path, order=FakeCa().order)
    certificate.load()
    await certificate.renew()
    certificate.path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"accessible by other users.*chmod 600"):
        ManagedCertificate(TLS, tmp_path).load()


async def test_failed_orders_keep_the_certificate_and_back_off_until_the_ca_answers(
    tmp_path: Path,
) -> None:
    ca = FakeCa()
    certificate = ManagedCertificate(TLS, tmp_path, order=ca.order)
    certificate.load()
    first = await certificate.renew()
    serial = served_serial(certificate)

    ca.failing = "urn:ietf:params:acme:error:serverInternal :: the CA is down"
    delays: list[float] = []
    runner = asyncio.create_task(certificate.run())
    try:
        certificate.renew_soon()
        for attempt in range(1, 5):
            await until(lambda: certificate.state().failures >= attempt, f"attempt {attempt}")  # noqa: B023
            state = certificate.state()
            assert state.next_attempt is not None
            delays.append((state.next_attempt - dt.datetime.now(dt.UTC)).total_seconds())
            assert state.last_error == ca.failing
            assert state.not_after == first.not_after  # the certificate in use stays
            assert served_serial(certificate) == serial  # and so does the file
        ca.failing = None
        await until(lambda: certificate.state().failures == 0, "a retry succeeded")
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert delays == pytest.approx([0.05, 0.1, 0.2, 0.2], abs=0.03)
    assert certificate.state().last_error is None
    assert served_serial(certificate) != serial


async def test_a_chain_that_is_not_a_certificate_is_refused_and_the_old_one_kept(
    tmp_path: Path,
) -> None:
    issuing = ManagedCertificate(TLS, tmp_path, order=FakeCa().order)
    issuing.load()
    await issuing.renew()
    serial = served_serial(issuing)

    def garbage(*_: object) -> str:  # a CA answering nonsense
        return "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"

    certificate = ManagedCertificate(TLS, tmp_path, order=garbage)
    certificate.load()
    certificate.server_context()
    with pytest.raises(AcmeError):
        await certificate.renew()
    assert served_serial(certificate) == serial
    assert certificate.state().failures == 1


async def test_a_directory_answering_errors_is_an_acme_error_naming_it(tmp_path: Path) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.json_response(
            {"type": "urn:ietf:params:acme:error:serverInternal", "detail": "maintenance"},
            status=503,
            content_type="application/problem+json",
        )

    app = web.Application()
    app.router.add_get("/dir", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        account = AcmeAccount(f"http://127.0.0.1:{port}/dir", "ops@example.org", new_private_key())
        with pytest.raises(AcmeError, match="maintenance"):
            await asyncio.to_thread(
                order_certificate, account, DOMAIN, new_private_key(), ChallengeBoard()
            )
    finally:
        await runner.cleanup()


def test_a_stopped_order_gives_up_before_asking_the_ca(tmp_path: Path) -> None:
    stopped = threading.Event()
    stopped.set()
    account = AcmeAccount("https://127.0.0.1:9/dir", "ops@example.org", new_private_key())
    with pytest.raises(AcmeError, match="stopped before the order finished"):
        order_certificate(account, DOMAIN, new_private_key(), ChallengeBoard(), cancelled=stopped)


# --- configuration ------------------------------------------------------------------------


def _config(tmp_path: Path, **env: str) -> StromConfig:
    write_scaffold(tmp_path, charger_id="cp-1")
    environ = {f"STROM_{key.upper()}": value for key, value in env.items()}
    return load_config(tmp_path / "strom.toml", environ=environ)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"tls__acme_domain": "charge.example.org"}, "acme_email .* is required"),
        ({"tls__acme_domain": "192.0.2.1", "tls__acme_email": "a@b.org"}, "DNS name"),
        ({"tls__acme_domain": "https://x.org", "tls__acme_email": "a@b.org"}, "DNS name"),
        ({"tls__acme_domain": "*.x.org", "tls__acme_email": "a@b.org"}, "wildcard"),
        ({"tls__acme_email": "not an address"}, "e-mail address"),
        ({"tls__acme_directory": "http://ca.example/dir"}, "https:// URL of an ACME directory"),
        ({"tls__http_port": "70000"}, "tls.http_port"),
    ],
)
def test_a_wrong_tls_setting_is_refused_in_words(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, **env)


def test_the_directory_may_be_named_and_defaults_to_lets_encrypt(tmp_path: Path) -> None:
    assert TlsConfig().acme_directory == "https://acme-v02.api.letsencrypt.org/directory"
    assert not TlsConfig().managed
    staging = TlsConfig(acme_directory="letsencrypt-staging")
    assert staging.acme_directory == LETS_ENCRYPT_STAGING


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"server__tls_cert": "c.pem", "server__tls_key": "k.pem"}, "both give the HTTPS"),
        ({"ocpp__tls_cert": "c.pem", "ocpp__tls_key": "k.pem"}, "tls.ocpp = true"),
        ({"tls__http_port": "8443"}, "need one port each"),
        ({"server__public_url": "https://other.example.org"}, "must reach Strom at https://"),
        ({"server__public_url": "http://charge.example.org"}, "must reach Strom at https://"),
    ],
)
def test_managed_tls_that_contradicts_the_rest_is_refused(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    managed = {
        "tls__acme_domain": "charge.example.org",
        "tls__acme_email": "ops@example.org",
        "server__port": "8443",
        "server__public_url": "https://charge.example.org:8443",
    }
    config = _config(tmp_path, **{**managed, **env})
    with pytest.raises(ConfigError, match=message):
        check_managed_tls(config)


def test_managed_tls_with_its_own_url_is_accepted(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        tls__acme_domain="Charge.Example.org",
        tls__acme_email="ops@example.org",
        server__port="443",
        server__public_url="https://charge.example.org",
    )
    check_managed_tls(config)


async def test_a_stored_certificate_whose_key_does_not_match_is_refused_at_start(
    tmp_path: Path,
) -> None:
    certificate = ManagedCertificate(TLS, tmp_path, order=FakeCa().order)
    certificate.load()
    await certificate.renew()
    stored = certificate.path.read_bytes()
    chain = stored[stored.index(b"-----BEGIN CERTIFICATE-----") :]
    certificate.path.write_bytes(new_private_key() + chain)  # another key, same chain
    with pytest.raises(ConfigError, match="not a private key and certificate chain"):
        ManagedCertificate(TLS, tmp_path).load()


async def test_an_unexpected_failure_of_the_order_is_one_failed_attempt(tmp_path: Path) -> None:
    def broken(*_: object) -> str:
        raise KeyError("up")  # as a library bug would

    certificate = ManagedCertificate(TLS, tmp_path, order=broken)
    certificate.load()
    with pytest.raises(AcmeError):
        await certificate.renew()
    assert certificate.state().failures == 1
    assert certificate.state().last_error == "KeyError: 'up'"
