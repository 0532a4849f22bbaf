"""Dynamic tariffs: a session's frozen price schedule, its per-interval energy, the idle clock

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 10:30:00

``sessions.price_schedule`` (JSON, NULL for a static tariff), ``sessions.interval_wh`` (JSON
list, the energy billed in each interval of the schedule), ``sessions.idle_since`` and
``sessions.idle_s`` (the idle fee's clock). ``ledger_intervals`` journals the final bill of a
session billed by a schedule, one row per interval, with the schedule's source, fetched_at and
rate_source. ``tariffs`` gains the idle fee of a tariff an operator set at run time. Existing
sessions are static: NULL, ``[]``, NULL and 0; existing tariffs have no idle fee.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, as in 0009 and 0010: a batch copy of ``sessions`` would have to drop the
# table that payments, ledger entries and transactions refer to.


def upgrade() -> None:
    op.add_column("sessions", sa.Column("price_schedule", sa.JSON()))
    op.add_column(
        "sessions", sa.Column("interval_wh", sa.JSON(), nullable=False, server_default="[]")
    )
    op.add_column("sessions", sa.Column("idle_since", sa.DateTime(timezone=True)))
    op.add_column("sessions", sa.Column("idle_s", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "ledger_intervals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("natural_key", sa.String(length=120), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("energy_wh", sa.BigInteger(), nullable=False),
        sa.Column("energy_msat_per_kwh", sa.BigInteger(), nullable=False),
        sa.Column("cost_msat", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rate_source", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_ledger_intervals_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_intervals")),
        sa.UniqueConstraint("natural_key", name=op.f("uq_ledger_intervals_natural_key")),
    )
    op.create_index(
        op.f("ix_ledger_intervals_session_id"), "ledger_intervals", ["session_id"], unique=False
    )
    op.add_column(
        "tariffs",
        sa.Column("idle_msat_per_minute", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column(
        "tariffs", sa.Column("idle_grace_minutes", sa.Integer(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    for name in ("idle_grace_minutes", "idle_msat_per_minute"):
        op.drop_column("tariffs", name)
    op.drop_index(op.f("ix_ledger_intervals_session_id"), table_name="ledger_intervals")
    op.drop_table("ledger_intervals")
    for name in ("idle_s", "idle_since", "interval_wh", "price_schedule"):
        op.drop_column("sessions", name)
