"""Tariffs an operator sets while Strom runs are kept across restarts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 23:00:00

``tariffs``: one row per charger whose tariff an operator changed at run time (a ``price``
DM), with the profile file's tariff at that moment; the row is in force until the file's
tariff changes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tariffs",
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("energy_msat_per_kwh", sa.BigInteger(), nullable=False),
        sa.Column("time_msat_per_minute", sa.BigInteger(), nullable=False),
        sa.Column("session_fee_msat", sa.BigInteger(), nullable=False),
        sa.Column("min_prepay_msat", sa.BigInteger(), nullable=False),
        sa.Column("max_prepay_msat", sa.BigInteger(), nullable=False),
        sa.Column("file_tariff", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"], ["chargers.id"], name=op.f("fk_tariffs_charger_id_chargers")
        ),
        sa.PrimaryKeyConstraint("charger_id", name=op.f("pk_tariffs")),
    )


def downgrade() -> None:
    op.drop_table("tariffs")
