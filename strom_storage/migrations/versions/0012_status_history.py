"""The availability timeline: each change of a connector's status and a charger's connection

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 10:40:00

``status_history`` keeps one row per change: a connector's OCPP status (and error code), or the
charger's connection as connector 0 (``Online``/``Offline``). Nothing is back-filled: the
timeline of the time before this revision is unknown.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.String(length=50), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_history")),
    )
    op.create_index("ix_status_history_at", "status_history", ["at"])
    op.create_index(
        "ix_status_history_connector", "status_history", ["charger_id", "connector_id", "at"]
    )


def downgrade() -> None:
    op.drop_index("ix_status_history_connector", table_name="status_history")
    op.drop_index("ix_status_history_at", table_name="status_history")
    op.drop_table("status_history")
