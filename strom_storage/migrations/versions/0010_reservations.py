"""Paid reservations: a session may hold its connector before it starts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 09:40:00

``sessions.reserve_minutes`` (0: not a reservation), ``sessions.reservation_fee_msat`` (the fee
frozen at the offer), ``sessions.reserved_until`` (when the reservation ends) and
``sessions.reservation_id`` (the OCPP reservationId, unique; taken from ``id_allocator`` row
``ocpp_reservation``, so never reused). ``tariffs`` gains the reservation terms of a tariff an
operator set at run time. Existing sessions and tariffs have no reservations: 0, NULL, and
100 for the kept share (the default).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, as in 0009: a batch copy of ``sessions`` would have to drop the table
# that payments, ledger entries and transactions refer to.


def upgrade() -> None:
    op.add_column(
        "sessions", sa.Column("reserve_minutes", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "sessions",
        sa.Column("reservation_fee_msat", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column("sessions", sa.Column("reserved_until", sa.DateTime(timezone=True)))
    op.add_column("sessions", sa.Column("reservation_id", sa.Integer()))
    op.create_index("uq_sessions_reservation_id", "sessions", ["reservation_id"], unique=True)
    for name, default in (
        ("reservation_fee_msat", "0"),
        ("reservation_fee_msat_per_minute", "0"),
    ):
        op.add_column(
            "tariffs", sa.Column(name, sa.BigInteger(), nullable=False, server_default=default)
        )
    for name, default in (("reservation_max_minutes", "0"), ("reservation_kept_percent", "100")):
        op.add_column(
            "tariffs", sa.Column(name, sa.Integer(), nullable=False, server_default=default)
        )


def downgrade() -> None:
    for name in (
        "reservation_kept_percent",
        "reservation_max_minutes",
        "reservation_fee_msat_per_minute",
        "reservation_fee_msat",
    ):
        op.drop_column("tariffs", name)
    op.drop_index("uq_sessions_reservation_id", table_name="sessions")
    for name in ("reservation_id", "reserved_until", "reservation_fee_msat", "reserve_minutes"):
        op.drop_column("sessions", name)
