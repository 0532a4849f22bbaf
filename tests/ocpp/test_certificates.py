"""Security profile 3 and the certificates of the OCPP 1.6 security edition.

A simulated charger gets its client certificate through ExtendedTriggerMessage and
SignCertificate (Strom's charger CA signs its CSR, CertificateSigned delivers it), then
reconnects over TLS with it as a charger of profile 3; without a certificate, with another
charger's, or with one of another CA it is refused. The CA refuses CSRs with the wrong CN or a
weak key. InstallCertificate, GetInstalledCertificateIds and DeleteCertificate round-trip.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from ocpp_server import ChargerAuth, hash_password
from ocpp_server.certificates import ChargerCa, CsrRefused, certificate_hash_data, new_ca
from ocpp_server.v16 import SUBPROTOCOL
from strom_core.ports import ChargerOnline, CommandStatus
from tests.ocpp.conftest import FAST_HASH, PASSWORD, Harness, HarnessFactory, boot, running
from tests.ocpp.drivers import ChargePointDriver

NOW = dt.datetime.now(dt.UTC)


def make_ca(name: str = "Strom charger CA") -> ChargerCa:
    certificate, key = new_ca(name, now=NOW)
    return ChargerCa.from_pem(certificate, key)


def csr_pem(common_name: str, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


async def tls_status(
    harness: Harness, charger_id: str, server_cert: Path, client: tuple[bytes, bytes] | None
) -> int:
    """Open a profile-3 connection; 101 when admitted, else the refusal's status (0: TLS)."""
    context = ssl.create_default_context(cafile=server_cert)
    if client is not None:
        path = server_cert.with_name(f"client-{charger_id}.pem")
        path.write_bytes(client[1] + b"\n" + client[0])
        context.load_cert_chain(path)
    try:
        async with connect(
            f"{harness.url}/{charger_id}",
            subprotocols=[SUBPROTOCOL],
            ssl=context,  # type: ignore[list-item]
        ):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code
    except (ssl.SSLError, ConnectionError, EOFError, InvalidMessage):
        # The handshake failed (with TLS 1.3 the client learns it only when it reads).
        return 0


@pytest.fixture
async def tls_harness(
    start_harness: HarnessFactory, tls_files: tuple[Path, Path]
) -> tuple[Harness, ChargerCa]:
    ca = make_ca()
    cert, key = tls_files
    chargers = [
        ChargerAuth("cp-3", hash_password(PASSWORD, log2_n=FAST_HASH)),
        ChargerAuth("cp-other", hash_password(PASSWORD, log2_n=FAST_HASH)),
    ]
    harness = await start_harness(tls_cert=cert, tls_key=key, charger_ca=ca, chargers=chargers)
    return harness, ca


async def test_a_certificate_signed_through_sign_certificate_admits_a_profile_3_charger(
    tls_harness: tuple[Harness, ChargerCa],
    tls_files: tuple[Path, Path],
    expect_errors: list[logging.LogRecord],
) -> None:
    harness, _ca = tls_harness
    server_cert = tls_files[0]
    async with running(harness, "cp-3", password=PASSWORD, ca_file=server_cert) as sim:
        result = await harness.commands16.request_charger_certificate("cp-3")
        assert result.status is CommandStatus.ACCEPTED
        await sim.wait_until(lambda: sim.client_certificate is not None)
        chain = sim.client_certificate
        assert chain is not None
        certificate = x509.load_pem_x509_certificate(chain[0])
        assert certificate.subject.rfc4514_string() == "CN=cp-3"
        # The operator moves the charger to profile 3: no password, its certificate only.
        harness.chargers.add(ChargerAuth("cp-3", client_certificate=True))
        sim.password = None
        seen = len(harness.sink.events)
        sim.drop_connection()
        await harness.sink.wait_for(ChargerOnline, after=seen)
        assert harness.server.online_chargers() == ["cp-3"]
        # The same charger without its certificate is refused.
        assert await tls_status(harness, "cp-3", server_cert, None) == 401


async def test_a_profile_3_charger_is_refused_with_another_chargers_or_another_cas_certificate(
    tls_harness: tuple[Harness, ChargerCa],
    tls_files: tuple[Path, Path],
    expect_errors: list[logging.LogRecord],
) -> None:
    harness, ca = tls_harness
    server_cert = tls_files[0]
    harness.chargers.add(ChargerAuth("cp-3", client_certificate=True))
    key = ec.generate_private_key(ec.SECP256R1())
    other = ca.sign_csr("cp-other", csr_pem("cp-other", key), now=NOW)
    assert await tls_status(harness, "cp-3", server_cert, (other.encode(), key_pem(key))) == 401
    mine = ca.sign_csr("cp-3", csr_pem("cp-3", key), now=NOW)
    assert await tls_status(harness, "cp-3", server_cert, (mine.encode(), key_pem(key))) == 101
    forged = make_ca("Another CA").sign_csr("cp-3", csr_pem("cp-3", key), now=NOW)
    assert await tls_status(harness, "cp-3", server_cert, (forged.encode(), key_pem(key))) == 0
    assert "cp-3" not in harness.server.online_chargers()


async def test_a_password_charger_is_not_admitted_on_a_certificate_alone(
    tls_harness: tuple[Harness, ChargerCa], tls_files: tuple[Path, Path]
) -> None:
    harness, ca = tls_harness
    key = ec.generate_private_key(ec.SECP256R1())
    mine = ca.sign_csr("cp-3", csr_pem("cp-3", key), now=NOW)
    assert await tls_status(harness, "cp-3", tls_files[0], (mine.encode(), key_pem(key))) == 401


def test_the_ca_signs_only_a_sound_csr_for_the_charger_itself() -> None:
    ca = make_ca()
    strong = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CsrRefused, match="CN is 'cp-2'"):
        ca.sign_csr("cp-1", csr_pem("cp-2", strong), now=NOW)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CsrRefused, match="1024 bits"):
        ca.sign_csr("cp-1", csr_pem("cp-1", weak), now=NOW)
    with pytest.raises(CsrRefused, match="curve secp256k1"):
        ca.sign_csr("cp-1", csr_pem("cp-1", ec.generate_private_key(ec.SECP256K1())), now=NOW)
    with pytest.raises(CsrRefused, match="not a PEM"):
        ca.sign_csr("cp-1", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", now=NOW)
    chain = ca.sign_csr("cp-1", csr_pem("cp-1", strong), now=NOW)
    certificate = x509.load_pem_x509_certificate(chain.encode())
    assert certificate.issuer == ca.certificate.subject
    ca.certificate.public_key().verify(  # type: ignore[union-attr]
        certificate.signature,
        certificate.tbs_certificate_bytes,
        ec.ECDSA(hashes.SHA256()),
    )


def test_a_ca_whose_key_does_not_match_is_refused() -> None:
    certificate, _key = new_ca("one", now=NOW)
    _other, other_key = new_ca("two", now=NOW)
    with pytest.raises(ValueError, match="does not match"):
        ChargerCa.from_pem(certificate, other_key)


async def test_a_csr_with_another_cn_is_rejected_over_ocpp(
    start_harness: HarnessFactory, expect_errors: list[logging.LogRecord]
) -> None:
    harness = await start_harness(charger_ca=make_ca())
    async with running(harness, "cp-open") as sim:
        strong = ec.generate_private_key(ec.SECP256R1())
        answer = await sim.call("SignCertificate", {"csr": csr_pem("cp-1", strong)})
        assert answer == {"status": "Rejected"}
        answer = await sim.call("SignCertificate", {"csr": csr_pem("cp-open", strong)})
        assert answer == {"status": "Accepted"}
        # Not the CSR the simulator made: it rejects the certificate (its key is not the CSR's).
        await sim.wait_until(
            lambda: any(call.action == "CertificateSigned" for call in sim.received_calls)
        )
        assert sim.client_certificate is None


async def test_root_certificates_install_list_and_delete(harness: Harness) -> None:
    ca = make_ca()
    commands = harness.commands16
    async with running(harness, "cp-open"):
        listed = await commands.get_installed_certificate_ids("cp-open")
        assert listed.result.detail == "NotFound"
        assert listed.certificates == ()
        installed = await commands.install_certificate("cp-open", ca.certificate_pem)
        assert installed.status is CommandStatus.ACCEPTED
        listed = await commands.get_installed_certificate_ids("cp-open")
        assert listed.certificates == (certificate_hash_data(ca.certificate_pem),)
        deleted = await commands.delete_certificate("cp-open", listed.certificates[0])
        assert deleted.status is CommandStatus.ACCEPTED
        again = await commands.delete_certificate("cp-open", listed.certificates[0])
        assert again.status is CommandStatus.REJECTED
        assert again.detail == "NotFound"
        with pytest.raises(ValueError, match="certificate type"):
            await commands.install_certificate("cp-open", ca.certificate_pem, "Nonsense")
        with pytest.raises(ValueError, match="cannot request"):
            await commands.extended_trigger_message("cp-open", "DiagnosticsStatusNotification")


async def test_the_strict_client_gets_certificate_commands_that_fit_the_schemas(
    start_harness: HarnessFactory, driver: ChargePointDriver
) -> None:
    ca = make_ca()
    harness = await start_harness(charger_ca=ca)
    await boot(driver, harness)
    for _ in range(3):
        await driver.server_call("ChangeConfiguration")
    for _ in range(3):
        await driver.server_call("TriggerMessage")
    commands = harness.commands16

    # The charger's own certificate: ExtendedTriggerMessage, SignCertificate, CertificateSigned.
    assert (await commands.request_charger_certificate("cp-1")).accepted
    assert await driver.server_call("ExtendedTriggerMessage") == {
        "requestedMessage": "SignChargePointCertificate"
    }
    key = ec.generate_private_key(ec.SECP256R1())
    assert await driver.call("SignCertificate", {"csr": csr_pem("cp-1", key)}) == {
        "status": "Accepted"
    }
    signed = await driver.server_call("CertificateSigned")
    chain = x509.load_pem_x509_certificates(signed["certificateChain"].encode())
    assert chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "cp-1"
    assert await driver.call("SignCertificate", {"csr": csr_pem("cp-other", key)}) == {
        "status": "Rejected"
    }
    await driver.answer("ExtendedTriggerMessage", {"status": "NotImplemented"})
    unsupported = await commands.extended_trigger_message("cp-1", "LogStatusNotification", 1)
    assert await driver.server_call("ExtendedTriggerMessage") == {
        "requestedMessage": "LogStatusNotification",
        "connectorId": 1,
    }
    assert unsupported.status is CommandStatus.NOT_SUPPORTED

    # The roots it trusts: install, list, delete; every answer typed.
    await driver.answer("InstallCertificate", {"status": "Accepted"})
    assert (await commands.install_certificate("cp-1", ca.certificate_pem)).accepted
    assert await driver.server_call("InstallCertificate") == {
        "certificateType": "CentralSystemRootCertificate",
        "certificate": ca.certificate_pem,
    }
    await driver.answer("InstallCertificate", {"status": "Failed"})
    failed = await commands.install_certificate(
        "cp-1", ca.certificate_pem, "ManufacturerRootCertificate"
    )
    assert (failed.status, failed.detail) == (CommandStatus.REJECTED, "Failed")
    await driver.server_call("InstallCertificate")

    hash_data = certificate_hash_data(ca.certificate_pem)
    await driver.answer(
        "GetInstalledCertificateIds", {"status": "Accepted", "certificateHashData": [hash_data]}
    )
    listed = await commands.get_installed_certificate_ids("cp-1")
    assert await driver.server_call("GetInstalledCertificateIds") == {
        "certificateType": "CentralSystemRootCertificate"
    }
    assert (listed.result.status, listed.certificates) == (CommandStatus.ACCEPTED, (hash_data,))
    await driver.answer("GetInstalledCertificateIds", {"status": "NotFound"})
    none = await commands.get_installed_certificate_ids("cp-1", "ManufacturerRootCertificate")
    assert (none.result.status, none.result.detail, none.certificates) == (
        CommandStatus.ACCEPTED,
        "NotFound",
        (),
    )

    await driver.answer("DeleteCertificate", {"status": "Accepted"})
    assert (await commands.delete_certificate("cp-1", hash_data)).accepted
    assert await driver.server_call("DeleteCertificate") == {"certificateHashData": hash_data}
    await driver.answer("DeleteCertificate", {"status": "NotFound"})
    gone = await commands.delete_certificate("cp-1", hash_data)
    assert (gone.status, gone.detail) == (CommandStatus.REJECTED, "NotFound")
    assert driver.validation_failures == []
