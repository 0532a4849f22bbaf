"""One certificate order at an ACME CA (RFC 8555), proved over HTTP-01, with the ``acme`` library.

The protocol (directory, account, nonces, JWS signatures, orders, polling, finalisation) is
certbot's ``acme`` package; this module only decides what to ask for and keeps the answers to
the CA's HTTP-01 challenges on a :class:`ChallengeBoard`, which Strom's plain-HTTP listener
serves at ``/.well-known/acme-challenge/<token>`` (:func:`challenge_app`). ``acme`` is
synchronous (``requests``): :func:`order_certificate` runs in a thread of its own
(:mod:`strom.tls` does that), never on the event loop.

TLS-ALPN-01 is not offered: answering it needs a second certificate chosen by the ALPN
protocol a client offers, which Python's ``ssl`` module cannot see when it picks the
certificate; HTTP-01 on port 80 works wherever the CA can reach Strom at all.
"""

from __future__ import annotations

import datetime
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import requests
from acme import challenges, client, crypto_util, errors, messages
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy import errors as jose_errors
from josepy import jwa
from josepy.jwk import JWKEC

from strom_core.errors import BackendError

__all__ = [
    "CHALLENGE_PREFIX",
    "AcmeAccount",
    "AcmeError",
    "ChallengeBoard",
    "challenge_app",
    "new_private_key",
    "order_certificate",
]

log = logging.getLogger(__name__)

CHALLENGE_PREFIX: Final = "/.well-known/acme-challenge/"
USER_AGENT: Final = "strom (acme-python)"
NETWORK_TIMEOUT_S: Final = 30


class AcmeError(BackendError):
    """The CA refused, failed or could not be reached; the message says which and why."""


def new_private_key() -> bytes:
    """A new EC P-256 private key as unencrypted PKCS#8 PEM (account or certificate key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class ChallengeBoard:
    """The HTTP-01 answers being served while an order runs (token -> key authorisation).

    Written from the ordering thread and read by the HTTP handler on the event loop: single
    dictionary operations, which need no lock.
    """

    def __init__(self) -> None:
        self._answers: dict[str, str] = {}

    def put(self, token: str, key_authorization: str) -> None:
        """Serve ``key_authorization`` at the challenge path of ``token``."""
        self._answers[token] = key_authorization

    def remove(self, token: str) -> None:
        """Stop serving the answer for ``token``."""
        self._answers.pop(token, None)

    def answer(self, token: str) -> str | None:
        """The key authorisation for ``token``, or None when no order asks for it."""
        return self._answers.get(token)

    async def handle(self, request: web.Request) -> web.Response:
        """``GET /.well-known/acme-challenge/{token}``: the answer as text/plain, or 404."""
        answer = self.answer(request.match_info["token"])
        if answer is None:
            raise web.HTTPNotFound(text="no such challenge\n")
        log.info("acme: answered the HTTP-01 challenge from %s", request.remote)
        return web.Response(text=answer, content_type="text/plain")


def challenge_app(board: ChallengeBoard, https_base: str) -> web.Application:
    """The plain-HTTP application on port 80: challenges, and a redirect to HTTPS for the rest.

    Args:
        board: the answers to serve.
        https_base: where every other request is sent (``https://<domain>[:port]``).
    """

    async def to_https(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(https_base + request.rel_url.raw_path_qs)

    app = web.Application()
    app.router.add_get(CHALLENGE_PREFIX + "{token}", board.handle)
    app.router.add_route("*", "/{tail:.*}", to_https)
    return app


@dataclass(frozen=True)
class AcmeAccount:
    """Who orders, where.

    Attributes:
        directory: the CA's ACME directory URL.
        email: the contact address registered with the account.
        key_pem: the account's private key (PEM); the account is found again by it.
        ca_bundle: PEM roots to trust for the directory's HTTPS; the system's when None.
    """

    directory: str
    email: str
    key_pem: bytes
    ca_bundle: Path | None = None


def order_certificate(
    account: AcmeAccount,
    domain: str,
    key_pem: bytes,
    board: ChallengeBoard,
    *,
    timeout_s: float = 120.0,
    cancelled: threading.Event | None = None,
) -> str:
    """Register (or find) the account, order a certificate for ``domain``, prove it, fetch it.

    Blocking: run it in a thread. The answers put on ``board`` are removed before it returns.

    Args:
        account: the ACME account and directory.
        domain: the one DNS name the certificate is for.
        key_pem: the certificate's private key (PEM).
        board: where the HTTP-01 answers are served from.
        timeout_s: how long validation and issuance may take in all.
        cancelled: set by the caller to stop between steps (Strom is stopping).

    Returns:
        The certificate chain (PEM, leaf first).

    Raises:
        AcmeError: the CA refused the order, a challenge failed, the CA did not answer, or
            ``cancelled`` was set.
    """
    try:
        return _order(account, domain, key_pem, board, timeout_s, cancelled)
    except AcmeError:
        raise
    except errors.ValidationError as exc:
        raise AcmeError(
            f"the CA could not validate {domain}: {_validation_problems(exc)}"
        ) from None
    except (errors.Error, jose_errors.Error) as exc:
        raise AcmeError(f"{type(exc).__name__}: {exc}") from None
    except requests.RequestException as exc:
        raise AcmeError(f"{account.directory} unreachable: {exc}") from None
    except ValueError as exc:  # a CA answer that is not the JSON it should be
        raise AcmeError(f"unexpected answer from {account.directory}: {exc}") from None


def _order(
    account: AcmeAccount,
    domain: str,
    key_pem: bytes,
    board: ChallengeBoard,
    timeout_s: float,
    cancelled: threading.Event | None,
) -> str:
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout_s)
    _check(cancelled)
    acme = _client(account)
    order = acme.new_order(crypto_util.make_csr(key_pem, [domain]))
    tokens: list[str] = []
    try:
        for authz in order.authorizations:
            if authz.body.status == messages.STATUS_VALID:
                continue  # proved recently; the CA reuses it
            challb = _http01(authz)
            _check(cancelled)
            response, validation = challb.response_and_validation(acme.net.key)
            token = challb.chall.encode("token")
            board.put(token, validation)
            tokens.append(token)
            acme.answer_challenge(challb, response)
        _check(cancelled)
        finished = acme.poll_and_finalize(order, deadline)
    finally:
        for token in tokens:
            board.remove(token)
    if not finished.fullchain_pem:
        raise AcmeError("the CA finalised the order without a certificate")
    return str(finished.fullchain_pem)


def _client(account: AcmeAccount) -> client.ClientV2:
    key = JWKEC(key=serialization.load_pem_private_key(account.key_pem, password=None))
    net = client.ClientNetwork(key, alg=jwa.ES256, user_agent=USER_AGENT, timeout=NETWORK_TIMEOUT_S)
    if account.ca_bundle is not None:
        # requests takes a bundle path where ``acme`` types a bool.
        net.verify_ssl = str(account.ca_bundle)  # type: ignore[assignment]
    acme = client.ClientV2(client.ClientV2.get_directory(account.directory, net), net)
    registration = messages.NewRegistration.from_data(
        email=account.email, terms_of_service_agreed=True
    )
    try:
        acme.new_account(registration)
    except errors.ConflictError as exc:  # this key has an account already: use it
        net.account = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
    return acme


def _http01(authz: messages.AuthorizationResource) -> messages.ChallengeBody:
    for challb in authz.body.challenges:
        if isinstance(challb.chall, challenges.HTTP01):
            return challb
    offered = ", ".join(sorted(str(c.chall.typ) for c in authz.body.challenges))
    raise AcmeError(
        f"the CA offers no http-01 challenge for {authz.body.identifier.value} ({offered})"
    )


def _check(cancelled: threading.Event | None) -> None:
    if cancelled is not None and cancelled.is_set():
        raise AcmeError("stopped before the order finished")


def _validation_problems(exc: errors.ValidationError) -> str:
    problems = [
        str(challb.error)
        for authz in exc.failed_authzrs
        for challb in authz.body.challenges
        if challb.error is not None
    ]
    return "; ".join(problems) or "no reason given"
