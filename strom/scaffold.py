"""``strom init``: a working configuration, a data folder and one example charge point."""

from __future__ import annotations

import contextlib
from pathlib import Path

from strom_core.ids import check_charger_id

__all__ = ["ScaffoldError", "initialise_if_empty", "write_scaffold"]

STROM_TOML = """\
# Strom configuration. Every key is optional; the values shown are the defaults unless noted.
# Any key can be overridden from the environment as STROM_<SECTION>__<KEY>,
# e.g. STROM_SERVER__PORT=8081.

[server]
host = "127.0.0.1"
port = 8080
# The address wallets and browsers use to reach Strom; LNURLs and QR codes are built from it.
# A public host must be https:// (LUD-01); http:// is for local development and .onion only.
# Unset, it is http://<host>:<port>.
# public_url = "https://charge.example.org"
# tls_cert = "/path/to/fullchain.pem"
# tls_key = "/path/to/privkey.pem"
# Behind a reverse proxy (nginx, Caddy, Traefik, HAProxy) list its address(es) or network(s),
# so that rate limits count each driver and not the proxy, and name the header it sets:
# "X-Forwarded-For" (the default) or "Forwarded" (RFC 7239). The header is read only on
# connections from these addresses. Default: none (clients connect directly).
# trusted_proxies = ["127.0.0.1", "::1"]
# forwarded_header = "X-Forwarded-For"
# Show fiat estimates next to prices (a fixed rate you maintain); 0 shows none.
fiat_per_btc = 0
fiat_currency = "EUR"
# The background of the public map at /map: a tile URL template with {z}, {x} and {y}.
# Default: OpenStreetMap's tiles (their usage policy applies); "" shows the chargers on a plain
# background and sends the drivers' browsers to no tile server.
# map_tile_url = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"

[storage]
data_dir = "data"
# Empty: SQLite in data_dir. For PostgreSQL:
# database_url = "postgresql+asyncpg://strom@127.0.0.1:5432/strom"
database_url = ""

[ocpp]
# Chargers connect to ws://HOST:PORT/ocpp/<charger id> with their OCPP password (HTTP Basic
# auth). Beyond loopback Strom refuses to start with a charger that has none.
host = "0.0.0.0"
port = 9000
heartbeat_interval_s = 300
meter_interval_s = 60
auto_register = false
# OCPP versions served, in order of preference: a charger that offers both websocket
# subprotocols speaks the first (1.6 first: most firmware's more mature implementation)
versions = ["ocpp1.6", "ocpp2.0.1"]
# after a restart of Strom, chargers that were connected are shown as reconnecting (their
# last status, no payments) for this long before they are shown offline
reconnect_grace_s = 90

[tls]
# Managed TLS: Strom gets a certificate for acme_domain from an ACME CA (Let's Encrypt),
# renews it at two thirds of its lifetime and reloads it without dropping connections. It then
# serves HTTPS on [server] port (set public_url = "https://<acme_domain>" and port = 443, or
# :<port> in the URL) and answers the CA's HTTP-01 challenges on http_port, which must be
# port 80 of the domain as the CA sees it (plain http there redirects to https). Leave
# server.tls_cert/tls_key unset. Key and certificate are kept in <data_dir>/acme/ (mode 0600).
# Empty acme_domain: no managed TLS.
acme_domain = ""
# acme_email = "ops@example.org"   # the CA's contact for this account; required with a domain
# "letsencrypt", "letsencrypt-staging" (for trying things out: untrusted certificates, high
# limits) or any ACME directory URL:
# acme_directory = "letsencrypt"
# http_port = 80
# OCPP over wss:// with the same certificate (chargers connect to wss://<acme_domain>:<ocpp
# port>/ocpp/<id>); false keeps [ocpp] as it is (ws://, or its own tls_cert/tls_key).
# ocpp = true
# A failed order is retried after acme_retry_s, doubling up to acme_retry_max_s; the
# certificate in use is kept meanwhile.
# acme_retry_s = 60
# acme_retry_max_s = 21600

[sessions]
invoice_expiry_s = 600
start_timeout_s = 180
# a charger that comes back without a session's transaction has this long to send its
# StopTransaction before Strom ends the session, billed up to the last reading
orphan_grace_s = 120

[lightning]
# "fake" moves no real money: invoices are real BOLT11 but nobody can pay them from a
# real wallet. See docs/lightning.md to connect LND or LNbits.
backend = "fake"

[nostr]
# npubs whose DMs to a charger are operator commands
admin_npubs = []

[retention]
# How long history is kept, in days; 0 keeps it forever. Money records (sessions, payments,
# the ledger, refunds that were claimed) are never deleted, nor anything of a running session.
outbox_days = 30           # effects that ran (DMs sent, commands given)
outbox_dead_days = 365     # effects given up after 25 attempts: look into them
meter_readings_days = 90   # meter values of sessions that have stopped (the bill is final)
unknown_stops_days = 90    # StopTransactions for transactions Strom never started
sweep_interval_s = 300

[logging]
level = "INFO"
"""

PROFILE_TOML = """\
# One file per charge point; the file name (without .toml) must equal `id`.
id = "{charger_id}"
name = "Example charger"
description = "11 kW AC, pay with any Lightning wallet"

[location]
lat = 52.520008
lon = 13.404954
address = "Alexanderplatz 1, 10178 Berlin"

[[connectors]]
id = 1
type = "Type2"
max_power_kw = 11

[tariff]
per_kwh_sat = 250        # sats per kWh (decimals allowed down to 0.001)
per_minute_sat = 0
session_fee_sat = 0
min_prepay_sat = 1000
max_prepay_sat = 100000
# Reservations: 0 minutes offers none (see profiles/README.md and docs/lnurl.md).
reservation_fee_sat = 0
reservation_fee_per_minute_sat = 0
reservation_max_minutes = 0
reservation_kept_percent = 100

[branding]
picture = ""
website = ""

[ocpp]
# The hash of the charger's OCPP password (HTTP Basic auth). `strom init` printed the
# password once; `strom charger password {charger_id}` makes a new one.
password_hash = ""
# Without a password anyone who reaches the OCPP port can connect as this charger, so Strom
# refuses to start unless OCPP listens on loopback only or this is set to true.
# allow_unauthenticated = false
quirks = []
"""

RELAYS_TOML = """\
# Nostr relays the charge-point agents use. "embedded" is the in-process relay
# (nothing external needed). Add public relays for discovery by map clients, e.g.:
# [[relays]]
# url = "wss://relay.example.org"
# read = true
# write = true

[[relays]]
url = "embedded"
"""


class ScaffoldError(Exception):
    """The target already holds a configuration."""


def write_scaffold(folder: Path, *, charger_id: str = "example-1", force: bool = False) -> Path:
    """Write ``strom.toml``, ``profiles/``, ``relay_config/`` and ``data/`` into ``folder``.

    Returns:
        The path of the written ``strom.toml``.

    Raises:
        ScaffoldError: ``strom.toml`` exists and ``force`` is false.
        ValueError: ``charger_id`` is not a charger id.
    """
    check_charger_id(charger_id)
    config = folder / "strom.toml"
    if config.exists() and not force:
        raise ScaffoldError(f"{config} already exists (use --force to overwrite)")
    (folder / "profiles").mkdir(parents=True, exist_ok=True)
    (folder / "relay_config").mkdir(exist_ok=True)
    data = folder / "data"
    data.mkdir(exist_ok=True)
    data.chmod(0o700)
    config.write_text(STROM_TOML)
    (folder / "profiles" / f"{charger_id}.toml").write_text(
        PROFILE_TOML.format(charger_id=charger_id)
    )
    (folder / "relay_config" / "relays.toml").write_text(RELAYS_TOML)
    return config


def initialise_if_empty(folder: Path) -> bool:
    """A container's first start: make ``folder`` an installation when it has no ``strom.toml``.

    Like :func:`write_scaffold` but without an example charger (the owner adds chargers in the
    admin UI), and keeping whatever the container mounted: ``profiles/`` and ``relay_config/``
    may be mounted already (read-only relay config too), their files are left alone; the
    embedded relay is written only into an empty, writable ``relay_config/``. Every setting
    comes from ``STROM_*`` variables at each start.

    Returns:
        Whether the folder was initialised now (False: it held a ``strom.toml`` already).
    """
    config = folder / "strom.toml"
    if config.exists():
        return False
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profiles").mkdir(exist_ok=True)
    relays = folder / "relay_config"
    relays.mkdir(exist_ok=True)
    if not any(relays.glob("*.toml")):
        # Mounted read-only and empty: the embedded relay is the default anyway.
        with contextlib.suppress(OSError):
            (relays / "relays.toml").write_text(RELAYS_TOML)
    data = folder / "data"
    data.mkdir(exist_ok=True)
    data.chmod(0o700)
    partial = config.with_suffix(".toml.partial")
    partial.write_text(STROM_TOML)
    partial.replace(config)  # written whole or not at all: a half file never counts as set up
    return True
