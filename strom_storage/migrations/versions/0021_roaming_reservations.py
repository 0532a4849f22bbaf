"""A roaming partner's reservations: its reservation id and the session it names

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 17:00:00

``roaming_reservations`` maps an OCPI partner's ``reservation_id`` (RESERVE_NOW) to the
post-paid reserved session, so CANCEL_RESERVATION finds it and the same id is never
reserved twice.
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "roaming_reservations",
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("reservation_id", sa.String(length=36), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_roaming_reservations_session_id_sessions"),
        ),
        sa.PrimaryKeyConstraint(
            "partner_id", "reservation_id", name=op.f("pk_roaming_reservations")
        ),
        sa.UniqueConstraint("session_id", name=op.f("uq_roaming_reservations_session_id")),
    )


def downgrade() -> None:
    op.drop_table("roaming_reservations")
