"""``strom doctor``: every problem of an installation, in plain words, with its severity.

Each check returns findings; a finding is ``serious`` (money or chargers are at stake, or
Strom will not work: the command exits 1), a ``warning`` (worth a look) or ``ok`` (what was
checked and found fine, so the report shows what it covered). The checks:

* the public URL: plain ``http://`` on a public host (wallets refuse it, LUD-01), and whether
  it answers at all (``/healthz``) — run the doctor where the internet reaches Strom from;
* the TLS certificates named in ``strom.toml`` (``server`` and ``ocpp``): missing, expired,
  or expiring within 21 days (serious within 3);
* the lightning node: LND must answer ``getinfo`` with Strom's macaroon, and the macaroon must
  hold every permission Strom uses (:mod:`strom_lightning.lnd_check`); LNbits must answer
  with the invoice key; the fake backend has nothing to check;
* each external nostr relay must accept a websocket connection;
* the database must open; each configured charger must have been seen (connected) at least
  once, recently, and must have an OCPP password.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import websockets

from strom_core.config import StromConfig, ocpp_beyond_loopback
from strom_core.errors import StromError
from strom_lightning import LNbitsConfig, LndConfig
from strom_lightning.lnd import LndRestBackend
from strom_lightning.lnd_check import check_permissions
from strom_lightning.lnd_credentials import load_lnd_credentials
from strom_storage import backup as storage_backup
from strom_storage.db import Database
from strom_storage.sightings import charger_sightings

__all__ = [
    "OK",
    "SERIOUS",
    "WARNING",
    "Finding",
    "certificate_expiry",
    "examine",
    "render",
]

SERIOUS, WARNING, OK = "serious", "warning", "ok"
EXPIRY_WARNING = timedelta(days=21)  # ACME renews with 30 days left: under 21 it is failing
EXPIRY_SERIOUS = timedelta(days=3)
NOT_SEEN_FOR = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the doctor found."""

    severity: str
    area: str
    message: str


def render(findings: Iterable[Finding]) -> list[str]:
    """The report: problems first (serious, then warnings), then what is fine, then a total."""
    order = {SERIOUS: 0, WARNING: 1, OK: 2}
    found = sorted(findings, key=lambda f: order[f.severity])
    lines = [f"{f.severity.upper():8} {f.area}: {f.message}" for f in found]
    serious = sum(f.severity == SERIOUS for f in found)
    warnings = sum(f.severity == WARNING for f in found)
    if serious or warnings:
        lines.append(f"{serious} serious problem(s), {warnings} warning(s)")
    else:
        lines.append("no problems found")
    return lines


async def examine(
    config: StromConfig, *, timeout_s: float = 10.0, now: datetime | None = None
) -> list[Finding]:
    """Run every check on the installation ``config`` describes (``now``: for expiry)."""
    checks = await asyncio.gather(
        _public_url(config, timeout_s),
        _lightning(config, timeout_s),
        _relays(config, timeout_s),
        _chargers(config),
    )
    findings = [finding for group in checks for finding in group]
    findings.extend(_certificates(config, now or datetime.now(UTC)))
    return findings


# --- public URL --------------------------------------------------------------------------------


def _is_public_host(host: str) -> bool:
    if host == "localhost" or host.endswith((".onion", ".local", ".localhost", ".internal")):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." in host  # a name in the DNS; a bare name is a LAN's
    return address.is_global


async def _public_url(config: StromConfig, timeout_s: float) -> list[Finding]:
    url = config.server.public_url
    parts = urlsplit(url)
    host = parts.hostname or ""
    findings: list[Finding] = []
    if parts.scheme == "http" and _is_public_host(host):
        findings.append(
            Finding(
                SERIOUS,
                "public URL",
                f"{url} is plain http on a public host: wallets refuse LNURLs that are not "
                "https (LUD-01); serve https (tls_cert/tls_key, or a reverse proxy) and set "
                "public_url to https://…",
            )
        )
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            response = await http.get(f"{url}/healthz")
    except httpx.HTTPError as exc:
        findings.append(
            Finding(
                SERIOUS,
                "public URL",
                f"{url} is unreachable from here ({_why(exc)}): wallets cannot pay; is Strom "
                "running, and does public_url point at it?",
            )
        )
        return findings
    if response.status_code >= 500:
        findings.append(
            Finding(WARNING, "public URL", f"{url}/healthz answers HTTP {response.status_code}")
        )
    elif not findings:
        findings.append(Finding(OK, "public URL", f"{url} answers"))
    return findings


def _why(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# --- certificates ------------------------------------------------------------------------------

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _der_item(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER item at ``pos``."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def certificate_expiry(pem: str) -> datetime:
    """When the first certificate in ``pem`` (the server's, in a chain) expires.

    Raises:
        ValueError: no certificate, or not one that parses.
    """
    match = _PEM.search(pem)
    if match is None:
        raise ValueError("no PEM certificate in it")
    der = ssl.PEM_cert_to_DER_cert(match.group(0))
    _, start, _ = _der_item(der, 0)  # Certificate
    _, pos, _ = _der_item(der, start)  # TBSCertificate
    fields: list[tuple[int, int, int]] = []
    while len(fields) < 6:
        item = _der_item(der, pos)
        fields.append(item)
        pos = item[2]
    if fields[0][0] == 0xA0:  # an explicit version: the other fields shift by one
        fields = fields[1:]
    _, validity, _ = fields[3]  # serial, signature, issuer, validity
    _, after_start, after_end = _der_item(der, _der_item(der, validity)[2])
    tag, text = der[after_start - 2], der[after_start:after_end].decode("ascii")
    layout = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"
    return datetime.strptime(text, layout).replace(tzinfo=UTC)


def _certificates(config: StromConfig, now: datetime) -> list[Finding]:
    findings: list[Finding] = []
    for name, path in (
        ("server.tls_cert", config.server.tls_cert),
        ("ocpp.tls_cert", config.ocpp.tls_cert),
    ):
        if path is None:
            continue
        area = f"TLS certificate ({name})"
        try:
            expires = certificate_expiry(Path(path).read_text(encoding="ascii"))
        except (OSError, ValueError, UnicodeDecodeError, IndexError) as exc:
            findings.append(Finding(SERIOUS, area, f"{path} cannot be read: {_why(exc)}"))
            continue
        left = expires - now
        when = expires.strftime("%Y-%m-%d %H:%M UTC")
        if left <= timedelta(0):
            message = f"{path} expired on {when}: browsers, wallets and chargers refuse it"
            findings.append(Finding(SERIOUS, area, message))
        elif left <= EXPIRY_WARNING:
            severity = SERIOUS if left <= EXPIRY_SERIOUS else WARNING
            message = f"{path} expires in {left.days} day(s) ({when}): renew it"
            findings.append(Finding(severity, area, message))
        else:
            findings.append(Finding(OK, area, f"{path} valid until {when}"))
    return findings


# --- lightning ---------------------------------------------------------------------------------


async def _lightning(config: StromConfig, timeout_s: float) -> list[Finding]:
    lightning = config.lightning
    if isinstance(lightning, LndConfig):
        return await _lnd(config, lightning, timeout_s)
    if isinstance(lightning, LNbitsConfig):
        return await _lnbits(config, lightning, timeout_s)
    return [Finding(OK, "lightning", "the fake backend (no real money): nothing to check")]


async def _lnd(config: StromConfig, lnd: LndConfig, timeout_s: float) -> list[Finding]:
    try:
        credentials = load_lnd_credentials(lnd, data_dir=config.storage.data_dir)
    except StromError as exc:
        return [Finding(SERIOUS, "lightning", f"LND's credentials cannot be read: {exc}")]
    backend = LndRestBackend(
        credentials.base_url,
        macaroon=credentials.macaroon,
        cert_pem=credentials.cert_pem,
        timeout_s=timeout_s,
    )
    try:
        info = await backend.node_info()
    except StromError as exc:
        message = f"LND at {credentials.base_url} does not answer getinfo: {exc}"
        return [Finding(SERIOUS, "lightning", message)]
    finally:
        await backend.aclose()
    findings = [Finding(OK, "lightning", f"LND {info.alias or info.pubkey} answers")]
    if not info.synced:
        findings.append(Finding(WARNING, "lightning", "LND is not synced to the chain"))
    try:
        check = await check_permissions(credentials, timeout_s=timeout_s)
    except httpx.HTTPError as exc:
        check_failed = f"the macaroon's permissions could not be checked: {_why(exc)}"
        return [*findings, Finding(WARNING, "lightning macaroon", check_failed)]
    if check.unchecked is not None:
        message = (
            f"the macaroon's permissions could not be checked ({check.unchecked}); Strom needs "
            "info:read, invoices:read, invoices:write, offchain:read and offchain:write"
        )
        findings.append(Finding(WARNING, "lightning macaroon", message))
    for needed in check.missing:
        message = f"the macaroon lacks {needed.permission}, needed for {needed.purpose}"
        findings.append(Finding(SERIOUS, "lightning macaroon", message))
    if check.unchecked is None and not check.missing:
        findings.append(Finding(OK, "lightning macaroon", "holds every permission Strom uses"))
    return findings


async def _lnbits(config: StromConfig, lnbits: LNbitsConfig, timeout_s: float) -> list[Finding]:
    from strom_core.lightning_config import read_secret_file

    try:
        if lnbits.invoice_key_path is not None:
            key = (
                read_secret_file(
                    lnbits.invoice_key_path,
                    "lnbits.invoice_key_path",
                    data_dir=config.storage.data_dir,
                )
                .decode()
                .strip()
            )
        else:
            assert lnbits.invoice_key is not None  # the section requires one of the two
            key = lnbits.invoice_key.get_secret_value()
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            response = await http.get(
                f"{lnbits.url.rstrip('/')}/api/v1/wallet", headers={"X-Api-Key": key}
            )
    except (StromError, httpx.HTTPError) as exc:
        return [Finding(SERIOUS, "lightning", f"LNbits at {lnbits.url}: {_why(exc)}")]
    if response.status_code != httpx.codes.OK:
        message = f"LNbits at {lnbits.url} refuses the invoice key (HTTP {response.status_code})"
        return [Finding(SERIOUS, "lightning", message)]
    return [Finding(OK, "lightning", f"LNbits at {lnbits.url} answers")]


# --- relays ------------------------------------------------------------------------------------


async def _relay_up(url: str, timeout_s: float) -> str | None:
    try:
        async with asyncio.timeout(timeout_s):
            async with websockets.connect(url, open_timeout=timeout_s):
                return None
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        return _why(exc)


async def _relays(config: StromConfig, timeout_s: float) -> list[Finding]:
    external = [relay.url for relay in config.relays if relay.url != "embedded"]
    if not external:
        return [Finding(OK, "relays", "only the embedded relay (nothing external to check)")]
    answers = await asyncio.gather(*(_relay_up(url, timeout_s) for url in external))
    down = {url: why for url, why in zip(external, answers, strict=True) if why is not None}
    only_external = len(external) == len(config.relays)
    findings = []
    for url, why in down.items():
        if only_external and len(down) == len(external):
            message = f"{url} is down ({why}): no relay is reachable, the agents publish nothing"
            findings.append(Finding(SERIOUS, "relay", message))
        else:
            findings.append(Finding(WARNING, "relay", f"{url} is down ({why})"))
    up = [url for url in external if url not in down]
    if up:
        findings.append(Finding(OK, "relays", f"{len(up)} of {len(external)} external up"))
    return findings


# --- chargers ----------------------------------------------------------------------------------


def _sqlite_state(url: str) -> tuple[Path | None, str | None]:
    """For SQLite: the missing database file (or None), and the schema revision."""
    if not url.startswith("sqlite"):
        return None, None
    path = Path(url.split(":///", 1)[1])
    if not path.is_file():
        return path, None
    return None, storage_backup.sqlite_revision(path)


async def _chargers(config: StromConfig) -> list[Finding]:
    findings = _passwords(config)
    url = config.storage.url()
    missing, revision = _sqlite_state(url)
    if missing is not None:
        message = f"no database at {missing}: has Strom ever run with this strom.toml?"
        return [*findings, Finding(SERIOUS, "database", message)]
    db = Database.from_url(url)
    try:
        await db.check()
        seen = await charger_sightings(db)
    except StromError as exc:
        return [*findings, Finding(SERIOUS, "database", str(exc))]
    finally:
        await db.close()
    findings.append(Finding(OK, "database", "opens"))
    if revision is not None and revision != storage_backup.head_revision():
        message = f"schema {revision}, not {storage_backup.head_revision()}: Strom upgrades it"
        findings.append(Finding(WARNING, "database", message + " at its next start"))
    now = datetime.now(UTC)
    for profile in config.profiles:
        last = seen.get(profile.id)
        if last is None:
            message = (
                f"configured but never seen: enter its OCPP URL (…/ocpp/{profile.id}) and "
                "password in the charger, and check it can reach Strom's OCPP port"
            )
            findings.append(Finding(WARNING, f"charger {profile.id}", message))
        elif now - last > NOT_SEEN_FOR:
            message = f"last seen {(now - last).days} day(s) ago ({last:%Y-%m-%d %H:%M} UTC)"
            findings.append(Finding(WARNING, f"charger {profile.id}", message))
        else:
            findings.append(Finding(OK, f"charger {profile.id}", f"last seen {last:%H:%M} UTC"))
    return findings


def _passwords(config: StromConfig) -> list[Finding]:
    findings = []
    beyond = ocpp_beyond_loopback(config.ocpp.host)
    for profile in config.profiles:
        if profile.ocpp.password_hash:
            continue
        fix = f"give it one: strom charger password {profile.id}"
        if beyond:
            message = (
                f"has no OCPP password and OCPP listens on {config.ocpp.host}: anyone who "
                f"reaches the port can act as this charger; {fix}"
            )
            findings.append(Finding(SERIOUS, f"charger {profile.id}", message))
        else:
            message = f"has no OCPP password (OCPP listens on loopback only); {fix}"
            findings.append(Finding(WARNING, f"charger {profile.id}", message))
    return findings
