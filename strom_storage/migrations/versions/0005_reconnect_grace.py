"""Chargers get a reconnect grace after a restart of Strom

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 09:00:00

``chargers.reconnect_until``: a charger that was connected when Strom stopped is shown as
reconnecting (not offline) until then; offers refuse it until it is connected again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chargers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reconnect_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chargers", schema=None) as batch_op:
        batch_op.drop_column("reconnect_until")
