"""HTTP plumbing shared by the REST backends: error translation and certificate pinning.

Every httpx exception is translated here, at the boundary, into Strom's backend errors:
timeouts become :class:`BackendTimeout`, every other transport failure
:class:`BackendUnavailable`. Status codes are classified by :func:`status_error`:
5xx, 408, 409 and 429 mean "the outcome is unknown, try later" (:class:`BackendUnavailable`),
other 4xx mean "refused" (:class:`BackendRejected`).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import orjson

from strom_core.errors import BackendError, BackendRejected, BackendTimeout, BackendUnavailable
from strom_core.lightning_errors import CertificateNotTrusted

__all__ = [
    "UNKNOWN_OUTCOME_STATUSES",
    "certificate_failure",
    "error_message",
    "map_http_errors",
    "parse_json",
    "pinned_ssl_context",
    "redact",
    "status_error",
]

UNKNOWN_OUTCOME_STATUSES = frozenset({408, 409, 425, 429})


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in ``text`` with ``***`` (for messages built from URLs)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The TLS verification failure behind a transport error, if that is what it was."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextlib.asynccontextmanager
async def map_http_errors(
    backend: str, what: str, secrets: Iterable[str] = (), *, untrusted_cert: str | None = None
) -> AsyncIterator[None]:
    """Translate httpx exceptions raised inside the block into backend errors.

    Args:
        backend: the backend's name, for the message.
        what: the call, for the message.
        secrets: text to mask in messages built from URLs.
        untrusted_cert: the message of the :class:`CertificateNotTrusted` raised when the
            node's TLS certificate does not verify (a default one names the call).
    """
    try:
        yield
    except httpx.InvalidURL as exc:
        raise BackendRejected(
            f"{backend}: {what}: invalid URL ({redact(str(exc), secrets)})"
        ) from None
    except httpx.TimeoutException as exc:
        raise BackendTimeout(f"{backend}: {what} timed out ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        failure = certificate_failure(exc)
        if failure is not None:
            raise CertificateNotTrusted(
                untrusted_cert
                or f"{backend}: {what}: the node's TLS certificate is not trusted "
                f"({failure.verify_message or failure.reason})"
            ) from None
        # Transport errors (refused, reset, TLS failures, protocol errors) and the rest of
        # httpx's tree: the request may or may not have been processed.
        detail = redact(str(exc) or type(exc).__name__, secrets)
        raise BackendUnavailable(f"{backend}: {what} failed: {detail}") from None


def parse_json(backend: str, what: str, content: bytes) -> Any:
    """Decode a JSON body; garbage from the backend is an unknown outcome."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        raise BackendUnavailable(f"{backend}: {what}: the answer is not JSON") from None


def error_message(content: bytes) -> str:
    """The human part of an error body (LND ``message``, LNbits/FastAPI ``detail``)."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return content[:200].decode("utf-8", "replace").strip()
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            for key in ("message", "detail"):
                if inner.get(key):
                    return str(inner[key])
        if isinstance(body.get("detail"), str):
            return str(body["detail"])
    return str(body)[:200]


def status_error(backend: str, what: str, status: int, content: bytes) -> BackendError:
    """The backend error for a non-2xx answer."""
    message = f"{backend}: {what}: HTTP {status}: {error_message(content)}"
    if status >= 500 or status in UNKNOWN_OUTCOME_STATUSES:
        return BackendUnavailable(message)
    return BackendRejected(message)


def pinned_ssl_context(cert_pem: str, *, what: str) -> ssl.SSLContext:
    """A TLS client context that trusts exactly one certificate and nothing else.

    LND makes its own self-signed certificate; pinning it is what keeps a man in the middle
    out. The hostname is not checked: the certificate names what LND saw at creation
    (``umbrel.local``, container addresses), rarely the name Strom dials, and the pin is
    stronger than a name check. No system CA is loaded.

    Raises:
        ValueError: the PEM text holds no usable certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_verify_locations(cadata=cert_pem)
    except (ssl.SSLError, ValueError) as exc:
        raise ValueError(f"{what}: not a usable PEM certificate ({exc})") from None
    return context
