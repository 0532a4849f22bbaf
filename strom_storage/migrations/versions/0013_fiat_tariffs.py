"""Fiat tariff components: a session's fiat terms and rates, the rate of each fiat bill

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 13:10:00

``sessions.fiat`` (JSON, NULL for a tariff in sats only) keeps the components a tariff gives in
a fiat currency, when they are converted, and the exchange rates used (strom_core.fiat).
``ledger_rates`` journals the rate of the final bill of such a session, with the terms, the
msat prices they gave and what was metered, so the bill can be recomputed. Existing sessions are
in sats: NULL.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("fiat", sa.JSON()))
    op.create_table(
        "ledger_rates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("natural_key", sa.String(length=120), nullable=False),
        sa.Column("basis", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("rate", sa.String(length=40), nullable=False),
        sa.Column("rate_source", sa.String(length=120), nullable=False),
        sa.Column("rate_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("prices_msat", sa.JSON(), nullable=False),
        sa.Column("energy_wh", sa.BigInteger(), nullable=False),
        sa.Column("elapsed_s", sa.BigInteger(), nullable=False),
        sa.Column("idle_s", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_ledger_rates_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_rates")),
        sa.UniqueConstraint("natural_key", name=op.f("uq_ledger_rates_natural_key")),
    )
    op.create_index(
        op.f("ix_ledger_rates_session_id"), "ledger_rates", ["session_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ledger_rates_session_id"), table_name="ledger_rates")
    op.drop_table("ledger_rates")
    op.drop_column("sessions", "fiat")
