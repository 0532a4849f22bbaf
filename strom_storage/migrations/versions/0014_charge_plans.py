"""A session's "charge when cheap" plan: the deadline and the slots its charger accepted

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-09 09:30:00

``charge_plans`` keeps, per session, the last plan the charger ACCEPTED (its start, the driver's
deadline, the power, whether the energy fitted, and each slot's seconds and price) so the
session page can show when the car charges. Sessions before this revision have no plan.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "charge_plans",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("power_w", sa.Integer(), nullable=False),
        sa.Column("fits", sa.Boolean(), nullable=False),
        sa.Column("slots", sa.JSON(), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_charge_plans_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_charge_plans")),
    )


def downgrade() -> None:
    op.drop_table("charge_plans")
