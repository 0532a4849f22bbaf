"""The database schema (SQLAlchemy Core), one definition for SQLite and PostgreSQL.

Money columns are integer msat (BigInteger), energy integer Wh. Every table that records a
fact from outside carries a unique natural key (payment hash, hashed k1, OCPP transaction id,
nostr event id, outbox idempotency key), so writing the same fact twice is a no-op.

Changes to this file need a new Alembic revision in ``strom_storage/migrations/versions``; a test
compares the migrated database with this metadata.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = [
    "UtcDateTime",
    "api_tokens",
    "audit_log",
    "charge_plans",
    "chargers",
    "connectors",
    "dm_journal",
    "id_allocator",
    "imported_secrets",
    "leases",
    "ledger_entries",
    "ledger_intervals",
    "ledger_rates",
    "metadata",
    "meter_readings",
    "nostr_events",
    "ocpi_log",
    "ocpi_partners",
    "ocpp_transactions",
    "ocpp_unknown_stops",
    "outbox",
    "payments",
    "receivables",
    "refunds",
    "roaming_partner_terms",
    "roaming_sessions",
    "roaming_tokens",
    "sessions",
    "shared_keys",
    "status_history",
    "tariffs",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database (SQLite keeps no zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"expected an aware datetime, got {value!r}")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Msat = BigInteger
TS = UtcDateTime()

chargers = Table(
    "chargers",
    metadata,
    Column("id", String(48), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    # True while a process holds a live OCPP connection of the charger. Left True when Strom
    # stops (or dies) with the charger connected; the next start turns it into a reconnect
    # grace (``reconnect_until``), so every process reads the same link from here.
    Column("online", Boolean, nullable=False, default=False),
    Column("last_seen_at", TS),
    Column("reconnect_until", TS),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

connectors = Table(
    "connectors",
    metadata,
    Column("charger_id", String(48), ForeignKey("chargers.id"), primary_key=True),
    Column("connector_id", Integer, primary_key=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("status", String(32), nullable=False, default="Unknown"),
    Column("error_code", String(50), nullable=False, default="NoError"),
    Column("status_at", TS),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("charger_id", String(48), ForeignKey("chargers.id"), nullable=False),
    Column("connector_id", Integer, nullable=False),
    Column("id_tag", String(20), nullable=False, unique=True),
    Column("state", String(24), nullable=False),
    Column("version", Integer, nullable=False, default=0),
    Column("secret_hash", String(64), nullable=False),
    Column("initiator", String(16), nullable=False),  # "lnurl", "zap" or "dm" (DM invoice)
    Column("initiator_pubkey", String(64)),  # the zapper's nostr key, for DMs and DM stop
    Column("tariff", JSON, nullable=False),
    Column("power_w", Integer, nullable=False),
    Column("meter_interval_s", Integer, nullable=False),
    Column("start_timeout_s", Integer, nullable=False),
    Column("paid_msat", Msat, nullable=False, default=0),
    Column("consumed_msat", Msat, nullable=False, default=0),
    Column("refunded_msat", Msat, nullable=False, default=0),
    Column("refundable_msat", Msat, nullable=False, default=0),
    Column("refund_in_flight_msat", Msat, nullable=False, default=0),
    Column("refund_fee_msat", Msat, nullable=False, default=0),
    Column("overrun_msat", Msat, nullable=False, default=0),
    Column("transaction_id", Integer),
    Column("meter_start_wh", BigInteger, nullable=False, default=0),
    Column("register_wh", BigInteger, nullable=False, default=0),
    Column("energy_wh", BigInteger, nullable=False, default=0),
    Column("started_at", TS),
    Column("last_reading_at", TS),
    Column("stopped_at", TS),
    Column("stop_reason", String(120), nullable=False, default=""),
    Column("refund_id", String(64)),
    Column("payer", String(56), nullable=False, default=""),  # "" prepaid; "free"; "account:.."
    Column("postpaid_msat", Msat, nullable=False, default=0),
    # A reservation (reserve_minutes > 0): its fee frozen at the offer, when it ends, and
    # its OCPP reservationId (from id_allocator, never reused).
    Column("reserve_minutes", Integer, nullable=False, default=0),
    Column("reservation_fee_msat", Msat, nullable=False, default=0),
    Column("reserved_until", TS),
    Column("reservation_id", Integer),
    # A dynamic tariff's price schedule frozen at the invoice (NULL: static), the energy
    # billed in each of its intervals, and the idle clock (strom_core.session).
    Column("price_schedule", JSON),
    Column("interval_wh", JSON, nullable=False, default=list),
    Column("idle_since", TS),
    Column("idle_s", Integer, nullable=False, default=0),
    # Fiat components: their terms and exchange rates (strom_core.fiat); NULL: sats only.
    Column("fiat", JSON),
    Column("applied", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_sessions_charger_state", "charger_id", "connector_id", "state"),
    Index("ix_sessions_transaction", "charger_id", "transaction_id"),
    # Sessions changed since the agents last looked: who paid (agent/payers.py).
    Index("ix_sessions_updated", "updated_at"),
    Index("uq_sessions_reservation_id", "reservation_id", unique=True),
)

payments = Table(
    "payments",
    metadata,
    Column("payment_hash", String(64), primary_key=True),
    Column("session_id", String(32), ForeignKey("sessions.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # "initial", "topup" or "receivable"
    Column("amount_msat", Msat, nullable=False),
    Column("bolt11", Text, nullable=False),
    Column("state", String(16), nullable=False),  # pending, settled, expired, flagged
    Column("zap_request", JSON),  # the NIP-57 zap request, when the payment is a zap
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("settled_at", TS),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("session_id", String(32), ForeignKey("sessions.id"), nullable=False, index=True),
    Column("k1_hash", String(64), nullable=False, unique=True),
    Column("state", String(16), nullable=False),  # offered, claimed, paying, paid, failed, unknown
    Column("amount_msat", Msat),
    Column("bolt11", Text),
    Column("payment_hash", String(64), unique=True),  # of the wallet's invoice: paid once
    Column("fee_msat", Msat),
    Column("detail", Text, nullable=False, default=""),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_refunds_offers", "state", "expires_at"),  # retention: expired withdraw offers
)

id_allocator = Table(
    "id_allocator",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("next_value", BigInteger, nullable=False),
)

ocpp_transactions = Table(
    "ocpp_transactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # from id_allocator
    Column("charger_id", String(48), nullable=False),
    Column("connector_id", Integer, nullable=False),
    Column("id_tag", String(20), nullable=False),
    Column("status", String(16), nullable=False),  # the idTagInfo status we answered
    Column("session_id", String(32), ForeignKey("sessions.id")),
    Column("meter_start_wh", BigInteger, nullable=False),
    Column("started_at", TS, nullable=False),
    Column("meter_stop_wh", BigInteger),
    Column("stopped_at", TS),
    Column("stop_reason", String(32)),
    Column("created_at", TS, nullable=False),
    # OCPP 2.0.1: the transactionId the charger chose (None: OCPP 1.6, whose reference is
    # ``id``). The charger's reference, and its replay key, per charger; ``<reference>~<id>``
    # once the charger reused it for a new transaction (at most 36 + 1 + 19 characters).
    Column("charger_reference", String(64)),
    UniqueConstraint("charger_id", "charger_reference", name="uq_ocpp_transactions_reference"),
    # A 1.6 charger that resends StartTransaction after reconnecting sends the same five values.
    Index(
        "uq_ocpp_transactions_replay",
        "charger_id",
        "connector_id",
        "id_tag",
        "meter_start_wh",
        "started_at",
        unique=True,
        sqlite_where=text("charger_reference IS NULL"),
        postgresql_where=text("charger_reference IS NULL"),
    ),
)

ocpp_unknown_stops = Table(
    "ocpp_unknown_stops",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("charger_id", String(48), nullable=False),
    # The reference the charger stopped: a decimal number (every OCPP 1.6 id) in
    # ``transaction_id``, any other (an OCPP 2.0.1 id) in ``charger_reference``; one of the two.
    Column("transaction_id", BigInteger),
    Column("charger_reference", String(36)),
    Column("meter_stop_wh", BigInteger, nullable=False),
    Column("stopped_at", TS, nullable=False),
    Column("reason", String(32), nullable=False, default=""),
    Column("id_tag", String(20)),
    Column("received_at", TS, nullable=False),
    UniqueConstraint("charger_id", "transaction_id", name="uq_ocpp_unknown_stops_replay"),
    UniqueConstraint("charger_id", "charger_reference", name="uq_ocpp_unknown_stops_reference"),
    CheckConstraint(
        "(transaction_id IS NULL) <> (charger_reference IS NULL)", name="one_reference"
    ),
    Index("ix_ocpp_unknown_stops_received", "received_at"),  # retention
)

meter_readings = Table(
    "meter_readings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("charger_id", String(48), nullable=False),
    Column("connector_id", Integer, nullable=False),
    Column("transaction_id", Integer, nullable=False),
    Column("register_wh", BigInteger, nullable=False),
    Column("sampled_at", TS, nullable=False),
    UniqueConstraint(
        "charger_id",
        "transaction_id",
        "sampled_at",
        "register_wh",
        name="uq_meter_readings_sample",
    ),
    Index("ix_meter_readings_sampled", "sampled_at"),  # retention
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(32), ForeignKey("sessions.id"), nullable=False, index=True),
    Column("kind", String(24), nullable=False),  # payment, consumption, refund, refund_reversal
    Column("natural_key", String(120), nullable=False, unique=True),
    Column("amount_msat", Msat, nullable=False),
    Column("created_at", TS, nullable=False),
)

# The final bill of a session billed by a price schedule, one row per interval that carries
# energy: enough to recompute the bill (energy x price, floored) and to say where the price
# came from. Written with the session's consumption entry, once (natural key).
ledger_intervals = Table(
    "ledger_intervals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(32), ForeignKey("sessions.id"), nullable=False, index=True),
    Column("natural_key", String(120), nullable=False, unique=True),
    Column("interval_start", TS, nullable=False),
    Column("interval_end", TS, nullable=False),
    Column("energy_wh", BigInteger, nullable=False),
    Column("energy_msat_per_kwh", BigInteger, nullable=False),  # may be negative (spot)
    Column("cost_msat", BigInteger, nullable=False),  # floor(energy x price / 1000)
    Column("source", String(64), nullable=False),
    Column("fetched_at", TS, nullable=False),
    Column("rate_source", String(64), nullable=False, default=""),
    Column("created_at", TS, nullable=False),
)

# The exchange rate of the final bill of a session with fiat components: which rate (at payment,
# at billing, or the payment's as a fallback), the terms, the msat prices they gave and what was
# metered, so the bill can be recomputed. Written with the consumption entry, once.
ledger_rates = Table(
    "ledger_rates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(32), ForeignKey("sessions.id"), nullable=False, index=True),
    Column("natural_key", String(120), nullable=False, unique=True),
    Column("basis", String(32), nullable=False),  # at_payment, at_billing, at_billing_fallback
    Column("currency", String(3), nullable=False),
    Column("rate", String(40), nullable=False),  # fiat per BTC, exact decimal
    Column("rate_source", String(120), nullable=False),
    Column("rate_at", TS, nullable=False),
    Column("terms", JSON, nullable=False),
    Column("prices_msat", JSON, nullable=False),
    Column("energy_wh", BigInteger, nullable=False),
    Column("elapsed_s", BigInteger, nullable=False),
    Column("idle_s", BigInteger, nullable=False),
    Column("created_at", TS, nullable=False),
)

nostr_events = Table(
    "nostr_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("kind", Integer, nullable=False),
    Column("pubkey", String(64), nullable=False),
    Column("received_at", TS, nullable=False),
    Index("ix_nostr_events_kind_received", "kind", "received_at"),  # retention, per kind
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(160), nullable=False, unique=True),
    Column("session_id", String(32)),
    Column("kind", String(32), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("state", String(12), nullable=False),  # pending, done, dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("run_after", TS, nullable=False),
    Column("last_error", Text, nullable=False, default=""),
    Column("created_at", TS, nullable=False),
    Column("done_at", TS),  # when it ran (done) or was given up (dead)
    # Shared outbox (several processes on one PostgreSQL): the process running the row and
    # until when its claim holds; after that another process may take the row over.
    Column("claimed_by", String(100)),
    Column("claimed_until", TS),
    # The charger an OCPP command must reach (its connection lives in one process), or None.
    Column("charger_id", String(48)),
    # The lease whose holder runs the row (``charger:<id>`` for an OCPP command, ``agent:<id>``
    # for a DM or zap receipt of a charger's agent), or None: any process runs it.
    Column("lease", String(100)),
    Index("ix_outbox_due", "state", "run_after"),
    Index("ix_outbox_finished", "state", "done_at"),  # retention
)

# Named leases with fencing tokens (``strom_storage.leases``): ``charger:<id>``, ``agent:<id>``,
# ``leader:<role>``. A row is never deleted: a released lease keeps its token, so the next
# holder's token is still larger than every earlier one.
leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("owner", String(100), nullable=False),
    Column("token", BigInteger, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("acquired_at", TS, nullable=False),
    Index("ix_leases_owner", "owner"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", TS, nullable=False),
    Column("actor", String(100), nullable=False),  # an npub, "token:<name>" or "cli"
    Column("action", String(64), nullable=False),
    Column("target", String(100), nullable=False, default=""),
    Column("detail", JSON, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the token
    Column("scope", String(8), nullable=False),  # "admin" or "read"
    Column("created_at", TS, nullable=False),
    Column("last_used_at", TS),
    Column("revoked_at", TS),
)

# The agents' journal of session DMs: each signed DM is stored under its outbox row's key
# before it is published, so a row run again after a crash publishes the very same event.
dm_journal = Table(
    "dm_journal",
    metadata,
    Column("key", String(160), primary_key=True),  # the outbox row's idempotency key
    Column("events", JSON, nullable=False),  # the signed events and where they go
    Column("published", Boolean, nullable=False, default=False),
    Column("created_at", TS, nullable=False, index=True),
)

# Keys every process of a cluster must agree on (the agents' nostr keys, the relay pool's key,
# the server key the purpose keys derive from), sealed with the master key (``sealed1:``...);
# written once, insert-if-absent, never changed. One process on SQLite keeps key files instead.
shared_keys = Table(
    "shared_keys",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("sealed", Text, nullable=False),
    Column("created_at", TS, nullable=False),
)

# Secrets of sessions made before secrets were derived from the server key (they cannot be
# recomputed), sealed under a key derived from it, until the session's refund window ends.
imported_secrets = Table(
    "imported_secrets",
    metadata,
    Column("session_id", String(32), primary_key=True),
    Column("sealed", Text, nullable=False),
    Column("expires_at", TS, nullable=False, index=True),
)

# Tariffs an operator set while Strom ran (a price DM): in force, across restarts, until the
# charger's profile file says otherwise (``file_*`` is the file's tariff when it was set).
tariffs = Table(
    "tariffs",
    metadata,
    Column("charger_id", String(48), ForeignKey("chargers.id"), primary_key=True),
    Column("energy_msat_per_kwh", Msat, nullable=False),
    Column("time_msat_per_minute", Msat, nullable=False),
    Column("session_fee_msat", Msat, nullable=False),
    Column("min_prepay_msat", Msat, nullable=False),
    Column("max_prepay_msat", Msat, nullable=False),
    Column("reservation_fee_msat", Msat, nullable=False, default=0),
    Column("reservation_fee_msat_per_minute", Msat, nullable=False, default=0),
    Column("reservation_max_minutes", Integer, nullable=False, default=0),
    Column("reservation_kept_percent", Integer, nullable=False, default=100),
    Column("idle_msat_per_minute", Msat, nullable=False, default=0),
    Column("idle_grace_minutes", Integer, nullable=False, default=0),
    Column("file_tariff", JSON, nullable=False),
    Column("source", String(120), nullable=False),
    Column("set_at", TS, nullable=False),
)

# Each change of a connector's OCPP status, and of a charger's connection (connector 0:
# ``Online``/``Offline``), for the operator's availability timeline. A row is written only when
# the status differs from the one before (a repeated StatusNotification adds nothing).
status_history = Table(
    "status_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("charger_id", String(48), nullable=False),
    Column("connector_id", Integer, nullable=False),  # 0: the charger's own connection
    Column("status", String(32), nullable=False),
    Column("error_code", String(50), nullable=False, default="NoError"),
    Column("at", TS, nullable=False),
    Index("ix_status_history_at", "at"),
    Index("ix_status_history_connector", "charger_id", "connector_id", "at"),
)

# A session's "charge when cheap" plan that its charger ACCEPTED (strom_core.charge_plan): one
# row per session, replaced by a newer plan. ``slots`` are [start_s, end_s, msat/kWh, charge_s].
charge_plans = Table(
    "charge_plans",
    metadata,
    Column("session_id", String(32), ForeignKey("sessions.id"), primary_key=True),
    Column("start", TS, nullable=False),
    Column("deadline", TS, nullable=False),
    Column("power_w", Integer, nullable=False),
    Column("fits", Boolean, nullable=False),
    Column("slots", JSON, nullable=False),
    Column("planned_at", TS, nullable=False),
)

# Roaming partners (strom_core.roaming). A partner is its id string (an OCPI eMSP); these
# tables name it without a foreign key, so they stand without the OCPI front door.

# What a partner's session keeps for OCPI: the token of its CDR and how it was authorised.
# One remote start per (partner, authorization_reference): the same command twice is one session.
roaming_sessions = Table(
    "roaming_sessions",
    metadata,
    Column("session_id", String(32), ForeignKey("sessions.id"), primary_key=True),
    Column("partner_id", String(36), nullable=False),
    Column("token_uid", String(36), nullable=False),
    Column("token_type", String(16), nullable=False),  # RFID, APP_USER, AD_HOC_USER, OTHER
    Column("contract_id", String(36), nullable=False),
    Column("authorization_reference", String(36)),
    Column("started_by", String(8), nullable=False),  # "command" or "token"
    Column("created_at", TS, nullable=False),
    UniqueConstraint(
        "partner_id", "authorization_reference", name="uq_roaming_sessions_authorization"
    ),
)

# A partner's reservations (OCPI RESERVE_NOW): its reservation id names the session.
roaming_reservations = Table(
    "roaming_reservations",
    metadata,
    Column("partner_id", String(36), primary_key=True),
    Column("reservation_id", String(36), primary_key=True),  # the partner's, as sent
    Column("session_id", String(32), ForeignKey("sessions.id"), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
)

# Partners' tokens (OCPI Tokens module), newest ``last_updated`` wins.
roaming_tokens = Table(
    "roaming_tokens",
    metadata,
    Column("partner_id", String(36), primary_key=True),
    Column("uid", String(36), primary_key=True),
    Column("type", String(16), primary_key=True),
    Column("contract_id", String(36), nullable=False),
    Column("visual_number", String(64), nullable=False, default=""),
    Column("issuer", String(64), nullable=False, default=""),
    Column("group_id", String(36), nullable=False, default=""),
    Column("valid", Boolean, nullable=False),
    Column("whitelist", String(16), nullable=False),  # ALWAYS, ALLOWED, ALLOWED_OFFLINE, NEVER
    Column("last_updated", TS, nullable=False),
)

# A partner's bill for one session (opened with the final bill, in the same commit) and the
# Lightning invoice offered for it; its settlement goes through ``payments`` (kind receivable).
receivables = Table(
    "receivables",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner_id", String(36), nullable=False, index=True),
    Column("session_id", String(32), ForeignKey("sessions.id"), nullable=False, unique=True),
    Column("amount_msat", Msat, nullable=False),
    Column("state", String(16), nullable=False),  # open, invoiced, paid, written_off
    Column("payment_hash", String(64)),  # of the invoice offered now (earlier ones: payments)
    Column("bolt11", Text),
    Column("created_at", TS, nullable=False),
    Column("invoiced_at", TS),
    Column("due_at", TS),
    Column("paid_at", TS),
    Index("ix_receivables_due", "state", "due_at"),
)

# A partner's payment terms (the OCPI partner record may take them over later).
roaming_partner_terms = Table(
    "roaming_partner_terms",
    metadata,
    Column("partner_id", String(36), primary_key=True),
    Column("block_when_overdue", Boolean, nullable=False),
    Column("payment_terms_days", Integer, nullable=False),
    Column("updated_at", TS, nullable=False),
)

# OCPI roaming partners (ocpi_server). ``state``: ``offered`` (Strom gave the partner token A),
# ``registered``, ``unregistered``. Of the tokens the partner uses on Strom only sha256 hashes
# are kept: token A while offered, and the registered token (C, or the token B Strom sent
# when it registered itself with the partner), and the next one during an exchange Strom
# began. The token Strom uses on the partner is sealed with the master key
# (strom_storage.sealing), or stored as it is when none is set.
ocpi_partners = Table(
    "ocpi_partners",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("country_code", String(2)),
    Column("party_id", String(3)),
    Column("roles", JSON, nullable=False),  # the partner's CredentialsRole objects
    Column("state", String(16), nullable=False),
    Column("token_a_hash", String(64), unique=True),
    Column("token_hash", String(64), unique=True),
    # The token Strom sends while it registers or rotates (accepted alongside token_hash until
    # the exchange ends: the partner calls back with it before it answers).
    Column("next_token_hash", String(64), unique=True),
    Column("their_token", Text),  # sealed
    Column("versions_url", Text),
    Column("version", String(10)),
    Column("endpoints", JSON, nullable=False),  # the partner's Endpoint objects
    Column("settlement", String(16), nullable=False, default="after_cdr"),
    Column("blocked", Boolean, nullable=False, default=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    CheckConstraint("state IN ('offered', 'registered', 'unregistered')", name="state"),
    CheckConstraint("settlement IN ('after_cdr', 'streaming')", name="settlement"),
)

# Every OCPI request in and out (direction ``in``: a partner called Strom; ``out``: Strom
# called a partner), for the operator; pruned after ``retention.ocpi_log_days``.
ocpi_log = Table(
    "ocpi_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner_id", Integer),  # None: the caller was not recognised
    Column("direction", String(3), nullable=False),
    Column("method", String(8), nullable=False),
    Column("url", String(500), nullable=False),
    Column("http_status", Integer),  # None: no answer (timeout, connection refused)
    Column("status_code", Integer),  # the envelope's, when there was one
    Column("request_id", String(100), nullable=False),
    Column("correlation_id", String(100), nullable=False),
    Column("at", TS, nullable=False),
    Column("excerpt", String(500), nullable=False, default=""),
    Index("ix_ocpi_log_at", "at"),
    Index("ix_ocpi_log_partner", "partner_id", "at"),
)

# The Lightning invoices offered to roaming partners (docs/ocpi-lightning.md): a session's
# CDR invoice (seq 0, the receivable), or the intervals of a streaming session (seq 1…; the
# last one after the stop is the receivable). ``payment_hash`` is the current BOLT 11's (a
# replaced one stays in ``payments``); ``version`` counts the changes pushed to the partner.
partner_invoices = Table(
    "partner_invoices",
    metadata,
    Column("id", String(40), primary_key=True),  # "<session>" or "<session>-<seq>"
    Column("partner_id", String(36), nullable=False),
    Column("session_id", String(32), ForeignKey("sessions.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(8), nullable=False),  # CDR, INTERVAL
    Column("receivable_id", Integer),  # the receivable it pays; None: an interval
    Column("period_start", TS, nullable=False),
    Column("period_end", TS, nullable=False),
    Column("amount_msat", Msat, nullable=False),
    Column("payment_hash", String(64), nullable=False, unique=True),
    Column("bolt11", Text, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("due_at", TS, nullable=False),
    Column("status", String(10), nullable=False),  # OPEN, PAID, EXPIRED, CANCELLED
    Column("paid_at", TS),
    Column("version", Integer, nullable=False),
    Column("stop_asked", Boolean, nullable=False, default=False),
    Column("last_updated", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("session_id", "seq", name="uq_partner_invoices_session_seq"),
    Index("ix_partner_invoices_partner", "partner_id", "last_updated"),
    Index("ix_partner_invoices_due", "status", "due_at"),
)

# A roaming partner's command (start, stop, unlock) until the charger's outcome is known; the
# outcome is written with the session transition that decides it, and the outbox then posts
# it to ``response_url`` (see strom_core.roaming_commands).
roaming_commands = Table(
    "roaming_commands",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner_id", String(36), nullable=False),
    Column("kind", String(20), nullable=False),  # START_SESSION, STOP_SESSION, UNLOCK_CONNECTOR
    Column("response_url", Text, nullable=False),
    Column("session_id", String(32)),
    Column("charger_id", String(48)),
    Column("connector_id", Integer),
    Column("ended", Boolean, nullable=False, default=False),
    Column("result", String(24)),  # OCPI CommandResultType, once ended
    Column("message", String(200), nullable=False, default=""),
    Column("created_at", TS, nullable=False),
    Column("ended_at", TS),
    Index("ix_roaming_commands_session", "session_id", "ended"),
)

# When Strom last pulled an OCPI partner's tokens (the next pull asks from then on).
ocpi_token_pulls = Table(
    "ocpi_token_pulls",
    metadata,
    Column("partner_id", Integer, primary_key=True),
    Column("pulled_at", TS, nullable=False),
)
