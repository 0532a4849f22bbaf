"""Managed TLS: the certificate Strom obtains from an ACME CA, keeps, renews and reloads live.

Theory of operation:

* **Files.** ``<data_dir>/acme/`` (mode 0700) holds ``account.key`` (the ACME account's EC
  key) and ``<domain>.pem`` (the certificate's private key followed by its chain, leaf first),
  each mode 0600, each replaced atomically (written beside, then renamed), so key and chain
  always match. Files readable by others are refused at start, as the nostr keys are.
* **Start.** A stored certificate is loaded whatever its age. Without one, a self-signed
  placeholder is loaded so that HTTPS and ``wss://`` listen at once; the first issuance then
  starts immediately. :meth:`ManagedCertificate.state` says which is in use.
* **Live reload.** Strom's HTTPS server and its OCPP server each hold one
  :class:`ssl.SSLContext` from here for their whole life. A new certificate is loaded into
  those same objects (``load_cert_chain``): handshakes from then on present it, connections
  already open keep theirs, so no charger is dropped.
* **Renewal** starts at two thirds of the certificate's lifetime (day 60 of Let's Encrypt's
  90). A failed attempt keeps the certificate in use and is retried after ``acme_retry_s``,
  doubling up to ``acme_retry_max_s``; each attempt and its outcome is logged with the domain,
  the CA and the certificate's dates.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from strom.acme import AcmeAccount, AcmeError, ChallengeBoard, new_private_key, order_certificate
from strom.private_files import make_private_folder, read_private, write_private
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import TlsConfig
from strom_core.errors import ConfigError

__all__ = ["CertificateState", "ManagedCertificate", "Orderer"]

log = logging.getLogger(__name__)

ACME_DIR: Final = "acme"
ACCOUNT_KEY: Final = "account.key"
RENEW_AT: Final = 2 / 3  # of the lifetime
PLACEHOLDER_DAYS: Final = 90
MAX_SLEEP_S: Final = 3_600.0  # wake at least hourly: the wall clock may jump (suspend, NTP)

# order(account, domain, key_pem, board, cancelled) -> chain PEM; blocking, run in a thread.
Orderer = Callable[[AcmeAccount, str, bytes, ChallengeBoard, threading.Event], str]


@dataclass(frozen=True)
class CertificateState:
    """What the certificate in use is, and how its renewal goes.

    Attributes:
        domain: the domain it is for.
        issued: True for a certificate from the CA, False for the self-signed placeholder.
        not_before: start of its validity.
        not_after: end of its validity.
        renew_from: when renewal starts (two thirds of the lifetime; now for a placeholder).
        last_renewal: when the CA last issued one in this process; None before.
        last_error: why the last attempt failed; None when it succeeded or none was made.
        failures: attempts failed in a row.
        next_attempt: when the next attempt is due.
    """

    domain: str
    issued: bool
    not_before: dt.datetime
    not_after: dt.datetime
    renew_from: dt.datetime
    last_renewal: dt.datetime | None = None
    last_error: str | None = None
    failures: int = 0
    next_attempt: dt.datetime | None = None

    def valid(self, now: dt.datetime) -> bool:
        """Whether browsers and chargers accept it now (issued by the CA, within its dates)."""
        return self.issued and self.not_before <= now < self.not_after

    def problem(self, now: dt.datetime) -> str | None:
        """A readiness check: None when all is well, otherwise one line saying what is wrong."""
        if not self.issued:
            why = f" (last attempt: {self.last_error})" if self.last_error else ""
            return f"no certificate for {self.domain} from the CA yet{why}"
        if now >= self.not_after:
            return f"the certificate for {self.domain} expired at {self.not_after.isoformat()}"
        if now < self.not_before:
            return f"the certificate for {self.domain} is valid only from {self.not_before}"
        return None


class ManagedCertificate:
    """The certificate of ``tls.acme_domain`` and the SSL contexts that serve it.

    Args:
        tls: the ``[tls]`` section (domain, contact, directory, retry timing).
        data_dir: Strom's data folder; files go to ``<data_dir>/acme/``.
        clock: wall time for validity and renewal.
        order: obtains a chain from the CA (blocking); :func:`strom.acme.order_certificate`
            by default.
    """

    def __init__(
        self,
        tls: TlsConfig,
        data_dir: Path,
        *,
        clock: Clock = SYSTEM_CLOCK,
        order: Orderer | None = None,
    ) -> None:
        if not tls.managed:
            raise ValueError("managed TLS needs tls.acme_domain")
        self.tls = tls
        self.domain = tls.acme_domain
        self.folder = Path(data_dir) / ACME_DIR
        self.board = ChallengeBoard()
        self._clock = clock
        self._order = order or _order_with_library
        self._contexts: list[ssl.SSLContext] = []
        self._state: CertificateState | None = None
        self._pem: bytes = b""
        self._changed = asyncio.Event()  # the schedule changed, or an attempt was asked for
        self._requested = False
        self._lock = asyncio.Lock()
        self._stopping = threading.Event()

    @property
    def path(self) -> Path:
        """The stored certificate: its private key, then its chain."""
        return self.folder / f"{self.domain}.pem"

    # --- contexts ---------------------------------------------------------------------------

    def server_context(self) -> ssl.SSLContext:
        """A context for Strom's HTTPS server, kept up to date with the certificate."""
        return self._register(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))

    def ocpp_context(self) -> ssl.SSLContext:
        """A context for OCPP over ``wss://``, kept up to date with the certificate.

        TLS 1.2 or later, as the OCPP 1.6 security whitepaper requires for profile 2.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return self._register(context)

    def _register(self, context: ssl.SSLContext) -> ssl.SSLContext:
        if self._pem:
            _load_chain([context], self.folder, self._pem)
        self._contexts.append(context)
        return context

    # --- state ------------------------------------------------------------------------------

    def state(self) -> CertificateState:
        """The certificate in use and the renewal's progress (see :class:`CertificateState`).

        Raises:
            RuntimeError: before :meth:`load`.
        """
        if self._state is None:
            raise RuntimeError("the managed certificate is not loaded yet")
        return self._state

    def problem(self) -> str | None:
        """For ``/readyz``: None while the certificate in use is valid, else what is wrong."""
        return self.state().problem(self._clock.now())

    # --- loading and storing ----------------------------------------------------------------

    def load(self) -> CertificateState:
        """Load the stored certificate, or a self-signed placeholder when there is none.

        Raises:
            ConfigError: the folder cannot be made, or a file in it is readable by others or
                damaged.
        """
        make_private_folder(self.folder, "the ACME folder")
        pem = read_private(self.path)
        if pem is None:
            key = new_private_key()
            pem = key + _self_signed(key, self.domain, self._clock.now())
            issued = False
        else:
            issued = True
        try:
            state = self._install(pem, issued=issued)
        except ValueError as exc:
            raise ConfigError(
                f"{self.path}: not a private key and certificate chain: {exc}"
            ) from None
        if issued:
            log.info(
                "tls %s: certificate loaded from %s, valid until %s, renewal from %s",
                self.domain,
                self.path,
                _iso(state.not_after),
                _iso(state.renew_from),
            )
        else:
            log.info(
                "tls %s: no certificate yet; serving a self-signed placeholder until %s issues one",
                self.domain,
                self.tls.acme_directory,
            )
        return state

    def _install(self, pem: bytes, *, issued: bool, renewed: bool = False) -> CertificateState:
        """Parse ``pem`` (key + chain), load it into every context, make it the state."""
        leaf = x509.load_pem_x509_certificate(pem)
        not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
        renew_from = not_before + (not_after - not_before) * RENEW_AT if issued else not_before
        _load_chain(self._contexts, self.folder, pem)  # raises before anything changed
        self._pem = pem
        previous = self._state
        self._state = CertificateState(
            domain=self.domain,
            issued=issued,
            not_before=not_before,
            not_after=not_after,
            renew_from=renew_from,
            last_renewal=self._clock.now() if renewed else _last_renewal(previous),
        )
        self._changed.set()
        return self._state

    def _account(self) -> AcmeAccount:
        path = self.folder / ACCOUNT_KEY
        key = read_private(path)
        if key is None:
            write_private(path, new_private_key())
            log.info("tls %s: new ACME account key in %s", self.domain, path)
            key = read_private(path)
            assert key is not None
        return AcmeAccount(
            directory=self.tls.acme_directory,
            email=self.tls.acme_email,
            key_pem=key,
            ca_bundle=self.tls.acme_ca_bundle,
        )

    # --- renewal ----------------------------------------------------------------------------

    async def renew(self) -> CertificateState:
        """One attempt: order a certificate now, store it, load it into the live contexts.

        On failure the certificate in use stays, the state records the error, and the next
        attempt is scheduled with back-off (:meth:`run` makes it).

        Raises:
            AcmeError: the attempt failed (also recorded in :meth:`state`).
        """
        async with self._lock:
            state = self.state()
            key = new_private_key()
            log.info(
                "tls %s: ordering a certificate from %s (current one valid until %s)",
                self.domain,
                self.tls.acme_directory,
                _iso(state.not_after) if state.issued else "- (placeholder)",
            )
            try:
                account = await asyncio.to_thread(self._account)
                chain = await _in_daemon_thread(
                    lambda: self._order(account, self.domain, key, self.board, self._stopping)
                )
                pem = key + chain.encode()
                new = self._install(pem, issued=True, renewed=True)  # refuses a bad chain
                write_private(self.path, pem)
            except (AcmeError, ValueError, OSError, ConfigError) as exc:
                self._failed(str(exc))
                raise AcmeError(str(exc)) from None
            except Exception as exc:
                # The acme library and the CA can fail in more ways than it documents; any of
                # them is one failed attempt, retried with back-off, never a stop of Strom.
                self._failed(f"{type(exc).__name__}: {exc}")
                raise AcmeError(str(exc)) from exc
            log.info(
                "tls %s: certificate renewed by %s, valid %s to %s, serial %x; live in HTTPS "
                "and OCPP for new connections; next renewal from %s",
                self.domain,
                self.tls.acme_directory,
                _iso(new.not_before),
                _iso(new.not_after),
                x509.load_pem_x509_certificate(pem).serial_number,
                _iso(new.renew_from),
            )
            return new

    def _failed(self, error: str) -> None:
        state = self.state()
        failures = state.failures + 1
        delay = min(self.tls.acme_retry_s * 2 ** (failures - 1), self.tls.acme_retry_max_s)
        now = self._clock.now()
        self._state = replace(
            state,
            last_error=error,
            failures=failures,
            next_attempt=now + dt.timedelta(seconds=delay),
        )
        self._changed.set()
        level = logging.ERROR if state.issued and now >= state.not_after else logging.WARNING
        log.log(
            level,
            "tls %s: certificate order at %s failed (attempt %d): %s; keeping the %s (valid "
            "until %s); next attempt in %.3g s",
            self.domain,
            self.tls.acme_directory,
            failures,
            error,
            "certificate in use" if state.issued else "self-signed placeholder",
            _iso(state.not_after),
            delay,
        )

    def renew_soon(self) -> None:
        """Make :meth:`run` attempt a renewal now (an operator's request, a test)."""
        self._requested = True
        self._changed.set()

    def due(self) -> dt.datetime:
        """When :meth:`run` next attempts: the retry time after a failure, else renew_from."""
        state = self.state()
        return state.next_attempt if state.next_attempt is not None else state.renew_from

    async def run(self) -> None:
        """Renew whenever due, until cancelled (one task of Strom's task group)."""
        try:
            while True:
                wait_s = (self.due() - self._clock.now()).total_seconds()
                if wait_s > 0 and not self._requested:
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), min(wait_s, MAX_SLEEP_S))
                    continue  # look again: due, asked for, or rescheduled
                self._requested = False
                with contextlib.suppress(AcmeError):  # recorded and logged by renew()
                    await self.renew()
        finally:
            self._stopping.set()  # an order still running in its thread gives up


def _last_renewal(state: CertificateState | None) -> dt.datetime | None:
    return None if state is None else state.last_renewal


def _order_with_library(
    account: AcmeAccount, domain: str, key: bytes, board: ChallengeBoard, stop: threading.Event
) -> str:
    return order_certificate(account, domain, key, board, cancelled=stop)


async def _in_daemon_thread(work: Callable[[], str]) -> str:
    """Run blocking network work in a daemon thread (a stop does not wait for the CA)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def deliver(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def target() -> None:
        try:
            result = work()
        except BaseException as exc:  # handed to the awaiting task, which decides
            error = exc
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(deliver, lambda: future.set_exception(error))
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(deliver, lambda: future.set_result(result))

    threading.Thread(target=target, name="acme-order", daemon=True).start()
    return await future


def _load_chain(contexts: list[ssl.SSLContext], folder: Path, pem: bytes) -> None:
    """Load key + chain into each context (``ssl`` reads only files: a private temporary one).

    Raises:
        ValueError: the PEM is not a key with a matching chain.
    """
    if not contexts:  # nothing serves yet: check that key and chain match all the same
        contexts = [ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)]
    temporary = folder / f".load.{os.getpid()}.{threading.get_ident()}.pem"
    write_private(temporary, pem)
    try:
        for context in contexts:
            context.load_cert_chain(temporary)
    except ssl.SSLError as exc:
        raise ValueError(str(exc)) from None
    finally:
        temporary.unlink(missing_ok=True)


def _self_signed(key_pem: bytes, domain: str, now: dt.datetime) -> bytes:
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError("the placeholder is made for an EC key")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{domain} (placeholder)")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=PLACEHOLDER_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")
