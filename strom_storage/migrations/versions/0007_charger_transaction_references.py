"""OCPP 2.0.1 transactions keep the transactionId their charger chose

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09 09:00:00

``ocpp_transactions.charger_reference``: the charger's own transaction id (OCPP 2.0.1, at most
36 characters), unique per charger; the integer ``id`` stays the key every other table uses.
The OCPP 1.6 replay key (charger, connector, idTag, meterStart, timestamp) now holds for 1.6
rows only (a partial unique index: ``charger_reference IS NULL``); a 2.0.1 start is replayed
by its reference.

``ocpp_unknown_stops.charger_reference``: an unknown stop of a reference that is no decimal
number is kept there, once per charger; ``transaction_id`` becomes nullable (one of the two
is set). Existing rows are all 1.6 rows and stay as they are.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_REPLAY_COLUMNS = ["charger_id", "connector_id", "id_tag", "meter_start_wh", "started_at"]
_ONE_REFERENCE = "(transaction_id IS NULL) <> (charger_reference IS NULL)"


def upgrade() -> None:
    with op.batch_alter_table("ocpp_transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charger_reference", sa.String(length=36), nullable=True))
        batch_op.drop_constraint("uq_ocpp_transactions_replay", type_="unique")
        batch_op.create_unique_constraint(
            "uq_ocpp_transactions_reference", ["charger_id", "charger_reference"]
        )
    op.create_index(
        "uq_ocpp_transactions_replay",
        "ocpp_transactions",
        _REPLAY_COLUMNS,
        unique=True,
        sqlite_where=sa.text("charger_reference IS NULL"),
        postgresql_where=sa.text("charger_reference IS NULL"),
    )
    with op.batch_alter_table("ocpp_unknown_stops", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charger_reference", sa.String(length=36), nullable=True))
        batch_op.alter_column("transaction_id", existing_type=sa.BigInteger(), nullable=True)
        batch_op.create_unique_constraint(
            "uq_ocpp_unknown_stops_reference", ["charger_id", "charger_reference"]
        )
        batch_op.create_check_constraint(
            op.f("ck_ocpp_unknown_stops_one_reference"), _ONE_REFERENCE
        )


def downgrade() -> None:
    # A 2.0.1 record has no place in the old schema: downgrading with any refuses to start.
    for table in ("ocpp_transactions", "ocpp_unknown_stops"):
        reference = sa.column("charger_reference")
        kept = op.get_bind().scalar(
            sa.select(sa.func.count())
            .select_from(sa.table(table, reference))
            .where(reference.is_not(None))
        )
        if kept:
            raise RuntimeError(
                f"{table} holds {kept} OCPP 2.0.1 transaction reference(s); "
                "the schema before 0007 cannot keep them"
            )
    with op.batch_alter_table("ocpp_unknown_stops", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ocpp_unknown_stops_one_reference"), type_="check")
        batch_op.drop_constraint("uq_ocpp_unknown_stops_reference", type_="unique")
        batch_op.alter_column("transaction_id", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_column("charger_reference")
    op.drop_index("uq_ocpp_transactions_replay", table_name="ocpp_transactions")
    with op.batch_alter_table("ocpp_transactions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_ocpp_transactions_reference", type_="unique")
        batch_op.drop_column("charger_reference")
        batch_op.create_unique_constraint("uq_ocpp_transactions_replay", _REPLAY_COLUMNS)
