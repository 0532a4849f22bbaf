"""LND over its REST interface (the one Umbrel exposes), with httpx.

Authentication is the macaroon, hex-encoded in the ``Grpc-Metadata-macaroon`` header; the
transport is TLS pinned to the node's own certificate (an SSL context that trusts that one
certificate and nothing else). Calls:

* ``POST /v1/invoices`` (``value_msat``, ``memo``, ``description_hash`` base64, ``expiry``),
  ``GET /v1/invoice/{r_hash_str}`` (hex);
* settlements: the streaming ``GET /v1/invoices/subscribe`` (newline-delimited
  ``{"result": Invoice}`` chunks), resumed after a disconnect with ``settle_index`` so LND
  replays what was settled meanwhile, plus the lookups of the shared settlement stream;
* payments: the streaming ``POST /v2/router/send`` (``fee_limit_msat``, ``timeout_seconds``,
  ``no_inflight_updates``) and ``GET /v2/router/track/{payment_hash}`` (base64url);
* ``GET /v1/getinfo``.

LND's gateway encodes 64-bit integers as strings and bytes as base64; a streaming call sends
its HTTP headers only with its first message, and an error before that comes back with the
HTTP status of the gRPC code (404 NotFound, 409 AlreadyExists, 500 Unknown) and an
``{"error": {"code", "message"}}`` body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Self

import httpx
import orjson

from strom_core.bolt11 import decode_invoice
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import BackendError, BackendRejected, BackendUnavailable, ConfigError
from strom_core.lightning import (
    Failed,
    Invoice,
    InvoiceState,
    InvoiceStatus,
    Network,
    NodeInfo,
    PaymentResult,
    Settlement,
    Succeeded,
    Unknown,
)
from strom_core.lightning_config import BackendConfig, LndConfig
from strom_core.lightning_errors import InvoiceNotFound, InvoiceRejected
from strom_core.units import Msat
from strom_lightning._http import (
    UNKNOWN_OUTCOME_STATUSES,
    error_message,
    map_http_errors,
    parse_json,
    pinned_ssl_context,
    status_error,
)
from strom_lightning._stream import SettlementSink
from strom_lightning.base import (
    LightningBackend,
    check_invoice_args,
    check_payment_args,
    is_payment_hash,
)
from strom_lightning.lnd_credentials import LndCredentials, load_lnd_credentials

__all__ = [
    "DEFAULT_PIN_COMMAND",
    "LndRestBackend",
    "invoice_status_from_lnd",
    "node_info_from_lnd",
    "payment_from_lnd",
    "pin_cert_command",
]

DEFAULT_PIN_COMMAND = "strom lightning pin-cert -c strom.toml"
"""The command that pins a renewed LND certificate, when Strom's configuration file is unknown."""


def pin_cert_command(config_file: Path | None) -> str:
    """The command an operator runs to trust LND's renewed certificate, for this configuration."""
    if config_file is None:
        return DEFAULT_PIN_COMMAND
    return f"strom lightning pin-cert -c {config_file}"


_PAY_GRACE_S = 10.0  # wait this long past LND's own timeout_seconds for its final answer
_NETWORKS: dict[str, Network] = {
    "mainnet": "bc",
    "testnet": "tb",
    "testnet3": "tb",
    "testnet4": "tb",
    "signet": "tbs",
    "regtest": "bcrt",
}
_FAILURE_REASONS = {
    "FAILURE_REASON_TIMEOUT": "no route found in time",
    "FAILURE_REASON_NO_ROUTE": "no route to the payee",
    "FAILURE_REASON_ERROR": "a non-recoverable error",
    "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS": "the payee rejected it (incorrect payment details)",
    "FAILURE_REASON_INSUFFICIENT_BALANCE": "insufficient balance",
    "FAILURE_REASON_CANCELED": "canceled",
}
_NOT_FOUND_MESSAGES = ("unable to locate invoice", "there are no existing invoices")
_GRPC_NOT_FOUND = 5
_GRPC_ALREADY_EXISTS = 6


def _b64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex() if value else ""


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


def _time(seconds: Any) -> datetime:
    return datetime.fromtimestamp(_int(seconds), UTC)


def invoice_status_from_lnd(invoice: dict[str, Any], *, now: datetime) -> InvoiceStatus:
    """Translate LND's ``Invoice`` JSON into an :class:`InvoiceStatus`.

    Raises:
        KeyError, ValueError, TypeError, binascii.Error: the JSON is not an LND invoice.
    """
    expires_at = _time(_int(invoice["creation_date"]) + _int(invoice["expiry"]))
    state_text = invoice["state"]
    if state_text == "SETTLED":
        state = InvoiceState.SETTLED
    elif state_text == "CANCELED":
        # LND cancels invoices when they expire; a cancel before expiry was deliberate.
        state = InvoiceState.EXPIRED if now >= expires_at else InvoiceState.CANCELED
    elif state_text in ("OPEN", "ACCEPTED"):
        state = InvoiceState.EXPIRED if now >= expires_at else InvoiceState.PENDING
    else:
        raise ValueError(f"unknown invoice state {state_text!r}")
    settled = state is InvoiceState.SETTLED
    return InvoiceStatus(
        payment_hash=_b64_to_hex(invoice["r_hash"]),
        state=state,
        amount_msat=Msat(_int(invoice["value_msat"])),
        received_msat=Msat(_int(invoice["amt_paid_msat"]) if settled else 0),
        expires_at=expires_at,
        settled_at=_time(invoice["settle_date"]) if settled else None,
    )


def payment_from_lnd(payment: dict[str, Any], payment_hash: str) -> PaymentResult | None:
    """Translate LND's ``Payment`` JSON; None while it is not final (``IN_FLIGHT``).

    Raises:
        KeyError, ValueError, TypeError: the JSON is not an LND payment.
    """
    status = payment["status"]
    if status == "SUCCEEDED":
        preimage = str(payment["payment_preimage"]).lower()
        try:
            matches = hashlib.sha256(bytes.fromhex(preimage)).hexdigest() == payment_hash
        except ValueError:
            matches = False
        if not matches:
            return Unknown(reason="LND reported success with a preimage that does not match")
        return Succeeded(preimage=preimage, fee_msat=Msat(_int(payment["fee_msat"])))
    if status == "FAILED":
        code = str(payment.get("failure_reason", ""))
        reason = _FAILURE_REASONS.get(code, code or "failed")
        # No HTLC ever left the node when there were no attempts.
        return Failed(reason=f"LND: {reason}", pre_dispatch=not payment.get("htlcs"))
    if status in ("IN_FLIGHT", "INITIATED", "UNKNOWN"):
        return None
    raise ValueError(f"unknown payment status {status!r}")


def node_info_from_lnd(info: dict[str, Any], *, configured: Network) -> NodeInfo:
    """Translate LND's ``GetInfoResponse`` JSON into :class:`NodeInfo`."""
    chains = info.get("chains") or [{}]
    network_name = str(chains[0].get("network", ""))
    network = _NETWORKS.get(network_name, configured)
    notes: tuple[str, ...] = ()
    if network_name not in _NETWORKS:
        notes = (f"LND reports an unknown network {network_name!r}",)
    if not info.get("synced_to_chain", False):
        notes = (*notes, "LND is not synced to the chain")
    return NodeInfo(
        backend="lnd",
        alias=str(info.get("alias", "")),
        network=network,
        real_money=network == "bc",
        can_receive=True,
        can_pay=True,
        pubkey=str(info.get("identity_pubkey", "")) or None,
        version=str(info.get("version", "")) or None,
        block_height=_int(info.get("block_height")),
        synced=bool(info.get("synced_to_chain", False)),
        notes=notes,
    )


class LndRestBackend(LightningBackend):
    """LND through its REST interface; see the module docstring."""

    name = "lnd"

    def __init__(
        self,
        base_url: str,
        *,
        macaroon: bytes,
        cert_pem: str | None,
        network: Network = "bc",
        timeout_s: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
        reconcile_every_s: float = 30.0,
        fallback_poll_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        pay_grace_s: float = _PAY_GRACE_S,
        reload: Callable[[], LndCredentials] | None = None,
        pin_command: str = DEFAULT_PIN_COMMAND,
    ) -> None:
        """LND at ``base_url``; ``reload`` reads the configured files again (see refresh).

        ``pin_command`` is what the operator runs to trust a renewed certificate (named in
        the error when the certificate changed).
        """
        super().__init__(
            network=network,
            clock=clock,
            reconcile_every_s=reconcile_every_s,
            fallback_poll_s=fallback_poll_s,
        )
        self._timeout_s = timeout_s
        self._transport = transport
        self._reload = reload
        self._retired: list[httpx.AsyncClient] = []
        self._credentials = _normalised(LndCredentials(base_url, macaroon, cert_pem))
        self.base_url = self._credentials.base_url
        self._client = self._new_client(self._credentials)
        self._settle_index = 0
        self._pay_grace_s = pay_grace_s
        self.pin_command = pin_command
        """What the operator runs to trust a renewed certificate (named in the error)."""

    def _new_client(self, credentials: LndCredentials) -> httpx.AsyncClient:
        cert_pem = credentials.cert_pem
        verify = pinned_ssl_context(cert_pem, what="LND tls cert") if cert_pem else True
        return httpx.AsyncClient(
            base_url=credentials.base_url,
            headers={"Grpc-Metadata-macaroon": credentials.macaroon.hex()},
            verify=verify,
            timeout=httpx.Timeout(self._timeout_s),
            transport=self._transport,
        )

    @classmethod
    def from_config(
        cls,
        config: BackendConfig,
        *,
        data_dir: Path,
        clock: Clock = SYSTEM_CLOCK,
        config_file: Path | None = None,
    ) -> Self:
        """Build from an :class:`~strom_core.lightning_config.LndConfig` section (either style)."""
        if not isinstance(config, LndConfig):
            raise ConfigError(f"lnd backend given a {config.backend} configuration")
        credentials = load_lnd_credentials(config, data_dir=data_dir)
        try:
            return cls(
                credentials.base_url,
                macaroon=credentials.macaroon,
                cert_pem=credentials.cert_pem,
                network=config.network,
                timeout_s=config.request_timeout_s,
                clock=clock,
                reconcile_every_s=config.reconcile_every_s,
                reload=partial(load_lnd_credentials, config, data_dir=data_dir),
                pin_command=pin_cert_command(config_file),
            )
        except ValueError as exc:
            raise ConfigError(f"lnd: {exc}") from None

    async def refresh(self) -> bool:
        """Read the configured files again; what changed is used from the next call on.

        LND renews its certificate at a restart; ``strom lightning pin-cert`` (or LND itself,
        when ``tls_cert_path`` is LND's own file) writes the new one. See
        :meth:`LightningBackend.refresh`.

        Raises:
            BackendRejected: a configured file cannot be read or holds no usable certificate.
        """
        if self._reload is None:
            return False
        try:
            fresh = _normalised(self._reload())
            if fresh == self._credentials:
                return False
            client = self._new_client(fresh)
        except (ConfigError, ValueError) as exc:
            raise BackendRejected(f"lnd: {exc}") from None
        changed = [
            name
            for name, differs in (
                ("TLS certificate", fresh.cert_pem != self._credentials.cert_pem),
                ("macaroon", fresh.macaroon != self._credentials.macaroon),
                ("address", fresh.base_url != self._credentials.base_url),
            )
            if differs
        ]
        # A call in flight may still use the old client: it is closed with the backend.
        self._retired.append(self._client)
        self._client, self._credentials, self.base_url = client, fresh, fresh.base_url
        self._log.info(
            "lnd: the configured %s changed; using it from now on", " and ".join(changed)
        )
        return True

    def __repr__(self) -> str:
        return f"<LndRestBackend {self.base_url} network={self.network}>"

    # --- plumbing --------------------------------------------------------------------------

    def _errors(self, what: str) -> contextlib.AbstractAsyncContextManager[None]:
        """:func:`map_http_errors`, saying what to do when the pinned certificate changed."""
        untrusted = None
        if self._credentials.cert_pem is not None:
            untrusted = (
                f"lnd: TLS certificate changed: the node at {self.base_url} presents a "
                "certificate that does not match the pinned one (LND renews it at restart); "
                f"run `{self.pin_command}` to trust the new one"
            )
        return map_http_errors(self.name, what, untrusted_cert=untrusted)

    async def _request(
        self, method: str, path: str, what: str, *, json: dict[str, Any] | None = None
    ) -> httpx.Response:
        async with self._errors(what):
            return await self._client.request(method, path, json=json)

    def _error(self, what: str, response: httpx.Response) -> BackendError:
        message = error_message(response.content)
        if "verification failed" in message or "macaroon" in message:
            return BackendRejected(f"lnd: {what}: LND refused the macaroon: {message}")
        return status_error(self.name, what, response.status_code, response.content)

    # --- money in --------------------------------------------------------------------------

    async def create_invoice(
        self,
        amount_msat: int,
        *,
        memo: str | None = None,
        description_hash: bytes | None = None,
        expiry_s: int,
    ) -> Invoice:
        """See :meth:`LightningBackend.create_invoice`."""
        amount = check_invoice_args(amount_msat, description_hash, expiry_s)
        body: dict[str, Any] = {
            "value_msat": str(amount),
            "memo": memo or "",
            "expiry": str(expiry_s),
        }
        if description_hash is not None:
            body["description_hash"] = base64.b64encode(description_hash).decode("ascii")
        response = await self._request("POST", "/v1/invoices", "create invoice", json=body)
        if response.status_code != httpx.codes.OK:
            raise self._error("create invoice", response)
        data = parse_json(self.name, "create invoice", response.content)
        try:
            payment_hash = _b64_to_hex(data["r_hash"])
            decoded = decode_invoice(data["payment_request"])
        except (KeyError, TypeError, ValueError, binascii.Error, InvoiceRejected) as exc:
            raise BackendUnavailable(f"lnd: create invoice: unexpected answer ({exc})") from None
        if decoded.payment_hash != payment_hash or decoded.amount_msat != amount:
            raise BackendUnavailable("lnd: create invoice: the invoice does not match the request")
        self._log.info("lnd invoice %s created for %s msat", payment_hash, amount)
        return Invoice(decoded.bolt11, payment_hash, amount, decoded.expires_at)

    async def lookup_invoice(self, payment_hash: str) -> InvoiceStatus:
        """See :meth:`LightningBackend.lookup_invoice`."""
        if not is_payment_hash(payment_hash):
            raise InvoiceNotFound(payment_hash, self.name)  # LND could never have it
        payment_hash = payment_hash.lower()
        response = await self._request("GET", f"/v1/invoice/{payment_hash}", "lookup invoice")
        if response.status_code != httpx.codes.OK:
            message = error_message(response.content)
            if response.status_code == httpx.codes.NOT_FOUND or any(
                text in message for text in _NOT_FOUND_MESSAGES
            ):
                raise InvoiceNotFound(payment_hash, self.name)
            raise self._error("lookup invoice", response)
        data = parse_json(self.name, "lookup invoice", response.content)
        try:
            return invoice_status_from_lnd(data, now=self._now())
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise BackendUnavailable(f"lnd: lookup invoice: unexpected answer ({exc})") from None

    async def _listen(self, sink: SettlementSink) -> None:
        params = {"settle_index": str(self._settle_index)} if self._settle_index else {}
        # LND's gateway sends the headers of a stream only with its first message, so there
        # is no "subscribed" signal to wait for: reconcile now; settle_index and the periodic
        # reconcile cover the moment before LND registers the subscription.
        sink.connected()
        timeout = httpx.Timeout(self._timeout_s, read=None)
        async with (
            self._errors("invoice subscription"),
            self._client.stream(
                "GET", "/v1/invoices/subscribe", params=params, timeout=timeout
            ) as response,
        ):
            if response.status_code != httpx.codes.OK:
                await response.aread()
                raise self._error("invoice subscription", response)
            async for line in response.aiter_lines():
                self._on_subscription_line(line, sink)
        raise BackendUnavailable("lnd: the invoice subscription ended")

    def _on_subscription_line(self, line: str, sink: SettlementSink) -> None:
        if not line.strip():
            return
        try:
            message = orjson.loads(line)
            if "error" in message:
                raise BackendUnavailable(
                    f"lnd: invoice subscription: {error_message(line.encode())}"
                )
            invoice = message["result"]
            if invoice["state"] != "SETTLED":
                return
            status = invoice_status_from_lnd(invoice, now=self._now())
            settle_index = _int(invoice["settle_index"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise BackendUnavailable(
                f"lnd: invoice subscription: unexpected line ({exc})"
            ) from None
        self._settle_index = max(self._settle_index, settle_index)
        sink.settled(
            Settlement(status.payment_hash, status.received_msat, status.settled_at or self._now())
        )

    # --- money out -------------------------------------------------------------------------

    async def pay_invoice(
        self, bolt11: str, *, max_fee_msat: int, timeout_s: float
    ) -> PaymentResult:
        """See :meth:`LightningBackend.pay_invoice`."""
        check_payment_args(max_fee_msat, timeout_s)
        prepared = self._prepare_payment(bolt11)
        if isinstance(prepared, Failed):
            return prepared
        invoice, _ = prepared
        body = {
            "payment_request": invoice.bolt11,
            "fee_limit_msat": str(max_fee_msat),
            "timeout_seconds": max(1, math.ceil(timeout_s)),
            "no_inflight_updates": True,
        }
        deadline = timeout_s + self._pay_grace_s
        try:
            async with asyncio.timeout(deadline):
                result = await self._send(body, invoice.payment_hash)
        except TimeoutError:
            result = Unknown(
                reason=f"no final answer from LND within {deadline:.0f} s; it may still complete"
            )
        self._log.info("lnd payment %s: %s", invoice.payment_hash, result)
        return result

    async def _send(self, body: dict[str, Any], payment_hash: str) -> PaymentResult:
        timeout = httpx.Timeout(self._timeout_s, read=None)
        try:
            async with (
                self._errors("send payment"),
                self._client.stream(
                    "POST", "/v2/router/send", json=body, timeout=timeout
                ) as response,
            ):
                if response.status_code != httpx.codes.OK:
                    await response.aread()
                    return await self._send_refused(response, payment_hash)
                async for line in response.aiter_lines():
                    result = self._payment_line(line, payment_hash)
                    if result is not None:
                        return result
        except BackendError as exc:
            return Unknown(reason=f"{exc}; the payment may or may not have been sent")
        return Unknown(reason="LND's payment stream ended without a final state")

    async def _send_refused(self, response: httpx.Response, payment_hash: str) -> PaymentResult:
        status = response.status_code
        message = error_message(response.content)
        if status == httpx.codes.CONFLICT:
            # AlreadyExists: "invoice is already paid" or "payment is in transition".
            tracked = await self.lookup_payment(payment_hash)
            if isinstance(tracked, Succeeded):
                return tracked
            return Unknown(reason=f"LND: {message}")
        if status >= 500 or status in UNKNOWN_OUTCOME_STATUSES:
            return Unknown(reason=f"LND answered HTTP {status}: {message}")
        return Failed(reason=f"LND refused the payment: {message}", pre_dispatch=True)

    def _payment_line(self, line: str, payment_hash: str) -> PaymentResult | None:
        if not line.strip():
            return None
        try:
            message = orjson.loads(line)
            if "error" in message:
                return Unknown(reason=f"LND: {error_message(line.encode())}")
            return payment_from_lnd(message["result"], payment_hash)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return Unknown(reason=f"LND sent an unexpected payment update ({exc})")

    async def lookup_payment(self, payment_hash: str) -> PaymentResult:
        """See :meth:`LightningBackend.lookup_payment` (``TrackPaymentV2``, first update)."""
        if not is_payment_hash(payment_hash):
            return Failed(reason=f"not a payment hash: {payment_hash!r}", pre_dispatch=True)
        payment_hash = payment_hash.lower()
        path_hash = base64.urlsafe_b64encode(bytes.fromhex(payment_hash)).decode("ascii")
        try:
            async with (
                self._errors("track payment"),
                self._client.stream("GET", f"/v2/router/track/{path_hash}") as response,
            ):
                if response.status_code != httpx.codes.OK:
                    await response.aread()
                    return self._track_refused(response)
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    result = self._payment_line(line, payment_hash)
                    return result if result is not None else Unknown(reason="in flight")
        except BackendError as exc:
            return Unknown(reason=str(exc))
        return Unknown(reason="LND's track stream ended without an update")

    def _track_refused(self, response: httpx.Response) -> PaymentResult:
        message = error_message(response.content)
        if response.status_code == httpx.codes.NOT_FOUND or "isn't initiated" in message:
            return Failed(reason=f"LND has no such payment ({message})", pre_dispatch=True)
        return Unknown(reason=f"LND answered HTTP {response.status_code}: {message}")

    # --- health and lifecycle --------------------------------------------------------------

    async def node_info(self) -> NodeInfo:
        """See :meth:`LightningBackend.node_info` (``GET /v1/getinfo``)."""
        response = await self._request("GET", "/v1/getinfo", "getinfo")
        if response.status_code != httpx.codes.OK:
            raise self._error("getinfo", response)
        data = parse_json(self.name, "getinfo", response.content)
        if not isinstance(data, dict):
            raise BackendUnavailable("lnd: getinfo: unexpected answer")
        return node_info_from_lnd(data, configured=self.network)

    async def _aclose(self) -> None:
        for client in (*self._retired, self._client):
            await client.aclose()
        self._retired.clear()


def _normalised(credentials: LndCredentials) -> LndCredentials:
    base_url = credentials.base_url
    if not base_url.startswith(("https://", "http://")):
        base_url = f"https://{base_url}"
    return replace(credentials, base_url=base_url.rstrip("/"))
