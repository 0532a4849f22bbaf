"""What each part of Strom is given, built from the configuration by the composition root.

The public URL's check, the TLS contexts of certificate files, the OCPP server's settings, the
charger passwords (the key they are hashed under, writing a new one) and how each charger is
admitted, and the retention sweep's policy. :mod:`strom.app` assembles the parts from these.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from agent.identity import SERVER_KEY_NAME, KeyStore, SecretKeys
from agent.runtime import AgentRuntime
from cockpit.auth import WINDOW_S
from cockpit.profiles import ProfileFiles
from lnurl_server.routes import FrontDoor
from ocpp_server import (
    ChargerAuth,
    KeyedHash,
    NewPassword,
    OcppServerSettings,
    PasswordKey,
    StaticChargerAuth,
    hash_password,
    parse_quirks,
    v16,
    v201,
)
from ocpp_server._connection import DialectFactory
from ocpp_server.commands import OcppCommands
from strom.config import StromConfig, require_ocpp_password
from strom_core.clock import Clock
from strom_core.config import LiveConfig, ProfileConfig, ocpp_beyond_loopback
from strom_core.errors import ConfigError
from strom_core.fiat import ShownTariff
from strom_nostr.http_auth import HTTP_AUTH_KIND
from strom_nostr.zap_request import ZAP_REQUEST_KIND, ZAP_REQUEST_MAX_FUTURE_S
from strom_services.payments import PaymentService
from strom_services.screens import ScreenKeeper
from strom_services.tariffs import TariffBook
from strom_storage.db import Database
from strom_storage.retention import Retention, RetentionPolicy
from strom_web.lnurl import LnurlError, bech32_lnurl

__all__ = [
    "OCPP_PASSWORD_PURPOSE",
    "admission",
    "charger_auth",
    "check_public_url",
    "ocpp_password_key",
    "ocpp_settings",
    "purpose_key",
    "retention_sweep",
    "screen_keeper",
    "ssl_context",
    "write_charger_password",
]

log = logging.getLogger(__name__)

OCPP_PASSWORD_PURPOSE: Final = b"strom ocpp password v1"


def check_public_url(public_url: str) -> None:
    """Refuse to advertise LNURLs wallets must reject (LUD-01: https, or http for onion/local).

    Raises:
        ConfigError: the public URL is plain http on a public host.
    """
    try:
        bech32_lnurl(f"{public_url}/lnurlp/x/1")
    except LnurlError:
        raise ConfigError(
            f"server.public_url {public_url!r}: LNURLs on a public host must be https:// "
            "(LUD-01 allows http:// only for .onion and local development); configure "
            "tls.acme_domain (managed TLS), server.tls_cert/tls_key or a TLS proxy, and an "
            "https:// public_url"
        ) from None


def ssl_context(cert: Path | None, key: Path | None, what: str) -> ssl.SSLContext | None:
    """The server TLS context of a certificate and key given as files (None: neither given).

    Raises:
        ConfigError: one given without the other, or they cannot be loaded.
    """
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError(f"{what}: tls_cert and tls_key must be given together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{what}: cannot load TLS certificate {cert} / key {key}: {exc}"
        ) from None
    return context


def ocpp_settings(config: StromConfig) -> OcppServerSettings:
    """The OCPP server's settings from ``[ocpp]``."""
    ocpp = config.ocpp
    return OcppServerSettings(
        host=ocpp.host,
        port=ocpp.port,
        tls_cert=ocpp.tls_cert,
        tls_key=ocpp.tls_key,
        heartbeat_interval_s=ocpp.heartbeat_interval_s,
        meter_value_sample_interval_s=ocpp.meter_interval_s,
        auto_register=ocpp.auto_register,
        command_timeout_s=ocpp.command_timeout_s,
        pending_retry_interval_s=ocpp.pending_retry_interval_s,
        max_pending_chargers=ocpp.max_pending_chargers,
        boot_backstop_delay_s=ocpp.boot_backstop_delay_s,
        message_log_size=ocpp.message_log_size,
    )


_DIALECTS: Final[Mapping[str, DialectFactory]] = {
    v16.SUBPROTOCOL: v16.dialect,
    v201.SUBPROTOCOL: v201.dialect,
}


def ocpp_dialects(config: StromConfig) -> tuple[DialectFactory, ...]:
    """The OCPP versions served, in the order of preference of ``[ocpp] versions``."""
    return tuple(_DIALECTS[name] for name in config.ocpp.versions)


def purpose_key(
    data_dir: Path,
    purpose: bytes,
    environ: Mapping[str, str] | None,
    *,
    keys: SecretKeys | None = None,
) -> bytes:
    """A key for one purpose, derived (HMAC-SHA-256) from Strom's server key.

    The server key is ``<data_dir>/keys/_server.key`` (created on first need, mode 0600,
    sealed with ``STROM_MASTER_KEY`` when that is set): back up ``keys/`` with the database.
    A cluster gives ``keys`` (:class:`agent.shared_keys.SharedKeyStore`, with ``_server``
    prepared): every process then derives the same keys from the one in the database.

    Raises:
        ConfigError: the key file is unreadable, readable by others, or sealed with another
            master key.
    """
    store = keys if keys is not None else KeyStore.from_environ(data_dir, environ)
    server_key = store.ensure(SERVER_KEY_NAME)
    return hmac.new(server_key, purpose, hashlib.sha256).digest()


def ocpp_password_key(
    data_dir: Path,
    environ: Mapping[str, str] | None = None,
    *,
    keys: SecretKeys | None = None,
) -> PasswordKey:
    """The key generated charger passwords are hashed under (HMAC-SHA-256).

    Losing the server key makes every generated charger password useless.

    Raises:
        ConfigError: as :func:`purpose_key`.
    """
    return PasswordKey(purpose_key(data_dir, OCPP_PASSWORD_PURPOSE, environ, keys=keys))


def write_charger_password(
    config: StromConfig, charger_id: str, *, chosen: str | None = None
) -> NewPassword:
    """Give a charger a new OCPP password; its hash is written into the charger's profile.

    The profile file keeps its comments and is replaced atomically. A running Strom uses the
    new password from its next start.

    Args:
        config: the configuration (the data folder holds the server key).
        charger_id: a configured charger.
        chosen: a password a person chose (16-40 bytes, stored as scrypt); None generates a
            key (120 bits, stored as a keyed hash).

    Returns:
        The password, to be shown once, and its stored hash.

    Raises:
        ConfigError: no such charger, a chosen password of the wrong length, or the profile
            cannot be written.
    """
    try:
        config.profile(charger_id)
    except KeyError:
        raise ConfigError(f"no charger {charger_id!r} in {config.paths.profiles}") from None
    if chosen is None:
        new = ocpp_password_key(config.storage.data_dir).new_password()
    else:
        try:
            new = NewPassword(chosen, hash_password(chosen))
        except ValueError as exc:
            raise ConfigError(f"the OCPP password for {charger_id}: {exc}") from None
    ProfileFiles(config.paths.profiles).write_password_hash(charger_id, new.password_hash)
    return new


def admission(config: StromConfig, profile: ProfileConfig, key: PasswordKey) -> ChargerAuth:
    """How the OCPP server admits this charger.

    Raises:
        ConfigError: unknown OCPP quirks or a malformed password hash in the profile, or no
            password where one is required (:func:`strom.config.require_ocpp_password`).
    """
    path = config.paths.profiles / f"{profile.id}.toml"
    try:
        quirks = parse_quirks(profile.ocpp.quirks)
    except ValueError as exc:
        raise ConfigError(f"{path}: key 'ocpp': {exc}") from None
    require_ocpp_password(config, profile)
    try:
        auth = ChargerAuth(
            charger_id=profile.id,
            password_hash=profile.ocpp.password_hash or None,
            quirks=quirks,
            connectors=max(c.id for c in profile.connectors),
            client_certificate=profile.ocpp.security_profile == 3,
        )
    except ValueError as exc:
        raise ConfigError(f"{path}: key 'ocpp.password_hash': {exc}") from None
    stored = auth.parsed_hash
    if isinstance(stored, KeyedHash) and not key.made_this(stored):
        log.warning(
            "charger %s: its OCPP password was made under another server key (%s was lost or "
            "replaced), so no password opens it; run `strom charger password %s` and enter the "
            "new key in the charger",
            profile.id,
            config.storage.data_dir / "keys" / f"{SERVER_KEY_NAME}.key",
            profile.id,
        )
    if stored is None and ocpp_beyond_loopback(config.ocpp.host):
        log.warning(
            "charger %s: accepts OCPP connections without a password (allow_unauthenticated "
            "in %s): anyone who can reach port %d can connect as it",
            profile.id,
            path,
            config.ocpp.port,
        )
    return auth


def charger_auth(config: StromConfig, key: PasswordKey) -> StaticChargerAuth:
    """How the OCPP server admits every configured charger (see :func:`admission`)."""
    return StaticChargerAuth(admission(config, profile, key) for profile in config.profiles)


def retention_sweep(
    config: StromConfig, db: Database, agents: AgentRuntime, front: FrontDoor, clock: Clock
) -> Retention:
    """The retention sweep; each part that claims nostr events says how long a replay is fresh."""
    claim_windows = {
        **agents.services.settings.claim_windows_s(),  # DMs, zap receipts
        ZAP_REQUEST_KIND: front.zap_max_age_s + ZAP_REQUEST_MAX_FUTURE_S,  # LNURL zap callback
        HTTP_AUTH_KIND: 2 * WINDOW_S,  # NIP-98 at the REST API: ±60 s
    }
    policy = RetentionPolicy.from_config(config.retention, claim_windows)
    return Retention(db, policy, interval_s=config.retention.sweep_interval_s, clock=clock)


def screen_keeper(
    live: LiveConfig,
    tariffs: TariffBook,
    payments: PaymentService,
    commands: OcppCommands,
    clock: Clock,
) -> ScreenKeeper:
    """The keeper of the chargers' own screens, on the OCPP server's screens.

    A charger's screen states the tariff in force, the one its LNURL offer states too, and
    its connectors' LNURLs are the stickers' (made of the public URL). The keeper is told when
    a charger reported its screen and when a tariff changes; the composition root connects
    it to the sessions and the OCPP events and runs its task.
    """

    def tariff_of(charger_id: str) -> ShownTariff | None:
        try:
            profile = live.current.profile(charger_id)
        except KeyError:
            return None
        return payments.shown_tariff(profile)  # a fiat price as written, with its sats now

    config = live.current
    keeper = ScreenKeeper(
        commands,
        tariff_of,
        config.server.public_url,
        clock=clock,
        # The bill grows with each meter reading: one cost update per reading at most.
        cost_interval_s=float(config.ocpp.meter_interval_s),
    )
    commands.on_screen_reported(keeper.refresh)
    tariffs.on_change(keeper.refresh)
    return keeper
