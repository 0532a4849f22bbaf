"""An OCPP 2.0.1 transaction reference reused after a reboot keeps the earlier one findable

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-14 09:00:00

A charger that reboots may choose a transactionId it used before. The ended transaction of
that reference is renamed ``<reference>~<id>`` so the new one can take the reference (unique
per charger); ``ocpp_transactions.charger_reference`` widens from 36 to 64 characters for
that name. Existing rows stay as they are.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ocpp_transactions", schema=None) as batch_op:
        batch_op.alter_column(
            "charger_reference",
            existing_type=sa.String(length=36),
            type_=sa.String(length=64),
            existing_nullable=True,
        )


def downgrade() -> None:
    # An archived reference has no place in 36 characters: downgrading with any refuses.
    reference = sa.column("charger_reference")
    kept = op.get_bind().scalar(
        sa.select(sa.func.count())
        .select_from(sa.table("ocpp_transactions", reference))
        .where(sa.func.length(reference) > 36)
    )
    if kept:
        raise RuntimeError(
            f"ocpp_transactions holds {kept} archived transaction reference(s) longer than "
            "36 characters; the schema before 0008 cannot keep them"
        )
    with op.batch_alter_table("ocpp_transactions", schema=None) as batch_op:
        batch_op.alter_column(
            "charger_reference",
            existing_type=sa.String(length=64),
            type_=sa.String(length=36),
            existing_nullable=True,
        )
