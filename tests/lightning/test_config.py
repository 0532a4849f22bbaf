"""Configuration: the discriminated union, secrets kept out of reprs and logs, the registry."""

from __future__ import annotations

import base64
import logging
import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from strom_core.errors import ConfigError
from strom_lightning import (
    BACKENDS,
    FakeBackend,
    FakeConfig,
    LNbitsBackend,
    LNbitsConfig,
    LndConfig,
    LndRestBackend,
    create_backend,
    parse_lightning_config,
)
from strom_lightning.lnbits import _Redacting
from tests.lightning.lnd_stub import LndStub
from tests.lightning.tls import TlsPair

INVOICE_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
ADMIN_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def test_the_backend_key_picks_the_section() -> None:
    assert parse_lightning_config({}) == FakeConfig()
    fake = parse_lightning_config({"backend": "fake"})
    lnd = parse_lightning_config(
        {"backend": "lnd", "rest_host": "umbrel.local:8080", "macaroon_path": "admin.macaroon"}
    )
    lnbits = parse_lightning_config(
        {"backend": "lnbits", "url": "https://lnbits.example", "invoice_key": INVOICE_KEY}
    )

    assert isinstance(fake, FakeConfig)
    assert fake.network == "bcrt"
    assert isinstance(lnd, LndConfig)
    assert lnd.network == "bc"
    assert isinstance(lnbits, LNbitsConfig)
    assert sorted(BACKENDS) == ["fake", "lnbits", "lnd"]


@pytest.mark.parametrize(
    "section",
    [
        {"backend": "eclair"},
        {"backend": "fake", "colour": "red"},
        {"backend": "fake", "network": "liquid"},
        {"backend": "lnd"},
        {"backend": "lnd", "rest_host": "h:8080"},
        {
            "backend": "lnd",
            "rest_host": "h:8080",
            "macaroon_path": "m",
            "lndconnect": "lndconnect://h?macaroon=AA",
        },
        {"backend": "lnd", "lndconnect": "lndconnect://h", "lndconnect_path": "uri.txt"},
        {"backend": "lnbits", "url": "https://x"},
        {"backend": "lnbits", "url": "ftp://x", "invoice_key": "k"},
        {"backend": "lnbits", "url": "https://x", "invoice_key": "k", "invoice_key_path": "p"},
    ],
)
def test_wrong_sections_are_refused(section: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        parse_lightning_config(section)


def test_sections_are_frozen() -> None:
    config = FakeConfig()
    with pytest.raises(ValidationError):
        config.fee_msat = 5  # type: ignore[misc]


def test_secrets_never_show_in_reprs_or_dumps() -> None:
    uri = "lndconnect://node:8080?macaroon=c2VjcmV0LW1hY2Fyb29u"
    lnd = parse_lightning_config({"backend": "lnd", "lndconnect": uri})
    lnbits = parse_lightning_config(
        {
            "backend": "lnbits",
            "url": "https://lnbits.example",
            "invoice_key": INVOICE_KEY,
            "admin_key": ADMIN_KEY,
        }
    )

    for shown in (
        repr(lnd),
        str(lnd),
        lnd.model_dump_json(),
        repr(lnbits),
        str(lnbits),
        lnbits.model_dump_json(),
    ):
        assert "c2VjcmV0" not in shown
        assert INVOICE_KEY not in shown
        assert ADMIN_KEY not in shown


def test_create_backend_builds_each_backend(tmp_path: Path, lnd_tls: TlsPair) -> None:
    (tmp_path / "admin.macaroon").write_bytes(b"\x02\x01macaroon-bytes")
    (tmp_path / "inkey").write_text(INVOICE_KEY + "\n")

    fake = create_backend(FakeConfig(), data_dir=tmp_path)
    lnd = create_backend(
        LndConfig(
            rest_host="127.0.0.1:8080",
            macaroon_path=Path("admin.macaroon"),
            tls_cert_path=lnd_tls.cert,
        ),
        data_dir=tmp_path,
    )
    lnbits = create_backend(
        LNbitsConfig(url="http://127.0.0.1:5000", invoice_key_path=Path("inkey")),
        data_dir=tmp_path,
    )

    assert isinstance(fake, FakeBackend)
    assert fake.db_path == tmp_path / "fake-lightning.sqlite3"
    assert isinstance(lnd, LndRestBackend)
    assert lnd.base_url == "https://127.0.0.1:8080"
    assert isinstance(lnbits, LNbitsBackend)
    assert not lnbits.can_pay
    for backend in (fake, lnd, lnbits):
        assert "macaroon" not in repr(backend)
        assert INVOICE_KEY not in repr(backend)


async def test_missing_secret_files_are_config_errors_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"admin\.macaroon"):
        create_backend(
            LndConfig(rest_host="h:8080", macaroon_path=Path("admin.macaroon")), data_dir=tmp_path
        )
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        create_backend(
            LNbitsConfig(url="http://h", invoice_key_path=Path("empty")), data_dir=tmp_path
        )
    (tmp_path / "not-a-cert").write_text("hello")
    (tmp_path / "m").write_bytes(b"\x02mac")
    with pytest.raises(ConfigError, match="certificate"):
        create_backend(
            LndConfig(
                rest_host="h:8080", macaroon_path=Path("m"), tls_cert_path=Path("not-a-cert")
            ),
            data_dir=tmp_path,
        )


async def test_both_lnd_styles_reach_the_same_node(
    tmp_path: Path, lnd_stub: LndStub, lnd_tls: TlsPair, macaroon: bytes
) -> None:
    """Umbrel's layout (host + files) and an lndconnect URI, against the TLS stub."""
    (tmp_path / "admin.macaroon").write_bytes(macaroon)
    der = ssl.PEM_cert_to_DER_cert(lnd_tls.pem)
    host = lnd_stub.url.removeprefix("https://")
    uri = (
        f"lndconnect://{host}?cert={base64.urlsafe_b64encode(der).decode().rstrip('=')}"
        f"&macaroon={base64.urlsafe_b64encode(macaroon).decode().rstrip('=')}"
    )
    (tmp_path / "lndconnect.txt").write_text(uri + "\n")
    configs = [
        LndConfig(
            network="bcrt",
            rest_host=host,
            macaroon_path=Path("admin.macaroon"),
            tls_cert_path=lnd_tls.cert,
        ),
        LndConfig(network="bcrt", lndconnect_path=Path("lndconnect.txt")),
        parse_lightning_config({"backend": "lnd", "network": "bcrt", "lndconnect": uri}),
    ]

    for config in configs:
        backend = create_backend(config, data_dir=tmp_path)
        try:
            health = await backend.health()
        finally:
            await backend.aclose()
        assert health.ok, health.detail


async def test_secrets_stay_out_of_the_logs_of_a_whole_lnd_flow(
    tmp_path: Path,
    lnd_stub: LndStub,
    lnd_tls: TlsPair,
    macaroon: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = LndRestBackend(lnd_stub.url, macaroon=macaroon, cert_pem=lnd_tls.pem, network="bcrt")
    try:
        invoice = await backend.create_invoice(1_000, expiry_s=60)
        lnd_stub.settle(invoice.bolt11)
        await backend.lookup_invoice(invoice.payment_hash)
        await backend.pay_invoice(lnd_stub.remote_invoice(1_000), max_fee_msat=50, timeout_s=5)
        await backend.node_info()
    finally:
        await backend.aclose()

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "HTTP Request" in logged or "lnd" in logged  # something was logged at all
    assert macaroon.hex() not in logged
    assert macaroon.hex() not in repr(backend)


def test_the_websocket_library_logs_through_a_mask(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    masked = _Redacting(logging.getLogger("test.ws"), (INVOICE_KEY,))

    masked.debug("> GET /api/v1/ws/%s HTTP/1.1", INVOICE_KEY)
    masked.info("connected to ws://127.0.0.1/api/v1/ws/" + INVOICE_KEY)

    assert [record.getMessage() for record in caplog.records] == [
        "> GET /api/v1/ws/*** HTTP/1.1",
        "connected to ws://127.0.0.1/api/v1/ws/***",
    ]
