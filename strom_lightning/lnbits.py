"""LNbits as a backend: a wallet on someone's LNbits, over its REST API and websocket.

Two keys: the *invoice key* (create and look up invoices, read payments, the websocket) and
the *admin key* (pay). The admin key is optional: without it refunds are disabled -
``pay_invoice`` raises :class:`~strom_core.lightning_errors.RefundsDisabled` and ``node_info`` says
so - and Strom can still sell charging.

* Invoices: ``POST /api/v1/payments {"out": false, "amount": <sat>, "memo", "expiry",
  "description_hash"}``; LNbits counts whole sats, so an amount that is not a whole number of
  sats is refused (LNbits would silently round it down).
* Status: ``GET /api/v1/payments/{hash}`` with the wallet's key (scoped to the wallet).
* Settlements: the websocket ``/api/v1/ws/<invoice key>`` pushes every payment of the wallet;
  while it is down, the shared settlement stream polls the pending invoices instead.
* Payments: ``POST /api/v1/payments {"out": true, "bolt11"}``. LNbits answers 201 with the
  payment (``success`` or ``pending``), or 520 with ``{"detail", "status"}``. Before paying,
  and after any refusal, Strom asks LNbits what the wallet already did for that payment hash,
  so that a retry never pays twice and "already paid" is not mistaken for a failure.

LNbits has no per-payment fee limit: it reserves its own (``LNBITS_RESERVE_FEE_MIN`` /
``_PERCENT``). A fee above ``max_fee_msat`` is logged as a warning after the fact.

The invoice key is part of the websocket URL: that URL is never logged, and the websocket
library's own log lines pass through a filter that masks the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import httpx
import orjson
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

from strom_core.bolt11 import decode_invoice
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import (
    BackendError,
    BackendRejected,
    BackendUnavailable,
    ConfigError,
)
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
from strom_core.lightning_config import BackendConfig, LNbitsConfig, read_secret_file
from strom_core.lightning_errors import InvoiceNotFound, InvoiceRejected, RefundsDisabled
from strom_core.units import MSAT_PER_SAT, Msat, UnitError, format_sat
from strom_lightning._http import (
    UNKNOWN_OUTCOME_STATUSES,
    error_message,
    map_http_errors,
    parse_json,
    redact,
    status_error,
)
from strom_lightning._stream import SettlementSink
from strom_lightning.base import (
    LightningBackend,
    check_invoice_args,
    check_payment_args,
    is_payment_hash,
)

__all__ = ["LNbitsBackend"]

_REFUNDS_DISABLED = (
    "refunds are disabled: no LNbits admin key is configured (lightning.admin_key or "
    "lightning.admin_key_path); the invoice key cannot pay"
)
_LNBITS_ERROR = 520  # LNbits' status for PaymentError / InvoiceError


class _Redacting(logging.LoggerAdapter[logging.Logger]):
    """Formats each record, masks the secrets, then logs it (for the websocket library)."""

    def __init__(self, logger: logging.Logger, secrets: tuple[str, ...]) -> None:
        super().__init__(logger, {})
        self._secrets = secrets

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            kwargs.pop("exc_info", None)  # a traceback may quote the URL
            self.logger.log(level, redact(text, self._secrets), **kwargs)


def _parse_time(value: Any, fallback: datetime) -> datetime:
    if not isinstance(value, str) or not value:
        return fallback
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return fallback
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class LNbitsBackend(LightningBackend):
    """An LNbits wallet; see the module docstring."""

    name = "lnbits"

    def __init__(
        self,
        url: str,
        *,
        invoice_key: str,
        admin_key: str | None,
        network: Network = "bc",
        timeout_s: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
        reconcile_every_s: float = 30.0,
        fallback_poll_s: float = 5.0,
        verify: ssl.SSLContext | bool = True,
        pay_poll_s: float = 0.5,
    ) -> None:
        super().__init__(
            network=network,
            clock=clock,
            reconcile_every_s=reconcile_every_s,
            fallback_poll_s=fallback_poll_s,
        )
        self.url = url.rstrip("/")
        self._invoice_key = invoice_key
        self._admin_key = admin_key
        self._secrets = tuple(key for key in (invoice_key, admin_key) if key)
        self._verify = verify
        self._timeout_s = timeout_s
        self._pay_poll_s = pay_poll_s
        self._client = httpx.AsyncClient(
            base_url=self.url, timeout=httpx.Timeout(timeout_s), verify=verify
        )
        self._ws_log = _Redacting(logging.getLogger("strom_lightning.lnbits.ws"), self._secrets)

    @classmethod
    def from_config(
        cls,
        config: BackendConfig,
        *,
        data_dir: Path,
        clock: Clock = SYSTEM_CLOCK,
        config_file: Path | None = None,
    ) -> Self:
        """Build from an :class:`~strom_core.lightning_config.LNbitsConfig` section."""
        if not isinstance(config, LNbitsConfig):
            raise ConfigError(f"lnbits backend given a {config.backend} configuration")

        def key(inline: Any, path: Path | None, what: str) -> str | None:
            if inline is not None:
                return str(inline.get_secret_value()).strip()
            if path is not None:
                return read_secret_file(path, what, data_dir=data_dir).decode().strip()
            return None

        invoice_key = key(config.invoice_key, config.invoice_key_path, "lnbits.invoice_key_path")
        if not invoice_key:
            raise ConfigError("lnbits: the invoice key is empty")
        return cls(
            config.url,
            invoice_key=invoice_key,
            admin_key=key(config.admin_key, config.admin_key_path, "lnbits.admin_key_path"),
            network=config.network,
            timeout_s=config.request_timeout_s,
            clock=clock,
            reconcile_every_s=config.reconcile_every_s,
        )

    def __repr__(self) -> str:
        refunds = "enabled" if self._admin_key else "disabled"
        return f"<LNbitsBackend {self.url} network={self.network} refunds={refunds}>"

    @property
    def can_pay(self) -> bool:
        """False when no admin key is configured (refunds disabled)."""
        return self._admin_key is not None

    # --- plumbing --------------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, what: str, key: str, json: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        async with map_http_errors(self.name, what, self._secrets):
            return await self._client.request(method, path, json=json, headers={"X-Api-Key": key})

    async def _payment(self, payment_hash: str, what: str) -> dict[str, Any] | None:
        """The wallet's record for a hash (``GET /api/v1/payments/{hash}``), None if none."""
        if not is_payment_hash(payment_hash):
            return None  # never a path segment of our choosing
        response = await self._call(
            "GET", f"/api/v1/payments/{payment_hash}", what, self._invoice_key
        )
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.status_code != httpx.codes.OK:
            raise status_error(self.name, what, response.status_code, response.content)
        body = parse_json(self.name, what, response.content)
        if not isinstance(body, dict):
            raise BackendUnavailable(f"lnbits: {what}: unexpected answer")
        if not isinstance(body.get("details"), dict):
            return None  # not this wallet's payment: LNbits answered the public view
        return body

    # --- money in --------------------------------------------------------------------------

    async def create_invoice(
        self,
        amount_msat: int,
        *,
        memo: str | None = None,
        description_hash: bytes | None = None,
        expiry_s: int,
    ) -> Invoice:
        """See :meth:`LightningBackend.create_invoice` (whole sats only)."""
        amount = check_invoice_args(amount_msat, description_hash, expiry_s)
        if amount % MSAT_PER_SAT:
            raise UnitError(
                f"this lightning node (LNbits) makes invoices for whole sats only, and "
                f"{amount} msat is {format_sat(amount)}: send a whole number of sats"
            )
        body: dict[str, Any] = {
            "out": False,
            "amount": amount // MSAT_PER_SAT,
            "unit": "sat",
            "memo": memo or "",
            "expiry": expiry_s,
        }
        if description_hash is not None:
            body["description_hash"] = description_hash.hex()
        response = await self._call(
            "POST", "/api/v1/payments", "create invoice", self._invoice_key, body
        )
        if response.status_code not in (httpx.codes.OK, httpx.codes.CREATED):
            raise self._invoice_error(response)
        data = parse_json(self.name, "create invoice", response.content)
        try:
            decoded = decode_invoice(data["bolt11"])
            payment_hash = str(data["payment_hash"])
        except (KeyError, TypeError, InvoiceRejected) as exc:
            raise BackendUnavailable(f"lnbits: create invoice: unexpected answer ({exc})") from None
        if decoded.payment_hash != payment_hash or decoded.amount_msat != amount:
            raise BackendUnavailable("lnbits: create invoice: the invoice does not match")
        self._log.info("lnbits invoice %s created for %s msat", payment_hash, amount)
        return Invoice(decoded.bolt11, payment_hash, amount, decoded.expires_at)

    def _invoice_error(self, response: httpx.Response) -> BackendError:
        if response.status_code == _LNBITS_ERROR:
            detail = error_message(response.content)
            status = _lnbits_status(response.content)
            if status == "failed":
                return BackendRejected(f"lnbits: create invoice refused: {detail}")
            return BackendUnavailable(f"lnbits: create invoice: {detail}")
        return status_error(self.name, "create invoice", response.status_code, response.content)

    async def lookup_invoice(self, payment_hash: str) -> InvoiceStatus:
        """See :meth:`LightningBackend.lookup_invoice`."""
        payment_hash = payment_hash.lower()
        body = await self._payment(payment_hash, "lookup invoice")
        details = body["details"] if body is not None else None
        if body is None or not isinstance(details, dict) or int(details.get("amount", 0)) <= 0:
            raise InvoiceNotFound(payment_hash, self.name)
        try:
            return self._invoice_status(payment_hash, body, details)
        except (KeyError, TypeError, ValueError, InvoiceRejected) as exc:
            raise BackendUnavailable(f"lnbits: lookup invoice: unexpected answer ({exc})") from None

    def _invoice_status(
        self, payment_hash: str, body: dict[str, Any], details: dict[str, Any]
    ) -> InvoiceStatus:
        now = self._now()
        expires_at = decode_invoice(details["bolt11"]).expires_at
        amount = Msat(int(details["amount"]))
        if body.get("paid") is True:
            return InvoiceStatus(
                payment_hash=payment_hash,
                state=InvoiceState.SETTLED,
                amount_msat=amount,
                received_msat=amount,
                expires_at=expires_at,
                settled_at=_parse_time(details.get("updated_at"), now),
            )
        if details.get("status") == "failed":
            state = InvoiceState.EXPIRED if now >= expires_at else InvoiceState.CANCELED
        else:
            state = InvoiceState.EXPIRED if now >= expires_at else InvoiceState.PENDING
        return InvoiceStatus(payment_hash, state, amount, Msat(0), expires_at)

    def _ws_url(self) -> str:
        scheme = "wss" if self.url.startswith("https://") else "ws"
        return f"{scheme}://{self.url.split('://', 1)[1]}/api/v1/ws/{self._invoice_key}"

    async def _listen(self, sink: SettlementSink) -> None:
        context = self._verify if isinstance(self._verify, ssl.SSLContext) else None
        options: dict[str, Any] = {"ssl": context} if context is not None else {}
        try:
            async with ws_connect(
                self._ws_url(),
                open_timeout=self._timeout_s,
                ping_interval=20,
                ping_timeout=20,
                proxy=None,
                logger=self._ws_log,
                **options,
            ) as websocket:
                sink.connected()
                async for message in websocket:
                    self._on_ws_message(message, sink)
        except (OSError, TimeoutError, WebSocketException) as exc:
            detail = redact(str(exc) or type(exc).__name__, self._secrets)
            raise BackendUnavailable(f"lnbits: websocket: {detail}") from None
        raise BackendUnavailable("lnbits: the websocket closed")

    def _on_ws_message(self, message: str | bytes, sink: SettlementSink) -> None:
        try:
            payment = orjson.loads(message).get("payment")
            if not isinstance(payment, dict):
                return
            amount = int(payment.get("amount", 0))
            if amount <= 0 or payment.get("status") != "success":
                return  # our own outgoing payments and pending invoices come here too
            settlement = Settlement(
                payment_hash=str(payment["payment_hash"]),
                amount_msat=Msat(amount),
                settled_at=_parse_time(payment.get("updated_at"), self._now()),
            )
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            self._log.warning("lnbits websocket sent a message Strom does not understand")
            return
        sink.settled(settlement)

    # --- money out -------------------------------------------------------------------------

    async def pay_invoice(
        self, bolt11: str, *, max_fee_msat: int, timeout_s: float
    ) -> PaymentResult:
        """See :meth:`LightningBackend.pay_invoice`.

        Raises:
            RefundsDisabled: no admin key is configured.
        """
        if self._admin_key is None:
            raise RefundsDisabled(f"lnbits: {_REFUNDS_DISABLED}")
        check_payment_args(max_fee_msat, timeout_s)
        prepared = self._prepare_payment(bolt11)
        if isinstance(prepared, Failed):
            return prepared
        invoice, _ = prepared
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                result = await self._pay(invoice.bolt11, invoice.payment_hash, self._admin_key)
                while isinstance(result, Unknown) and result.reason == _PENDING:
                    await asyncio.sleep(min(self._pay_poll_s, max(deadline - loop.time(), 0)))
                    result = await self.lookup_payment(invoice.payment_hash)
        except TimeoutError:
            result = Unknown(reason=f"no final answer from LNbits within {timeout_s:.0f} s")
        if isinstance(result, Succeeded) and result.fee_msat > max_fee_msat:
            self._log.warning(
                "lnbits payment %s cost %s msat in fees, more than the %s msat allowed",
                invoice.payment_hash,
                result.fee_msat,
                max_fee_msat,
            )
        self._log.info("lnbits payment %s: %s", invoice.payment_hash, result)
        return result

    async def _pay(self, bolt11: str, payment_hash: str, admin_key: str) -> PaymentResult:
        already = await self._outgoing(payment_hash)
        if already is not None and not isinstance(already, Failed):
            return already  # paid or in flight: never pay twice
        try:
            response = await self._call(
                "POST",
                "/api/v1/payments",
                "pay invoice",
                admin_key,
                {"out": True, "bolt11": bolt11},
            )
        except BackendError as exc:
            return Unknown(reason=f"{exc}; the payment may or may not have been sent")
        if response.status_code in (httpx.codes.OK, httpx.codes.CREATED):
            try:
                body = orjson.loads(response.content)
                return _payment_result(body.get("status"), body, payment_hash)
            except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
                return Unknown(reason=f"LNbits sent an unexpected answer ({exc})")
        return await self._pay_refused(response, payment_hash)

    async def _pay_refused(self, response: httpx.Response, payment_hash: str) -> PaymentResult:
        status = response.status_code
        detail = error_message(response.content)
        if status == _LNBITS_ERROR:
            verdict = _lnbits_status(response.content)
            if verdict == "pending":
                return Unknown(reason=f"LNbits: {detail}")
            # "failed" and "success" ("already paid"): trust what the wallet's record says.
            recorded = await self._outgoing(payment_hash)
            if recorded is not None:
                return recorded
            if verdict == "failed":
                return Failed(reason=f"LNbits refused the payment: {detail}", pre_dispatch=True)
            return Unknown(reason=f"LNbits: {detail}")
        if status >= 500 or status in UNKNOWN_OUTCOME_STATUSES:
            return Unknown(reason=f"LNbits answered HTTP {status}: {detail}")
        return Failed(
            reason=f"LNbits refused the payment: HTTP {status}: {detail}", pre_dispatch=True
        )

    async def _outgoing(self, payment_hash: str) -> PaymentResult | None:
        """The wallet's outgoing payment for this hash, as a result; None if there is none."""
        try:
            body = await self._payment(payment_hash, "lookup payment")
        except BackendError as exc:
            return Unknown(reason=str(exc))
        if body is None or int(body["details"].get("amount", 0)) >= 0:
            return None  # nothing, or it is an invoice of this wallet, not a payment
        try:
            status = "success" if body.get("paid") is True else body["details"].get("status")
            return _payment_result(status, body["details"], payment_hash)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            return Unknown(reason=f"LNbits sent an unexpected answer ({exc})")

    async def lookup_payment(self, payment_hash: str) -> PaymentResult:
        """See :meth:`LightningBackend.lookup_payment`."""
        result = await self._outgoing(payment_hash.lower())
        if result is None:
            return Failed(
                reason="LNbits has no outgoing payment with this hash from this wallet",
                pre_dispatch=True,
            )
        return result

    # --- health and lifecycle --------------------------------------------------------------

    async def node_info(self) -> NodeInfo:
        """The wallet (``GET /api/v1/wallet``); says when refunds are disabled."""
        wallet = await self._wallet(self._invoice_key, "invoice key")
        can_pay = False
        notes: tuple[str, ...] = ()
        if self._admin_key is None:
            notes = (_REFUNDS_DISABLED,)
        else:
            await self._wallet(self._admin_key, "admin key")
            can_pay = True
        return NodeInfo(
            backend=self.name,
            alias=str(wallet.get("name", "")),
            network=self.network,
            real_money=self.network == "bc",
            can_receive=True,
            can_pay=can_pay,
            notes=notes,
        )

    async def _wallet(self, key: str, what: str) -> dict[str, Any]:
        response = await self._call("GET", "/api/v1/wallet", f"wallet ({what})", key)
        if response.status_code in (httpx.codes.NOT_FOUND, httpx.codes.UNAUTHORIZED):
            raise BackendRejected(f"lnbits: LNbits does not accept the {what}")
        if response.status_code != httpx.codes.OK:
            raise status_error(
                self.name, f"wallet ({what})", response.status_code, response.content
            )
        body = parse_json(self.name, "wallet", response.content)
        if not isinstance(body, dict):
            raise BackendUnavailable("lnbits: wallet: unexpected answer")
        return body

    async def _aclose(self) -> None:
        await self._client.aclose()


_PENDING = "pending in LNbits"


def _lnbits_status(content: bytes) -> str:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return ""
    return str(body.get("status", "")) if isinstance(body, dict) else ""


def _payment_result(status: Any, payment: dict[str, Any], payment_hash: str) -> PaymentResult:
    """An LNbits payment record (or the ``details`` of a lookup) as a result."""
    if status == "success":
        preimage = str(payment.get("preimage") or "").lower()
        try:
            matches = hashlib.sha256(bytes.fromhex(preimage)).hexdigest() == payment_hash
        except ValueError:
            matches = False
        if not matches:
            return Unknown(reason="LNbits reported success with a preimage that does not match")
        return Succeeded(preimage=preimage, fee_msat=Msat(abs(int(payment.get("fee", 0)))))
    if status == "failed":
        return Failed(reason="LNbits reports the payment failed", pre_dispatch=False)
    return Unknown(reason=_PENDING)
