"""Configuration of the lightning backend: one section, chosen by ``backend``.

``LightningConfig`` is a discriminated union on ``backend = "fake" | "lnd" | "lnbits"``; each
backend has its own frozen model that refuses unknown keys. Secrets (macaroons, API keys,
lndconnect URIs) are best given as *file paths*; where a value may be inline it is a
:class:`pydantic.SecretStr`, which shows as ``**********`` in reprs, logs and JSON dumps.
Relative paths are resolved against Strom's data folder when the backend is built.

Defaults are stated here, where they are defined:

* ``fake``: regtest (``bcrt``), database ``fake-lightning.sqlite3`` in the data folder, poll
  the file every 200 ms, routing fee 0.
* ``lnd``: mainnet (``bc``); either ``rest_host`` + ``macaroon_path`` (+ ``tls_cert_path``,
  pinned) - Umbrel's layout - or ``lndconnect`` / ``lndconnect_path``.
* ``lnbits``: mainnet (``bc``); ``url``, an invoice key (required) and an admin key
  (optional: without it refunds are disabled).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, model_validator

from strom_core.errors import ConfigError
from strom_core.lightning import Network

__all__ = [
    "BackendConfig",
    "FakeConfig",
    "LNbitsConfig",
    "LightningConfig",
    "LndConfig",
    "parse_lightning_config",
    "read_secret_file",
]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FakeConfig(_Section):
    """The embedded fake backend: real signed invoices, NO REAL MONEY."""

    backend: Literal["fake"] = "fake"
    network: Network = "bcrt"
    db_file: Path = Path("fake-lightning.sqlite3")
    """The fake's state, relative to the data folder unless absolute."""
    poll_interval_ms: int = Field(default=200, ge=10, le=60_000)
    """How often to look for payments made by another process (``strom fake pay``)."""
    fee_msat: int = Field(default=0, ge=0)
    """The routing fee the fake charges on each payment it makes."""


class LndConfig(_Section):
    """LND over its REST interface (what Umbrel exposes on port 8080)."""

    backend: Literal["lnd"] = "lnd"
    network: Network = "bc"
    rest_host: str | None = None
    """``host:port`` of the REST interface, e.g. ``umbrel.local:8080``."""
    macaroon_path: Path | None = None
    """The macaroon file (binary), e.g. ``…/data/chain/bitcoin/mainnet/admin.macaroon``."""
    tls_cert_path: Path | None = None
    """LND's ``tls.cert``; pinned (trusted alone). Omit only for a publicly signed cert."""
    lndconnect: SecretStr | None = None
    """An ``lndconnect://host:port?cert=…&macaroon=…`` URI, inline (a secret)."""
    lndconnect_path: Path | None = None
    """A file holding such a URI."""
    request_timeout_s: float = Field(default=30.0, gt=0)
    reconcile_every_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_style(self) -> Self:
        uri_style = self.lndconnect is not None or self.lndconnect_path is not None
        host_style = any(
            value is not None for value in (self.rest_host, self.macaroon_path, self.tls_cert_path)
        )
        if self.lndconnect is not None and self.lndconnect_path is not None:
            raise ValueError("give lndconnect or lndconnect_path, not both")
        if uri_style and host_style:
            raise ValueError(
                "give either rest_host + macaroon_path (+ tls_cert_path) or an lndconnect URI, "
                "not both"
            )
        if not uri_style and (self.rest_host is None or self.macaroon_path is None):
            raise ValueError(
                "lnd needs rest_host and macaroon_path (and tls_cert_path for a self-signed "
                "cert), or lndconnect / lndconnect_path"
            )
        return self


class LNbitsConfig(_Section):
    """An LNbits wallet over its REST API and websocket."""

    backend: Literal["lnbits"] = "lnbits"
    network: Network = "bc"
    url: str
    """The LNbits base URL, e.g. ``https://lnbits.example.com``."""
    invoice_key: SecretStr | None = None
    invoice_key_path: Path | None = None
    admin_key: SecretStr | None = None
    """Needed to pay refunds; without it refunds are disabled."""
    admin_key_path: Path | None = None
    request_timeout_s: float = Field(default=30.0, gt=0)
    reconcile_every_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _keys(self) -> Self:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, found {self.url!r}")
        if (self.invoice_key is None) == (self.invoice_key_path is None):
            raise ValueError("give exactly one of invoice_key or invoice_key_path")
        if self.admin_key is not None and self.admin_key_path is not None:
            raise ValueError("give admin_key or admin_key_path, not both")
        return self


BackendConfig: TypeAlias = FakeConfig | LndConfig | LNbitsConfig
LightningConfig: TypeAlias = Annotated[BackendConfig, Field(discriminator="backend")]

_ADAPTER: TypeAdapter[BackendConfig] = TypeAdapter(LightningConfig)


def parse_lightning_config(data: dict[str, Any]) -> BackendConfig:
    """Validate a ``[lightning]`` section (as loaded from TOML) into its backend's model.

    A section without ``backend`` is the fake, the embedded default.

    Raises:
        pydantic.ValidationError: with every wrong key, expected and found.
    """
    return _ADAPTER.validate_python({"backend": "fake", **data})


def read_secret_file(path: Path, what: str, *, data_dir: Path) -> bytes:
    """Read a secret file (relative paths against ``data_dir``); the content is never logged.

    Raises:
        ConfigError: the file is missing, unreadable or empty.
    """
    resolved = path if path.is_absolute() else data_dir / path
    try:
        content = resolved.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {resolved}: {exc.strerror}") from None
    if not content.strip():
        raise ConfigError(f"{what}: {resolved} is empty")
    return content
