"""``strom lightning pin-cert``: trust the certificate LND presents now, written where the
configuration points, after the operator saw its fingerprint."""

from __future__ import annotations

import asyncio
import base64
import ssl
from pathlib import Path

import pytest

from strom.cli import main
from strom_lightning.lndconnect import parse_lndconnect
from strom_lightning.pin import fingerprint
from tests.lightning.lnd_stub import LndStub
from tests.lightning.tls import TlsPair


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def configure(folder: Path, lightning: str) -> Path:
    assert main(["init", str(folder)]) == 0
    toml = folder / "strom.toml"
    toml.write_text(toml.read_text().replace('backend = "fake"', lightning))
    return toml


async def pin(toml: Path, *extra: str) -> int:
    # The command runs its own event loop; the stub serves on this one.
    return await asyncio.to_thread(main, ["lightning", "pin-cert", "-c", str(toml), *extra])


async def test_pin_cert_rewrites_the_cert_of_an_lndconnect_file_and_keeps_the_macaroon(
    tmp_path: Path,
    lnd_stub: LndStub,
    lnd_tls: TlsPair,
    impostor_tls: TlsPair,
    macaroon: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old_der = ssl.PEM_cert_to_DER_cert(lnd_tls.pem)
    uri_file = tmp_path / "lndconnect.txt"
    host = lnd_stub.url.removeprefix("https://")
    uri_file.write_text(f"lndconnect://{host}?cert={b64url(old_der)}&macaroon={b64url(macaroon)}")
    uri_file.chmod(0o640)  # readable by the group Strom runs in
    toml = configure(tmp_path, f'backend = "lnd"\nnetwork = "bcrt"\nlndconnect_path = "{uri_file}"')
    capsys.readouterr()
    assert await pin(toml, "--yes") == 0  # the node presents the pinned certificate
    assert "nothing to do" in capsys.readouterr().out

    await lnd_stub.restart(cert=impostor_tls.cert, key=impostor_tls.key)
    assert await pin(toml, "--yes") == 0
    out = capsys.readouterr().out
    new_der = ssl.PEM_cert_to_DER_cert(impostor_tls.pem)
    assert fingerprint(new_der) in out
    assert "lnd-stub" in out  # the node answered getinfo with Strom's macaroon over it
    parsed = parse_lndconnect(uri_file.read_text())
    assert parsed.cert_pem is not None
    assert ssl.PEM_cert_to_DER_cert(parsed.cert_pem) == new_der
    assert parsed.macaroon == macaroon
    assert (uri_file.stat().st_mode & 0o777) == 0o640  # the operator's permissions kept
    assert (tmp_path / "lndconnect.txt.bak").read_text().startswith("lndconnect://")


async def test_pin_cert_asks_first_and_writes_nothing_without_a_yes(
    tmp_path: Path,
    lnd_stub: LndStub,
    lnd_tls: TlsPair,
    impostor_tls: TlsPair,
    macaroon: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cert = tmp_path / "tls.cert"
    cert.write_text(impostor_tls.pem)  # not what the node presents
    (tmp_path / "admin.macaroon").write_bytes(macaroon)
    toml = configure(
        tmp_path,
        f'backend = "lnd"\nnetwork = "bcrt"\nrest_host = "{lnd_stub.url}"\n'
        f'macaroon_path = "{tmp_path / "admin.macaroon"}"\ntls_cert_path = "{cert}"',
    )
    capsys.readouterr()
    assert await pin(toml) == 2  # no terminal to confirm on (pytest's stdin)
    captured = capsys.readouterr()
    assert "--yes" in captured.err
    assert cert.read_text() == impostor_tls.pem  # nothing written
    assert not (tmp_path / "tls.cert.bak").exists()


def test_pin_cert_says_why_it_cannot_rewrite_an_inline_uri(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = configure(
        tmp_path,
        'backend = "lnd"\nnetwork = "bcrt"\nlndconnect = "lndconnect://127.0.0.1:1?macaroon=AQID"',
    )
    capsys.readouterr()
    assert main(["lightning", "pin-cert", "-c", str(toml), "--yes"]) == 2
    assert "lndconnect_path" in capsys.readouterr().err
