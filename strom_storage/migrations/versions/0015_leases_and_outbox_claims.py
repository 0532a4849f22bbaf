"""Leases with fencing tokens, and claims on outbox rows (the groundwork of clustering)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-09 09:30:00

``leases`` holds one row per named lease (``charger:<id>``, ``agent:<id>``, ``leader:<role>``):
its owner (a process id), a fencing token that grows on every change of owner, and when it
expires. ``outbox`` gains the claim of the process running a row (``claimed_by``,
``claimed_until``) and the charger an OCPP command must reach (``charger_id``). Existing rows
stay unclaimed and without a charger: a single process runs them as before.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_index("ix_leases_owner", "leases", ["owner"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("charger_id", sa.String(length=48), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("charger_id")
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
    op.drop_index("ix_leases_owner", table_name="leases")
    op.drop_table("leases")
