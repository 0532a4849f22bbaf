"""Sessions of the operator's cards: who pays after the fact

Revision ID: 0009
Revises: 0008
Create Date: 2027-01-10 09:00:00

``sessions.payer`` ("" for a prepaid session, ``free`` or ``account:<name>`` for a card) and
``sessions.postpaid_msat`` (a card session's cost at its tariff). Existing sessions are
prepaid: "" and 0.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


# Plain ALTER TABLE (SQLite 3.35+ drops a column in place): a batch copy of ``sessions`` would
# have to drop the table that payments, ledger entries and transactions refer to.


def upgrade() -> None:
    op.add_column("sessions", sa.Column("payer", sa.String(56), nullable=False, server_default=""))
    op.add_column(
        "sessions", sa.Column("postpaid_msat", sa.BigInteger(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    op.drop_column("sessions", "postpaid_msat")
    op.drop_column("sessions", "payer")
