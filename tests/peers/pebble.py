"""Debian's pebble (Let's Encrypt's ACME test server) on loopback, validating for real.

``PebblePeer.start(workdir, http_port=…)`` installs pebble when missing (``pebble.sh``, apt),
makes a throwaway CA and a certificate for pebble's own HTTPS (its directory), and starts:

* ``pebble-challtestsrv`` as pebble's DNS server only: every name resolves to 127.0.0.1
  (no AAAA answers, so validation never tries ::1);
* ``pebble`` with ``httpPort`` = the port Strom answers HTTP-01 challenges on, so each order
  is validated by a real HTTP request to Strom. ``PEBBLE_VA_NOSLEEP`` drops its random wait
  before validating, ``PEBBLE_WFE_NONCEREJECT=0`` its deliberate bad-nonce answers, and
  ``PEBBLE_AUTHZREUSE=0`` makes every order prove the domain again (renewals included).

``directory`` is the ACME directory URL, ``ca_bundle`` the PEM file that trusts pebble's own
HTTPS, and ``roots()`` fetches the roots of the certificates it issues (new at every start).
``stop()`` / ``start_again()`` stop and restart pebble on the same ports (a CA that is away).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.ports import unused_port

INSTALL_SCRIPT = Path(__file__).with_name("pebble.sh")


class PebbleUnavailable(RuntimeError):
    """pebble could not be installed or started here (the test then skips or fails)."""


def install() -> str:
    """Install pebble with apt when missing; the path of the ``pebble`` program."""
    try:
        done = subprocess.run(  # our own script, fixed arguments
            ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=600, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        stderr = getattr(exc, "stderr", "") or ""
        raise PebbleUnavailable(f"{exc} {stderr.strip()}") from None
    return done.stdout.strip().splitlines()[-1]


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_localhost_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1/localhost signed by it.

    Returns:
        (CA certificate, server certificate, server key) as PEM files in ``folder``.
    """
    now = dt.datetime.now(dt.UTC)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "strom test CA for pebble")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = _key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(_pem_key(key))
    return paths


@dataclass
class PebblePeer:
    """A running pebble (and its DNS), validating HTTP-01 at 127.0.0.1:``http_port``."""

    workdir: Path
    http_port: int
    validity_s: int
    ca_bundle: Path
    port: int
    management_port: int
    dns_port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def start(cls, workdir: Path, *, http_port: int, validity_s: int = 3_600) -> PebblePeer:
        """Start pebble for certificates valid ``validity_s`` seconds; see the module doc."""
        install()
        workdir.mkdir(parents=True, exist_ok=True)
        ca, cert, key = make_localhost_certificate(workdir)
        peer = cls(
            workdir=workdir,
            http_port=http_port,
            validity_s=validity_s,
            ca_bundle=ca,
            port=unused_port(),
            management_port=unused_port(),
            dns_port=unused_port(),
        )
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{peer.port}",
                "managementListenAddress": f"127.0.0.1:{peer.management_port}",
                "certificate": str(cert),
                "privateKey": str(key),
                "httpPort": http_port,
                "tlsPort": unused_port(),  # TLS-ALPN-01: not answered by Strom
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
                "certificateValidityPeriod": validity_s,
            }
        }
        (workdir / "pebble.json").write_text(json.dumps(config, indent=2))
        try:
            peer._start_dns()
            peer.start_again()
        except BaseException:
            peer.stop_all()
            raise
        return peer

    @property
    def directory(self) -> str:
        """The ACME directory URL."""
        return f"https://127.0.0.1:{self.port}/dir"

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        with log:
            self.processes[name] = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _start_dns(self) -> None:
        self._spawn(
            "challtestsrv",
            [
                "pebble-challtestsrv",
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
                "-dns01",
                f"127.0.0.1:{self.dns_port}",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                f"127.0.0.1:{unused_port()}",
            ],
            {},
        )
        self._wait_udp_free_or_bound()

    def _wait_udp_free_or_bound(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "Starting challenge servers" in self.log("challtestsrv") or _udp_bound(
                self.dns_port
            ):
                return
            self._check_alive("challtestsrv")
            time.sleep(0.1)

    def start_again(self) -> None:
        """(Re)start pebble itself on its ports; waits until its directory answers."""
        env = {
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": "0",
        }
        self._spawn(
            "pebble",
            [
                "pebble",
                "-config",
                str(self.workdir / "pebble.json"),
                "-dnsserver",
                f"127.0.0.1:{self.dns_port}",
            ],
            env,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            self._check_alive("pebble")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.directory, verify=self._trust(), timeout=2).is_success:
                    return
            time.sleep(0.1)
        raise PebbleUnavailable(f"pebble did not answer:\n{self.log('pebble')[-3000:]}")

    def roots(self) -> str:
        """The PEM root of the certificates this pebble run issues."""
        url = f"https://127.0.0.1:{self.management_port}/roots/0"
        return httpx.get(url, verify=self._trust(), timeout=5).raise_for_status().text

    def _trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_bundle))

    def log(self, name: str) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / f"{name}.log").read_text(errors="replace")
        return ""

    def _check_alive(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            raise PebbleUnavailable(f"{name} exited:\n{self.log(name)[-3000:]}")

    def stop(self, name: str = "pebble") -> None:
        """Stop one of the programs (pebble by default), by the id it was started with."""
        process = self.processes.pop(name, None)
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)


def _udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
