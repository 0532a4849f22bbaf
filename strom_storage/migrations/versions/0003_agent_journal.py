"""The agents' DM journal and imported session secrets move into the main database

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dm_journal",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_dm_journal")),
    )
    with op.batch_alter_table("dm_journal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dm_journal_created_at"), ["created_at"], unique=False)

    op.create_table(
        "imported_secrets",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_imported_secrets")),
    )
    with op.batch_alter_table("imported_secrets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_imported_secrets_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("imported_secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_imported_secrets_expires_at"))
    op.drop_table("imported_secrets")
    with op.batch_alter_table("dm_journal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dm_journal_created_at"))
    op.drop_table("dm_journal")
