"""Roaming partners' commands awaiting the charger, and when their tokens were last pulled

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 16:40:00

``roaming_commands`` keeps an OCPI partner's START_SESSION, STOP_SESSION or UNLOCK_CONNECTOR
until the charger's outcome is known, with the URL the outcome is posted to.
``ocpi_token_pulls`` records when each partner's tokens were last fetched.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "roaming_commands",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("response_url", sa.Text(), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=True),
        sa.Column("charger_id", sa.String(length=48), nullable=True),
        sa.Column("connector_id", sa.Integer(), nullable=True),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.Column("result", sa.String(length=24), nullable=True),
        sa.Column("message", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roaming_commands")),
    )
    op.create_index("ix_roaming_commands_session", "roaming_commands", ["session_id", "ended"])
    op.create_table(
        "ocpi_token_pulls",
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", name=op.f("pk_ocpi_token_pulls")),
    )


def downgrade() -> None:
    op.drop_table("ocpi_token_pulls")
    op.drop_index("ix_roaming_commands_session", table_name="roaming_commands")
    op.drop_table("roaming_commands")
