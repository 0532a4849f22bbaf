"""Keys shared by the processes of a cluster, and the lease that decides who runs an outbox row

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 13:00:00

``shared_keys`` holds, sealed with the master key, the keys every process of a cluster must
agree on (each charger's nostr key, the relay pool's key, the server key); a single process
keeps its key files and never writes here. ``outbox.lease`` names the lease whose holder runs a
row: ``charger:<id>`` for an OCPP command (filled in here from ``charger_id`` for the rows
queued before), ``agent:<id>`` for a charger's DM or zap receipt, None for any process.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shared_keys",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_shared_keys")),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("lease", sa.String(length=100), nullable=True))
    op.execute(
        "UPDATE outbox SET lease = 'charger:' || charger_id "
        "WHERE charger_id IS NOT NULL AND lease IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("lease")
    op.drop_table("shared_keys")
